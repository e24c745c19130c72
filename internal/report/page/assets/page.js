// certlens's page: the live list (Server-Sent Events from /events) or, in a
// static report, the events embedded in the file. Every DN, subject, SAN
// and SNI is attacker-controlled text: it reaches the DOM through
// textContent only (text() below), never as markup.
'use strict';
(function () {
  // Rows kept: the server's ring live; a report holds what its command
  // wrote (bounded there).
  let MAX = 2000;
  const LIMIT = 16384; // SChannel's issuer list limit, the gauge's full scale
  const WARN = 12288;

  const state = {
    events: [], // handshakes, newest first
    byId: new Map(),
    conns: new Map(), // conn key -> {handshakes: [], closed}
    hosts: new Map(),
    targets: new Set(),
    selected: null,
    paused: false,
    unseen: 0,
    seq: 0,
    trimmed: 0,
    evicted: 0,
    missed: 0,
    live: false,
    expected: [], // --expect-cert: [{name, cert}]
    lists: new Map(), // the stream's issuer lists by id: {issuers, lower}
  };

  const $ = (id) => document.getElementById(id);

  // Characters that could reorder or hide the text around them (bidi
  // overrides, zero-width, controls) are shown as visible escapes.
  const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

  function text(node, s) {
    s = s == null ? '' : String(s);
    node.textContent = '';
    let last = 0;
    for (const m of s.matchAll(HIDDEN)) {
      if (m.index > last) node.appendChild(document.createTextNode(s.slice(last, m.index)));
      const c = document.createElement('span');
      c.className = 'ctl';
      c.title = 'invisible or direction-changing character in the data';
      c.textContent = '\\u' + m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
      node.appendChild(c);
      last = m.index + m[0].length;
    }
    if (last < s.length) node.appendChild(document.createTextNode(s.slice(last)));
    return node;
  }

  function el(tag, cls, s) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (s !== undefined) text(e, s);
    return e;
  }

  function add(parent, ...kids) {
    for (const k of kids) if (k) parent.appendChild(k);
    return parent;
  }

  function fmtTime(ts, full) {
    const d = new Date(ts);
    if (isNaN(d)) return ts || '';
    const p = (n, w) => String(n).padStart(w || 2, '0');
    const t = p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
    if (!full) return t;
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + t + '.' + p(d.getMilliseconds(), 3);
  }

  function bytes(n) {
    if (n < 1024) return n + ' B';
    return (n / 1024).toFixed(1) + ' KB';
  }

  function rdnValue(dn, attr) {
    // RFC 4514: attributes separated by unescaped commas.
    const parts = String(dn || '').split(/(?<!\\),/);
    for (const p of parts) {
      const i = p.indexOf('=');
      if (i > 0 && p.slice(0, i).trim().toUpperCase() === attr) return p.slice(i + 1).replace(/\\(.)/g, '$1');
    }
    return '';
  }

  function shortName(dn) {
    return rdnValue(dn, 'CN') || dn || '';
  }

  function normDN(dn) {
    return String(dn || '').toLowerCase().replace(/\s+/g, '');
  }

  function connKey(e) {
    return (e.mode || '') + '|' + (e.conn_id || '') + '|' + (e.pcap && e.pcap.file ? e.pcap.file : '');
  }

  function hostKey(e) {
    return e.target || e.sni || '(no target)';
  }

  function verdictClass(v) {
    if (v === 'ok') return 'v-ok';
    if (v === 'unknown' || !v) return 'v-unknown';
    if (v === 'handshake_failed') return 'v-fail';
    return 'v-bad';
  }

  function badge(v, certain) {
    const b = el('span', 'badge ' + verdictClass(v) + (certain ? ' certain' : ' predicted'), v || 'unknown');
    b.title = certain ? 'certain: the wire (or the HTTP answer) shows it' : 'predicted: inferred or what IIS would do, not seen';
    const w = el('span');
    add(w, b, el('span', 'certainty', certain ? 'certain' : 'predicted'));
    return w;
  }

  function certSent(e) {
    const cc = e.client_cert;
    if (cc && cc.sent && cc.chain && cc.chain.length) return { text: shortName(cc.chain[0].subject), title: cc.chain[0].subject };
    if (cc && !cc.sent) return { text: 'none', title: 'the client\'s Certificate message was empty' };
    if (e.inferred && e.inferred.cert_sent) return { text: 'inferred: ' + e.inferred.cert_sent, title: e.inferred.evidence || '' };
    return { text: '—', title: 'no client Certificate message seen' };
  }

  function problem(e) {
    return e.verdict !== 'ok';
  }

  // ingest takes one event object, the text a search looks in, and the
  // issuer list it shares with others, if any.
  function ingest(e, raw, list) {
    if (e.msg === 'connection closed') {
      const c = conn(connKey(e));
      c.closed = e;
      if (state.selected && connKey(state.selected) === connKey(e)) renderDetail(state.selected);
      return false;
    }
    if (e.msg !== 'handshake') return false;
    e._id = ++state.seq;
    e._text = raw.toLowerCase();
    e._list = list || null;
    state.events.unshift(e);
    state.byId.set(e._id, e);
    conn(connKey(e)).handshakes.push(e);
    noteHost(e);
    if (!state.targets.has(hostKey(e))) {
      state.targets.add(hostKey(e));
      const o = el('option', '', hostKey(e));
      o.value = hostKey(e);
      $('f-target').appendChild(o);
    }
    while (state.events.length > MAX) {
      const old = state.events.pop();
      state.byId.delete(old._id);
      const row = document.querySelector('tr[data-id="' + old._id + '"]');
      if (row) row.remove();
      state.trimmed++;
    }
    return true;
  }

  function conn(key) {
    let c = state.conns.get(key);
    if (!c) {
      c = { handshakes: [], closed: null };
      state.conns.set(key, c);
      if (state.conns.size > MAX * 2) state.conns.delete(state.conns.keys().next().value);
    }
    return c;
  }

  function noteHost(e) {
    const k = hostKey(e);
    let h = state.hosts.get(k);
    if (!h) {
      h = { n: 0, verdicts: new Map(), lists: new Map(), current: null, changes: [], first: e.ts, last: e.ts };
      state.hosts.set(k, h);
    }
    h.n++;
    h.last = e.ts;
    h.verdicts.set(e.verdict, (h.verdicts.get(e.verdict) || 0) + 1);
    const cr = e.cert_request;
    if (!cr) return;
    const issuers = cr.issuers || [];
    const key = issuers.join('\n');
    let l = h.lists.get(key);
    if (!l) {
      l = { issuers: issuers, count: cr.issuer_count, bytes: cr.issuer_bytes, first: e.ts, last: e.ts, n: 0 };
      h.lists.set(key, l);
    }
    l.n++;
    l.last = e.ts;
    if (h.current !== null && h.current !== key) {
      const from = h.lists.get(h.current);
      h.changes.push({ at: e.ts, from: from.count, to: l.count, fromBytes: from.bytes, toBytes: l.bytes });
    }
    h.current = key;
  }

  // --- the list ---

  function matches(e) {
    const v = $('f-verdict').value;
    if (v === 'problem' ? !problem(e) : v && e.verdict !== v) return false;
    const t = $('f-target').value;
    if (t && hostKey(e) !== t) return false;
    const q = $('f-text').value.trim().toLowerCase();
    if (q && !e._text.includes(q) && !(e._list && e._list.lower.includes(q))) return false;
    return true;
  }

  function row(e) {
    const tr = el('tr');
    tr.dataset.id = String(e._id);
    if (state.selected === e) tr.classList.add('sel');
    add(tr, el('td', 'time', fmtTime(e.ts)));
    add(tr, el('td', 'mono nowrap', e.client_addr || ''));
    const tgt = el('td', 'nowrap');
    add(tgt, el('span', 'mono', e.target || ''));
    if (e.sni && e.sni !== String(e.target || '').replace(/:\d+$/, '')) add(tgt, el('span', 'sub mono', 'SNI ' + e.sni));
    tr.appendChild(tgt);
    const ver = el('td', '', e.tls_version || '');
    if (e.phase && e.phase !== 'initial') add(ver, el('span', 'sub', e.phase));
    tr.appendChild(ver);
    add(tr, el('td', '', e.visibility || ''));
    const iss = el('td');
    const cr = e.cert_request;
    if (cr) {
      add(iss, el('span', '', cr.issuer_count + ' CAs, ' + bytes(cr.issuer_bytes)));
      const g = el('div', 'gauge' + (cr.issuer_bytes >= LIMIT ? ' bad' : cr.issuer_bytes >= WARN ? ' warn' : ''));
      g.title = cr.issuer_bytes + ' of ' + LIMIT + ' bytes';
      const f = el('div');
      f.style.width = Math.min(100, (100 * cr.issuer_bytes) / LIMIT).toFixed(1) + '%';
      g.appendChild(f);
      iss.appendChild(g);
    } else if (e.inferred && e.inferred.cert_requested) {
      add(iss, el('span', '', 'inferred: ' + e.inferred.cert_requested));
    } else {
      add(iss, el('span', 'sub', 'not asked'));
    }
    tr.appendChild(iss);
    const cs = certSent(e);
    const td = el('td', 'dn', cs.text);
    td.title = cs.title;
    tr.appendChild(td);
    add(tr, add(el('td'), badge(e.verdict, e.verdict_certain)));
    return tr;
  }

  function renderList() {
    const body = $('rows');
    body.textContent = '';
    const frag = document.createDocumentFragment();
    let n = 0;
    for (const e of state.events) {
      if (!matches(e)) continue;
      frag.appendChild(row(e));
      n++;
    }
    body.appendChild(frag);
    state.unseen = 0;
    $('empty').hidden = state.events.length > 0;
    counts(n);
  }

  function counts(shown) {
    if (shown === undefined) shown = $('rows').children.length;
    let s = shown + ' of ' + state.events.length + ' handshakes';
    if (!state.live && state.trimmed) s += ' · ' + state.trimmed + ' older not shown';
    if (state.live) {
      s += ' · dropped from the ring: ' + (state.evicted + state.trimmed);
      if (state.missed) s += ' · missed by this page: ' + state.missed;
      if (state.paused) s += ' · paused, ' + state.unseen + ' new';
    }
    text($('counts'), s);
    $('pause').textContent = state.paused ? 'Resume' : 'Pause';
  }

  // New events are drawn once per frame, however fast they arrive.
  let pending = [];
  let scheduled = false;
  function arrived(e) {
    pending.push(e);
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      const batch = pending;
      pending = [];
      if (state.paused) {
        state.unseen += batch.length;
        counts();
        return;
      }
      const body = $('rows');
      for (const e of batch) {
        if (!state.byId.has(e._id) || !matches(e)) continue;
        body.insertBefore(row(e), body.firstChild);
      }
      $('empty').hidden = state.events.length > 0;
      counts();
      if (!$('hosts-view').hidden) renderHosts();
    });
  }

  // --- the detail ---

  function facts(pairs) {
    const dl = el('dl', 'facts');
    for (const [k, v] of pairs) {
      if (v === undefined || v === null || v === '') continue;
      add(dl, el('dt', '', k), typeof v === 'object' ? add(el('dd'), v) : el('dd', '', v));
    }
    return dl;
  }

  // The DNs of the client's chain an issuer list entry could match: every
  // certificate's issuer, and the subjects above the leaf.
  function chainDNs(chain) {
    const out = [];
    chain.forEach((c, i) => {
      out.push(c.issuer);
      if (i > 0) out.push(c.subject);
    });
    return out;
  }

  function issuerSection(e) {
    const cr = e.cert_request;
    const chain = (e.client_cert && e.client_cert.chain) || (e.intercept && e.intercept.browser_cert && e.intercept.browser_cert.chain) || [];
    const wrap = el('div', 'side');
    const left = el('div');
    const right = el('div');
    wrap.append(left, right);
    const issuers = (cr && cr.issuers) || [];
    const want = new Set(chainDNs(chain).map(normDN));
    const hits = new Set();
    if (cr) {
      add(left, el('h3', '', 'Issuer list: ' + cr.issuer_count + ' CAs, ' + cr.issuer_bytes + ' bytes' + (cr.records > 1 ? ' in ' + cr.records + ' records' : '')));
      if (!issuers.length) add(left, el('p', '', 'The list is empty: the client may offer any certificate it has.'));
      const ol = el('ol', 'issuers');
      issuers.forEach((dn, i) => {
        const li = el('li', 'dn', dn);
        if (want.has(normDN(dn))) {
          li.classList.add('hit');
          hits.add(normDN(dn));
        }
        li.dataset.n = String(i + 1);
        ol.appendChild(li);
      });
      left.appendChild(ol);
      // Bring the first listed DN of the chain into the list's view.
      const hit = ol.querySelector('li.hit');
      if (hit) requestAnimationFrame(() => { ol.scrollTop = Math.max(0, hit.offsetTop - ol.clientHeight / 3); });
      const more = [];
      if (cr.cert_types && cr.cert_types.length) more.push(['Certificate types', cr.cert_types.join(', ')]);
      if (cr.signature_schemes && cr.signature_schemes.length) more.push(['Signature schemes', cr.signature_schemes.join(', ')]);
      left.appendChild(facts(more));
    } else if (e.inferred) {
      add(left, el('h3', '', 'Certificate request (inferred)'));
      left.appendChild(facts([
        ['Requested', e.inferred.cert_requested],
        ['Sent', e.inferred.cert_sent],
        ['CertificateRequest size', e.inferred.cert_request_bytes ? e.inferred.cert_request_min && e.inferred.cert_request_min !== e.inferred.cert_request_bytes ? e.inferred.cert_request_min + '–' + e.inferred.cert_request_bytes + ' bytes' : e.inferred.cert_request_bytes + ' bytes' : ''],
        ['Records', e.inferred.cert_request_records],
        ['Evidence', e.inferred.evidence],
      ]));
    } else {
      add(left, el('h3', '', 'Issuer list'), el('p', '', 'The server did not ask for a client certificate in this handshake.'));
    }
    add(right, el('h3', '', chain.length ? 'Client chain' + (e.client_cert && e.client_cert.sent ? ' (sent)' : ' (the browser\'s choice)') : 'Client chain'));
    if (!chain.length) {
      add(right, el('p', '', e.client_cert && !e.client_cert.sent ? 'The client sent no certificate.' : 'No client certificate seen.'));
    } else {
      if (issuers.length) {
        if (hits.size) {
          add(right, el('p', '', 'Listed: ' + hits.size + ' DN' + (hits.size > 1 ? 's' : '') + ' of this chain appear in the issuer list (highlighted).'));
        } else {
          add(right, el('p', 'near', 'No DN of your chain is listed.'));
          const near = nearMisses(chainDNs(chain), issuers);
          if (near.length) {
            add(right, el('p', '', 'Near misses (same CN, different DN):'));
            const ul = el('ul');
            for (const [mine, theirs] of near) {
              const li = el('li');
              add(li, el('div', 'dn', 'yours:  ' + mine), el('div', 'dn near', 'listed: ' + theirs));
              ul.appendChild(li);
            }
            right.appendChild(ul);
          }
        }
      }
      chain.forEach((c, i) => right.appendChild(certBox(c, i, want, issuers)));
    }
    return wrap;
  }

  function nearMisses(mine, listed) {
    const out = [];
    for (const m of mine) {
      const cn = rdnValue(m, 'CN').toLowerCase();
      if (!cn) continue;
      for (const l of listed) {
        if (rdnValue(l, 'CN').toLowerCase() === cn && normDN(l) !== normDN(m)) out.push([m, l]);
      }
    }
    return out.slice(0, 10);
  }

  function certBox(c, i, want, issuers) {
    const box = el('div', 'cert');
    add(box, el('strong', '', i === 0 ? 'Leaf' : 'Certificate ' + (i + 1)));
    const listed = new Set(issuers.map(normDN));
    const subj = el('span', 'dn chain-dn', c.subject);
    if (i > 0 && listed.has(normDN(c.subject))) subj.classList.add('hit');
    const iss = el('span', 'dn chain-dn', c.issuer);
    if (listed.has(normDN(c.issuer))) iss.classList.add('hit');
    box.appendChild(facts([
      ['Subject', subj],
      ['Issuer', iss],
      ['Valid', (c.not_before || '?') + ' to ' + (c.not_after || '?')],
      ['Key Usage', (c.key_usage || []).join(', ') || 'not set'],
      ['Extended Key Usage', (c.ext_key_usage || []).join(', ') || 'not set'],
      ['Key', c.public_key],
      ['Serial', c.serial],
      ['SHA-256', el('span', 'mono', c.sha256 || '')],
    ]));
    return box;
  }

  function findingsSection(e) {
    const sec = el('div');
    add(sec, el('h3', '', 'Findings'));
    if (!e.findings || !e.findings.length) {
      add(sec, el('p', '', 'No finding.'));
      return sec;
    }
    for (const f of e.findings) {
      const d = el('div', 'finding ' + (f.severity || ''));
      add(d, el('span', 'id', f.id + ' · ' + f.severity + (f.predicts ? ' · predicts ' + f.predicts : '')));
      add(d, el('p', '', f.summary));
      if (f.detail) add(d, el('p', 'evidence', f.detail));
      if (f.remedy) add(d, el('p', 'remedy', f.remedy));
      sec.appendChild(d);
    }
    return sec;
  }

  // expectedSection says, for each certificate the user expects the client
  // to send, whether it was sent or why not: the rules' finding
  // (expected-cert-not-selectable) when the client sent nothing.
  function expectedSection(e) {
    const sec = el('div');
    sec.id = 'expected-sec';
    if (!state.expected.length) return sec;
    add(sec, el('h3', '', 'Expected certificates (--expect-cert)'));
    const sent = (e.client_cert && e.client_cert.chain) || [];
    for (const x of state.expected) {
      const d = el('div', 'cert');
      add(d, el('strong', 'dn', x.name), el('div', 'dn', x.cert.subject));
      let verdict;
      let why = '';
      const f = (e.findings || []).find((f) => f.id === 'expected-cert-not-selectable' && f.summary.includes('(' + x.name + ')'));
      if (sent.length && sent[0].sha256 === x.cert.sha256) {
        verdict = 'sent';
      } else if (f) {
        verdict = f.summary;
        why = f.detail;
      } else if (!e.cert_request && !(e.inferred && e.inferred.cert_requested === 'yes')) {
        verdict = 'not asked for: the server did not request a certificate in this handshake';
      } else if (sent.length) {
        verdict = 'not sent: the client sent ' + shortName(sent[0].subject) + ' instead';
      } else if (!e.cert_request) {
        verdict = 'not known: the request was inferred from record sizes, its issuer list is not readable';
      } else {
        verdict = 'not sent';
      }
      add(d, el('p', verdict === 'sent' ? 'ok' : 'near', verdict));
      if (why) add(d, el('p', 'evidence', why));
      sec.appendChild(d);
    }
    return sec;
  }

  function refreshExpected() {
    if (!state.live) return;
    fetch('expected').then((r) => r.json()).then((list) => {
      state.expected = Array.isArray(list) ? list : [];
      const old = document.getElementById('expected-sec');
      if (old && state.selected) old.replaceWith(expectedSection(state.selected));
    }, () => {});
  }

  function connSection(e) {
    const sec = el('div');
    const c = state.conns.get(connKey(e));
    add(sec, el('h3', '', 'Connection ' + (e.conn_id || '')));
    if (!c) return sec;
    const ol = el('ol');
    for (const h of c.handshakes) {
      const li = el('li');
      const b = el('button', 'conn-hs', (h.phase || 'handshake') + ' · ' + (h.tls_version || '') + ' · ' + (h.visibility || ''));
      b.type = 'button';
      b.addEventListener('click', () => select(h));
      add(li, b, el('span', '', ' '), badge(h.verdict, h.verdict_certain));
      if (h === e) li.appendChild(el('span', 'sub', 'this one'));
      ol.appendChild(li);
    }
    sec.appendChild(ol);
    const cl = c.closed;
    if (cl) {
      sec.appendChild(facts([
        ['Outcome', cl.verdict ? add(el('span'), badge(cl.verdict, cl.verdict_certain)) : ''],
        ['Closed', cl.reason],
        ['Handshakes', String(cl.handshakes)],
        ['Bytes', bytes(cl.bytes_client_to_server || 0) + ' up, ' + bytes(cl.bytes_server_to_client || 0) + ' down'],
        ['Duration', cl.duration_ms !== undefined ? Math.round(cl.duration_ms) + ' ms' : ''],
      ]));
    } else {
      add(sec, el('p', 'sub', 'The connection is still open.'));
    }
    return sec;
  }

  // pcapRef says where Wireshark shows the handshake.
  function pcapRef(p) {
    let s = 'tcp.stream eq ' + p.stream;
    const f = p.frames || {};
    if (f.cert_request) s += ' · CertificateRequest in frame ' + f.cert_request;
    if (f.client_cert) s += ' · client Certificate in frame ' + f.client_cert;
    return s;
  }

  function renderDetail(e) {
    const d = $('detail');
    d.textContent = '';
    d.hidden = false;
    const close = el('button', 'close', 'Close');
    close.type = 'button';
    close.addEventListener('click', () => select(null));
    add(d, close, el('h2', 'mono', (e.target || e.sni || '') + ' '));
    d.querySelector('h2').appendChild(badge(e.verdict, e.verdict_certain));
    d.appendChild(facts([
      ['Time', fmtTime(e.ts, true)],
      ['Client', e.client_addr],
      ['Target', e.target],
      ['SNI', e.sni],
      ['Mode', e.mode],
      ['TLS', [e.tls_version, e.cipher_suite].filter(Boolean).join(' · ')],
      ['ALPN', e.alpn],
      ['Phase', e.phase],
      ['Visibility', e.visibility],
      ['Ended', e.end],
      ['HTTP', e.http_status ? String(e.http_status) + (e.http_substatus ? ' (' + e.http_substatus + ')' : '') : ''],
      ['Alerts', (e.alerts || []).map((a) => a.from + ' ' + a.level + ' ' + a.description).join('; ')],
      ['Capture', e.pcap ? pcapRef(e.pcap) : ''],
      ['Errors', (e.errors || []).join('; ')],
    ]));
    d.appendChild(findingsSection(e));
    d.appendChild(issuerSection(e));
    d.appendChild(expectedSection(e));
    d.appendChild(connSection(e));
    add(d, el('h3', '', 'Raw event'));
    const ta = el('textarea', 'raw');
    ta.readOnly = true;
    ta.value = eventJSON(e, 2);
    const copy = el('button', '', 'Copy JSON');
    copy.type = 'button';
    copy.addEventListener('click', () => {
      const done = () => text(copy, 'Copied');
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(eventJSON(e)).then(done, () => fallbackCopy(ta, done));
      } else {
        fallbackCopy(ta, done);
      }
    });
    add(d, copy, ta);
  }

  // eventJSON is the event as the log has it, without the page's own fields.
  function eventJSON(e, indent) {
    return JSON.stringify(e, (k, v) => (k.startsWith('_') ? undefined : v), indent);
  }

  function fallbackCopy(ta, done) {
    ta.select();
    if (document.execCommand('copy')) done();
  }

  function select(e) {
    state.selected = e;
    for (const tr of document.querySelectorAll('#rows tr.sel')) tr.classList.remove('sel');
    if (!e) {
      $('detail').hidden = true;
      return;
    }
    const tr = document.querySelector('tr[data-id="' + e._id + '"]');
    if (tr) tr.classList.add('sel');
    renderDetail(e);
    refreshExpected();
  }

  // --- by host ---

  function renderHosts() {
    const v = $('hosts-view');
    v.textContent = '';
    v.className = 'hosts';
    const t = el('table');
    const head = el('tr');
    for (const h of ['Target', 'Handshakes', 'Verdicts', 'Issuer lists seen']) head.appendChild(el('th', '', h));
    add(t, add(el('thead'), head));
    const body = el('tbody');
    const keys = Array.from(state.hosts.keys()).sort();
    for (const k of keys) {
      const h = state.hosts.get(k);
      const tr = el('tr');
      add(tr, el('td', 'mono', k), el('td', '', String(h.n)));
      const vd = el('td');
      for (const [verdict, n] of h.verdicts) {
        add(vd, el('span', 'badge ' + verdictClass(verdict), verdict + ' ×' + n), el('span', '', ' '));
      }
      tr.appendChild(vd);
      const ld = el('td');
      if (!h.lists.size) add(ld, el('span', 'sub', 'never asked for a certificate'));
      for (const [key, l] of h.lists) {
        const det = el('details');
        const sum = el('summary', '', l.count + ' CAs, ' + bytes(l.bytes) + ' · ' + l.n + ' handshake' + (l.n > 1 ? 's' : '') + ' · ' + fmtTime(l.first) + '–' + fmtTime(l.last) + (key === h.current ? ' (current)' : ''));
        det.appendChild(sum);
        const ol = el('ol', 'issuers');
        for (const dn of l.issuers) ol.appendChild(el('li', 'dn', dn));
        det.appendChild(ol);
        ld.appendChild(det);
      }
      for (const c of h.changes) {
        const verb = c.to > c.from ? 'grew' : c.to < c.from ? 'shrank' : 'changed';
        add(ld, el('div', 'change', 'the list ' + verb + ' from ' + c.from + ' to ' + c.to + ' CAs at ' + fmtTime(c.at)));
      }
      tr.appendChild(ld);
      body.appendChild(tr);
    }
    t.appendChild(body);
    v.appendChild(t);
    if (!keys.length) add(v, el('p', 'empty', 'No handshake yet.'));
  }

  function show(view) {
    const hosts = view === 'hosts';
    $('list-view').hidden = hosts;
    $('hosts-view').hidden = !hosts;
    $('tab-list').classList.toggle('on', !hosts);
    $('tab-hosts').classList.toggle('on', hosts);
    if (hosts) renderHosts();
  }

  // --- wiring ---

  function status(s, down) {
    const st = $('status');
    text(st, s);
    st.classList.toggle('down', !!down);
  }

  function live() {
    state.live = true;
    const src = new EventSource('events');
    src.onopen = () => {
      status('live');
      refreshExpected();
    };
    src.onerror = () => status('disconnected, retrying…', true);
    // A long issuer list comes once, as a "list" event, and the events that
    // carry it refer to it ({"list":N}); each gets the list back here.
    src.addEventListener('list', (m) => {
      const l = JSON.parse(m.data);
      state.lists.set(l.id, { issuers: l.issuers, lower: m.data.toLowerCase() });
      if (state.lists.size > 512) state.lists.delete(state.lists.keys().next().value);
    });
    src.onmessage = (m) => {
      let e;
      try {
        e = JSON.parse(m.data);
      } catch (err) {
        return;
      }
      let list = null;
      const cr = e.cert_request;
      if (cr && cr.issuers && !Array.isArray(cr.issuers)) {
        list = state.lists.get(cr.issuers.list) || null;
        cr.issuers = list ? list.issuers : [];
      }
      if (ingest(e, m.data, list)) arrived(state.events[0]);
    };
    src.addEventListener('stats', (m) => {
      const s = JSON.parse(m.data);
      state.evicted = s.evicted;
      state.missed = s.missed;
      counts();
    });
  }

  function staticReport(data) {
    for (const p of document.querySelectorAll('.live-only')) p.hidden = true;
    const src = $('source');
    text(src, data.title || '');
    MAX = 100000;
    state.expected = data.expected || [];
    const events = data.events || [];
    for (const e of events) ingest(e, JSON.stringify(e), null);
    text($('empty'), 'This report holds no handshake.');
    status(events.length + ' events, written ' + fmtTime(data.written, true));
    renderList();
  }

  function init() {
    $('rows').addEventListener('click', (ev) => {
      const tr = ev.target.closest('tr');
      if (!tr) return;
      const e = state.byId.get(Number(tr.dataset.id));
      if (e) select(e);
    });
    for (const id of ['f-verdict', 'f-target']) $(id).addEventListener('change', renderList);
    $('f-text').addEventListener('input', renderList);
    $('pause').addEventListener('click', () => {
      state.paused = !state.paused;
      if (!state.paused) renderList();
      counts();
    });
    $('tab-list').addEventListener('click', () => show('list'));
    $('tab-hosts').addEventListener('click', () => show('hosts'));
    const embedded = $('certlens-data');
    if (embedded) {
      staticReport(JSON.parse(embedded.textContent));
    } else {
      renderList();
      live();
    }
  }

  init();
})();
