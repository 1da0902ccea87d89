// DOM helpers: every piece of data enters the page as text, never as markup.

export const $ = (id) => document.getElementById(id);

// Names that are attributes only (or read-only properties) on some elements.
const ATTRIBUTES = new Set(["list", "role", "for", "form"]);

// el("td", {className: "num", dataset: {sku}}, "text", child) — children are strings or nodes.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && !ATTRIBUTES.has(key)) node[key] = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A table cell with a label for the phone layout (the header text, read by CSS).
export function cell(label, content, className = "") {
  return el("td", { className, dataset: { label } }, content);
}

export function notice(text, warn = false) {
  const box = $("notice");
  box.hidden = !text;
  box.textContent = text || "";
  box.className = warn ? "notice warn" : "notice";
}

export function show(output, text, ok = true) {
  output.textContent = text;
  output.className = ok ? "result ok" : "result bad";
}
