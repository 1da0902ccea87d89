// The inventory dashboard: plain JavaScript against the public API and /v1/feed.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem("inventory.token"),
  me: null, stores: [], store: null,
  rows: new Map(), names: new Map(), alerts: new Map(),
  sort: { key: "sku", dir: 1 }, filter: "",
  socket: null, seen: new Map(), retry: 0, drops: 0, // seen: store -> last seq
  sold: new Map(), // store -> Map(minute -> units)
};

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 && state.token) signOut("Your session ended; sign in again.");
  return response;
}

async function signIn(event) {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  const body = JSON.stringify({ username: $("username").value, password: $("password").value });
  const response = await fetch("/v1/auth/token", {
    method: "POST", headers: { "Content-Type": "application/json" }, body,
  });
  if (!response.ok) {
    $("sign-in-error").textContent = response.status === 429
      ? "Too many attempts; wait a minute." : "Wrong username or password.";
    return;
  }
  state.token = (await response.json()).access_token;
  sessionStorage.setItem("inventory.token", state.token);
  await start();
}

function signOut(message) {
  if (state.socket) { state.socket.onclose = null; state.socket.close(); }
  state.token = null; state.socket = null;
  sessionStorage.removeItem("inventory.token");
  $("board").hidden = true; $("sign-in").hidden = false; $("sign-out").hidden = true;
  $("who").textContent = ""; setStatus("signed out", "");
  $("sign-in-error").textContent = message || "";
}

async function start() {
  const me = await api("/v1/me");
  if (!me.ok) return;
  state.me = await me.json();
  state.stores = await storesInScope();
  $("who").textContent = `${state.me.name} · ${state.me.role}`;
  $("sign-in").hidden = true; $("board").hidden = false; $("sign-out").hidden = false;
  const picker = $("store");
  picker.replaceChildren(...state.stores.map((s) => new Option(`${s.name} (${s.id})`, s.id)));
  await loadNames();
  connect();
  if (state.stores.length) await pickStore(state.stores[0].id);
}

// A scoped user's few stores one by one; every store, page by page, for "*".
async function storesInScope() {
  if (!state.me.stores.includes("*")) {
    // The scope is authoritative; a store the read side has not projected yet shows by id.
    return Promise.all(state.me.stores.map(async (id) => {
      const response = await api(`/v1/stores/${encodeURIComponent(id)}`);
      return response.ok ? response.json() : { id, name: id };
    }));
  }
  const stores = [];
  let cursor = null;
  do {
    const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const response = await api(`/v1/stores?limit=1000${query}`);
    if (!response.ok) break;
    const page = await response.json();
    stores.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return stores;
}

async function loadNames() {
  const response = await api("/v1/products?limit=1000");
  if (!response.ok) return;
  for (const product of (await response.json()).items) state.names.set(product.sku, product.name);
}

async function pickStore(store) {
  state.store = store;
  $("store").value = store;
  state.rows = new Map();
  state.alerts = new Map();
  const stock = await api(`/v1/stores/${encodeURIComponent(store)}/stock?limit=1000`);
  if (stock.ok) {
    for (const row of (await stock.json()).items) state.rows.set(row.sku, { ...row });
    $("stock-note").textContent = "";
  } else {
    $("stock-note").textContent = "(levels appear as events arrive)";
  }
  const alerts = await api(`/v1/alerts?store=${encodeURIComponent(store)}`);
  if (alerts.ok) for (const alert of (await alerts.json()).items) state.alerts.set(alert.id, alert);
  renderStock(); renderAlerts();
}

// The feed: one socket for every store in scope (the chart shows them all). After any
// drop it reconnects with `after` = the last seq it saw, so nothing is missed.
// Seq order holds per store, so resuming from the lowest store cursor misses nothing;
// what it repeats of other stores is dropped by `seen`.
function resumePoint() {
  return state.seen.size ? Math.min(...state.seen.values()) : null;
}

// The token travels as a subprotocol (`bearer.<token>`), never in the URL: URLs end up
// in server and proxy logs. The server answers with `inventory.v1`.
function connect() {
  const query = new URLSearchParams();
  const after = resumePoint();
  if (after !== null) query.set("after", String(after));
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/v1/feed${after !== null ? `?${query}` : ""}`;
  const socket = new WebSocket(url, ["inventory.v1", `bearer.${state.token}`]);
  state.socket = socket;
  setStatus("connecting…", "");
  socket.onopen = () => {
    setStatus("live", "live");
    if (state.drops) {
      notice(`Reconnected after a drop; resumed after event ${resumePoint() ?? "(now)"}.`);
      if (state.store) pickStore(state.store); // and refresh the table from the read side
    }
    state.retry = 0;
  };
  socket.onmessage = (message) => receive(JSON.parse(message.data));
  socket.onclose = (closed) => dropped(closed.code);
}

function dropped(code) {
  state.socket = null;
  if (code === 4401) { signOut("Your session ended; sign in again."); return; }
  if (code === 4403) { setStatus("not allowed", "down"); notice("This account may not watch the feed.", true); return; }
  state.drops += 1;
  const wait = Math.min(500 * 2 ** state.retry, 10000);
  state.retry += 1;
  const why = code === 4008 ? "fell behind" : code === 4429 ? "rate limited" : `code ${code}`;
  setStatus("reconnecting…", "down");
  notice(`Live feed dropped (${why}); reconnecting in ${(wait / 1000).toFixed(1)} s…`, true);
  setTimeout(() => { if (state.token) connect(); }, wait);
}

function receive(message) {
  if (message.kind === "event") onEvent(message);
  else if (message.kind === "alert") onAlert(message.alert);
}

function onEvent(event) {
  if (event.seq <= (state.seen.get(event.store) ?? -1)) return; // already seen
  state.seen.set(event.store, event.seq);
  if (event.type === "stock.sold") countSold(event);
  if (event.store !== state.store) return;
  ticker(event);
  if (!event.sku || !event.level) return;
  const row = state.rows.get(event.sku) || { sku: event.sku, reorder_min: null };
  Object.assign(row, event.level);
  if (event.type === "stock.reorder_point_set" && event.data) row.reorder_min = event.data.min;
  state.rows.set(event.sku, row);
  renderStock(event.sku);
}

function onAlert(alert) {
  if (alert.store !== state.store) return;
  if (alert.closed_seq === null) state.alerts.set(alert.id, alert);
  else state.alerts.delete(alert.id);
  renderAlerts();
}

function countSold(event) {
  const units = Number(event.data && event.data.quantity) || 0;
  const minute = Math.floor(Date.now() / 60000);
  if (!state.sold.has(event.store)) state.sold.set(event.store, new Map());
  const perMinute = state.sold.get(event.store);
  perMinute.set(minute, (perMinute.get(minute) || 0) + units);
  drawChart();
}

function number(value) {
  return value === null || value === undefined ? null : Number(value);
}

function visibleRows() {
  const filter = state.filter.toLowerCase();
  const { key, dir } = state.sort;
  return [...state.rows.values()]
    .filter((row) => !filter || row.sku.toLowerCase().includes(filter)
      || (nameOf(row) || "").toLowerCase().includes(filter))
    .sort((a, b) => {
      const x = ["sku", "name"].includes(key) ? (key === "name" ? nameOf(a) : a.sku) : number(a[key]);
      const y = ["sku", "name"].includes(key) ? (key === "name" ? nameOf(b) : b.sku) : number(b[key]);
      return (x > y ? 1 : x < y ? -1 : 0) * dir;
    });
}

function nameOf(row) {
  return row.name || state.names.get(row.sku) || "";
}

function renderStock(changed) {
  const body = $("stock").tBodies[0];
  body.replaceChildren(...visibleRows().map((row) => {
    const tr = document.createElement("tr");
    tr.dataset.sku = row.sku;
    const available = number(row.available);
    const min = number(row.reorder_min);
    if (available !== null && available < 0) tr.className = "negative";
    else if (min !== null && available !== null && available < min) tr.className = "low";
    const cells = [
      [row.sku, ""], [nameOf(row), ""], [row.on_hand, "num on-hand"], [row.reserved, "num wide"],
      [row.available, "num available"], [row.reorder_min, "num wide"],
    ];
    for (const [value, css] of cells) {
      const td = document.createElement("td");
      td.textContent = value === null || value === undefined ? "–" : String(value);
      td.className = css;
      tr.append(td);
    }
    if (row.sku === changed) { tr.classList.add("flash"); setTimeout(() => tr.classList.remove("flash"), 50); }
    return tr;
  }));
}

function renderAlerts() {
  const items = [...state.alerts.values()].map((alert) => {
    const li = document.createElement("li");
    li.className = `alert-${alert.kind}`;
    li.textContent = `${alert.kind.replace("_", " ")} · ${alert.sku}`;
    return li;
  });
  if (!items.length) { const li = document.createElement("li"); li.textContent = "No open alerts."; items.push(li); }
  $("alerts").replaceChildren(...items);
}

function ticker(event) {
  const li = document.createElement("li");
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = new Date(event.occurred_at).toLocaleTimeString();
  const quantity = event.data && (event.data.quantity ?? event.data.delta ?? event.data.counted);
  li.append(when, `${event.type} ${event.sku ?? ""} ${quantity ?? ""}`.trim());
  li.dataset.seq = event.seq;
  const list = $("ticker");
  list.prepend(li);
  while (list.children.length > 50) list.lastChild.remove();
}

const COLORS = ["#2563eb", "#dc6803", "#067647", "#b42318", "#7a5af8", "#0e9384", "#c11574"];

function drawChart() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = canvas.clientWidth * ratio; canvas.height = canvas.clientHeight * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const width = canvas.clientWidth, height = canvas.clientHeight, pad = 28, minutes = 30;
  const now = Math.floor(Date.now() / 60000);
  const series = [...state.sold.entries()];
  const top = Math.max(1, ...series.flatMap(([, m]) => [...m.values()]));
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#e3e6eb"; ctx.fillStyle = "#667085"; ctx.font = "11px system-ui";
  for (const fraction of [0, 0.5, 1]) {
    const y = height - pad - fraction * (height - 2 * pad);
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(width - 4, y); ctx.stroke();
    ctx.fillText(String(Math.round(top * fraction)), 2, y + 4);
  }
  ctx.fillText(`last ${minutes} min`, width - 70, height - 8);
  series.forEach(([store, perMinute], index) => {
    ctx.strokeStyle = COLORS[index % COLORS.length]; ctx.lineWidth = 2; ctx.beginPath();
    for (let i = 0; i < minutes; i += 1) {
      const x = pad + (i / (minutes - 1)) * (width - pad - 8);
      const y = height - pad - ((perMinute.get(now - minutes + 1 + i) || 0) / top) * (height - 2 * pad);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
  });
  $("legend").replaceChildren(...series.map(([store], index) => {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = COLORS[index % COLORS.length];
    span.append(swatch, store);
    return span;
  }));
}

function setStatus(text, css) {
  $("connection").textContent = text;
  $("connection").className = `status ${css}`;
}

function notice(text, warn = false) {
  const box = $("notice");
  box.hidden = false; box.textContent = text; box.className = warn ? "notice warn" : "notice";
}

function sortBy(header) {
  const key = header.dataset.key;
  state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
  for (const th of document.querySelectorAll("#stock th")) th.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", state.sort.dir > 0 ? "ascending" : "descending");
  renderStock();
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("store").addEventListener("change", (e) => pickStore(e.target.value));
  $("filter").addEventListener("input", (e) => { state.filter = e.target.value; renderStock(); });
  for (const th of document.querySelectorAll("#stock th")) th.addEventListener("click", () => sortBy(th));
  setInterval(drawChart, 15000);
  window.addEventListener("resize", drawChart);
  if (state.token) start(); else signOut();
});
