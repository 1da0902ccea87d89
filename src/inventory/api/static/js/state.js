// The page's one shared state: who is signed in, what is known, where the views stand.

export const state = {
  token: sessionStorage.getItem("inventory.token"),
  expiresAt: Number(sessionStorage.getItem("inventory.expires") || 0),
  me: null,
  stores: [], // [{id, name, ...}] in scope
  store: null, // the picked store id
  products: new Map(), // sku -> {sku, name, unit, decimals, barcode}
  position: 0, // the highest command position this page has seen: reads wait on it
  page: "overview",
};

export const FEED_ROLES = ["admin", "manager", "auditor", "viewer"];
export const WORK_ROLES = ["admin", "manager", "clerk"];
export const MANAGER_ROLES = ["admin", "manager"];

export function can(roles) {
  return Boolean(state.me) && roles.includes(state.me.role);
}

export function storeName(id) {
  const store = state.stores.find((s) => s.id === id);
  return store ? store.name : id;
}
