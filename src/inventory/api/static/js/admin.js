// Admin pages (users: create with role and scope, disable, re-scope, reset a password;
// API keys: create with scope, shown once, revoke) and one's own password change.

import { $, cell, el, notice, show } from "./dom.js";
import { when } from "./format.js";
import { api, problem } from "./session.js";

const ROLES = ["viewer", "auditor", "clerk", "manager", "admin"];
let users = [];

const scope = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

async function all(path) {
  const items = [];
  let cursor = null;
  do {
    const response = await api(`${path}?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    if (!response.ok) { notice(await problem(response), true); break; }
    const page = await response.json();
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export async function loadUsers() {
  users = await all("/v1/users");
  $("users").tBodies[0].replaceChildren(...users.map((user) => el("tr", { dataset: { user: user.username } },
    cell("Username", user.username), cell("Role", user.role), cell("Stores", user.stores.join(", ")),
    cell("State", user.disabled ? "disabled" : "active"), cell("Created", when(user.created_at)))));
  for (const picker of document.querySelectorAll(".user-picker")) {
    const chosen = picker.value;
    picker.replaceChildren(...users.map((u) => new Option(u.username, u.id)));
    if (chosen) picker.value = chosen;
  }
  fillChange();
}

function fillChange() {
  const form = $("f-user-change");
  const user = users.find((u) => u.id === form.user.value);
  if (!user) return;
  form.role.value = user.role;
  form.stores.value = user.stores.join(", ");
  form.disabled.checked = Boolean(user.disabled);
}

export async function loadKeys() {
  const keys = await all("/v1/api-keys");
  $("keys").tBodies[0].replaceChildren(...keys.map((key) => {
    const revoke = el("button", { type: "button", className: "danger", "aria-label": `Revoke the key ${key.name}` }, "Revoke");
    revoke.addEventListener("click", async () => {
      const response = await api(`/v1/api-keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
      notice(response.ok ? `Revoked the key ${key.name}; it is refused from now on.` : await problem(response), !response.ok);
      await loadKeys();
    });
    return el("tr", { dataset: { key: key.name } }, cell("Name", key.name), cell("Prefix", key.prefix),
      cell("Role", key.role), cell("Stores", key.stores.join(", ")), cell("Created", when(key.created_at)),
      cell("Action", revoke));
  }));
}

// A form that sends one request and says how it went; `then` runs after a success.
function admin(form, request, then) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const output = form.querySelector(".result");
    const { path, method = "POST", body } = request(form);
    if (!path) return;
    const response = await api(path, { method, body });
    if (!response.ok) { show(output, await problem(response), false); return; }
    await then(form, output, response);
  });
}

function wireUsers() {
  admin($("f-user-create"), (f) => ({ path: "/v1/users",
    body: { username: f.username.value.trim(), password: f.password.value, role: f.role.value, stores: scope(f.stores.value) } }),
  async (f, out) => { show(out, `Created ${f.username.value.trim()}.`); f.reset(); await loadUsers(); });
  admin($("f-user-change"), (f) => ({ method: "PATCH", path: `/v1/users/${encodeURIComponent(f.user.value)}`,
    body: { role: f.role.value, stores: scope(f.stores.value), disabled: f.disabled.checked } }),
  async (f, out) => { show(out, "Saved; the user's open sessions follow the change."); await loadUsers(); });
  admin($("f-user-reset"), (f) => ({ path: `/v1/users/${encodeURIComponent(f.user.value)}/password`,
    body: { new_password: f.new_password.value } }),
  async (f, out) => { show(out, "Password reset: tell the user the new one in person."); f.new_password.value = ""; });
  $("f-user-change").user.addEventListener("change", fillChange);
}

function wireKeys() {
  admin($("f-key-create"), (f) => ({ path: "/v1/api-keys",
    body: { name: f.name.value.trim(), role: f.role.value, stores: scope(f.stores.value) } }),
  async (f, out, response) => {
    const key = await response.json();
    $("new-key").hidden = false;
    $("new-key-value").value = key.key;
    show(out, `Created the key ${key.name}.`);
    await loadKeys();
  });
}

function wirePassword() {
  admin($("f-password"), (f) => {
    if (f.new_password.value !== f.again.value) {
      show(f.querySelector(".result"), "The new passwords differ.", false);
      return {};
    }
    return { path: "/v1/me/password", body: { current_password: f.current_password.value, new_password: f.new_password.value } };
  }, async (f, out) => {
    // The token that made the change stays valid; the user's other sessions end.
    f.reset();
    show(out, "Password changed; your other sessions are signed out.");
  });
}

export function wireAdmin() {
  for (const select of document.querySelectorAll("select.roles")) {
    select.replaceChildren(...ROLES.map((role) => new Option(role, role)));
  }
  wireUsers();
  wireKeys();
  wirePassword();
}
