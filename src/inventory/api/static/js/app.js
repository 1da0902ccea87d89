// The dashboard's entry point: sign-in, the pages a role may use, the store picker.

import { $, el, notice } from "./dom.js";
import { applyAlert, loadAlerts, wireAlerts } from "./alerts.js";
import { loadKeys, loadUsers, wireAdmin } from "./admin.js";
import { renewFeed, listeners, renderTicker, startFeed, stopFeed } from "./feed.js";
import { after, fillStores, wireForms } from "./forms.js";
import { search, showLedger, showProduct, wireLookup } from "./lookup.js";
import { applyEvent, loadOverview, renderOverview, wireOverview } from "./overview.js";
import { api, badge, hooks, restoreSession, signIn, signOut } from "./session.js";
import { can, state } from "./state.js";
import { drawChart } from "./chart.js";

function allowed(link) {
  const roles = link.dataset.roles ? link.dataset.roles.split(" ") : null;
  const kind = link.dataset.kind;
  return (!roles || can(roles)) && (!kind || state.me.kind === kind);
}

async function pages(path) {
  const items = [];
  let cursor = null;
  do {
    const response = await api(`${path}${path.includes("?") ? "&" : "?"}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    if (!response.ok) break;
    const page = await response.json();
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

// A scoped principal's stores one by one (the scope is authoritative: a store the read
// side has not projected yet shows by id); every store, page by page, for "*".
async function storesInScope() {
  if (state.me.stores.includes("*")) return pages("/v1/stores");
  return Promise.all(state.me.stores.map(async (id) => {
    const response = await api(`/v1/stores/${encodeURIComponent(id)}`);
    return response.ok ? response.json() : { id, name: id };
  }));
}

export async function loadProducts() {
  for (const item of await pages("/v1/products")) state.products.set(item.sku, item);
  $("skus").replaceChildren(...[...state.products.values()].map((p) => el("option", { value: p.sku }, p.name)));
}

async function start() {
  const me = await api("/v1/me");
  if (!me.ok) return;
  state.me = await me.json();
  state.stores = await storesInScope();
  const remembered = sessionStorage.getItem("inventory.store");
  state.store = state.stores.some((s) => s.id === remembered) ? remembered
    : (state.stores[0] ? state.stores[0].id : null);
  $("store").replaceChildren(...state.stores.map((s) => new Option(`${s.name} (${s.id})`, s.id)));
  if (state.store) $("store").value = state.store;
  $("who").textContent = `${state.me.name} · ${state.me.role}`;
  $("sign-in").hidden = true;
  $("nav").hidden = false; $("sign-out").hidden = false; $("store-label").hidden = false;
  for (const link of document.querySelectorAll("#nav a")) link.hidden = !allowed(link);
  for (const form of document.querySelectorAll("form.cmd")) form.hidden = !can(form.dataset.roles.split(" "));
  await loadProducts();
  fillStores();
  badge("catching");
  startFeed();
  renderTicker();
  await route();
}

// #page or #page/arg/arg: the page shown and what it shows; a page the role may not use
// falls back to the overview.
async function route() {
  if (!state.me) return;
  const [name, ...args] = location.hash.slice(1).split("/").map(decodeURIComponent);
  const link = document.querySelector(`#nav a[data-page="${CSS.escape(name || "overview")}"]`);
  const page = link && allowed(link) ? name || "overview" : "overview";
  state.page = page;
  for (const section of document.querySelectorAll(".page")) section.hidden = section.dataset.page !== page;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (args[1] && args[1] !== state.store && state.stores.some((s) => s.id === args[1])) pick(args[1], false);
  await load(page, args);
}

async function load(page, args = []) {
  if (page === "overview") { await loadOverview(); drawChart(); }
  else if (page === "product" && args[0]) await showProduct(args[0]);
  else if (page === "ledger" && args[0]) await showLedger(args[0]);
  else if (page === "alerts") await loadAlerts();
  else if (page === "users") await loadUsers();
  else if (page === "keys") await loadKeys();
}

function pick(store, reload = true) {
  state.store = store;
  sessionStorage.setItem("inventory.store", store);
  $("store").value = store;
  fillStores();
  if (reload) route();
}

function signedOut() {
  stopFeed();
  $("sign-in").hidden = false;
  for (const hidden of ["nav", "sign-out", "store-label"]) $(hidden).hidden = true;
  for (const section of document.querySelectorAll(".page")) section.hidden = true;
  $("who").textContent = "";
  notice("");
}

document.addEventListener("DOMContentLoaded", () => {
  hooks.signedIn = start;
  hooks.signedOut = signedOut;
  hooks.refreshed = renewFeed;
  listeners.event = applyEvent;
  listeners.alert = applyAlert;
  listeners.poll = () => { if (state.page === "overview") loadOverview(); };
  after.command = () => { if (state.page !== "work") load(state.page); };
  $("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("sign-in-error").textContent = "";
    $("sign-in-error").textContent = await signIn($("username").value, $("password").value);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("store").addEventListener("change", (e) => pick(e.target.value));
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", drawChart);
  $("chart-unit").addEventListener("change", drawChart);
  setInterval(drawChart, 15000);
  wireOverview(); wireLookup(); wireAlerts(); wireForms(); wireAdmin();
  renderOverview();
  if (restoreSession()) start(); else signOut($("sign-in-error").textContent);
  window.inventory = { state, search };
});
