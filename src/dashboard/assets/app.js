// app.js — the mcpr dashboard page. Everything comes from this server's
// JSON API (/api/...), the same objects as the CLI's --json. Every string
// from the store is put in the page with textContent, never parsed as markup:
// a tool named "<script>" is shown as text. Charts are SVG drawn here.
'use strict';

const state = {
  window: '1h', proxy: '', lastRowId: 0, liveTimer: null, heavyTimer: null,
  firstPaint: false, sessionOpen: null,
};
const LIVE_MS = 1000, HEAVY_MS = 5000, LIVE_ROWS = 30;
const SVG = 'http://www.w3.org/2000/svg';

// ---------- small helpers ----------
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, String(attrs[k]));
  return e;
}
function fmtLatency(us) {
  if (us === null || us === undefined) return '–';
  if (us < 1000) return us + 'µs';
  if (us < 1000000) return (us / 1000).toFixed(us < 10000 ? 1 : 0) + 'ms';
  return (us / 1000000).toFixed(2) + 's';
}
function fmtPct(p) { return p === null || p === undefined ? '–' : p.toFixed(1) + '%'; }
function fmtTime(ms) {
  if (ms === null || ms === undefined) return '–';
  const d = new Date(ms), now = Date.now();
  const pad = (n) => String(n).padStart(2, '0');
  const hm = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  if (now - ms < 86400000) return hm;
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hm;
}
function fmtBucket(ms) {
  if (ms % 86400000 === 0) return ms / 86400000 + 'd';
  if (ms % 3600000 === 0) return ms / 3600000 + 'h';
  if (ms % 60000 === 0) return ms / 60000 + 'min';
  return Math.round(ms / 1000) + 's';
}
function short(s, n) { return s && s.length > n ? s.slice(0, n) + '…' : s; }
function query(params) {
  const q = new URLSearchParams();
  for (const k in params) if (params[k] !== '' && params[k] !== null && params[k] !== undefined) q.set(k, params[k]);
  const s = q.toString();
  return s ? '?' + s : '';
}
async function api(path, params) {
  const r = await fetch('/api/' + path + query(params || {}), { cache: 'no-store' });
  const body = await r.json();
  if (!r.ok) throw new Error(path + ': ' + (body && body.error ? body.error : r.status));
  return body;
}
function showError(e) { $('error').textContent = e ? String(e.message || e) : ''; }
function fillTable(id, rows, cells, empty) {
  const tbody = $(id).tBodies[0];
  const frag = document.createDocumentFragment();
  if (!rows.length) {
    const tr = el('tr', null, 'empty');
    const td = el('td', empty || 'none in this window');
    td.colSpan = $(id).tHead.rows[0].cells.length;
    tr.appendChild(td);
    frag.appendChild(tr);
  }
  for (const r of rows) frag.appendChild(cells(r));
  tbody.replaceChildren(frag);
}
function row(values, classes) {
  const tr = el('tr');
  values.forEach((v, i) => {
    if (v instanceof Node) { const td = el('td'); td.appendChild(v); tr.appendChild(td); }
    else tr.appendChild(el('td', v, classes && classes[i]));
  });
  return tr;
}

// ---------- charts (SVG) ----------
const W = 600, H = 180, PAD_L = 44, PAD_B = 18, PAD_T = 8;
function axes(g, maxY, t0, t1, fmtY) {
  for (let i = 0; i <= 4; i++) {
    const y = PAD_T + (H - PAD_T - PAD_B) * (1 - i / 4);
    g.appendChild(svg('line', { x1: PAD_L, x2: W, y1: y, y2: y, class: 'grid' }));
    const t = svg('text', { x: PAD_L - 4, y: y + 3, 'text-anchor': 'end' });
    t.textContent = fmtY(maxY * i / 4);
    g.appendChild(t);
  }
  for (let i = 0; i <= 4; i++) {
    const ms = t0 + (t1 - t0) * i / 4;
    const t = svg('text', { x: PAD_L + (W - PAD_L) * i / 4, y: H - 4, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' });
    t.textContent = fmtTime(ms).replace(/:\d\d$/, '');
    g.appendChild(t);
  }
}
function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
function drawBars(div, s, t0, t1) {
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
  const n = s.start_ms.length, maxY = niceMax(Math.max(1, ...s.requests_per_bucket));
  axes(root, maxY, t0, t1, (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)));
  const bw = (W - PAD_L) / Math.max(1, n), ph = H - PAD_T - PAD_B;
  const req = svg('g', { fill: 'var(--req)' }), err = svg('g', { fill: 'var(--err)' });
  for (let i = 0; i < n; i++) {
    const x = PAD_L + i * bw, r = s.requests_per_bucket[i], e = s.errors[i];
    if (r > 0) req.appendChild(svg('rect', { x: x + bw * 0.1, width: Math.max(1, bw * 0.8), y: PAD_T + ph * (1 - r / maxY), height: ph * r / maxY }));
    if (e > 0) err.appendChild(svg('rect', { x: x + bw * 0.1, width: Math.max(1, bw * 0.8), y: PAD_T + ph * (1 - e / maxY), height: ph * e / maxY }));
  }
  root.appendChild(req); root.appendChild(err);
  div.replaceChildren(root);
}
function linePath(vals, maxY) {
  const n = vals.length, bw = (W - PAD_L) / Math.max(1, n), ph = H - PAD_T - PAD_B;
  let d = '', pen = false;
  vals.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    const x = PAD_L + (i + 0.5) * bw, y = PAD_T + ph * (1 - v / maxY);
    d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
    pen = true;
  });
  return d;
}
function drawLatency(div, s, t0, t1) {
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
  const known = s.p95_us.filter((v) => v !== null);
  const maxY = niceMax(Math.max(1, ...known));
  axes(root, maxY, t0, t1, (v) => fmtLatency(Math.round(v)));
  for (const [vals, color] of [[s.p50_us, 'var(--p50)'], [s.p95_us, 'var(--p95)']]) {
    const d = linePath(vals, maxY);
    if (d) root.appendChild(svg('path', { d, fill: 'none', stroke: color, 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' }));
    // Single points (a bucket between two empty ones) as dots.
    vals.forEach((v, i) => {
      if (v !== null && (i === 0 || vals[i - 1] === null) && (i === vals.length - 1 || vals[i + 1] === null)) {
        const bw = (W - PAD_L) / vals.length;
        root.appendChild(svg('circle', { cx: PAD_L + (i + 0.5) * bw, cy: PAD_T + (H - PAD_T - PAD_B) * (1 - v / maxY), r: 2, fill: color }));
      }
    });
  }
  div.replaceChildren(root);
}
function sparkline(counts) {
  const w = 100, h = 18, max = Math.max(1, ...counts), n = counts.length;
  const root = svg('svg', { viewBox: `0 0 ${w} ${h}`, width: w, height: h, class: 'spark', preserveAspectRatio: 'none' });
  let d = '';
  counts.forEach((c, i) => { d += (i ? 'L' : 'M') + (n > 1 ? (i * w / (n - 1)) : 0).toFixed(1) + ' ' + (h - 1 - (h - 2) * c / max).toFixed(1); });
  root.appendChild(svg('path', { d, fill: 'none', stroke: 'var(--req)', 'stroke-width': 1.2, 'vector-effect': 'non-scaling-stroke' }));
  return root;
}
function drawTimeline(div, changes, t0, t1) {
  const w = W, h = 60;
  const root = svg('svg', { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', role: 'img' });
  root.appendChild(svg('line', { x1: 0, x2: w, y1: 30, y2: 30, class: 'grid' }));
  const lo = Math.min(t0, ...changes.map((c) => c.detected_at)), hi = Math.max(t1, lo + 1);
  for (const c of changes) {
    const x = 6 + (w - 12) * (c.detected_at - lo) / (hi - lo);
    const color = /removed/.test(c.change_type) ? 'var(--err)' : /added|initial/.test(c.change_type) ? 'var(--p50)' : 'var(--p95)';
    const dot = svg('circle', { cx: x, cy: 30, r: 5, fill: color });
    const title = svg('title', {});
    title.textContent = fmtTime(c.detected_at) + ' ' + c.change_type + (c.item_name ? ' ' + c.item_name : '');
    dot.appendChild(title);
    root.appendChild(dot);
  }
  for (const [x, ms, a] of [[2, lo, 'start'], [w - 2, hi, 'end']]) {
    const t = svg('text', { x, y: 56, 'text-anchor': a });
    t.textContent = fmtTime(ms);
    root.appendChild(t);
  }
  div.replaceChildren(root);
}

// ---------- sections ----------
function windowParams(extra) { return Object.assign({ since: state.window, proxy: state.proxy }, extra || {}); }

async function loadOverview() {
  const [st, se] = await Promise.all([api('status', windowParams()), api('series', windowParams({ labels: 1 }))]);
  $('c-requests').textContent = st.total_requests.toLocaleString();
  $('c-errors').textContent = fmtPct(st.error_pct);
  $('c-active').textContent = st.active_sessions;
  $('c-sessions').textContent = st.total_sessions;
  const total = se.series[0];
  // p95 is per stats row (as `proxy status`): the busiest tool's is shown.
  $('c-p95').textContent = st.tools.length ? fmtLatency(st.tools[0].p95_us) : '–';
  $('c-p95-label').textContent = st.tools.length ? 'p95 · ' + st.tools[0].label : 'p95 latency';
  for (const e of document.querySelectorAll('.bucket')) e.textContent = fmtBucket(se.bucket_ms);
  drawBars($('chart-requests'), total, se.since_ms, se.until_ms);
  drawLatency($('chart-latency'), total, se.since_ms, se.until_ms);
  const trend = new Map(se.series.slice(1).map((s) => [s.label, s.requests_per_bucket]));
  fillTable('tools', st.tools, (t) => {
    const tr = row([t.label, t.calls.toLocaleString(), fmtPct(t.error_pct), fmtLatency(t.avg_us), fmtLatency(t.p95_us),
      sparkline(trend.get(t.label) || [0])], [null, 'r calls', 'r', 'r', 'r']);
    tr.dataset.label = t.label;
    tr.dataset.calls = t.calls;
    return tr;
  }, 'no requests in this window');
  if (!state.firstPaint) {
    state.firstPaint = true;
    performance.mark('mcpr-first-data');
    window.mcprFirstPaintMs = performance.now();
  }
}

async function loadProxies() {
  const p = await api('proxies');
  const sel = $('proxy');
  const have = new Set(Array.from(sel.options).map((o) => o.value));
  for (const name of p.proxies) if (!have.has(name)) { const o = el('option', name); o.value = name; sel.appendChild(o); }
  const names = p.proxies;
  const rows = await Promise.all(names.map((n) => api('status', { since: state.window, proxy: n })));
  fillTable('proxies', rows, (s) => row([s.proxy, s.total_requests.toLocaleString(), fmtPct(s.error_pct), s.active_sessions], [null, 'r', 'r', 'r']), 'no proxy seen yet');
}

function statusCell(s) { return el('span', s, 'st-' + s); }

async function loadSlow() {
  const rows = await api('slow', windowParams({ limit: 20 }));
  fillTable('slow', rows, (r) => row([fmtTime(r.ts), r.proxy, r.tool || r.method, fmtLatency(r.latency_us), statusCell(r.status), short(r.session_id, 12) || '–'], [null, null, null, 'r']), 'no call ≥ 500ms in this window');
}

async function openSession(id) {
  state.sessionOpen = id;
  const d = await api('session', { id });
  $('session-detail').hidden = false;
  $('sd-id').textContent = d.session_id + ' · ' + (d.client_name || 'unknown client') + ' · ' + d.total_calls + ' calls';
  fillTable('session-requests', d.requests, (r) => row([fmtTime(r.ts), r.method, r.tool || '', statusCell(r.status), fmtLatency(r.latency_us), r.error_msg || ''], [null, null, null, null, 'r']), 'no requests stored for this session');
}

async function loadSessions() {
  const rows = await api('sessions', windowParams({ limit: 50 }));
  fillTable('sessions', rows, (s) => {
    const tr = row([el('span', s.is_active ? '● live' : '', 'live-mark'), short(s.session_id, 16), s.proxy, (s.client_name || '–') + (s.client_version ? ' ' + s.client_version : ''), s.client_platform || '–', fmtTime(s.started_at), fmtTime(s.last_seen_at), s.total_calls, s.total_errors], [null, null, null, null, null, null, null, 'r', 'r']);
    tr.title = s.session_id;
    tr.addEventListener('click', () => openSession(s.session_id).catch(showError));
    return tr;
  }, 'no session started in this window');
}

async function loadClients() {
  const rows = await api('clients', windowParams());
  fillTable('clients', rows, (c) => row([c.client_name || '–', c.client_version || '–', c.client_platform || '–', c.sessions, c.total_calls, fmtPct(c.error_pct), fmtTime(c.last_seen)], [null, null, null, 'r', 'r', 'r']), 'no client in this window');
}

function itemCount(payload) {
  try {
    const p = JSON.parse(payload);
    for (const k of ['tools', 'resources', 'resourceTemplates', 'prompts']) if (Array.isArray(p[k])) return p[k].length;
  } catch (e) { /* not JSON: shown as – */ }
  return '–';
}

async function loadSchema() {
  const [snap, changes] = await Promise.all([api('schema', { proxy: state.proxy }), api('schema/changes', { proxy: state.proxy, limit: 200 })]);
  fillTable('schema', snap, (s) => row([s.proxy, s.upstream_url, s.method, itemCount(s.payload), fmtTime(s.captured_at), short(s.schema_hash, 12)], [null, null, null, 'r']), 'no schema captured');
  const now = Date.now();
  drawTimeline($('chart-changes'), changes, changes.length ? Math.min(...changes.map((c) => c.detected_at)) : now - 86400000, now);
  fillTable('changes', changes, (c) => row([fmtTime(c.detected_at), c.proxy, c.method, c.change_type, c.item_name || '']), 'no change recorded');
}

async function loadUnused() {
  const rows = await api('unused', windowParams());
  fillTable('unused', rows, (u) => row([u.tool_name, u.calls, u.errors, fmtTime(u.last_called_at), short(u.description, 80) || ''], [null, 'r', 'r']), 'no tools/list captured');
}

function liveRow(r) {
  const tr = row([fmtTime(r.ts), r.proxy, r.method, r.tool || r.resource_uri || r.prompt_name || '', statusCell(r.status), fmtLatency(r.latency_us), short(r.error_msg, 80) || ''], [null, null, null, null, null, 'r']);
  tr.dataset.requestId = r.request_id;
  return tr;
}

async function loadLiveStart() {
  const [rows, cursor] = await Promise.all([api('logs', windowParams({ limit: LIVE_ROWS })), api('live', { after: 0 })]);
  state.lastRowId = cursor.last_row_id;
  fillTable('live', rows, liveRow, 'waiting for requests…');
}

async function pollLive() {
  try {
    const r = await api('live', { after: state.lastRowId, proxy: state.proxy, limit: 200 });
    $('live-dot').classList.remove('stale');
    state.lastRowId = r.last_row_id;
    if (r.rows.length) {
      const tbody = $('live').tBodies[0];
      const empty = tbody.querySelector('tr.empty');
      if (empty) empty.remove();
      for (const x of r.rows) {
        const tr = liveRow(x);
        tr.classList.add('new');
        tbody.insertBefore(tr, tbody.firstChild);
      }
      while (tbody.rows.length > LIVE_ROWS) tbody.deleteRow(tbody.rows.length - 1);
      // New rows change the figures: refresh them soon (the server caches).
      scheduleHeavy(300);
    }
  } catch (e) {
    $('live-dot').classList.add('stale');
  }
  state.liveTimer = setTimeout(pollLive, LIVE_MS);
}

async function loadHeavy() {
  await Promise.all([loadOverview(), loadSlow(), loadSessions(), loadClients(), loadUnused()]);
  if (state.sessionOpen) await openSession(state.sessionOpen);
}
function scheduleHeavy(ms) {
  clearTimeout(state.heavyTimer);
  state.heavyTimer = setTimeout(() => {
    loadHeavy().then(() => showError(null)).catch(showError).finally(() => scheduleHeavy(HEAVY_MS));
  }, ms);
}

async function loadAll() {
  for (const b of document.querySelectorAll('#windows button')) b.classList.toggle('on', b.dataset.window === state.window);
  clearTimeout(state.liveTimer);
  try {
    // The overview first: it is what the first paint shows.
    await loadOverview();
    await Promise.all([loadLiveStart(), loadSlow(), loadSessions(), loadClients(), loadSchema(), loadUnused(), loadProxies()]);
    showError(null);
  } catch (e) {
    showError(e);
  }
  state.liveTimer = setTimeout(pollLive, LIVE_MS);
  scheduleHeavy(HEAVY_MS);
}

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (['1h', '24h', '7d', '30d'].includes(h.get('window'))) state.window = h.get('window');
  state.proxy = h.get('proxy') || '';
}
function writeHash() {
  const h = new URLSearchParams();
  h.set('window', state.window);
  if (state.proxy) h.set('proxy', state.proxy);
  history.replaceState(null, '', '#' + h.toString());
}

document.addEventListener('DOMContentLoaded', () => {
  readHash();
  for (const b of document.querySelectorAll('#windows button')) {
    b.addEventListener('click', () => { state.window = b.dataset.window; writeHash(); loadAll(); });
  }
  const sel = $('proxy');
  if (state.proxy) { const o = el('option', state.proxy); o.value = state.proxy; sel.appendChild(o); sel.value = state.proxy; }
  sel.addEventListener('change', () => { state.proxy = sel.value; state.sessionOpen = null; $('session-detail').hidden = true; writeHash(); loadAll(); });
  loadAll();
});
