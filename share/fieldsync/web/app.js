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
  let drafts = [];
  /* The form being filled in: {id, collection, forId, forName, report,
   * values, tried}.  Its answers live in the inputs; the agent keeps
   * them as a draft and says what is asked, required and wrong. */
  let rec = null;
  const SAVE_AFTER_MS = 300;   /* quiet time before a draft is saved */
  const SAVE_WITHIN_MS = 1000; /* and never later than this after a change */
  let saveTimer = null;
  let dirtySince = 0;
  let saving = null;
  let saveAgain = false;
  let saves = 0;

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
      notify('agent_gone');
      return { status: 0, body: {} };
    }
    $('offline').hidden = true;
    let j = {};
    try { j = await r.json(); } catch (e) { j = {}; }
    return { status: r.status, body: j };
  }

  /* The banner under the page: the agent gone, or a form it did not
   * take; the next answer from the agent clears it. */
  function notify(key) {
    $('offline').dataset.t = key;
    $('offline').textContent = t(key);
    $('offline').hidden = false;
  }

  function show(v) {
    view = v;
    $('loading').hidden = v !== 'loading';
    $('unlock').hidden = v !== 'unlock';
    $('home').hidden = v !== 'home';
    $('household').hidden = v !== 'household';
    $('record').hidden = v !== 'record';
    $('syncbar').hidden = v === 'unlock' || v === 'loading';
    render();
  }

  function renderSync() {
    if (!state) return;
    const bar = $('syncbar');
    const waiting = state.pending_changes || 0;
    const files = state.files_pending || 0;
    $('sync-waiting').textContent = state.syncing ? t('syncing') : plural('waiting', waiting);
    $('sync-files').hidden = files === 0;
    $('sync-files').textContent = files ? t('files_waiting', { n: files, size: ((state.files_pending_bytes || 0) / 1e6).toFixed(1) }) : '';
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
    bar.classList.toggle('clear', !problem && waiting === 0 && files === 0 && !state.syncing);
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
    renderDrafts();
    renderRecordWords();
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
  function valueText(collection, name, v, rowDef) {
    if (v === null || v === undefined) return '';
    const def = rowDef || formField(collection, name);
    const type = def ? def.type : '';
    if (type === 'repeat' && Array.isArray(v)) {
      /* One line per row: its answers in the form's order. */
      return v.map((row) => (def.fields || []).filter((sd) => row[sd.name] !== undefined)
        .map((sd) => valueText(collection, sd.name, row[sd.name], sd)).join(', ')).join('; ');
    }
    if (rowDef && type === 'choice') return pick(def.choice_labels && def.choice_labels[v], v);
    if (type === 'choice') return choiceLabel(collection, name, v);
    if (type === 'multi_choice' && Array.isArray(v)) {
      return v.map((x) => choiceLabel(collection, name, x)).join(', ');
    }
    if (type === 'boolean') return t(v ? 'yes' : 'no');
    if (type === 'gps' && typeof v === 'object') return [v.lat, v.lon].join(', ');
    if (type === 'attachment' && v && typeof v === 'object') return attachedText(v);
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
      li.appendChild(el('div', 'meta', v.mine ? t('by_me') + (v.team ? ' · ' + v.team : '')
        : v.team ? t('by_team', { team: v.team }) : t('by_other')));
      if (vf.notes) li.appendChild(el('div', '', vf.notes));
      /* The other answers, in the form's order and words. */
      ((forms && forms.visits && forms.visits.fields) || []).forEach((def) => {
        if (vf[def.name] === undefined || def.type === 'ref' ||
            ['visit_date', 'visit_type', 'notes'].includes(def.name)) return;
        li.appendChild(el('div', 'answer-line', fieldLabel('visits', def.name) + ': ' +
          valueText('visits', def.name, vf[def.name])));
      });
      vl.appendChild(li);
    });
    $('hh-no-visits').hidden = household.visits.length !== 0;
  }

  function renderDrafts() {
    const list = $('draft-list');
    list.replaceChildren();
    $('drafts').hidden = drafts.length === 0;
    drafts.forEach((d) => {
      const b = el('button', '', t('draft_line', {
        form: pick(forms && forms[d.collection] && forms[d.collection].title, d.collection),
        when: when(new Date(d.updated_ms).toISOString()) }));
      b.type = 'button';
      b.addEventListener('click', () => openDraft(d.id));
      const li = el('li', '');
      li.appendChild(b);
      list.appendChild(li);
    });
  }

  async function loadDrafts() {
    const r = await api('POST', '/api/drafts', {});
    if (r.status === 200) drafts = r.body.drafts;
    renderDrafts();
  }

  /* ---- recording: the inputs are laid out from the form; what is asked,
   * required, offered or wrong comes from the agent's report. */

  function subDefs(def) { return def.fields || []; }

  /* The field of a form that names its household, read from the
   * definition: its ref to the beneficiaries. */
  function linkField(collection) {
    const f = forms && forms[collection];
    const def = f && f.fields.find((x) => x.type === 'ref' && x.collection === 'beneficiaries');
    return def ? def.name : null;
  }

  /* A file's reference in words: its type and size, as the agent kept it. */
  function attachedText(ref) {
    const kind = { 'image/jpeg': 'JPEG', 'image/png': 'PNG', 'application/pdf': 'PDF' }[ref.type] || ref.type;
    return t('attached_file', { type: kind, size: (ref.size / 1e6).toFixed(1) });
  }

  /* An attachment: a file input, and what is attached.  The reference
   * the agent answered is the value; the page never reads the file. */
  function attachInput(def, value) {
    const box = el('div', 'attach');
    box.dataset.ref = value && typeof value === 'object' ? JSON.stringify(value) : '';
    const input = el('input', 'file');
    input.type = 'file';
    input.accept = (def.accept || ['image/jpeg', 'image/png', 'application/pdf']).join(',');
    box.appendChild(el('p', 'attached'));
    box.appendChild(input);
    return box;
  }

  function inputFor(def, value) {
    let input;
    if (def.type === 'choice' || def.type === 'boolean') {
      input = el('select', '');
      input.appendChild(el('option', '', '—')).value = '';
      const values = def.type === 'boolean' ? ['true', 'false'] : def.values;
      values.forEach((v) => { input.appendChild(el('option', '')).value = v; });
      input.value = value === undefined || value === null ? '' : String(value);
    } else if (def.type === 'multi_choice') {
      input = el('div', 'checks');
      def.values.forEach((v) => {
        const l = el('label', '');
        const c = el('input', '');
        c.type = 'checkbox';
        c.value = v;
        c.checked = Array.isArray(value) && value.includes(v);
        l.appendChild(c);
        l.appendChild(el('span', ''));
        input.appendChild(l);
      });
    } else if (def.type === 'attachment') {
      input = attachInput(def, value);
    } else if (def.type === 'text' && (def.max_length || 10000) > 200) {
      input = el('textarea', '');
      input.value = value || '';
    } else {
      input = el('input', '');
      input.type = def.type === 'integer' ? 'number' : def.type === 'date' ? 'date' : 'text';
      if (def.type === 'integer') input.step = '1';
      input.value = value === undefined || value === null ? '' : String(value);
    }
    input.classList.add('answer');
    return input;
  }

  /* One question: its label, hint, input (or computed value) and error. */
  function question(def, value, idBase) {
    const q = el('div', 'q');
    q.dataset.name = def.name;
    const id = idBase + def.name;
    const label = el('label', '');
    label.htmlFor = id;
    label.appendChild(el('span', 'lbl'));
    label.appendChild(el('span', 'req'));
    q.appendChild(label);
    if (def.hint) q.appendChild(el('p', 'hint'));
    if (def.calculate) {
      q.appendChild(el('div', 'calc'));
    } else if (def.type === 'repeat') {
      const rows = el('div', 'rows');
      (Array.isArray(value) ? value : []).forEach((row) => rows.appendChild(groupRow(def, row, idBase)));
      q.appendChild(rows);
      const add = el('button', 'add-row');
      add.type = 'button';
      add.addEventListener('click', () => {
        rows.appendChild(groupRow(def, {}, idBase));
        renderRecordWords();
        changed();
      });
      q.appendChild(add);
    } else if (def.type === 'attachment') {
      const box = inputFor(def, value);
      const file = box.querySelector('input');
      file.id = id;
      /* Not a typed answer: the form's autosave must not run beside it
       * with the field's old reference. */
      file.addEventListener('change', (ev) => { ev.stopPropagation(); attachFile(def, q, file); });
      file.addEventListener('input', (ev) => ev.stopPropagation());
      q.appendChild(box);
    } else {
      const input = inputFor(def, value);
      input.id = id;
      q.appendChild(input);
    }
    q.appendChild(el('p', 'err'));
    return q;
  }

  let rowSeq = 0;
  function groupRow(def, row, idBase) {
    const fs = el('fieldset', 'row');
    fs.appendChild(el('legend', ''));
    const base = idBase + def.name + '-' + (++rowSeq) + '-';
    subDefs(def).forEach((sd) => fs.appendChild(question(sd, row[sd.name], base)));
    const rm = el('button', 'remove-row');
    rm.type = 'button';
    rm.addEventListener('click', () => {
      const q = fs.closest('.q');
      fs.remove();
      renumber(q);
      changed();
    });
    fs.appendChild(rm);
    return fs;
  }

  function renumber(q) {
    q.querySelectorAll(':scope > .rows > fieldset.row').forEach((fs, i) => {
      fs.querySelector('legend').textContent = t('row_n', { n: i + 1 });
    });
  }

  /* The answer in a question's input, as JSON; undefined when empty.
   * The page converts what the browser's input gives, nothing more: the
   * agent says whether it is right. */
  function readValue(def, q) {
    const input = q.querySelector(':scope > .answer');
    if (def.type === 'attachment') return input.dataset.ref ? JSON.parse(input.dataset.ref) : undefined;
    if (def.type === 'multi_choice') {
      const v = [...input.querySelectorAll('input:checked')].map((c) => c.value);
      return v.length ? v : undefined;
    }
    if (def.type === 'boolean') return input.value === '' ? undefined : input.value === 'true';
    if (def.type === 'integer') {
      if (input.value === '') return input.validity.badInput ? '?' : undefined;
      return input.valueAsNumber;
    }
    return input.value === '' ? undefined : input.value;
  }

  function readQuestions(defs, box) {
    const out = {};
    defs.forEach((def) => {
      const q = box.querySelector(':scope > .q[data-name="' + def.name + '"]');
      if (!q || def.calculate) return;
      let v;
      if (def.type === 'repeat') {
        const rows = [...q.querySelectorAll(':scope > .rows > fieldset.row')];
        v = rows.length ? rows.map((fs) => readQuestions(subDefs(def), fs)) : undefined;
      } else {
        v = readValue(def, q);
      }
      if (v !== undefined) out[def.name] = v;
    });
    return out;
  }

  function readRecord() {
    const out = readQuestions(forms[rec.collection].fields.filter((d) => d.type !== 'ref'), $('rec-fields'));
    const link = linkField(rec.collection);
    if (rec.forId && link) out[link] = rec.forId;
    return out;
  }

  function errorText(e) {
    if (e.rule === 'constraint' && e.message) return pick(e.message, t('err_constraint'));
    return t('err_' + e.rule);
  }

  /* Show the report on the questions in box (the form, or one row). */
  function applyReport(defs, box, entries, values) {
    defs.forEach((def) => {
      const q = box.querySelector(':scope > .q[data-name="' + def.name + '"]');
      const e = entries && entries[def.name];
      if (!q || !e) return;
      q.hidden = !e.relevant;
      q.querySelector(':scope > label .req').textContent = e.required ? ' *' : '';
      const shown = e.error && (e.error.rule !== 'required' || rec.tried);
      q.classList.toggle('bad', !!shown);
      q.querySelector(':scope > .err').textContent = shown ? errorText(e.error) : '';
      if (def.calculate) {
        const v = values ? values[def.name] : undefined;
        q.querySelector(':scope > .calc').textContent = v === undefined ? '—' : valueText(rec.collection, def.name, v);
      }
      if (e.choices) {
        q.querySelectorAll(':scope > .answer option, :scope > .answer label').forEach((o) => {
          const v = o.value !== undefined && o.tagName === 'OPTION' ? o.value : o.querySelector('input').value;
          if (v !== '') o.hidden = !e.choices.includes(v);
        });
      }
      if (def.type === 'repeat' && e.rows) {
        const rows = q.querySelectorAll(':scope > .rows > fieldset.row');
        const vrows = values && values[def.name];
        e.rows.forEach((re, i) => {
          if (rows[i]) applyReport(subDefs(def), rows[i], re, vrows && vrows[i]);
        });
      }
    });
  }

  /* Words on the record view that follow the language. */
  function renderRecordWords() {
    if (!rec || !forms) return;
    const form = forms[rec.collection];
    document.querySelectorAll('#rec-fields .attach').forEach((box) => {
      const p = box.querySelector('.attached');
      if (p.dataset.state === 'sending' || p.dataset.state === 'refused') return;
      p.textContent = box.dataset.ref ? attachedText(JSON.parse(box.dataset.ref)) : t('attach_none');
      box.querySelector('input').title = t('attach_choose');
    });
    $('rec-title').textContent = pick(form.title, rec.collection);
    $('rec-for').textContent = rec.forName ? t('record_for', { name: rec.forName }) : '';
    const words = (defs, box) => {
      defs.forEach((def) => {
        box.querySelectorAll(':scope > .q[data-name="' + def.name + '"]').forEach((q) => {
          q.querySelector(':scope > label .lbl').textContent = pick(def.label, def.name);
          const h = q.querySelector(':scope > .hint');
          if (h) h.textContent = pick(def.hint, '');
          q.querySelectorAll(':scope > .answer option').forEach((o) => {
            if (o.value === '') return;
            o.textContent = def.type === 'boolean' ? t(o.value === 'true' ? 'yes' : 'no')
                                                   : pick(def.choice_labels && def.choice_labels[o.value], o.value);
          });
          q.querySelectorAll(':scope > .answer label').forEach((l) => {
            const v = l.querySelector('input').value;
            l.querySelector('span').textContent = pick(def.choice_labels && def.choice_labels[v], v);
          });
          if (def.type === 'repeat') {
            q.querySelector(':scope > .add-row').textContent = t('add_row');
            q.querySelectorAll(':scope > .rows > fieldset.row').forEach((fs) => {
              words(subDefs(def), fs);
              fs.querySelector(':scope > .remove-row').textContent = t('remove_row');
            });
            renumber(q);
          }
        });
      });
    };
    words(form.fields, $('rec-fields'));
    if (rec.report) applyReport(form.fields, $('rec-fields'), rec.report.fields, rec.values);
    renderSaved();
  }

  function renderSaved() {
    const s = $('rec-saved');
    const failed = rec && rec.saveFailed;
    s.dataset.state = failed ? 'failed' : saving || saveTimer ? 'saving' : 'saved';
    s.dataset.saves = String(saves);
    s.classList.toggle('problem', !!failed);
    s.textContent = failed ? t('draft_not_saved')
                  : saving || saveTimer ? t('draft_saving')
                  : rec && rec.savedAt ? t('draft_saved', { time: rec.savedAt.toLocaleTimeString(lang) }) : '';
  }

  /* A draft the agent answered: lay out its form with its answers. */
  function showDraft(answer, forId, forName) {
    rec = { id: answer.id, collection: answer.collection, forId: forId || null, forName: forName || null,
            report: answer.report, values: answer.values, tried: false, savedAt: new Date() };
    const link = linkField(rec.collection);
    if (!rec.forId && link && answer.fields[link]) rec.forId = answer.fields[link];
    const box = $('rec-fields');
    box.replaceChildren();
    forms[rec.collection].fields.forEach((def) => {
      if (def.type !== 'ref') box.appendChild(question(def, answer.fields[def.name], 'f-'));
    });
    $('rec-problem').hidden = true;
    show('record');
    window.scrollTo(0, 0);
  }

  async function newRecord(collection, forId, forName) {
    const fields = {};
    const link = linkField(collection);
    if (forId && link) fields[link] = forId;
    const r = await api('POST', '/api/draft/save', { collection: collection, fields: fields });
    if (r.status === 401) return start('locked_again');
    if (r.status !== 200) return notify('draft_not_started');
    showDraft(r.body, forId, forName);
  }

  async function openDraft(id) {
    const r = await api('POST', '/api/draft/open', { id: id });
    if (r.status === 401) return start('locked_again');
    if (r.status !== 200) return loadDrafts();
    let name = null;
    const link = linkField(r.body.collection);
    const forId = link ? r.body.fields[link] : null;
    if (forId) {
      const h = await api('POST', '/api/household', { id: forId });
      if (h.status === 200) name = h.body.fields.full_name;
    }
    showDraft(r.body, forId, name);
  }

  /* Each change is saved within SAVE_WITHIN_MS: after a quiet moment, or
   * at the latest then, while the worker keeps typing. */
  function changed() {
    const now = Date.now();
    if (!dirtySince) dirtySince = now;
    if (saveTimer) clearTimeout(saveTimer);
    saveTimer = setTimeout(saveDraft, Math.max(0, Math.min(SAVE_AFTER_MS, dirtySince + SAVE_WITHIN_MS - now)));
    renderSaved();
  }

  async function saveDraft() {
    saveTimer = null;
    if (!rec) return;
    if (saving) { saveAgain = true; return; }
    dirtySince = 0;
    const mine = rec;
    saving = api('POST', '/api/draft/save', { id: mine.id, collection: mine.collection, fields: readRecord() });
    renderSaved();
    const r = await saving;
    saving = null;
    if (r.status === 401) return start('locked_again');
    if (rec === mine) rec.saveFailed = r.status !== 200;
    if (r.status === 200 && rec === mine) {
      saves++;
      rec.report = r.body.report;
      rec.values = r.body.values;
      rec.savedAt = new Date();
      applyReport(forms[rec.collection].fields, $('rec-fields'), rec.report.fields, rec.values);
    } else if (rec === mine && !saveAgain) {
      /* Not kept (the agent gone, the disk full): say so, and try again. */
      dirtySince = 0;
      saveTimer = setTimeout(saveDraft, 3000);
    }
    if (saveAgain) { saveAgain = false; return saveDraft(); }
    renderSaved();
  }

  async function flush() {
    if (saveTimer) { clearTimeout(saveTimer); await saveDraft(); }
    while (saving) await saving.then(() => null);
  }

  /* Hand the chosen file to the agent, which keeps it (stripped of a
   * photo's metadata, checked against the form) and answers the draft
   * with the file's reference in the field. */
  async function attachFile(def, q, input) {
    const file = input.files && input.files[0];
    if (!file || !rec) return;
    await flush();
    const mine = rec;
    const p = q.querySelector('.attached');
    p.dataset.state = 'sending';
    p.textContent = t('attach_sending');
    let r;
    let j = {};
    /* Saves wait for it, as for a save in flight: the agent writes the
     * draft with the file's reference. */
    const sending = (async () => {
      try {
        r = await fetch('/api/attach', { method: 'POST', credentials: 'same-origin', cache: 'no-store', body: file,
          headers: { 'Content-Type': 'application/octet-stream', 'X-CSRF-Token': csrf,
                     'X-Fieldsync-Draft': mine.id, 'X-Fieldsync-Field': def.name } });
        j = await r.json();
      } catch (e) { /* r unset: the agent is gone; else no JSON */ }
    })();
    saving = sending;
    await sending;
    saving = null;
    /* A save asked for meanwhile runs after the reference is set below. */
    if (saveAgain) { saveAgain = false; setTimeout(saveDraft, 0); }
    input.value = '';
    if (!r) { notify('agent_gone'); p.dataset.state = ''; return; }
    if (r.status === 401) return start('locked_again');
    if (rec !== mine) return;
    if (r.status !== 200) {
      p.dataset.state = 'refused';
      p.textContent = t('attach_refused') + (j.message ? ' (' + j.message + ')' : '');
      return;
    }
    p.dataset.state = '';
    rec.report = j.report;
    rec.values = j.values;
    rec.savedAt = new Date();
    q.querySelector(':scope > .answer').dataset.ref = JSON.stringify(j.fields[def.name]);
    renderRecordWords();
  }

  async function finish(ev) {
    ev.preventDefault();
    await flush();
    if (!rec) return;
    rec.tried = true;
    if (!rec.report.valid) {
      applyReport(forms[rec.collection].fields, $('rec-fields'), rec.report.fields, rec.values);
      $('rec-problem').textContent = t('fix_marked');
      $('rec-problem').hidden = false;
      const bad = document.querySelector('#rec-fields .q.bad .answer');
      if (bad) bad.focus();
      return;
    }
    const r = await api('POST', '/api/draft/finalise', { id: rec.id });
    if (r.status === 401) return start('locked_again');
    if (r.status !== 200) {
      /* The agent's reason too: a rule the report does not show (a
       * household gone, a new day) must not leave the worker guessing. */
      const why = r.body.error === 'disk_full' ? t('err_disk_full')
                : t('finish_refused') + (r.body.message ? ' (' + r.body.message + ')' : '');
      await openDraft(rec.id);
      $('rec-problem').textContent = why;
      $('rec-problem').hidden = false;
      return;
    }
    const done = rec;
    rec = null;
    await loadDrafts();
    await refreshState();
    await openHousehold(done.collection === 'visits' ? done.forId : r.body.record_id);
  }

  async function leaveRecord() {
    await flush();
    const forId = rec && rec.forId;
    rec = null;
    await loadDrafts();
    if (forId) return openHousehold(forId);
    show('home');
  }

  async function discard() {
    if (!rec || !window.confirm(t('discard_confirm'))) return;
    if (saveTimer) { clearTimeout(saveTimer); saveTimer = null; }
    while (saving) await saving.then(() => null);
    await api('POST', '/api/draft/discard', { id: rec.id });
    await leaveRecord();
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
      await loadDrafts();
      show('home');
      await refreshState();
      await search();
      poll();
      return;
    }
    /* Locked after being open: what the page showed is in its memory
     * and its hidden views.  Start again from nothing, carrying only why
     * (a fixed word, never data) across the reload. */
    if (csrf !== null) {
      if (pollTimer) clearInterval(pollTimer);
      history.replaceState(null, '', '/#' + (why || 'locked'));
      window.location.reload();
      return;
    }
    notice = why || notice;
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
    $('record-visit').addEventListener('click', () => {
      newRecord('visits', household.id, household.fields.full_name);
    });
    $('new-household').addEventListener('click', () => newRecord('beneficiaries', null, null));
    $('record-back').addEventListener('click', leaveRecord);
    $('rec-form').addEventListener('submit', finish);
    $('rec-discard').addEventListener('click', discard);
    $('rec-fields').addEventListener('input', changed);
    $('rec-fields').addEventListener('change', changed);
    /* Why the page was reloaded locked (start): a STRINGS key or nothing. */
    const why = window.location.hash.slice(1);
    if (why === 'locked_again') notice = why;
    if (window.location.hash) history.replaceState(null, '', '/');
    render();
    start();
  });
})();
