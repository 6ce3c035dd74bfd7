// The live status page: one websocket (/ws/live) brings per-symbol deltas once a tick; the table
// renders only the rows in view, and charts are drawn only for rows in view and the selected one.
"use strict";

const ROW_H = 30;
const OVERSCAN = 6;
const HISTORY_POINTS = 300;
const TOKEN_KEY = "streamer-token";
const TREE_CHILDREN_SHOWN = 100;
const QUOTES = ["FDUSD", "USDT", "USDC", "TUSD", "BUSD", "DAI", "EUR", "TRY", "BRL", "JPY",
  "GBP", "AUD", "ARS", "MXN", "ZAR", "PLN", "RON", "UAH", "IDR", "COP", "CZK", "BTC", "ETH", "BNB",
  "XRP", "TRX", "DOGE", "SOL", "DOT", "PAX", "BIDR", "BVND", "NGN", "RUB"];
// Any state but these two means trades are not flowing although they should: the row is tinted.
const CALM_STATES = new Set(["streaming", "stopped"]);
// Sorting by state puts the worst first: the exchange stopped the symbol, then silence, then
// retries; a state this page does not know sorts among the alarming ones.
const SEVERITY = {halted: 0, stalled: 1, quarantined: 2, backoff: 3, connecting: 4,
  streaming: 5, stopped: 6};
const KNOWN_STATES = new Set(["streaming", "connecting", "backoff", "stalled", "quarantined",
  "halted", "stopped"]);

const $ = id => document.getElementById(id);
const rows = new Map();          // symbol -> row as the feed sent it
const histories = new Map();     // symbol -> {t, price, rate, gaps}
const requested = new Set();     // symbols whose history was asked for on this connection
const selected = new Set();      // symbols ticked for bulk start/stop
const listed = new Set();        // symbols active at some point while the page is open: a
                                 // symbol that stops stays in view, marked stopped
let view = [];                   // symbols after filter and sort, in display order
let viewDirty = true;
let sortKey = "symbol", sortAsc = true;
let windowKey = "change_1m";
let windows = {};
let tree = {};
let treeDirty = true;
let focus = null;                // the symbol in the detail chart
let detailPlot = null;
let hasOwner = false;
let socket = null;
let lastTickAt = 0;
// The page's own pace, read by `make screenshots`: applying a feed message, and rendering.
const stats = {ticks: 0, snapshots: 0, maxApplyMs: 0, sumApplyMs: 0, tickBytes: 0,
  frames: 0, maxRenderMs: 0, sumRenderMs: 0, rowsRendered: 0};
window.streamerStats = stats;

// ---- formatting --------------------------------------------------------------------------

function stateClass(state) {
  return "state state-" + (KNOWN_STATES.has(state) ? state : "other");
}
function fmtPrice(p) {
  if (p === null || p === undefined) return "";
  const digits = p >= 1000 ? 2 : p >= 1 ? 4 : 8;
  return p.toFixed(digits);
}
function fmtPct(c) {
  return c === null || c === undefined ? "" : (c > 0 ? "+" : "") + c.toFixed(2) + "%";
}
function fmtAge(ms) {
  if (ms === null || ms === undefined) return "";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  return Math.floor(s / 3600) + " h";
}
function quoteOf(symbol) {
  let best = "";
  for (const q of QUOTES) {
    if (symbol.endsWith(q) && symbol.length > q.length && q.length > best.length) best = q;
  }
  return best;
}

// ---- columns -----------------------------------------------------------------------------

const COLUMNS = [
  {key: "sel", label: "", width: "28px", sort: null},
  {key: "symbol", label: "symbol", width: "minmax(100px, 1fr)", sort: r => r.symbol},
  {key: "owner", label: "owner", width: "minmax(80px, .8fr)", sort: r => r.owner ?? "",
    optional: true},
  {key: "state", label: "state", width: "100px", sort: r => SEVERITY[r.state] ?? 2.5},
  {key: "price", label: "last price", width: "110px", num: true, sort: r => r.price ?? -1},
  {key: "change", label: "change", width: "90px", num: true, sort: r => r[windowKey] ?? -1e9},
  {key: "chart", label: "price", width: "120px", sort: null},
  {key: "rate", label: "trades/s", width: "100px", num: true, sort: r => r.rate},
  {key: "ratechart", label: "rate", width: "80px", sort: null},
  {key: "age", label: "last trade", width: "90px", num: true,
    sort: r => -(r.last_seen ?? -1e15)},
  {key: "since", label: "in state", width: "80px", num: true, sort: r => -(r.since ?? -1e15)},
  {key: "restarts", label: "restarts", width: "80px", num: true, sort: r => r.restarts},
  {key: "gaps", label: "gaps f/l", width: "80px", num: true,
    sort: r => r.gaps_lost * 1e6 + r.gaps_filled},
  {key: "timeline", label: "gap times", width: "90px", sort: null},
  {key: "action", label: "", width: "64px", sort: null},
];
let columns = [];

function layoutColumns() {
  columns = COLUMNS.filter(c => !c.optional || hasOwner);
  document.documentElement.style.setProperty("--columns",
    columns.map(c => c.width).join(" "));
  const head = $("head");
  head.replaceChildren(...columns.map(c => {
    const cell = document.createElement("div");
    cell.textContent = c.key === "change" ? `chg ${windowLabel(windowKey)}` : c.label;
    if (c.num) cell.className = "num";
    if (c.sort) {
      cell.dataset.key = c.key;
      if (c.key === sortKey) cell.classList.add("sorted", ...(sortAsc ? ["asc"] : []));
    }
    if (c.key === "sel") {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.title = "select every shown symbol";
      box.id = "select-all";
      box.onchange = () => {
        for (const s of view) box.checked ? selected.add(s) : selected.delete(s);
        updateBulk();
        renderRows(true);
      };
      cell.append(box);
    }
    return cell;
  }));
  pool.length = 0;
  $("rows").replaceChildren();
}
function windowLabel(key) { return key.replace("change_", ""); }

// ---- rows --------------------------------------------------------------------------------

const pool = [];   // row elements, reused as the view scrolls
const SPARK_WIDTH = {chart: 104, ratechart: 70, timeline: 76};
const SPARK_HEIGHT = 22;

function makeRow() {
  const el = document.createElement("div");
  el.className = "row";
  el.cells = {};
  for (const c of columns) {
    const cell = document.createElement("div");
    if (c.num) cell.className = "num";
    if (c.key === "sel") {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.onclick = event => event.stopPropagation();
      box.onchange = () => {
        box.checked ? selected.add(el.symbol) : selected.delete(el.symbol);
        updateBulk();
      };
      cell.append(box);
      el.box = box;
    } else if (c.key in SPARK_WIDTH) {
      // Fixed sizes: drawing never has to ask the layout how big a canvas is.
      const canvas = document.createElement("canvas");
      canvas.className = "spark";
      canvas.width = SPARK_WIDTH[c.key];
      canvas.height = SPARK_HEIGHT;
      canvas.style.width = canvas.width + "px";
      canvas.g = canvas.getContext("2d");
      cell.append(canvas);
      el[c.key] = canvas;
    } else if (c.key === "action") {
      const button = document.createElement("button");
      button.type = "button";
      button.onclick = event => {
        event.stopPropagation();
        const row = rows.get(el.symbol);
        act(row.state === "stopped" ? "start" : "stop", [el.symbol]);
      };
      cell.append(button);
      el.button = button;
    }
    el.cells[c.key] = cell;
    el.append(cell);
  }
  el.onclick = () => select(el.symbol);
  return el;
}

function fillRow(el, r) {
  el.symbol = r.symbol;
  el.dataset.symbol = r.symbol;
  el.dataset.state = r.state;
  el.style.borderLeftColor = `var(--${KNOWN_STATES.has(r.state) ? r.state : "other"})`;
  el.classList.toggle("alert", !CALM_STATES.has(r.state));
  el.classList.toggle("selected", r.symbol === focus);
  const c = el.cells;
  el.box.checked = selected.has(r.symbol);
  c.symbol.textContent = r.symbol;
  c.symbol.title = `status ${r.status}`;
  if (c.owner) c.owner.textContent = r.owner ?? "";
  c.state.textContent = r.state;
  c.state.className = stateClass(r.state);
  c.state.title = r.reason ?? "";
  c.price.textContent = fmtPrice(r.price);
  const change = r[windowKey];
  c.change.textContent = fmtPct(change);
  c.change.className = "num " + (change > 0 ? "up" : change < 0 ? "down" : "");
  c.rate.textContent = r.state === "stopped" ? "" : r.rate.toFixed(1);
  c.age.textContent = fmtAge(r.last_seen);
  c.age.classList.toggle("old", r.state !== "stopped" && r.last_seen !== null &&
    Date.now() - r.last_seen > 10000);
  c.since.textContent = fmtAge(r.since);
  c.restarts.textContent = r.restarts;
  c.gaps.textContent = `${r.gaps_filled}/${r.gaps_lost}`;
  c.gaps.className = "num " + (r.gaps_lost > 0 ? "lost" : "");
  el.button.textContent = r.state === "stopped" ? "start" : "stop";
  const h = histories.get(r.symbol);
  spark(el.chart, h && h.price, "#3b6db3");
  spark(el.ratechart, h && h.rate, "#8a8f9c", true);
  timeline(el.timeline, h);
}

function spark(canvas, values, color, fromZero) {
  const w = canvas.width, ht = canvas.height, g = canvas.g;
  g.clearRect(0, 0, w, ht);
  if (!values || values.length < 2) return;
  let lo = fromZero ? 0 : Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const span = hi - lo || 1, n = values.length;
  g.beginPath();
  for (let i = 0; i < n; i++) {
    const x = i / (n - 1) * (w - 1), y = ht - 2 - (values[i] - lo) / span * (ht - 4);
    i ? g.lineTo(x, y) : g.moveTo(x, y);
  }
  g.strokeStyle = color;
  g.lineWidth = 1;
  g.stroke();
}

function timeline(canvas, h) {
  const w = canvas.width, ht = canvas.height;
  const g = canvas.g || (canvas.g = canvas.getContext("2d"));
  g.clearRect(0, 0, w, ht);
  g.fillStyle = "#e3e6ec";
  g.fillRect(0, ht / 2, w, 1);
  if (!h || !h.gaps.length) return;
  const end = lastTickAt || Date.now() / 1000;
  const start = h.t.length ? Math.min(h.t[0], end - 60) : end - 300;
  for (const [t, kind] of h.gaps) {
    if (t < start) continue;
    const x = (t - start) / (end - start || 1) * (w - 3);
    g.fillStyle = kind === "lost" ? "#c2352b" : "#138a45";
    g.fillRect(x, 2, 3, ht - 4);
  }
}

function computeView() {
  // Typed forms such as "eth/usdt" or "eth-usdt" match; non-ASCII names are kept as they are.
  const text = $("filter").value.trim().toUpperCase().replace(/[\s/_-]/g, "");
  const quote = $("quote").value;
  const showStopped = $("show-stopped").checked;
  const out = [];
  for (const r of rows.values()) {
    if (r.state !== "stopped" || r.status === "on") listed.add(r.symbol);
    if (!showStopped && !listed.has(r.symbol)) continue;
    if (text && !r.symbol.includes(text)) continue;
    if (quote && quoteOf(r.symbol) !== quote) continue;
    out.push(r);
  }
  const col = COLUMNS.find(c => c.key === sortKey);
  const key = col.sort;
  const dir = sortAsc ? 1 : -1;
  out.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x < y) return -dir;
    if (x > y) return dir;
    return a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0;
  });
  view = out.map(r => r.symbol);
  $("spacer").style.height = view.length * ROW_H + "px";
  $("shown").textContent = `${view.length} of ${rows.size} symbols shown`;
  viewDirty = false;
}

function renderRows(force) {
  if (viewDirty || force) computeView();
  const vp = $("viewport");
  const first = Math.max(0, Math.floor(vp.scrollTop / ROW_H) - OVERSCAN);
  const last = Math.min(view.length, Math.ceil((vp.scrollTop + vp.clientHeight) / ROW_H) + OVERSCAN);
  const layer = $("rows");
  layer.style.transform = `translateY(${first * ROW_H}px)`;
  const count = last - first;
  while (pool.length < count) { const el = makeRow(); pool.push(el); layer.append(el); }
  const want = [];
  for (let i = 0; i < pool.length; i++) {
    const el = pool[i];
    if (i < count) {
      el.hidden = false;
      const symbol = view[first + i];
      fillRow(el, rows.get(symbol));
      if (!requested.has(symbol) && rows.get(symbol).state !== "stopped") want.push(symbol);
    } else {
      el.hidden = true;
    }
  }
  stats.rowsRendered = count;
  if (focus && !requested.has(focus) && rows.has(focus)) want.push(focus);
  watch(want);
}

// ---- totals, detail, tree ----------------------------------------------------------------

function renderTotals() {
  let streaming = 0, rate = 0, filled = 0, lost = 0, alerts = 0;
  for (const r of rows.values()) {
    if (r.state === "streaming") streaming++;
    if (!CALM_STATES.has(r.state)) alerts++;
    rate += r.rate;
    filled += r.gaps_filled;
    lost += r.gaps_lost;
  }
  $("total-streaming").textContent = streaming;
  $("total-rate").textContent = rate.toFixed(1);
  $("total-filled").textContent = filled;
  $("total-lost").textContent = lost;
  $("total-alerts").textContent = alerts ? `${alerts} need attention` : "";
}

function select(symbol) {
  focus = symbol;
  $("detail").hidden = false;
  document.body.classList.add("with-detail");
  if (detailPlot) { detailPlot.destroy(); detailPlot = null; }
  renderRows();
  renderDetail();
}

function renderDetail() {
  if (!focus) return;
  const r = rows.get(focus);
  if (!r) {
    $("detail").hidden = true;
    document.body.classList.remove("with-detail");
    focus = null;
    return;
  }
  $("detail-symbol").textContent = focus;
  $("detail-price").textContent = fmtPrice(r.price);
  $("detail-state").textContent = r.state;
  $("detail-state").className = stateClass(r.state);
  const h = histories.get(focus) || {t: [], price: [], rate: [], gaps: []};
  const data = [h.t, h.price, h.rate];
  const box = $("detail-chart");
  if (!detailPlot) {
    $("detail-gaps").width = Math.max(300, box.clientWidth || 800);
    detailPlot = new uPlot({
      width: Math.max(300, box.clientWidth || 800), height: 200,
      series: [{}, {label: "price", stroke: "#3b6db3", width: 1.5, scale: "price"},
        {label: "trades/s", stroke: "#b7791f", width: 1, scale: "rate"}],
      axes: [{}, {scale: "price", size: 90, values: (u, vals) => vals.map(fmtPrice)},
        {scale: "rate", side: 1, grid: {show: false}}],
    }, data, box);
  } else {
    detailPlot.setData(data);
  }
  timeline($("detail-gaps"), h);
}

function renderTree() {
  const filter = $("tree-filter").value.trim().toUpperCase();
  const list = document.createElement("ul");
  if (tree && tree.name) list.append(supervisorItem(tree, null, filter));
  $("tree").replaceChildren(list);
  treeDirty = false;
}

function supervisorItem(sup, child, filter) {
  const li = document.createElement("li");
  const children = sup.children || [];
  const dynamic = sup.kind === "dynamic_supervisor";
  li.append(
    text(`▸ ${sup.name} `), text(`(${sup.kind}${sup.strategy ? ", " + sup.strategy : ""}) `, "kind"),
    text(sup.state, stateClass(treeState(sup.state))),
    text(dynamic ? `  ${children.length} children` : "", "kind"),
    text(child && child.restarts ? `  restarts ${child.restarts}` : "", "restarts"),
    text(sup.recent_restarts ? `  recent ${sup.recent_restarts}` : "", "restarts"));
  const ul = document.createElement("ul");
  // Only a dynamic supervisor's workers (one per symbol, possibly thousands) are filtered and cut.
  const shown = dynamic && filter
    ? children.filter(c => String(c.name ?? c.id).toUpperCase().includes(filter)) : children;
  const limit = dynamic ? TREE_CHILDREN_SHOWN : Infinity;
  for (const c of shown.slice(0, limit)) {
    if (c.supervisor) { ul.append(supervisorItem(c.supervisor, c, filter)); continue; }
    const name = c.name ?? c.id;
    const item = document.createElement("li");
    item.className = "worker";
    item.dataset.name = name;
    const live = rows.get(name);
    item.append(text(`${name} `), text(`(${c.type}, ${c.restart}) `, "kind"),
      text(c.state, stateClass(treeState(c.state))),
      text(live && live.state !== "streaming" ? ` · ${live.state}` : "",
        live ? stateClass(live.state) : ""),
      text(c.restarts ? `  restarts ${c.restarts}` : "", "restarts"));
    ul.append(item);
  }
  if (shown.length > limit) {
    ul.append(text(`… ${shown.length - limit} more (filter to find one)`, "more"));
  }
  li.append(ul);
  return li;
}
function treeState(state) { return state === "running" ? "streaming" : state; }
function text(s, cls) {
  const span = document.createElement("span");
  span.textContent = s;
  if (cls) span.className = cls;
  return span;
}

// ---- the feed ----------------------------------------------------------------------------

function appendPoint(symbol, r, t) {
  const h = histories.get(symbol);
  if (!h || r.state === "stopped" || r.price === null || r.price === undefined) return;
  h.t.push(t); h.price.push(r.price); h.rate.push(r.rate);
  if (h.t.length > HISTORY_POINTS) { h.t.shift(); h.price.shift(); h.rate.shift(); }
}

function onSnapshot(m) {
  rows.clear();
  for (const r of m.rows) rows.set(r.symbol, r);
  windows = m.windows;
  if ($("window").options.length === 0) {
    for (const key of Object.keys(windows)) $("window").add(new Option(windowLabel(key), key));
    $("window").value = windowKey;
  }
  histories.clear();
  requested.clear();
  tree = m.tree; treeDirty = true;
  health(m.health);
  stats.snapshots++;
  afterData(m.t, true);
}

function onTick(m) {
  for (const [symbol, delta] of Object.entries(m.rows)) {
    const before = rows.get(symbol);
    if (!before) { rows.set(symbol, delta); continue; }
    const h = histories.get(symbol);
    if (h) {
      for (const kind of ["filled", "lost"]) {
        const key = "gaps_" + kind;
        if (key in delta && delta[key] > before[key]) h.gaps.push([m.t, kind, delta[key] - before[key]]);
      }
    }
    Object.assign(before, delta);
  }
  for (const symbol of Object.keys(m.rows)) appendPoint(symbol, rows.get(symbol), m.t);
  // Rows that did not change still gain a point: a flat price is a price too.
  for (const [symbol, h] of histories) {
    if (!(symbol in m.rows) && rows.has(symbol)) appendPoint(symbol, rows.get(symbol), m.t);
  }
  for (const symbol of m.removed) { rows.delete(symbol); histories.delete(symbol); }
  if (m.tree) { tree = m.tree; treeDirty = true; }
  if (m.health) health(m.health);
  stats.ticks++;
  afterData(m.t, Object.keys(m.rows).length > 0 || m.removed.length > 0);
}

function afterData(t, changed) {
  lastTickAt = t;
  // The owner column tells instances apart: with one instance (or none) it says nothing.
  const owners = new Set();
  for (const r of rows.values()) if (r.owner !== undefined && r.owner !== null) owners.add(r.owner);
  const owner = owners.size > 1;
  if (owner !== hasOwner) { hasOwner = owner; layoutColumns(); }
  if (changed) { viewDirty = true; treeDirty = true; }
  scheduleRender();
}

function onHistory(m) {
  histories.set(m.symbol, {t: m.t, price: m.price, rate: m.rate, gaps: m.gaps});
  scheduleRender();
}

function health(h) {
  const el = $("health");
  el.textContent = h.ready ? "ready" : h.database ? "not ready" : "database unreachable";
  el.className = "badge " + (h.ready ? "ok" : "bad");
  sinks(h.sinks || [], h.journal);
}

// One badge for every sink: green while all keep up, red with the count of those lagging or
// losing; the tooltip says which, why, and how far behind.
function sinks(list, journal) {
  const el = $("sinks");
  el.hidden = list.length === 0;
  if (!list.length) return;
  const degraded = list.filter((s) => !s.healthy);
  el.textContent = degraded.length ? `sinks: ${degraded.length} degraded` : "sinks ok";
  el.className = "badge " + (degraded.length ? "bad" : "ok");
  const lines = list.map((s) =>
    `${s.name}: ${s.healthy ? "ok" : s.degraded}; ${s.lag} behind (${s.lag_seconds} s)` +
    (s.lost ? `, ${s.lost} lost` : ""));
  if (journal) {
    const mb = (n) => (n / 1048576).toFixed(1);
    lines.push(`journal: ${mb(journal.size)} of ${mb(journal.max_bytes)} MiB` +
      (journal.dropped ? `, ${journal.dropped} dropped` : ""));
  }
  el.title = lines.join("\n");
}

function watch(symbols) {
  if (!symbols.length || !socket || socket.readyState !== WebSocket.OPEN) return;
  for (const s of symbols) requested.add(s);
  socket.send(JSON.stringify({type: "watch", symbols}));
}

let pending = null;
function scheduleRender() {
  if (pending !== null) return;
  pending = requestAnimationFrame(() => {
    pending = null;
    const started = performance.now();
    renderRows();
    renderTotals();
    renderDetail();
    if (!$("tree-view").hidden && treeDirty) renderTree();
    const took = performance.now() - started;
    stats.frames++;
    stats.maxRenderMs = Math.max(stats.maxRenderMs, took);
    stats.sumRenderMs += took;
  });
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/ws/live`);
  socket.onopen = () => { $("link").textContent = "live"; $("link").className = "badge ok"; };
  socket.onmessage = event => {
    const started = performance.now();
    const m = JSON.parse(event.data);
    if (m.type === "snapshot") onSnapshot(m);
    else if (m.type === "tick") { onTick(m); stats.tickBytes += event.data.length; }
    else if (m.type === "history") onHistory(m);
    else if (m.type === "error") notice(m.detail);
    const took = performance.now() - started;
    if (m.type !== "history") {
      stats.maxApplyMs = Math.max(stats.maxApplyMs, took);
      stats.sumApplyMs += took;
    }
  };
  socket.onclose = () => {
    $("link").textContent = "reconnecting";
    $("link").className = "badge bad";
    requested.clear();
    setTimeout(connect, 1000);
  };
}

// ---- start / stop ------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY); }
function notice(message, ok) {
  $("notice").textContent = message;
  $("notice").className = ok ? "ok" : "";
}

// One symbol: POST /api/settings/{symbol}/{action}; many: one POST /api/settings/{action}
// with the list, which checks them all before changing anything.
async function call(action, symbols) {
  const headers = {"Content-Type": "application/json"};
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const one = symbols.length === 1;
  const path = one ? `/api/settings/${encodeURIComponent(symbols[0])}/${action}`
    : `/api/settings/${action}`;
  const response = await fetch(path,
    {method: "POST", headers, body: one ? undefined : JSON.stringify(symbols)});
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  return {ok: response.ok, status: response.status, body,
    detail: (body && body.detail) || response.statusText};
}

async function act(action, symbols) {
  if (!symbols.length) return;
  const result = await call(action, symbols);
  if (result.status === 401) {
    askToken(token() ? "the token was refused; enter the right one" : "a token is required");
    return;
  }
  if (!result.ok) { notice(`${action} failed: ${result.detail}`); return; }
  const verb = action === "start" ? "started" : "stopped";
  if (symbols.length === 1) { notice(`${verb} ${symbols[0]}`, true); return; }
  const failed = Object.entries(result.body.failed || {});
  const summary = `${verb} ${result.body.changed.length}, ` +
    `${result.body.unchanged.length} already ${verb}`;
  if (failed.length) notice(`${summary}, ${failed.length} failed (${failed[0].join(": ")})`);
  else notice(summary, true);
}

function askToken(why) {
  $("token-form").hidden = false;
  $("token-input").focus();
  if (why) notice(why);
}
function showTokenState() {
  $("token-button").textContent = token() ? "token set" : "token";
}

function updateBulk() {
  $("start-selected").disabled = $("stop-selected").disabled = selected.size === 0;
  $("start-selected").textContent = `start selected (${selected.size})`;
  $("stop-selected").textContent = `stop selected (${selected.size})`;
}

// ---- wiring ------------------------------------------------------------------------------

function wire() {
  layoutColumns();
  for (const q of QUOTES) $("quote").add(new Option(q, q));
  $("viewport").addEventListener("scroll", () => scheduleRender(), {passive: true});
  window.addEventListener("resize", () => { if (detailPlot) { detailPlot.destroy(); detailPlot = null; } scheduleRender(); });
  for (const id of ["filter", "quote", "show-stopped"]) {
    $(id).addEventListener("input", () => { viewDirty = true; scheduleRender(); });
  }
  $("window").addEventListener("change", () => {
    windowKey = $("window").value; layoutColumns(); viewDirty = true; scheduleRender();
  });
  $("head").addEventListener("click", event => {
    const key = event.target.dataset && event.target.dataset.key;
    if (!key) return;
    // A first click sorts names A to Z, states worst first, and numbers largest first.
    if (key === sortKey) sortAsc = !sortAsc;
    else { sortKey = key; sortAsc = key === "symbol" || key === "state"; }
    layoutColumns(); viewDirty = true; scheduleRender();
  });
  $("start-form").addEventListener("submit", event => {
    event.preventDefault();
    const symbol = $("start-symbol").value.trim();
    if (symbol) act("start", [symbol]);
  });
  $("detail-close").onclick = () => {
    focus = null;
    $("detail").hidden = true;
    document.body.classList.remove("with-detail");
    if (detailPlot) { detailPlot.destroy(); detailPlot = null; }
    scheduleRender();
  };
  $("total-alerts").onclick = () => {
    sortKey = "state"; sortAsc = true;
    $("viewport").scrollTop = 0;
    layoutColumns(); viewDirty = true; scheduleRender();
  };
  $("start-selected").onclick = () => act("start", [...selected]);
  $("stop-selected").onclick = () => act("stop", [...selected]);
  $("token-button").onclick = () => { $("token-form").hidden = !$("token-form").hidden; };
  $("token-form").addEventListener("submit", event => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    $("token-form").hidden = true;
    showTokenState();
    notice("token kept for this session", true);
  });
  $("token-clear").onclick = () => {
    sessionStorage.removeItem(TOKEN_KEY); showTokenState(); $("token-form").hidden = true;
  };
  for (const button of document.querySelectorAll("#tabs button")) {
    button.onclick = () => {
      for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b === button);
      $("symbols-view").hidden = button.dataset.tab !== "symbols";
      $("tree-view").hidden = button.dataset.tab !== "tree";
      treeDirty = true; scheduleRender();
    };
  }
  $("tree-filter").addEventListener("input", () => { treeDirty = true; scheduleRender(); });
  // Ages ("last trade 3 s") move even when no tick comes, which is the point during a stall.
  setInterval(scheduleRender, 1000);
  showTokenState();
  updateBulk();
  connect();
}

wire();
