// Finding things: search by SKU, name or barcode; one product in every store in scope;
// one item's ledger with late and absorbed entries marked.

import { $, cell, el, notice } from "./dom.js";
import { isLate, product, quantity, signed, verb, when } from "./format.js";
import { problem, read } from "./session.js";
import { state, storeName } from "./state.js";

const ledger = { sku: null, cursor: null };

export async function search(q) {
  const response = await read("/v1/search", { q, limit: 20 });
  if (!response.ok) { notice(await problem(response), true); return; }
  const hits = (await response.json()).items;
  for (const hit of hits) state.products.set(hit.sku, { ...product(hit.sku), ...hit });
  $("hits").replaceChildren(...(hits.length ? hits.map(hitItem)
    : [el("li", { className: "muted" }, `Nothing matches “${q}”.`)]));
}

function hitItem(hit) {
  const total = hit.levels.reduce((sum, level) => sum + Number(level.available), 0);
  const button = el("button", { type: "button", className: "hit" },
    el("strong", {}, hit.name), " ", el("span", { className: "muted" }, hit.sku),
    hit.barcode ? el("span", { className: "muted" }, ` · ${hit.barcode}`) : null,
    el("span", { className: "num" }, ` ${quantity(String(total), hit.sku)} available in ${hit.levels.length} stores`));
  button.addEventListener("click", () => { location.hash = `#product/${encodeURIComponent(hit.sku)}`; });
  return el("li", {}, button);
}

export async function showProduct(sku) {
  const [known, levels] = await Promise.all([
    read(`/v1/products/${encodeURIComponent(sku)}`).catch(() => null),
    read(`/v1/stock/${encodeURIComponent(sku)}`, { limit: 1000 }),
  ]);
  if (known && known.ok) state.products.set(sku, await known.json());
  const item = product(sku);
  $("product-detail").hidden = false;
  $("h-product-detail").textContent = `${item.name} · ${sku}`;
  $("product-meta").textContent = [
    `Unit: ${item.unit}`, item.barcode ? `Barcode: ${item.barcode}` : null,
    item.category ? `Category: ${item.category}` : null,
  ].filter(Boolean).join(" · ");
  const body = $("everywhere").tBodies[0];
  if (!levels.ok) {
    body.replaceChildren(el("tr", {}, el("td", { colSpan: 7 }, await problem(levels))));
    return;
  }
  const rows = (await levels.json()).items;
  body.replaceChildren(...(rows.length ? rows.map((level) => el("tr", { dataset: { store: level.store } },
    cell("Store", storeName(level.store)),
    cell("On hand", quantity(level.on_hand, sku), "num"),
    cell("Available", quantity(level.available, sku), "num"),
    cell("Reserved", quantity(level.reserved, sku), "num"),
    cell("In transit", quantity(String(Number(level.in_transit_in) + Number(level.in_transit_out)), sku), "num"),
    cell("Reorder at", level.reorder_min === null ? "–" : quantity(level.reorder_min, sku), "num"),
    cell("Ledger", el("a", { href: `#ledger/${encodeURIComponent(sku)}/${encodeURIComponent(level.store)}` },
      `Ledger at ${storeName(level.store)}`)),
  )) : [el("tr", {}, el("td", { colSpan: 7 }, "No store in your scope holds this product yet."))]));
}

export async function showLedger(sku, more = false) {
  if (!state.store || !sku) return;
  if (!more) { ledger.sku = sku; ledger.cursor = null; $("ledger").tBodies[0].replaceChildren(); }
  $("ledger-sku").value = sku;
  const response = await read(
    `/v1/stores/${encodeURIComponent(state.store)}/stock/${encodeURIComponent(sku)}/ledger`,
    { limit: 100, cursor: ledger.cursor });
  if (!response.ok) {
    $("ledger-title").textContent = await problem(response);
    return;
  }
  const page = await response.json();
  ledger.cursor = page.next_cursor;
  $("ledger-more").hidden = !page.next_cursor;
  $("ledger-title").textContent =
    `${product(sku).name} (${sku}) at ${storeName(state.store)}: every movement in the order it was recorded.`;
  $("ledger").tBodies[0].append(...page.items.map((entry) => ledgerRow(entry, sku)));
  if (!more && !page.items.length) {
    $("ledger-title").textContent = `Nothing of ${product(sku).name} (${sku}) has moved at ${storeName(state.store)} yet.`;
  }
}

function ledgerRow(entry, sku) {
  const marks = [];
  if (isLate(entry.occurred_at, entry.recorded_at)) marks.push(`late: recorded ${when(entry.recorded_at)}`);
  if (entry.absorbed) marks.push("absorbed by a later count");
  const tr = el("tr", { dataset: { seq: entry.seq } });
  if (marks.length) tr.className = entry.absorbed ? "absorbed" : "late";
  tr.append(
    cell("When", when(entry.occurred_at)),
    cell("What", verb(entry.type).replace(/ (for|of)$|:$/, "")),
    cell("Change", signed(entry.delta, sku), "num"),
    cell("On hand after", quantity(entry.on_hand_after, sku), "num"),
    cell("Reason / reference", [entry.reason, entry.reference].filter(Boolean).join(" · ") || "–"),
    cell("By", entry.actor_name || entry.actor || "–"),
    cell("Marks", marks.length ? marks.join("; ") : "–", "marks"),
  );
  return tr;
}

export function wireLookup() {
  $("search").addEventListener("submit", (e) => { e.preventDefault(); search($("q").value.trim()); });
  $("ledger-form").addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#ledger/${encodeURIComponent($("ledger-sku").value.trim())}`;
  });
  $("ledger-more").addEventListener("click", () => showLedger(ledger.sku, true));
}
