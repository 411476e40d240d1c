// lockstep's web view: the session list, a ladder per session, faults and interception.
// Live: state comes over the WebSocket /ws, changes go to the control API under /api/.
// Offline (`lockstep check --html`): the sessions are embedded in the page.
'use strict';
(() => {
  const STATIC = window.LOCKSTEP_STATIC || null;
  const token = new URLSearchParams(location.search).get('token') || '';
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c);
    return e;
  };

  let sessions = [];      // summaries (live) or whole sessions (offline)
  let current = null;     // the selected session, in full
  let selected = null;    // its id
  let ws = null;
  let heldKey = '';       // what the held-reply panel shows, so a push does not wipe an edit

  function api(method, path, body) {
    const headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch('api' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(async (r) => {
        const text = await r.text();
        let j = null;
        try { j = text ? JSON.parse(text) : null; } catch (e) { j = null; }
        if (!r.ok) throw new Error((j && j.error) || r.status + ' ' + r.statusText);
        return j === null ? text : j;
      });
  }

  // ---------------------------------------------------------------- filter
  const filterText = () => $('#filter').value.trim().toLowerCase();
  function sessionMatches(s, f) {
    if (!f) return true;
    const hay = [s.conn, s.client, s.upstream, s.state, ...(s.rules || [])].join(' ').toLowerCase();
    if (hay.includes(f)) return true;
    return (s.ladder || []).some((e) => e.text.toLowerCase().startsWith(f));
  }

  // ---------------------------------------------------------------- session list
  function renderList() {
    const body = $('#sessions tbody');
    const f = filterText();
    body.replaceChildren();
    const shown = sessions.filter((s) => sessionMatches(s, f));
    for (const s of shown) {
      const tags = el('td', {},
        s.open ? el('span', { class: 'tag open', text: 'open' }) : el('span', { class: 'tag closed', text: 'closed' }),
        s.desynced ? el('span', { class: 'tag desync', text: 'desync' }) : null,
        s.hold === 'held' ? el('span', { class: 'tag held', text: 'held' }) : null,
        (s.faults && (s.faults.length || s.faults > 0)) ? el('span', { class: 'tag fault', text: 'fault' }) : null);
      const tr = el('tr', {
        class: (s.conn === selected ? 'selected ' : '') + (s.errors ? 'bad' : ''),
        'data-testid': 'session-row', 'data-conn': s.conn, onclick: () => select(s.conn),
      },
      el('td', { text: s.conn }), el('td', { text: s.client || '' }), el('td', { text: s.state || '' }),
      el('td', { text: String(s.commands ?? '') }), el('td', { text: String(s.replies ?? '') }),
      el('td', { class: 'n-err', text: String(s.errors ?? 0) }), el('td', { text: String(s.warnings ?? 0) }), tags);
      body.append(tr);
    }
    $('#status').textContent = STATIC
      ? `offline: ${sessions.length} session(s) from ${STATIC.title}`
      : (ws && ws.readyState === 1 ? `live: ${sessions.filter((s) => s.open).length} open, ${sessions.length} listed` : $('#status').textContent);
  }

  function select(conn) {
    selected = conn;
    heldKey = '';
    if (STATIC) {
      current = sessions.find((s) => s.conn === conn) || null;
      renderDetail();
    } else if (ws && ws.readyState === 1) {
      ws.send(JSON.stringify({ watch: conn }));
    }
    renderList();
  }

  // ---------------------------------------------------------------- ladder
  const perRecipient = (label) => /^(end of data|BDAT LAST)/.test(label || '');
  function fmtTime(t, t0) {
    if (!t || !t0) return '';
    return '+' + ((t - t0) / 1000).toFixed(1) + ' ms';
  }

  function findingBox(f) {
    const marks = f.injected ? ' [injected by lockstep]' : (f.after_fault ? ' [after a fault lockstep injected]' : '');
    return el('div', { class: 'finding sev-' + f.severity, 'data-testid': 'finding', 'data-rule': f.rule, 'data-severity': f.severity },
      el('span', { class: 'rule', text: (f.severity === 'error' ? '✖ ' : f.severity === 'warning' ? '▲ ' : '• ') + f.rule }),
      ` (${f.side}) #${f.id}: ${f.explanation}${marks}`);
  }

  function ladderRow(e, i, s, byId, t0, f, sessionHit) {
    const fs = (e.findings || []).map((id) => byId.get(id)).filter(Boolean);
    const worst = fs.some((x) => x.severity === 'error') ? 'error' : fs.some((x) => x.severity === 'warning') ? 'warning' : '';
    const visible = !f || sessionHit || e.text.toLowerCase().includes(f) || fs.some((x) => x.rule.toLowerCase().includes(f));
    const kind = e.fault ? 'faultrow' : e.content ? 'content' : '';
    const row = el('div', {
      class: `lrow dir-${e.dir} ${kind} ${worst ? 'sev-' + worst : ''} ${visible ? '' : 'hidden'}`,
      'data-testid': e.fault ? 'fault-row' : 'ladder-row', 'data-index': i, 'data-dir': e.dir,
      'data-injected': e.injected ? 'true' : null,
    },
    el('div', { class: 'time', text: e.dir === 'C' ? fmtTime(e.t, t0) : '' }),
    el('div', { class: 'arrow' }, e.fault ? '⚡ fault: ' + e.text : e.text,
      e.injected ? el('span', { class: 'injected-tag', text: '  ⚡ written by lockstep' }) : null),
    el('div', { class: 'time', text: e.dir === 'S' ? fmtTime(e.t, t0) : '' }));
    const out = [row];
    if (e.dir === 'S' && !e.fault) {
      const mismatch = e.answers !== undefined && e.answers !== e.pair;
      let text = e.pair ? `client pairs it with: ${e.pair}` : 'the client has no command waiting for it';
      if (mismatch) text += e.answers ? ` — but it answers ${e.answers}` : ' — but it answers nothing (surplus)';
      out.push(el('div', { class: `lrow pair-row ${visible ? '' : 'hidden'}` }, el('div'),
        el('div', { class: 'pair' + (mismatch ? ' mismatch' : ''), 'data-testid': 'pairing', text }), el('div')));
    }
    if (fs.length && visible)
      out.push(el('div', { class: 'lrow' }, el('div'), el('div', { class: 'findings-under' }, ...fs.map(findingBox)), el('div')));
    return out;
  }

  // A line from each reply to the command it is paired with (red when the client pairs it
  // with another command than the one it answers).
  function drawLinks(box, s) {
    const svg = box.querySelector('svg.links');
    const rows = [...box.querySelectorAll('.lrow[data-index]')];
    const byIndex = new Map(rows.map((r) => [Number(r.dataset.index), r]));
    const top = box.getBoundingClientRect().top;
    svg.setAttribute('width', box.clientWidth);
    svg.setAttribute('height', box.scrollHeight);
    svg.replaceChildren();
    const NS = 'http://www.w3.org/2000/svg';
    s.ladder.forEach((e, i) => {
      if (e.dir !== 'S' || e.fault || !e.pair) return;
      let target = -1;
      for (let j = i - 1; j >= 0 && target < 0; --j) {
        const c = s.ladder[j];
        if (c.dir !== 'C' || c.fault) continue;
        if (perRecipient(e.pair) ? (c.content || /^BDAT/i.test(c.text)) : c.text === e.pair) target = j;
      }
      const a = byIndex.get(i), b = byIndex.get(target);
      if (!a || !b || a.classList.contains('hidden') || b.classList.contains('hidden')) return;
      const ya = a.getBoundingClientRect().bottom - top, yb = b.getBoundingClientRect().bottom - top;
      const x = 100, bend = 14 + Math.min(60, (ya - yb) / 8);
      const p = document.createElementNS(NS, 'path');
      p.setAttribute('d', `M ${x} ${ya} C ${x - bend} ${ya}, ${x - bend} ${yb}, ${x} ${yb}`);
      const bad = e.answers !== undefined && e.answers !== e.pair;
      p.setAttribute('stroke', bad ? '#c62828' : '#9aa3b5');
      p.setAttribute('stroke-width', bad ? '2' : '1');
      p.setAttribute('fill', 'none');
      svg.append(p);
    });
  }

  function renderLadder(s) {
    const box = el('div', { class: 'ladder', 'data-testid': 'ladder' });
    box.append(document.createElementNS('http://www.w3.org/2000/svg', 'svg'));
    box.firstChild.setAttribute('class', 'links');
    box.append(el('div', { class: 'lrow lhead' },
      el('div', { text: 'client' }), el('div', { text: 'lockstep' }), el('div', { text: 'server' })));
    const byId = new Map((s.findings || []).map((x) => [x.id, x]));
    const f = filterText();
    const hit = !!f && [s.conn, s.client, s.upstream].join(' ').toLowerCase().includes(f);
    const t0 = s.ladder.length ? s.ladder[0].t : 0;
    let group = null;
    s.ladder.forEach((e, i) => {
      const rows = ladderRow(e, i, s, byId, t0, f, hit);
      if (e.dir === 'S' && !e.fault && perRecipient(e.pair)) {
        if (!group) {
          group = el('div', { class: 'group', 'data-testid': 'rcpt-group' }, el('div', { class: 'caption', text: 'one reply per accepted recipient' }));
          box.append(group);
        }
        group.append(...rows);
      } else {
        group = null;
        box.append(...rows);
      }
    });
    if (s.ladder_dropped) box.append(el('p', { class: 'hint', text: `… ${s.ladder_dropped} more entries not kept` }));
    return box;
  }

  // ---------------------------------------------------------------- detail
  function heldPanel(s) {
    if (!s.open || STATIC) return null;
    if (s.hold === 'held') {
      const area = el('textarea', { 'data-testid': 'held-text' });
      area.value = (s.held_reply || '').replace(/\r\n$/, '').replace(/\r\n/g, '\n');
      const act = (action) => () => api('POST', `/sessions/${s.conn}/release`, action === 'edit' ? { action, text: area.value } : { action })
        .catch((err) => { $('#detail-error').textContent = err.message; });
      return el('div', { class: 'held', 'data-testid': 'held' },
        el('div', {}, el('b', { text: 'Held reply' }), ` to ${s.held_label} — edit it, drop it, or let it go:`), area,
        el('div', {},
          el('button', { 'data-testid': 'release', onclick: act('pass'), text: 'Release unchanged' }), ' ',
          el('button', { 'data-testid': 'send-edited', onclick: act('edit'), text: 'Send edited' }), ' ',
          el('button', { 'data-testid': 'drop', onclick: act('drop'), text: 'Drop' })));
    }
    return null;
  }

  function download(path, name) {
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    fetch('api' + path, { headers }).then((r) => (r.ok ? r.blob() : r.json().then((j) => { throw new Error(j.error); })))
      .then((b) => {
        const a = el('a', { href: URL.createObjectURL(b), download: name });
        document.body.append(a); a.click(); a.remove();
      }).catch((err) => { $('#detail-error').textContent = err.message; });
  }

  function renderDetail() {
    const d = $('#detail');
    const s = current;
    if (!s) { d.replaceChildren(el('p', { class: 'hint', text: 'Select a session to see its ladder.' })); heldKey = ''; return; }
    const key = `${s.conn}|${s.hold}|${s.held_label}|${s.held_reply}`;
    const keepHeld = key === heldKey && d.querySelector('.held');
    const oldHeld = keepHeld ? d.querySelector('.held') : null;
    const scroller = document.scrollingElement.scrollTop;
    const buttons = [];
    if (!STATIC && s.open && s.interceptable && s.hold !== 'held')
      buttons.push(el('button', {
        'data-testid': 'hold', disabled: s.hold === 'armed',
        onclick: () => api('POST', `/sessions/${s.conn}/hold`).catch((err) => { $('#detail-error').textContent = err.message; }),
        text: s.hold === 'armed' ? 'Holding the next reply…' : 'Hold next reply',
      }));
    if (!STATIC) {
      buttons.push(el('button', { 'data-testid': 'export-recording', onclick: () => download(`/sessions/${s.conn}/recording`, `lockstep-conn-${s.conn}.jsonl`), text: 'Export recording' }));
      buttons.push(el('button', { 'data-testid': 'export-scenario', onclick: () => download(`/sessions/${s.conn}/scenario`, `lockstep-conn-${s.conn}.yaml`), text: 'Export scenario' }));
    }
    const summary = el('div', { class: 'summary', 'data-testid': 'summary' },
      el('span', { class: 'title', text: `Session ${s.conn}` }),
      el('span', { text: `${s.client || '?'} → ${s.upstream || '?'}` }),
      el('span', { text: `state ${s.state || '?'} · ${s.commands} commands · ${s.replies} replies` }),
      el('span', { 'data-testid': 'counts', text: `${s.errors} error(s), ${s.warnings} warning(s)` }),
      s.desynced ? el('span', { class: 'tag desync', text: 'lockstep broken' }) : null,
      s.open ? el('span', { class: 'tag open', text: 'open' }) : el('span', { class: 'tag closed', text: 'closed' }),
      ...buttons);
    const parts = [summary, el('div', { id: 'detail-error', class: 'error' })];
    const held = oldHeld || heldPanel(s);
    if (held) parts.push(held);
    parts.push(renderLadder(s));
    if ((s.narrative || []).length)
      parts.push(el('h3', { text: 'What a client that counts replies will mistake each reply for' }),
        el('ul', { class: 'narrative', 'data-testid': 'narrative' }, ...s.narrative.map((n) => el('li', { text: n }))));
    const loose = (s.findings || []).filter((f) => !s.ladder.some((e) => (e.findings || []).includes(f.id)));
    if (loose.length) parts.push(el('h3', { text: 'Findings about the session as a whole' }), ...loose.map(findingBox));
    if ((s.fault_log || []).length)
      parts.push(el('h3', { text: 'Faults on this connection' }), el('ul', {}, ...s.fault_log.map((x) => el('li', { text: x }))));
    d.replaceChildren(...parts);
    heldKey = key;
    document.scrollingElement.scrollTop = scroller;
    drawLinks(d.querySelector('.ladder'), s);
  }

  // ---------------------------------------------------------------- faults
  function renderFaults(data) {
    const ul = $('#faults');
    ul.replaceChildren();
    for (const f of data.faults || []) {
      ul.append(el('li', { 'data-testid': 'fault', 'data-name': f.name },
        el('code', { text: f.name }), el('span', { class: 'desc', text: f.description }),
        el('button', {
          'data-testid': 'remove-fault', text: 'remove',
          onclick: () => api('DELETE', '/faults/' + encodeURIComponent(f.name)).catch((err) => { $('#fault-error').textContent = err.message; }),
        })));
    }
    if (!(data.faults || []).length) ul.append(el('li', { class: 'hint', text: 'none: bytes pass unchanged' }));
  }
  function renderPresets(data) {
    const sel = $('#preset');
    for (const p of data.presets || []) sel.append(el('option', { value: p.name, title: p.incident, text: p.name }));
    sel.addEventListener('change', () => {
      const p = (data.presets || []).find((x) => x.name === sel.value);
      if (!p) return;
      $('#fault-name').value = p.name;
      $('#fault-spec').value = p.name;
    });
  }
  $('#add-fault').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = $('#fault-name').value.trim(), spec = $('#fault-spec').value.trim();
    $('#fault-error').textContent = '';
    if (!spec) { $('#fault-error').textContent = 'a fault spec is needed (see `lockstep faults`)'; return; }
    api('POST', '/faults', name ? { name, spec } : { spec })
      .then(() => { $('#fault-name').value = ''; $('#fault-spec').value = ''; $('#preset').value = ''; })
      .catch((err) => { $('#fault-error').textContent = err.message; });
  });

  // ---------------------------------------------------------------- live
  function connect() {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws${token ? '?token=' + encodeURIComponent(token) : ''}`;
    ws = new WebSocket(url);
    ws.onopen = () => {
      $('#status').textContent = 'live';
      if (selected) ws.send(JSON.stringify({ watch: selected }));
    };
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === 'sessions') { sessions = msg.sessions; renderList(); }
      else if (msg.type === 'session' && msg.session.conn === selected) { current = msg.session; renderDetail(); }
      else if (msg.type === 'gone' && msg.conn === selected) { current = null; renderDetail(); }
      else if (msg.type === 'faults') renderFaults(msg.data);
      else if (msg.type === 'presets') renderPresets(msg.data);
    };
    ws.onclose = () => {
      $('#status').textContent = 'disconnected from the proxy: retrying…';
      setTimeout(connect, 1000);
    };
  }

  $('#filter').addEventListener('input', () => { renderList(); if (current) { heldKey = ''; renderDetail(); } });
  window.addEventListener('resize', () => { if (current) drawLinks($('#detail .ladder'), current); });
  if (STATIC) {
    document.title = 'lockstep: ' + STATIC.title;
    $('#faults-panel').classList.add('hidden');
    sessions = STATIC.sessions;
    renderList();
    const first = sessions.find((s) => s.errors) || sessions[0];
    if (first) select(first.conn);
  } else {
    connect();
  }
})();
