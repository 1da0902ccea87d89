// The live feed: one socket for every store in scope, resumed with `after` after any drop.
// Roles without the feed (clerks) get a poll instead; the badge tells which is true.

import { $, notice } from "./dom.js";
import { isLate, moved, sentence } from "./format.js";
import { api, badge, hooks, refresh, signOut } from "./session.js";
import { FEED_ROLES, can, state } from "./state.js";
import { drawChart, countSold } from "./chart.js";

export const listeners = { event: () => {}, alert: () => {}, poll: () => {} };
const feed = { socket: null, seen: new Map(), retry: 0, drops: 0, timer: null, live: false };
const groups = []; // ticker lines, newest first: {key, type, sku, store, total, count, ...}
window.feedState = feed; // for the browser tests: the socket they drop

export function startFeed() {
  stopFeed();
  if (can(FEED_ROLES)) connect();
  else poll();
}

export function stopFeed() {
  clearTimeout(feed.timer);
  if (feed.socket) {
    feed.socket.onclose = null;
    feed.socket.close(1000);
    feed.socket = null;
  }
}

// After a refresh the socket opened with the old token would close at its expiry: open
// a new one with the new token, resuming where the old one stood.
export function renewFeed() {
  if (can(FEED_ROLES) && state.token) {
    stopFeed();
    connect();
  }
}

async function poll() {
  try {
    const response = await api("/v1/me");
    if (response.ok) badge("live");
    listeners.poll();
  } catch {
    badge("offline");
  }
  if (state.token) feed.timer = setTimeout(poll, 5000);
}

// Seq order holds per store: resuming from the lowest store's cursor misses nothing, and
// what it repeats of other stores is dropped by `seen`.
function resumePoint() {
  return feed.seen.size ? Math.min(...feed.seen.values()) : null;
}

// The token travels as a subprotocol, never in the URL: URLs end up in logs.
function connect() {
  const after = resumePoint();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = after === null ? "" : `?after=${after}`;
  const socket = new WebSocket(`${scheme}://${location.host}/v1/feed${query}`,
    ["inventory.v1", `bearer.${state.token}`]);
  feed.socket = socket;
  feed.live = false;
  socket.onopen = () => {
    badge("catching"); // the backlog comes first; the first heartbeat means we are current
    if (feed.drops) {
      const after = resumePoint();
      notice(after === null
        ? "Reconnected; the figures are reloaded (movements during the gap are in the ledger)."
        : `Reconnected; resumed after event ${after}, nothing missed.`);
    }
    feed.retry = 0;
    listeners.poll();
  };
  socket.onmessage = (message) => receive(JSON.parse(message.data));
  socket.onclose = (closed) => dropped(closed.code);
}

async function dropped(code) {
  feed.socket = null;
  if (!state.token) return;
  if (code === 4401) {
    // An expired token: a refresh (if the server offers one) lets us carry on.
    if (await refresh()) return; // refresh() reopens the feed through hooks.refreshed
    signOut("Your session ended; sign in again.");
    return;
  }
  if (code === 4403) {
    // The scope shrank: start over from /v1/me with the stores and role as they are now.
    notice("Your stores or role changed; the dashboard now shows what you may see.", true);
    await hooks.signedIn();
    return;
  }
  feed.drops += 1;
  badge("offline");
  const wait = Math.min(500 * 2 ** feed.retry, 4000);
  feed.retry += 1;
  const why = code === 4008 ? "fell behind" : code === 4429 ? "rate limited" : "connection lost";
  notice(`Live feed offline (${why}); trying again in ${(wait / 1000).toFixed(1)} s.`, true);
  feed.timer = setTimeout(() => { if (state.token) connect(); }, wait);
}

function receive(message) {
  if (message.kind === "heartbeat") {
    feed.live = true;
    if (state.badge !== "live") badge("live");
  } else if (message.kind === "event") onEvent(message);
  else if (message.kind === "alert") listeners.alert(message.alert);
}

function onEvent(event) {
  if (event.seq <= (feed.seen.get(event.store) ?? -1)) return; // seen before a resume
  feed.seen.set(event.store, event.seq);
  if (event.type === "stock.sold") countSold(event);
  if (event.sku && event.type.startsWith("stock.")) ticker(event);
  listeners.event(event);
}

// Late: an offline till's sale, or (once current) anything that happened minutes ago.
function late(event) {
  const data = event.data || {};
  return Boolean(data.offline) || (feed.live && isLate(event.occurred_at, new Date()));
}

function ticker(event) {
  const quantity = moved(event);
  const key = `${event.type}|${event.store}|${event.sku}|${late(event)}`;
  const now = Date.now();
  const top = groups[0];
  const additive = !["stock.counted", "stock.reorder_point_set"].includes(event.type);
  if (top && top.key === key && now - top.at < 30000 && additive) {
    // A burst (a till scanning one item after another): one line that says how many.
    top.count += 1;
    top.total = quantity === null ? null : String(Number(top.total) + Number(quantity));
    top.at = now;
    top.occurred_at = event.occurred_at;
    top.seq = event.seq;
  } else {
    groups.unshift({
      key, type: event.type, sku: event.sku, store: event.store, total: quantity, count: 1,
      at: now, occurred_at: event.occurred_at, late: late(event), seq: event.seq,
    });
    groups.length = Math.min(groups.length, 50);
  }
  renderTicker();
}

export function renderTicker() {
  const items = groups.map((group) => {
    const li = document.createElement("li");
    li.dataset.seq = String(group.seq);
    li.dataset.store = group.store;
    if (group.late) li.className = "late";
    li.textContent = sentence(group);
    return li;
  });
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = can(FEED_ROLES) ? "Nothing yet: movements appear here as they happen."
      : "Your role sees movements in the ledger; the live feed is for managers and viewers.";
    items.push(li);
  }
  $("ticker").replaceChildren(...items);
  drawChart();
}
