// Building the page: `el` and the small widgets every screen uses. Every value from the API goes
// through textContent or an attribute, never innerHTML.
import { fetchFile } from "./api.js";
import { anomalyText, exactMoney, firstLine, formatMoney } from "./format.js";
import { domainLabel, domains, state } from "./state.js";

export const UI = "/finops/admin/ui";
export const ACTIVE = new Set(["QUEUED", "RUNNING"]);

export const $ = (sel, root = document) => root.querySelector(sel);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function showError(error) {
  const box = $("#error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

let tipCount = 0;
/** A focusable element with a tooltip shown on hover and keyboard focus (role=tooltip). */
export function withTip(content, tipText, cls = "") {
  const id = `tip-${++tipCount}`;
  return el("span", { class: `tip ${cls}`.trim(), tabindex: "0", "aria-describedby": id },
    content, el("span", { class: "tip-text", role: "tooltip", id, text: tipText }));
}

export function badge(status, message) {
  const node = el("span", { class: `badge s-${status}` },
    ACTIVE.has(status) ? el("span", { class: "pulse", "aria-hidden": "true" }) : null, status);
  return status === "FAILED" && message ? withTip(node, firstLine(message, 300), "badge-tip") : node;
}

export function chip(domain, status) {
  const name = domainLabel(domain);
  return el("span", { class: `chip s-${status}`, title: `${name}: ${status}` },
    name, el("span", { class: "sr-only", text: ` ${status}` }));
}

export function copyButton(text, what) {
  return el("button", {
    type: "button", class: "icon copy", "aria-label": `Copy ${what}`, title: `Copy ${what}`,
    onclick: async (event) => {
      event.stopPropagation();
      const button = event.currentTarget;
      try { await navigator.clipboard.writeText(text); button.dataset.copied = "true"; }
      catch { window.prompt(`Copy the ${what}:`, text); }
      button.textContent = "copied";
      setTimeout(() => { button.textContent = "copy"; delete button.dataset.copied; }, 1500);
    },
  }, "copy");
}

export const navLink = (href, text, attrs = {}) => el("a", { href, "data-nav": "", ...attrs }, text);
export const runHref = (runId) => `${UI}/runs/${encodeURIComponent(runId)}`;
export const extLink = (href, text, attrs = {}) => (href ? el("a", { href, target: "_blank", rel: "noopener", ...attrs }, text) : null);

/** Domains of a run that it selected, in the API's order of domains. */
export function selectedDomains(statuses) {
  const order = domains().length ? domains() : Object.keys(statuses || {});
  return order.filter((d) => statuses && statuses[d] && statuses[d] !== "NOT_SELECTED").map((d) => [d, statuses[d]]);
}

/** A download link: a plain link in dev mode; with a token, fetched with it and saved. */
export function downloadLink(href, text, attrs = {}) {
  return el("a", { href, download: "", ...attrs, onclick: (event) => {
    if (!state.token) return;
    event.preventDefault();
    saveWithToken(href).catch(showError);
  } }, text);
}

async function saveWithToken(href) {
  const file = await fetchFile(href);
  const url = URL.createObjectURL(file.blob);
  const a = el("a", { href: url, download: file.name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/**
 * Money (`[{currency, amount}]`): one line per currency in the API's order, rounded for reading
 * in the browser's locale; the exact amount the API sent, with its code, in each line's title.
 */
export function money(amounts) {
  if (!Array.isArray(amounts) || !amounts.length) return el("span", { class: "money", text: formatMoney(amounts) });
  return el("span", { class: "money" }, amounts.map((item) =>
    el("span", { class: "amount", title: exactMoney([item]), text: formatMoney([item]) })));
}

export function anomaliesOf(item, metric) { return (item.anomalies || []).filter((a) => a.metric === metric); }

export function flagged(content, anomalies) {
  if (!anomalies.length) return content;
  return withTip(el("span", { class: "abnormal-value" }, content, el("span", { class: "sr-only", text: " (abnormal)" })),
    anomalies.map((a) => anomalyText(a)).join("\n"));
}

export function panel(id, title, ...content) {
  return el("section", { class: "panel", id, "aria-labelledby": `${id}-title` },
    el("h2", { id: `${id}-title`, text: title }), ...content);
}

export function kv(pairs) {
  return el("dl", { class: "kv" }, pairs.filter(Boolean).map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
}

export function table(headers, rows, cls = "") {
  // Focusable: a table wider than its panel scrolls, and a keyboard must reach that scroll.
  return el("div", { class: "scroll", tabindex: "0" }, el("table", { class: cls },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows)));
}

export const figure = (name, value) => el("div", { class: "figure" }, el("span", { class: "muted small", text: name }), el("strong", {}, value));
