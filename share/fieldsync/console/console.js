/* console.js - HQ's console page.  Thin by rule: HQ decides who sees
 * what and which device is red; the page shows its answers.  Nothing is
 * kept in the browser: the CSRF token lives in this page's memory. */
'use strict';
(function () {
  let csrf = null;
  let devices = [];
  let sortKey = 'red';
  let sortDown = true;

  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
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

  let role = null;

  function show(view) {
    $('loading').hidden = view !== 'loading';
    $('login').hidden = view !== 'login';
    $('devices-view').hidden = view !== 'devices';
    $('audit-view').hidden = view !== 'audit';
    $('quarantine-view').hidden = view !== 'quarantine';
    $('conflicts-view').hidden = view !== 'conflicts';
    $('programme-view').hidden = view !== 'programme';
    $('logout').hidden = view === 'login' || view === 'loading';
    $('who').hidden = $('logout').hidden;
    /* The audit log is for administrators; HQ refuses it to others too. */
    $('nav').hidden = $('logout').hidden;
    $('tab-audit').hidden = role !== 'admin';
    $('enrol').hidden = role !== 'admin';
    $('tab-devices').toggleAttribute('aria-current', view === 'devices');
    $('tab-audit').toggleAttribute('aria-current', view === 'audit');
    ['quarantine', 'conflicts', 'programme'].forEach((v) => {
      $('tab-' + v).toggleAttribute('aria-current', view === v);
      if (view === v) $('tab-' + v).setAttribute('aria-current', 'page');
    });
    if (view === 'devices') $('tab-devices').setAttribute('aria-current', 'page');
    if (view === 'audit') $('tab-audit').setAttribute('aria-current', 'page');
  }

  async function loadAudit(ev) {
    if (ev) ev.preventDefault();
    const q = new URLSearchParams();
    if ($('f-event').value) q.set('event', $('f-event').value);
    if ($('f-device').value) q.set('device', $('f-device').value);
    const r = await api('GET', '/api/audit' + (q.toString() ? '?' + q : ''));
    if (r.status === 401) return start();
    if (r.status !== 200) return;
    const body = document.querySelector('#audit tbody');
    body.replaceChildren();
    r.body.entries.forEach((e) => {
      const tr = el('tr', '');
      tr.appendChild(el('td', '', String(e.id)));
      tr.appendChild(el('td', '', local(e.at_ms)));
      tr.appendChild(el('td', '', e.event));
      tr.appendChild(el('td', 'id', e.device || ''));
      tr.appendChild(el('td', 'detail', e.detail || ''));
      body.appendChild(tr);
    });
    $('audit-summary').textContent = 'The newest ' + r.body.entries.length + ' entries' +
      (q.toString() ? ' that match' : '') + ', newest first.';
  }

  /* A device stolen or lost: HQ refuses it from now on. */
  async function revoke(d) {
    const reason = window.prompt('Revoke the device of ' + d.team + ' (' + d.id.slice(0, 8) +
      ')? HQ will refuse everything it sends from now on.\n\nWhy (no personal data):', 'reported lost');
    if (reason === null) return;
    const r = await api('POST', '/api/devices/revoke', { device: d.id, reason: reason });
    $('action-result').textContent = r.status === 200 ? 'Revoked the device of ' + d.team + '.'
      : 'HQ did not revoke it: ' + (r.body.message || r.status);
    loadDevices();
  }

  async function makeToken(ev) {
    ev.preventDefault();
    const r = await api('POST', '/api/tokens', { team: $('t-team').value,
      municipality: $('t-muni').value, scope: $('t-scope').value || undefined });
    $('token').hidden = false;
    $('token').textContent = r.status === 200
      ? r.body.token + '\n\n(valid until ' + new Date(r.body.valid_until).toLocaleString() + ')'
      : 'HQ made no token: ' + (r.body.message || r.status);
  }

  async function loadQuarantine() {
    const r = await api('GET', '/api/quarantine');
    if (r.status === 401) return start();
    if (r.status !== 200) return;
    const body = document.querySelector('#quarantine tbody');
    body.replaceChildren();
    r.body.changes.forEach((q) => {
      const tr = el('tr', '');
      tr.appendChild(el('td', '', new Date(q.received).toLocaleString()));
      tr.appendChild(el('td', '', q.team));
      tr.appendChild(el('td', '', q.municipality));
      tr.appendChild(el('td', 'id', q.record));
      tr.appendChild(el('td', '', q.field));
      tr.appendChild(el('td', '', q.reason));
      const act = el('td', '');
      if (role === 'admin') {
        [['Release', 'release'], ['Reject', 'reject']].forEach(([label, what]) => {
          const b = el('button', 'small', label);
          b.type = 'button';
          b.addEventListener('click', () => review(q, what));
          act.appendChild(b);
        });
      }
      tr.appendChild(act);
      body.appendChild(tr);
    });
    $('quarantine-summary').textContent = r.body.changes.length + ' change' +
      (r.body.changes.length === 1 ? '' : 's') + ' in quarantine.';
  }

  async function review(q, what) {
    const reason = window.prompt((what === 'release' ? 'Release' : 'Reject') + ' the change to ' +
      q.field + ' from ' + q.team + '? Why (no personal data):', '');
    if (reason === null || reason === '') return;
    const r = await api('POST', '/api/quarantine/' + what,
      { device: q.device, seq: q.seq, index: q.index, reason: reason });
    if (r.status === 401) return start();
    await loadQuarantine();
    $('quarantine-summary').textContent = (r.status === 200
      ? (what === 'release' ? 'Released. ' : 'Rejected. ') : 'HQ said no: ' + (r.body.message || r.status) + ' ') +
      $('quarantine-summary').textContent;
  }

  /* A stored value as a person reads it: text as it is, the rest as JSON. */
  function shown(v) {
    if (v === null || v === undefined) return '(empty)';
    return typeof v === 'string' ? v : Array.isArray(v) ? v.join(', ') : JSON.stringify(v);
  }

  function side(c, s) {
    const td = el('td', 'value', shown(c['value_' + s]));
    td.appendChild(el('span', 'who', s + ': ' + (c['team_' + s] || 'an unknown device') + ', ' +
      local(Date.parse(c['at_' + s]))));
    return td;
  }

  async function loadConflicts() {
    const r = await api('GET', '/api/conflicts');
    if (r.status === 401) return start();
    if (r.status !== 200) return;
    const body = document.querySelector('#conflicts tbody');
    body.replaceChildren();
    let open = 0;
    r.body.conflicts.forEach((c) => {
      const tr = el('tr', '');
      tr.appendChild(el('td', 'id', c.record));
      tr.appendChild(el('td', '', c.field));
      tr.appendChild(side(c, 'a'));
      tr.appendChild(side(c, 'b'));
      /* The decision was made on this conflict, or on another of the
       * same field (then its a and b are that one's, not this one's). */
      const own = c.resolved && c.resolved.conflict === c.id;
      const kept = !c.resolved ? (c.superseded ? 'changed since: a later edit'
        : (c.winner === c.device_a ? 'a' : 'b') + ', the later change')
        : !own ? 'decided with conflict ' + c.resolved.conflict
        : c.resolved.choice === 'new' ? 'a value HQ entered' : shown(c['value_' + c.resolved.choice]) + ', decided';
      tr.appendChild(el('td', '', kept));
      const act = el('td', '');
      if (c.resolved) {
        act.appendChild(el('span', 'resolved', (!own ? 'Settled with conflict ' + c.resolved.conflict
          : c.resolved.choice === 'new' ? 'New value entered' : 'Kept ' + c.resolved.choice) +
          ' by ' + c.resolved.by + ', ' + local(c.resolved.at_ms)));
      } else if (c.superseded) {
        /* HQ refuses a choice that would undo the later edit. */
        act.textContent = 'nothing to decide';
      } else {
        open++;
        if (role === 'admin') {
          [['Keep a', { keep: 'a' }], ['Keep b', { keep: 'b' }], ['Enter another…', null]].forEach(([label, what]) => {
            const b = el('button', 'small', label);
            b.type = 'button';
            b.addEventListener('click', () => resolve(c, what));
            act.appendChild(b);
          });
        } else {
          act.textContent = 'open';
        }
      }
      tr.appendChild(act);
      body.appendChild(tr);
    });
    $('conflicts-summary').textContent = r.body.conflicts.length + ' conflict' +
      (r.body.conflicts.length === 1 ? '' : 's') + ', ' + open + ' open.';
  }

  async function resolve(c, what) {
    const body = { id: c.id };
    if (what) {
      body.keep = what.keep;
    } else {
      const v = window.prompt('The right value of ' + c.field + ' (HQ checks it against the form):', '');
      if (v === null) return;
      body.value = v;
    }
    const r = await api('POST', '/api/conflicts/resolve', body);
    if (r.status === 401) return start();
    await loadConflicts();
    $('conflicts-summary').textContent = (r.status === 200 ? 'Decided: the value goes to the laptops with their next sync. '
      : 'HQ did not take it: ' + (r.body.message || r.status) + ' ') + $('conflicts-summary').textContent;
  }

  /* The charts are HQ's pictures; a fresh one each time the view opens. */
  function loadProgramme() {
    document.querySelectorAll('img[data-chart]').forEach((img) => {
      img.src = '/api/programme/' + img.dataset.chart + '.svg?at=' + Date.now();
    });
  }

  async function verify() {
    $('verify').disabled = true;
    $('verify-result').textContent = 'Checking every entry and signature…';
    const r = await api('POST', '/api/audit/verify', {});
    $('verify').disabled = false;
    if (r.status !== 200) { $('verify-result').textContent = 'HQ could not check the log.'; return; }
    $('verify-result').className = r.body.ok ? 'ok' : 'bad';
    $('verify-result').textContent = (r.body.ok ? 'Intact: ' : 'ALTERED: ') + r.body.text;
  }

  /* A duration for a person: minutes, hours or days. */
  function age(s) {
    if (s < 3600) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' days';
  }

  /* Dates in the administrator's own time zone and language. */
  function local(ms) {
    return ms ? new Date(ms).toLocaleString() : 'never';
  }

  function renderDevices() {
    const body = document.querySelector('#devices tbody');
    body.replaceChildren();
    const rows = devices.slice().sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      const c = x === y ? 0 : (x === null || x === undefined) ? -1
              : (y === null || y === undefined) ? 1 : x < y ? -1 : 1;
      return sortDown ? -c : c;
    });
    rows.forEach((d) => {
      const tr = el('tr', d.red ? 'is-red' : '');
      tr.appendChild(el('td', d.red ? 'red' : 'green', d.red ? 'Red: ' + d.why : 'OK'));
      tr.appendChild(el('td', '', d.team));
      tr.appendChild(el('td', '', d.municipality));
      tr.appendChild(el('td', '', local(d.last_seen_ms)));
      tr.appendChild(el('td', '', d.pending_changes === null ? 'no report yet'
        : d.pending_changes + (d.oldest_unsent_age_s !== null ? ', oldest ' + age(d.oldest_unsent_age_s) : '')));
      tr.appendChild(el('td', '', d.last_error || ''));
      tr.appendChild(el('td', '', d.agent_version || ''));
      tr.appendChild(el('td', '', String(d.last_seq)));
      tr.appendChild(el('td', '', d.state + (d.revoked_reason ? ': ' + d.revoked_reason : '')));
      tr.appendChild(el('td', 'id', d.id));
      const act = el('td', '');
      if (role === 'admin' && d.state === 'active') {
        const b = el('button', 'small', 'Revoke');
        b.type = 'button';
        b.addEventListener('click', () => revoke(d));
        act.appendChild(b);
      }
      tr.appendChild(act);
      body.appendChild(tr);
    });
    const red = devices.filter((d) => d.red).length;
    $('devices-summary').textContent = devices.length + ' device' + (devices.length === 1 ? '' : 's') +
      ', ' + red + ' red.';
    document.querySelectorAll('th button[data-sort]').forEach((b) => {
      if (b.dataset.sort === sortKey) b.setAttribute('aria-sort', sortDown ? 'descending' : 'ascending');
      else b.removeAttribute('aria-sort');
    });
  }

  async function loadDevices() {
    const r = await api('GET', '/api/devices');
    if (r.status === 401) return start();
    if (r.status === 200) {
      devices = r.body.devices;
      renderDevices();
    }
  }

  async function start() {
    const r = await api('GET', '/api/session');
    if (r.status !== 200) return;
    if (r.body.session) {
      csrf = r.body.csrf;
      role = r.body.role;
      $('who').textContent = r.body.user + ' (' + r.body.role + ')';
      show('devices');
      return loadDevices();
    }
    /* A session that ended (logged out, timed out) leaves what it showed
     * in this page's memory and hidden views: start again from nothing,
     * so that the next account sees none of it. */
    if (role !== null) {
      window.location.replace('/');
      return;
    }
    show('login');
    $('name').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const err = $('login-error');
    $('login-button').disabled = true;
    const r = await api('POST', '/api/login', { name: $('name').value, password: $('password').value });
    $('password').value = '';
    $('login-button').disabled = false;
    if (r.status === 200) {
      err.hidden = true;
      return start();
    }
    const wait = r.body.retry_after_s >= 120 ? Math.ceil(r.body.retry_after_s / 60) + ' minutes'
               : r.body.retry_after_s + ' seconds';
    err.textContent = r.status === 429 ? 'Too many failed logins. Try again in ' + wait + '.'
                    : r.status === 401 ? 'Wrong account name or password.'
                    : 'HQ could not log you in.';
    err.hidden = false;
  }

  async function logout() {
    await api('POST', '/api/logout', {});
    start();
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    $('tab-devices').addEventListener('click', () => { show('devices'); loadDevices(); });
    $('tab-audit').addEventListener('click', () => { show('audit'); loadAudit(); });
    $('tab-quarantine').addEventListener('click', () => { show('quarantine'); loadQuarantine(); });
    $('tab-conflicts').addEventListener('click', () => { show('conflicts'); loadConflicts(); });
    $('tab-programme').addEventListener('click', () => { show('programme'); loadProgramme(); });
    $('audit-filter').addEventListener('submit', loadAudit);
    $('verify').addEventListener('click', verify);
    $('token-form').addEventListener('submit', makeToken);
    document.querySelectorAll('th button[data-sort]').forEach((b) => {
      b.addEventListener('click', () => {
        if (sortKey === b.dataset.sort) sortDown = !sortDown;
        else { sortKey = b.dataset.sort; sortDown = false; }
        renderDevices();
      });
    });
    show('loading');
    start();
  });
})();
