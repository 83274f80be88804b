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

  function when(iso) {
    const ms = Date.parse(iso);
    const s = Math.round((ms - Date.now()) / 1000);
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
    if (state.next_attempt && waiting > 0) last += ' ' + t('next_try', { when: when(state.next_attempt) });
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
  }

  async function refreshState() {
    const r = await api('GET', '/api/state');
    if (r.status === 401) return start('locked_again');
    if (r.status === 200) {
      state = r.body;
      render();
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
      show('home');
      await refreshState();
      poll();
      return;
    }
    csrf = null;
    state = null;
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
    render();
    start();
  });
})();
