// The work forms. Each keeps one Idempotency-Key for as long as its body stays the same,
// so a retry after a lost answer books nothing twice; a changed body is a new request.

import { $, el, show } from "./dom.js";
import { product, quantity } from "./format.js";
import { api, problem, read } from "./session.js";
import { state, storeName } from "./state.js";
import { applyLevel } from "./overview.js";

export const after = { command: () => {} };
const store = () => encodeURIComponent(state.store);
const id = (prefix) => `${prefix}-${new Date().toISOString().slice(0, 10)}-${crypto.randomUUID().slice(0, 8)}`;

// "2,5" typed on a comma-decimal keyboard means 2.5; the API takes plain decimals.
function decimal(value) {
  const text = String(value || "").trim();
  return /^-?\d+,\d+$/.test(text) ? text.replace(",", ".") : text;
}

function isoTime(local) {
  return local ? new Date(local).toISOString() : undefined;
}

function lines(form, field = "quantity") {
  return [...form.querySelectorAll(".line")]
    .map((line) => ({ sku: line.querySelector("[name=sku]").value.trim(),
      [field]: decimal(line.querySelector("[name=quantity]").value) }))
    .filter((line) => line.sku);
}

// Each form: how its fields become one request.
const COMMANDS = {
  "f-receive": (f) => ({ path: `/v1/stores/${store()}/receipts`,
    body: { lines: lines(f), reference: f.reference.value.trim() || undefined, note: f.note.value.trim() || undefined } }),
  "f-count": (f) => ({ path: `/v1/stores/${store()}/counts`,
    body: { lines: [{ sku: f.sku.value.trim(), counted: decimal(f.counted.value),
      expected_version: f.dataset.version ? Number(f.dataset.version) : undefined }],
    note: f.note.value.trim() || undefined } }),
  "f-adjust": (f) => ({ path: `/v1/stores/${store()}/adjustments`,
    body: { lines: [{ sku: f.sku.value.trim(), delta: decimal(f.delta.value), reason: f.reason.value }],
      note: f.note.value.trim() || undefined } }),
  "f-send": (f) => ({ path: "/v1/transfers",
    body: { transfer_id: f.transfer_id.value.trim(), from_store: state.store, to_store: f.to_store.value, lines: lines(f) } }),
  "f-receive-transfer": (f) => ({ path: `/v1/transfers/${encodeURIComponent(f.transfer_id.value.trim())}/receive`,
    body: { lines: lines(f) } }),
  "f-cancel-transfer": (f) => ({ path: `/v1/transfers/${encodeURIComponent(f.transfer_id.value.trim())}/cancel`, body: {} }),
  "f-reserve": (f) => ({ path: `/v1/stores/${store()}/reservations`,
    body: { reservation_id: f.reservation_id.value.trim(), lines: lines(f), expires_at: isoTime(f.expires_at.value) } }),
  "f-release": (f, action) => {
    const base = `/v1/stores/${store()}/reservations/${encodeURIComponent(f.reservation_id.value.trim())}`;
    return action === "fulfil"
      ? { path: `${base}/fulfil`, body: { sale_id: f.sale_id.value.trim() || id("sale") } }
      : { path: `${base}/release`, body: {} };
  },
  "f-reorder": (f) => ({ method: "PUT",
    path: `/v1/stores/${store()}/stock/${encodeURIComponent(f.sku.value.trim())}/reorder-point`,
    body: { min: decimal(f.min.value), max: decimal(f.max.value) || undefined } }),
  "f-close": (f) => ({ path: `/v1/stores/${store()}/period-close`, body: { until: isoTime(f.until.value) } }),
};

async function submit(form, action) {
  const output = form.querySelector(".result");
  const { path, body, method = "POST" } = COMMANDS[form.id](form, action);
  const text = JSON.stringify({ path, body, method });
  if (form.dataset.body !== text) { form.dataset.key = crypto.randomUUID(); form.dataset.body = text; }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  show(output, "Sending…");
  try {
    const response = await api(path, { method, body, headers: { "Idempotency-Key": form.dataset.key } });
    if (response.ok) await done(form, output, response);
    else if (response.status >= 500 || response.status === 429) {
      show(output, `${await problem(response)} Submit again to retry: it cannot book twice.`, false);
    } else show(output, await problem(response), false);
  } catch {
    show(output, "No answer (connection lost). Submit again to retry: it cannot book twice.", false);
  } finally {
    button.disabled = false;
  }
}

async function done(form, output, response) {
  const result = await response.json();
  const replayed = response.headers.get("Idempotent-Replayed") === "true";
  delete form.dataset.key;
  delete form.dataset.body;
  state.position = Math.max(state.position, result.position || 0);
  const levels = result.levels || [];
  for (const level of levels) applyLevel(level);
  const said = levels.map((l) => `${product(l.sku).name} at ${storeName(l.store)}: ${quantity(l.on_hand, l.sku)} on hand, ${quantity(l.available, l.sku)} available`);
  show(output, `${replayed ? "Already done before (replayed)" : "Done"} · position ${result.position}. ${said.join("; ")}`);
  freshIds(form);
  if (form.id === "f-count") await expected(form);
  after.command(result);
}

// The expected figure of a count: the level as the read side holds it, with its version,
// so a sale between looking and counting is a version conflict rather than a silent loss.
async function expected(form) {
  const sku = form.sku.value.trim();
  const hint = form.querySelector(".expected");
  delete form.dataset.version;
  delete form.dataset.expected;
  if (!sku || !state.store) { hint.textContent = "Expected: pick a SKU."; return discrepancy(form); }
  const response = await read(`/v1/stores/${store()}/stock/${encodeURIComponent(sku)}`);
  if (response.ok) {
    const level = await response.json();
    form.dataset.version = String(level.version);
    form.dataset.expected = String(level.on_hand);
    hint.textContent = `Expected: ${quantity(level.on_hand, sku)} on hand (${product(sku).name}).`;
  } else if (response.status === 404) {
    form.dataset.expected = "0";
    hint.textContent = `Expected: nothing of ${sku} was ever booked here.`;
  } else hint.textContent = await problem(response);
  discrepancy(form);
}

function discrepancy(form) {
  const out = form.querySelector(".discrepancy");
  const sku = form.sku.value.trim();
  const counted = decimal(form.counted.value);
  if (form.dataset.expected === undefined || counted === "" || Number.isNaN(Number(counted))) {
    out.textContent = "";
    return;
  }
  const decimals = product(sku).decimals;
  const difference = (Number(counted) - Number(form.dataset.expected)).toFixed(decimals);
  out.textContent = Number(difference) === 0 ? "Matches the expected figure."
    : `Discrepancy: ${Number(difference) > 0 ? "+" : ""}${quantity(difference, sku)} against expected.`;
  out.className = Number(difference) === 0 ? "discrepancy ok" : "discrepancy bad";
}

function lineRow(index) {
  return el("div", { className: "line" },
    el("label", {}, `SKU (line ${index})`, el("input", { name: "sku", required: index === 1, autocomplete: "off", list: "skus" })),
    el("label", {}, "Quantity", el("input", { name: "quantity", required: index === 1, inputMode: "decimal", autocomplete: "off" })));
}

function freshIds(form) {
  // Only the forms that start something name it; the others name what already exists.
  if (form.id === "f-send") form.transfer_id.value = id("tr");
  if (form.id === "f-reserve") form.reservation_id.value = id("res");
}

export function fillStores() {
  for (const select of document.querySelectorAll(".other-stores")) {
    const others = state.stores.filter((s) => s.id !== state.store);
    select.replaceChildren(...others.map((s) => new Option(`${s.name} (${s.id})`, s.id)));
  }
  $("work-store").textContent = state.store ? `· ${storeName(state.store)}` : "";
}

export function wireForms() {
  for (const form of document.querySelectorAll("form.cmd")) {
    const holder = form.querySelector(".lines");
    if (holder) {
      holder.append(lineRow(1));
      form.querySelector(".add-line").addEventListener("click", () => {
        const row = lineRow(holder.children.length + 1);
        holder.append(row);
        row.querySelector("input").focus();
      });
    }
    freshIds(form);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit(form, event.submitter ? event.submitter.value : "");
    });
  }
  const count = $("f-count");
  count.sku.addEventListener("change", () => expected(count));
  count.counted.addEventListener("input", () => discrepancy(count));
}
