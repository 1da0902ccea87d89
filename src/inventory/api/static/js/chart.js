// Quantity sold per minute: one line per store, one unit at a time (kilograms are never
// added to pieces).

import { $, el } from "./dom.js";
import { unitOf } from "./format.js";
import { storeName } from "./state.js";

const sold = new Map(); // unit -> store -> minute -> quantity
const COLORS = ["#1d4ed8", "#b45309", "#047857", "#b91c1c", "#6d28d9", "#0f766e", "#be185d"];
const MINUTES = 30;

export function countSold(event) {
  const unit = unitOf(event.sku);
  const units = Number(event.data && event.data.quantity) || 0;
  const minute = Math.floor(Date.parse(event.occurred_at) / 60000);
  if (!sold.has(unit)) sold.set(unit, new Map());
  const stores = sold.get(unit);
  if (!stores.has(event.store)) stores.set(event.store, new Map());
  const perMinute = stores.get(event.store);
  perMinute.set(minute, (perMinute.get(minute) || 0) + units);
  unitsPicker();
}

function unitsPicker() {
  const picker = $("chart-unit");
  const units = [...sold.keys()].sort();
  if (picker.options.length === units.length) return;
  const chosen = picker.value;
  picker.replaceChildren(...units.map((unit) => new Option(unit, unit)));
  picker.value = units.includes(chosen) ? chosen : units[0];
  $("chart-unit-label").hidden = units.length === 0;
}

export function drawChart() {
  const canvas = $("chart");
  if (!canvas.clientWidth) return; // hidden page
  const ratio = window.devicePixelRatio || 1;
  canvas.width = canvas.clientWidth * ratio;
  canvas.height = canvas.clientHeight * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const width = canvas.clientWidth, height = canvas.clientHeight, pad = 30;
  const unit = $("chart-unit").value;
  const series = [...(sold.get(unit) || new Map()).entries()];
  const now = Math.floor(Date.now() / 60000);
  const top = Math.max(1, ...series.flatMap(([, m]) => [...m.values()]));
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#d0d5dd"; ctx.fillStyle = "#475467"; ctx.font = "11px system-ui";
  const number = new Intl.NumberFormat(navigator.language, { maximumFractionDigits: 1 });
  for (const fraction of [0, 0.5, 1]) {
    const y = height - pad - fraction * (height - 2 * pad);
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(width - 4, y); ctx.stroke();
    ctx.fillText(number.format(top * fraction), 2, y + 4);
  }
  ctx.fillText(unit ? `${unit} · last ${MINUTES} min` : "Nothing sold since this page opened", pad, height - 8);
  series.forEach(([, perMinute], index) => {
    ctx.strokeStyle = COLORS[index % COLORS.length]; ctx.lineWidth = 2; ctx.beginPath();
    for (let i = 0; i < MINUTES; i += 1) {
      const x = pad + (i / (MINUTES - 1)) * (width - pad - 8);
      const value = perMinute.get(now - MINUTES + 1 + i) || 0;
      const y = height - pad - (value / top) * (height - 2 * pad);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
  });
  $("legend").replaceChildren(...series.map(([store], index) => {
    const swatch = el("i", { className: `swatch c${index % COLORS.length}` });
    return el("span", {}, swatch, storeName(store));
  }));
}
