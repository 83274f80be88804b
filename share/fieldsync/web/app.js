/* app.js - the field app's page.  Thin by rule: it shows what the agent
 * answers and sends what the worker does; every rule (who may do what,
 * validation, form logic) is the agent's, in C.  Nothing personal is
 * kept in the browser: no localStorage but the chosen language, no data
 * in URLs.  The CSRF token lives in this page's memory only. */
'use strict';
(function () {
  const POLL_MS = 3000;
  let lang = localStorage.getItem('fieldsync.lang') || 'sr-Latn';
  let csrf = null;
  let state = null;
  let view = 'loading';
  let notice = null; /* a key of STRINGS shown on the unlock view */
  let pollTimer = null;
  let forms = null;      /* the agent's form definitions: layout, never rules */
  let searchTimer = null;
  let searchSeq = 0;     /* answers to older searches are dropped */
  let lastResults = null;
  let household = null;

  const $ = (id) => document.getElementById(id);

  function t(key, vars) {
    const table = STRINGS[lang] || STRINGS.en;
    let s = table[key] !== undefined ? table[key] : STRINGS.en[key];
    if (s === undefined) return key;
    for (const k in vars || {}) s = s.replace('{' + k + '}', vars[k]);
    return s;
  }

  /* "{n} changes" in the language's plural form (Serbian has three). */
  function plural(base, n) {
    if (n === 0) return t(base + '_none');
    const form = new Intl.PluralRules(lang).select(n);
    const key = base + '_' + form;
    const table = STRINGS[lang] || STRINGS.en;
    return t(table[key] !== undefined ? key : base + '_other', { n: n.toLocaleString(lang) });
  }

  /* A time in words; ahead: a time that is due, never "ago". */
  function when(iso, ahead) {
    const ms = Date.parse(iso);
    let s = Math.round((ms - Date.now()) / 1000);
    if (ahead && s < 0) s = 0;
    const rtf = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
    const a = Math.abs(s);
    if (a < 60) return rtf.format(s, 'second');
    if (a < 3600) return rtf.format(Math.round(s / 60), 'minute');
    if (a < 86400) return rtf.format(Math.round(s / 3600), 'hour');
    return new Date(ms).toLocaleString(lang);
  }

  async function api(method, path, body) {
    const opt = { method: method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    if (method !== 'GET' && csrf) opt.headers['X-CSRF-Token'] = csrf;
    let r;
    try {
      r = await fetch(path, opt);
    } catch (e) {
      $('offline').hidden = false;
      return { status: 0, body: {} };
    }
    $('offline').hidden = true;
    let j = {};
    try { j = await r.json(); } catch (e) { j = {}; }
    return { status: r.status, body: j };
  }

  function show(v) {
    view = v;
    $('loading').hidden = v !== 'loading';
    $('unlock').hidden = v !== 'unlock';
    $('home').hidden = v !== 'home';
    $('household').hidden = v !== 'household';
    $('syncbar').hidden = v === 'unlock' || v === 'loading';
    render();
  }

  function renderSync() {
    if (!state) return;
    const bar = $('syncbar');
    const waiting = state.pending_changes || 0;
    $('sync-waiting').textContent = state.syncing ? t('syncing') : plural('waiting', waiting);
    let last = state.last_success ? t('last_sync', { when: when(state.last_success) })
                                  : t('never_synced');
    if (state.next_attempt && waiting > 0) last += ' ' + t('next_try', { when: when(state.next_attempt, true) });
    $('sync-last').textContent = last;
    let problem = null;
    if (!state.enrolled) problem = t('not_enrolled');
    else if (state.revoked) problem = t('err_revoked');
    else if (state.last_error) problem = t('err_' + state.last_error);
    $('sync-problem').hidden = !problem;
    $('sync-problem').textContent = problem || '';
    bar.classList.toggle('clear', !problem && waiting === 0 && !state.syncing);
    $('sync-now').disabled = !!state.syncing;
  }

  function render() {
    document.documentElement.lang = lang;
    document.querySelectorAll('[data-t]').forEach((e) => { e.textContent = t(e.dataset.t); });
    document.querySelectorAll('[data-lang]').forEach((b) => {
      b.setAttribute('aria-pressed', String(b.dataset.lang === lang));
    });
    const err = $('unlock-error');
    err.hidden = !notice;
    err.textContent = notice ? t(notice) : '';
    renderSync();
    renderStatusChoices();
    renderResults();
    renderHousehold();
  }

  /* Words from the form (fieldsync-form/2): this language's, else
   * English, else the name itself.  The page has no words of its own for
   * a form's fields: they come with the form. */
  function pick(words, fallback) {
    if (!words) return fallback;
    return words[lang] || words.en || Object.values(words)[0] || fallback;
  }
  function fieldLabel(collection, name) {
    const def = formField(collection, name);
    return pick(def && def.label, name);
  }
  function choiceLabel(collection, name, value) {
    const def = formField(collection, name);
    return pick(def && def.choice_labels && def.choice_labels[value], value);
  }
  function formField(collection, name) {
    const f = forms && forms[collection];
    return f ? f.fields.find((x) => x.name === name) : null;
  }
  function valueText(collection, name, v) {
    if (v === null || v === undefined) return '';
    const def = formField(collection, name);
    const type = def ? def.type : '';
    if (type === 'choice') return choiceLabel(collection, name, v);
    if (type === 'multi_choice' && Array.isArray(v)) {
      return v.map((x) => choiceLabel(collection, name, x)).join(', ');
    }
    if (type === 'boolean') return t(v ? 'yes' : 'no');
    if (type === 'gps' && typeof v === 'object') return [v.lat, v.lon].join(', ');
    return String(v);
  }

  function renderStatusChoices() {
    const sel = $('f-status');
    const def = formField('beneficiaries', 'status');
    const keep = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    ((def && (def.choices || def.values)) || []).forEach((c) => {
      const o = document.createElement('option');
      o.value = c;
      o.textContent = choiceLabel('beneficiaries', 'status', c);
      sel.appendChild(o);
    });
    sel.value = keep;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function renderResults() {
    const list = $('results');
    list.replaceChildren();
    if (!lastResults) { $('result-count').textContent = ''; return; }
    const total = lastResults.total;
    const shown = lastResults.households.length;
    let count = total === 0 ? t('count_none') : plural('count', total);
    if (shown < total) count += ' (' + t('count_more', { shown: shown }) + ')';
    $('result-count').textContent = count;
    lastResults.households.forEach((h) => {
      const f = h.fields || {};
      const b = el('button', '');
      b.type = 'button';
      b.dataset.id = h.id;
      b.appendChild(el('span', 'name', f.full_name || ''));
      b.appendChild(el('span', 'when', h.last_visit ? t('last_visit', { date: h.last_visit }) : t('never_visited')));
      b.appendChild(el('span', 'where', [f.municipality, valueText('beneficiaries', 'status', f.status)].filter(Boolean).join(' · ')));
      b.addEventListener('click', () => openHousehold(h.id));
      const li = el('li', '');
      li.appendChild(b);
      list.appendChild(li);
    });
  }

  function renderHousehold() {
    if (!household) return;
    const f = household.fields || {};
    $('hh-name').textContent = f.full_name || '';
    const dl = $('hh-fields');
    dl.replaceChildren();
    ((forms && forms.beneficiaries && forms.beneficiaries.fields) || []).forEach((def) => {
      if (def.name === 'full_name' || f[def.name] === undefined) return;
      dl.appendChild(el('dt', '', fieldLabel('beneficiaries', def.name)));
      dl.appendChild(el('dd', '', valueText('beneficiaries', def.name, f[def.name])));
    });
    const cl = $('hh-conflicts');
    cl.replaceChildren();
    household.conflicts.forEach((c) => {
      cl.appendChild(el('li', '', t('conflict_line', {
        field: fieldLabel('beneficiaries', c.field),
        won: valueText('beneficiaries', c.field, c.value_b),
        lost: valueText('beneficiaries', c.field, c.value_a) })));
    });
    $('hh-conflicts-title').hidden = household.conflicts.length === 0;
    const vl = $('hh-visits');
    vl.replaceChildren();
    household.visits.forEach((v) => {
      const vf = v.fields || {};
      const li = el('li', '');
      li.appendChild(el('strong', '', [vf.visit_date, valueText('visits', 'visit_type', vf.visit_type)].filter(Boolean).join(' · ')));
      li.appendChild(el('div', 'meta', t(v.mine ? 'by_me' : 'by_other')));
      if (vf.notes) li.appendChild(el('div', '', vf.notes));
      vl.appendChild(li);
    });
    $('hh-no-visits').hidden = household.visits.length !== 0;
  }

  function isoDay(daysAgo) {
    const d = new Date(Date.now() - daysAgo * 86400000);
    return d.toISOString().slice(0, 10);
  }

  /* The search goes in a POST body: a name never appears in a URL. */
  async function search() {
    const seq = ++searchSeq;
    const body = { q: $('q').value, municipality: $('f-municipality').value,
                   status: $('f-status').value };
    const visit = $('f-visit').value;
    if (visit === '30') body.visited_from = isoDay(30);
    else if (visit === 'not30') body.visited_to = isoDay(31);
    else if (visit === 'never') body.never_visited = true;
    const r = await api('POST', '/api/caseload', body);
    if (seq !== searchSeq) return;
    if (r.status === 401) return start('locked_again');
    if (r.status === 200) {
      lastResults = r.body;
      renderResults();
    }
  }

  function searchSoon() {
    if (searchTimer) clearTimeout(searchTimer);
    searchTimer = setTimeout(search, 200);
  }

  async function openHousehold(id) {
    const r = await api('POST', '/api/household', { id: id });
    if (r.status === 401) return start('locked_again');
    if (r.status !== 200) return;
    household = r.body;
    show('household');
    window.scrollTo(0, 0);
  }

  async function loadForms() {
    const r = await api('GET', '/api/forms');
    if (r.status === 200) forms = r.body;
  }

  async function refreshState() {
    const r = await api('GET', '/api/state');
    if (r.status === 401) return start('locked_again');
    if (r.status === 200) {
      state = r.body;
      /* Only the sync bar: a list rebuilt under the worker's finger
       * would lose a tap or the focus. */
      renderSync();
    }
  }

  function poll() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = setInterval(refreshState, POLL_MS);
  }

  async function start(why) {
    const r = await api('GET', '/api/session');
    if (r.status !== 200) return;
    if (r.body.session && !r.body.locked) {
      csrf = r.body.csrf;
      notice = null;
      await loadForms();
      show('home');
      await refreshState();
      await search();
      poll();
      return;
    }
    csrf = null;
    state = null;
    lastResults = null;
    household = null;
    forms = null;
    ['q', 'f-municipality'].forEach((id) => { $(id).value = ''; });
    if (pollTimer) clearInterval(pollTimer);
    notice = why || null;
    show('unlock');
    $('passphrase').focus();
  }

  async function unlock(ev) {
    ev.preventDefault();
    const input = $('passphrase');
    const button = $('unlock-button');
    button.disabled = true;
    notice = 'unlocking';
    render();
    const r = await api('POST', '/api/unlock', { passphrase: input.value });
    input.value = '';
    button.disabled = false;
    if (r.status === 200) {
      csrf = r.body.csrf;
      return start();
    }
    notice = r.body.error === 'wrong_passphrase' ? 'wrong_passphrase'
           : r.body.error === 'paused' ? 'paused' : 'unlock_failed';
    render();
    input.focus();
  }

  async function syncNow() {
    $('sync-now').disabled = true;
    await api('POST', '/api/sync');
    await refreshState();
  }

  async function lockNow() {
    await api('POST', '/api/lock');
    start();
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('[data-lang]').forEach((b) => {
      b.addEventListener('click', function () {
        lang = b.dataset.lang;
        localStorage.setItem('fieldsync.lang', lang);
        render();
      });
    });
    $('unlock-form').addEventListener('submit', unlock);
    $('sync-now').addEventListener('click', syncNow);
    $('lock-now').addEventListener('click', lockNow);
    $('search-form').addEventListener('submit', (ev) => { ev.preventDefault(); search(); });
    ['q', 'f-municipality'].forEach((id) => $(id).addEventListener('input', searchSoon));
    ['f-status', 'f-visit'].forEach((id) => $(id).addEventListener('change', search));
    $('back').addEventListener('click', () => { household = null; show('home'); });
    render();
    start();
  });
})();
