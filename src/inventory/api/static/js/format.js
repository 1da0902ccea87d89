// Numbers in the user's locale with the product's own decimals and unit; plain sentences.

import { state, storeName } from "./state.js";

const formats = new Map();

function formatter(decimals) {
  if (!formats.has(decimals)) {
    formats.set(decimals, new Intl.NumberFormat(navigator.language, {
      minimumFractionDigits: decimals, maximumFractionDigits: decimals,
    }));
  }
  return formats.get(decimals);
}

export function product(sku) {
  return state.products.get(sku) || { sku, name: sku, unit: "each", decimals: 0 };
}

export function unitOf(sku) {
  return product(sku).unit;
}

// The API sends exact decimal strings; Intl formats a string without going through a float.
export function amount(value, sku) {
  if (value === null || value === undefined || value === "") return "–";
  return formatter(product(sku).decimals).format(String(value));
}

export function quantity(value, sku) {
  if (value === null || value === undefined) return "–";
  const unit = unitOf(sku);
  return unit === "each" ? amount(value, sku) : `${amount(value, sku)} ${unit}`;
}

export function signed(value, sku) {
  const text = quantity(value, sku);
  return Number(value) > 0 ? `+${text}` : text;
}

const clock = new Intl.DateTimeFormat(navigator.language, { hour: "2-digit", minute: "2-digit" });
const stamp = new Intl.DateTimeFormat(navigator.language, { dateStyle: "medium", timeStyle: "short" });

export function time(iso) {
  return iso ? clock.format(new Date(iso)) : "";
}

export function when(iso) {
  return iso ? stamp.format(new Date(iso)) : "–";
}

// Recorded more than five minutes after it happened: an offline till's late upload.
export function isLate(occurred, recorded) {
  return new Date(recorded) - new Date(occurred) > 5 * 60 * 1000;
}

const VERBS = {
  "stock.received": "Received", "stock.sold": "Sold", "stock.returned": "Returned",
  "stock.adjusted": "Adjusted", "stock.counted": "Counted",
  "stock.reserved": "Reserved", "stock.reservation_released": "Released reservation of",
  "stock.reservation_expired": "Reservation expired for",
  "stock.reservation_fulfilled": "Fulfilled reservation of",
  "stock.transfer_dispatched": "Sent", "stock.transfer_incoming": "On its way:",
  "stock.transfer_received": "Received transfer of", "stock.transfer_delivered": "Delivered",
  "stock.transfer_cancelled": "Cancelled transfer of", "stock.transfer_withdrawn": "Withdrawn transfer of",
  "stock.reorder_point_set": "Reorder point set for",
};

export function verb(type) {
  return VERBS[type] || type.replace(/^stock\./, "").replaceAll("_", " ");
}

// The amount an event moves (or states), whatever its type calls it.
export function moved(event) {
  const data = event.data || {};
  return data.quantity ?? data.delta ?? data.counted ?? data.min ?? null;
}

// "Sold 2 × Basmati Rice 5 kg at Lahore 1, 14:02 — recorded late"
export function sentence(group) {
  const { type, sku, store } = group;
  const name = product(sku).name;
  const count = group.count > 1 ? ` (${group.count} times)` : "";
  const total = group.total === null ? "" : `${quantity(group.total, sku)} × `;
  const what = type === "stock.reorder_point_set"
    ? `Reorder point for ${name} set to ${quantity(group.total, sku)}`
    : type === "stock.counted"
      ? `Counted ${name}: ${quantity(group.total, sku)}`
      : `${verb(type)} ${total}${name}`;
  const late = group.late ? " — recorded late" : "";
  return `${what}${count} at ${storeName(store)}, ${time(group.occurred_at)}${late}`;
}
