// Alerts with enough detail to act on (product, available against the reorder point,
// since when) and, for the store's manager or an admin, acknowledgement with a note.

import { $, el, notice } from "./dom.js";
import { product, quantity, when } from "./format.js";
import { api, problem, read } from "./session.js";
import { MANAGER_ROLES, can, state, storeName } from "./state.js";

const KINDS = { low_stock: "Low stock", negative_stock: "Negative stock", count_discrepancy: "Count discrepancy" };
// `forms` keeps each open alert's acknowledgement form across re-renders: a live alert
// re-draws the list, and must not wipe (or blur) a note a manager is typing.
const view = { alerts: new Map(), forms: new Map() };

export async function loadAlerts() {
  const chosen = $("alert-state").value;
  const params = { store: state.store, limit: 1000 };
  let response = await read("/v1/alerts", chosen === "open" ? params : { ...params, state: chosen });
  if (response.status === 400 && chosen !== "open") {
    notice("This server lists open alerts only.", true);
    response = await read("/v1/alerts", params);
  }
  if (!response.ok) { notice(await problem(response), true); return; }
  view.alerts = new Map((await response.json()).items.map((alert) => [alert.id, alert]));
  renderAlerts();
}

// A feed alert: opened, or closed (`closed_seq` set) — the open list follows it.
export function applyAlert(alert) {
  if (alert.store !== state.store) return;
  const closed = alert.closed_seq !== null && alert.closed_seq !== undefined;
  if (closed && $("alert-state").value === "open") view.alerts.delete(alert.id);
  else view.alerts.set(alert.id, { ...view.alerts.get(alert.id), ...alert });
  renderAlerts();
}

function fact(alert, key) {
  return alert[key] ?? (alert.details || {})[key] ?? null;
}

function detail(alert) {
  const sku = alert.sku;
  const details = alert.details || {};
  if (alert.kind === "count_discrepancy") {
    return `Counted ${quantity(details.counted, sku)}, expected ${quantity(details.expected, sku)}`;
  }
  if (alert.kind === "negative_stock" && fact(alert, "available") === null) {
    return `On hand ${quantity(details.on_hand, sku)}`;
  }
  const min = fact(alert, "reorder_min");
  const available = `Available ${quantity(fact(alert, "available"), sku)}`;
  return min === null ? available : `${available}, reorder point ${quantity(min, sku)}`;
}

function card(alert) {
  const name = alert.name || product(alert.sku).name;
  const li = el("li", { className: `card alert ${alert.kind}`, dataset: { id: alert.id } },
    el("h2", {}, `${KINDS[alert.kind] || alert.kind}: ${name}`),
    el("p", {}, `${alert.sku} at ${storeName(alert.store)} · ${detail(alert)}`),
    el("p", { className: "muted" }, `Since ${when(alert.opened_at)}`),
  );
  if (alert.acknowledged_at) {
    li.append(el("p", { className: "ack" },
      `Acknowledged by ${alert.acknowledged_by || "someone"} ${when(alert.acknowledged_at)}`,
      alert.note ? `: “${alert.note}”` : ""));
  } else if (can(MANAGER_ROLES)) {
    const form = ackForm(alert);
    view.forms.set(alert.id, form);
    li.append(form);
  }
  return li;
}

function ackForm(alert) {
  const kept = view.forms.get(alert.id);
  if (kept) return kept;
  const input = el("input", { name: "note", maxLength: 500, autocomplete: "off" });
  const output = el("output", { className: "result", "aria-live": "polite" });
  const form = el("form", { className: "ack-form" },
    el("label", {}, `Note for ${alert.sku}`, input),
    el("button", { type: "submit" }, "Acknowledge"), output);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = input.value.trim() ? { note: input.value.trim() } : {};
    const response = await api(`/v1/alerts/${alert.id}/acknowledge`, { method: "POST", body });
    if (!response.ok) { output.textContent = await problem(response); output.className = "result bad"; return; }
    view.alerts.set(alert.id, await response.json());
    renderAlerts();
    notice(`Acknowledged: ${alert.sku} at ${storeName(alert.store)}.`);
  });
  return form;
}

export function renderAlerts() {
  const alerts = [...view.alerts.values()].sort((a, b) => b.id - a.id);
  const focused = document.activeElement;
  const caret = focused instanceof HTMLInputElement ? [focused.selectionStart, focused.selectionEnd] : null;
  const open = new Set(alerts.filter((alert) => !alert.acknowledged_at).map((alert) => alert.id));
  for (const id of view.forms.keys()) if (!open.has(id)) view.forms.delete(id);
  $("alert-list").replaceChildren(...(alerts.length ? alerts.map(card)
    : [el("li", { className: "muted" }, `No alerts at ${storeName(state.store)}.`)]));
  if (focused && focused !== document.activeElement && focused.isConnected) {
    focused.focus();
    if (caret) focused.setSelectionRange(...caret);
  }
}

export function wireAlerts() {
  $("alert-state").addEventListener("change", () => loadAlerts());
}
