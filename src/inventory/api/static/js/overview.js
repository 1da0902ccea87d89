// The store overview: on hand, available, reserved, in transit and the reorder point of
// every item in the picked store (no money: managers count things, not value).

import { $, cell, el } from "./dom.js";
import { amount, product, quantity } from "./format.js";
import { read } from "./session.js";
import { state, storeName } from "./state.js";

const view = { rows: new Map(), sort: { key: "sku", dir: 1 }, filter: "", onlyLow: false };

export async function loadOverview() {
  if (!state.store) return;
  $("overview-store").textContent = `· ${storeName(state.store)}`;
  const rows = new Map();
  let cursor = null;
  do {
    const response = await read(`/v1/stores/${encodeURIComponent(state.store)}/stock`,
      { limit: 1000, cursor });
    if (!response.ok) break;
    const page = await response.json();
    for (const row of page.items) rows.set(row.sku, row);
    cursor = page.next_cursor;
  } while (cursor);
  view.rows = rows;
  renderOverview();
}

// A command's result or a feed event carries the new level: show it at once.
export function applyLevel(level) {
  if (level.store !== state.store) return;
  const row = view.rows.get(level.sku) || { sku: level.sku, store: level.store, reorder_min: null };
  Object.assign(row, level);
  view.rows.set(level.sku, row);
  renderOverview(level.sku);
}

export function applyEvent(event) {
  if (!event.sku || !event.level || event.store !== state.store) return;
  const level = { store: event.store, sku: event.sku, ...event.level };
  if (event.type === "stock.reorder_point_set" && event.data) level.reorder_min = event.data.min;
  applyLevel(level);
}

export function currentLevel(sku) {
  return view.rows.get(sku);
}

const low = (row) => row.reorder_min !== null && row.reorder_min !== undefined
  && Number(row.available) < Number(row.reorder_min);
const transit = (row) => Number(row.in_transit_in || 0) + Number(row.in_transit_out || 0);

function sortValue(row, key) {
  if (key === "sku") return row.sku;
  if (key === "name") return product(row.sku).name.toLowerCase();
  if (key === "in_transit") return transit(row);
  return row[key] === null || row[key] === undefined ? -Infinity : Number(row[key]);
}

function visible() {
  const filter = view.filter.toLowerCase();
  const { key, dir } = view.sort;
  return [...view.rows.values()]
    .filter((row) => !view.onlyLow || low(row))
    .filter((row) => !filter || row.sku.toLowerCase().includes(filter)
      || product(row.sku).name.toLowerCase().includes(filter))
    .sort((a, b) => {
      const x = sortValue(a, key), y = sortValue(b, key);
      return (x > y ? 1 : x < y ? -1 : 0) * dir;
    });
}

function summary() {
  const rows = [...view.rows.values()];
  const facts = [
    ["Items", rows.length],
    ["Below reorder point", rows.filter(low).length],
    ["Out of stock", rows.filter((r) => Number(r.available) <= 0).length],
    ["Items in transit", rows.filter((r) => transit(r) !== 0).length],
  ];
  const number = new Intl.NumberFormat(navigator.language);
  $("summary").replaceChildren(...facts.map(([label, value]) =>
    el("div", {}, el("dt", {}, label), el("dd", {}, number.format(value)))));
}

function row(level, changed) {
  const tr = el("tr", { dataset: { sku: level.sku } });
  if (Number(level.available) < 0) tr.className = "negative";
  else if (low(level)) tr.className = "low";
  const item = product(level.sku);
  const link = el("a", { href: `#ledger/${encodeURIComponent(level.sku)}` }, level.sku);
  tr.append(
    cell("SKU", link, "sku"),
    cell("Product", `${item.name}${item.unit === "each" ? "" : ` (${item.unit})`}`),
    cell("On hand", quantity(level.on_hand, level.sku), "num on-hand"),
    cell("Available", quantity(level.available, level.sku), "num available"),
    cell("Reserved", quantity(level.reserved, level.sku), "num"),
    cell("In transit", transitText(level), "num"),
    cell("Reorder at", level.reorder_min === null || level.reorder_min === undefined
      ? "–" : quantity(level.reorder_min, level.sku), "num"),
  );
  if (level.sku === changed) tr.classList.add("flash");
  return tr;
}

function transitText(level) {
  const incoming = Number(level.in_transit_in || 0), outgoing = Number(level.in_transit_out || 0);
  if (!incoming && !outgoing) return "–";
  const parts = [];
  if (incoming) parts.push(`${amount(level.in_transit_in, level.sku)} in`);
  if (outgoing) parts.push(`${amount(level.in_transit_out, level.sku)} out`);
  return parts.join(", ");
}

export function renderOverview(changed) {
  const rows = visible();
  $("stock").tBodies[0].replaceChildren(...rows.map((level) => row(level, changed)));
  $("stock-empty").hidden = rows.length > 0;
  summary();
}

function sortBy(button) {
  const key = button.dataset.key;
  view.sort = { key, dir: view.sort.key === key ? -view.sort.dir : 1 };
  for (const th of document.querySelectorAll("#stock th")) th.removeAttribute("aria-sort");
  button.parentElement.setAttribute("aria-sort", view.sort.dir > 0 ? "ascending" : "descending");
  renderOverview();
}

export function wireOverview() {
  $("filter").addEventListener("input", (e) => { view.filter = e.target.value; renderOverview(); });
  $("only-low").addEventListener("change", (e) => { view.onlyLow = e.target.checked; renderOverview(); });
  for (const button of document.querySelectorAll("#stock .sort")) {
    button.addEventListener("click", () => sortBy(button));
  }
}
