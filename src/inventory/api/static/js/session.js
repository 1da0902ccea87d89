// Sessions: sign-in, the token and its silent refresh, the badge, every call to the API.

import { $, notice } from "./dom.js";
import { state } from "./state.js";

export const hooks = { signedIn: async () => {}, signedOut: () => {}, refreshed: () => {} };
let refreshTimer = null;

// The badge says only what is true: live, catching up, offline or signed out.
export function badge(kind) {
  const text = { live: "live", catching: "catching up", offline: "offline", out: "signed out" }[kind];
  $("connection").textContent = text;
  $("connection").className = `badge ${kind}`;
  state.badge = kind;
}

function remember(token, expiresIn) {
  state.token = token;
  state.expiresAt = Date.now() + expiresIn * 1000;
  sessionStorage.setItem("inventory.token", token);
  sessionStorage.setItem("inventory.expires", String(state.expiresAt));
  schedule();
}

// Refresh when four fifths of the token's life has passed (at least 60 s before expiry
// for long tokens), so a page left open never meets an expired token.
function schedule() {
  clearTimeout(refreshTimer);
  const left = state.expiresAt - Date.now();
  const wait = Math.max(1000, Math.min(left * 0.8, left - 60000));
  refreshTimer = setTimeout(() => refresh(), wait);
}

export async function refresh() {
  if (!state.token) return false;
  let response;
  try {
    response = await fetch("/v1/auth/refresh", { method: "POST", headers: auth() });
  } catch {
    badge("offline");
    refreshTimer = setTimeout(() => refresh(), 5000);
    return false;
  }
  if (response.ok) {
    const body = await response.json();
    remember(body.access_token, body.expires_in);
    hooks.refreshed();
    return true;
  }
  if (response.status === 401) signOut("Your session ended; sign in again.");
  else if (Date.now() >= state.expiresAt) signOut("Your session expired; sign in again.");
  return false;
}

function auth() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

export async function signIn(username, password) {
  const response = await fetch("/v1/auth/token", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!response.ok) {
    return response.status === 429 ? "Too many attempts; wait a minute and try again."
      : "Wrong username or password, or the account is disabled.";
  }
  const body = await response.json();
  remember(body.access_token, body.expires_in);
  await hooks.signedIn();
  return "";
}

export function signOut(message = "") {
  clearTimeout(refreshTimer);
  state.token = null;
  state.me = null;
  sessionStorage.removeItem("inventory.token");
  sessionStorage.removeItem("inventory.expires");
  badge("out");
  hooks.signedOut();
  $("sign-in-error").textContent = message;
}

// One API call. A network failure marks the badge offline and rethrows; a 401 ends the
// session; a lagging read side waits as the server asks, once, with the badge saying so.
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { ...auth(), ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (state.token) badge("offline");
    throw error;
  }
  if (response.status === 401 && state.token) {
    signOut("Your session ended; sign in again.");
  } else if (response.status === 503 && method === "GET") {
    badge("catching");
    const wait = Number(response.headers.get("Retry-After") || 1);
    await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 5) * 1000));
    response = await fetch(path, init);
  }
  return response;
}

// A query that reflects this page's own writes: it waits on the last command's position.
export function read(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
  }
  if (state.position) query.set("min_position", String(state.position));
  const text = query.toString();
  return api(text ? `${path}?${text}` : path);
}

// The problem+json of a refusal, said in one line.
export async function problem(response) {
  try {
    const body = await response.json();
    const causes = (body.errors || []).map((e) => Object.values(e).join(" ")).join("; ");
    return `${body.detail || body.title || response.status}${causes ? ` (${causes})` : ""}`;
  } catch {
    return `The server answered ${response.status}.`;
  }
}

export function restoreSession() {
  if (state.token && state.expiresAt > Date.now()) {
    schedule();
    return true;
  }
  if (state.token) notice("Your session expired; sign in again.", true);
  return false;
}
