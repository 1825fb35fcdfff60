// FinOps Batch Admin — built-in UI. Plain DOM code, no framework, no inline script or handler
// (the page is served with `script-src 'self'`). Every value from the API goes through
// textContent, never innerHTML.
"use strict";

const BASE = "/finops/admin";
const UI = `${BASE}/ui`;
const POLL_MS = 5000;
const REPROCESS_POLL_MS = 1500;
const ACTIVE = new Set(["QUEUED", "RUNNING"]);
const DOMAINS = ["open", "private", "public", "native"];
const LABELS = { open: "Open", private: "Private", public: "Public", native: "Native" };
const ROLE_LABELS = { CURRENT: "CURRENT", PREVIOUS: "N-1", OTHER: "OTHER" };
const METRICS = { durationSeconds: "duration", relevesInserted: "relevés inserted", billedCost: "billed cost" };

const state = {
  token: sessionStorage.getItem("finops-token") || "",
  config: null,
  me: null,
  cursor: null,
  items: [],
  pollTimer: null,
  listGeneration: 0,
  reprocess: { previewed: null, timer: null },
};
const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
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

// ---- formatting --------------------------------------------------------------------------

const fmtTime = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—");
function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Number(seconds).toFixed(1)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
const fmtNumber = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
const fmtCost = (n) => (n === null || n === undefined ? "—"
  : Number(n).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}
const shortId = (runId) => runId.slice(0, 8);
const label = (domain) => LABELS[domain] || domain;

// Absolute server paths (and URLs) in a message are cut to their last component: a run list
// shows the cause, not where the server keeps its files.
const PATH = /(?:\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]+|(?<![\w.~-])(?:\/[^\s'":,;()<>[\]]+){2,}|\b[A-Za-z]:\\[^\s'"<>]+)/g;
function shortenPaths(text) {
  if (!text) return text;
  return String(text).replace(PATH, (path) => {
    const parts = path.replace(/[\\/]+$/, "").split(/[\\/]/);
    return `…/${parts[parts.length - 1]}`;
  });
}
const oneLine = (text, max = 140) => {
  const line = shortenPaths(String(text || "")).split("\n")[0].trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

function anomalyText(a) {
  const fmt = a.metric === "durationSeconds" ? fmtDuration : fmtNumber;
  return `${a.scope} ${METRICS[a.metric] || a.metric}: ${fmt(a.value)}, baseline ${fmt(a.baseline)} (score ${Number(a.score).toFixed(1)})`;
}

// ---- small widgets -----------------------------------------------------------------------

let tipCount = 0;
/** A focusable element with a tooltip shown on hover and keyboard focus (role=tooltip). */
function withTip(content, tipText, cls = "") {
  const id = `tip-${++tipCount}`;
  return el("span", { class: `tip ${cls}`.trim(), tabindex: "0", "aria-describedby": id },
    content, el("span", { class: "tip-text", role: "tooltip", id, text: tipText }));
}

function badge(status, message) {
  const node = el("span", { class: `badge s-${status}` },
    ACTIVE.has(status) ? el("span", { class: "pulse", "aria-hidden": "true" }) : null, status);
  return status === "FAILED" && message ? withTip(node, oneLine(message, 300), "badge-tip") : node;
}

function chip(domain, status) {
  return el("span", { class: `chip s-${status}`, title: `${label(domain)}: ${status}` },
    label(domain), el("span", { class: "sr-only", text: ` ${status}` }));
}

function copyButton(text, what) {
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

const navLink = (href, text, attrs = {}) => el("a", { href, "data-nav": "", ...attrs }, text);
/** Domains of a run that it selected, in the canonical order. */
const selectedDomains = (statuses) => DOMAINS.filter((d) => statuses && statuses[d] && statuses[d] !== "NOT_SELECTED")
  .map((d) => [d, statuses[d]]);
const runHref = (runId) => `${UI}/runs/${encodeURIComponent(runId)}`;
const extLink = (href, text, attrs = {}) => (href ? el("a", { href, target: "_blank", rel: "noopener", ...attrs }, text) : null);

/** A download link: a plain link in dev mode; with a token, fetched with it and saved. */
function downloadLink(href, text, attrs = {}) {
  return el("a", { href, download: "", ...attrs, onclick: (event) => {
    if (!state.token) return;
    event.preventDefault();
    saveWithToken(href).catch(showError);
  } }, text);
}

async function saveWithToken(href) {
  const response = await fetch(href, { headers: { Authorization: `Bearer ${state.token}` } });
  if (!response.ok) throw new Error(await errorOf(response));
  const disposition = response.headers.get("content-disposition") || "";
  const match = disposition.match(/filename="?([^";]+)"?/);
  const url = URL.createObjectURL(await response.blob());
  const a = el("a", { href: url, download: match ? match[1] : "download" });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- API ---------------------------------------------------------------------------------

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) return `${body.error.name}: ${body.error.message}`;
  } catch { /* not JSON */ }
  return `HTTP ${response.status} ${response.statusText}`;
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(BASE + path, { ...options, headers });
  if (response.status === 401) $("#auth-panel").hidden = false;
  if (!response.ok) throw new Error(await errorOf(response));
  return response.status === 204 ? null : response.json();
}

function showError(error) {
  const box = $("#error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

const may = (what) => Boolean(state.me && state.me.access && state.me.access[what]);

// ---- routing -----------------------------------------------------------------------------

function route() {
  const path = location.pathname.replace(/\/+$/, "");
  const detail = path.match(/\/ui\/runs\/([^/]+)$/);
  if (detail) return { screen: "detail", runId: decodeURIComponent(detail[1]) };
  if (path.endsWith("/ui/coverage")) return { screen: "coverage" };
  return { screen: "runs" };
}

function navigate(href, replace = false) {
  if (replace) history.replaceState(null, "", href); else history.pushState(null, "", href);
  render();
}

function render() {
  stopPolling();
  showError(null);
  const r = route();
  for (const name of ["runs", "detail", "coverage"]) $(`#screen-${name}`).hidden = r.screen !== name;
  $("#tab-runs").toggleAttribute("aria-current", r.screen !== "coverage");
  $("#tab-coverage").toggleAttribute("aria-current", r.screen === "coverage");
  if (r.screen === "runs") { $("#tab-runs").setAttribute("aria-current", "page"); renderRuns(); }
  else if (r.screen === "coverage") { $("#tab-coverage").setAttribute("aria-current", "page"); renderCoverage(); }
  else renderDetail(r.runId);
}

// ---- Batch Runs --------------------------------------------------------------------------

const FILTER_KEYS = ["status", "period", "domain", "trigger", "from", "to", "q", "anomalous", "sort", "limit"];
const pageSize = () => Number(new URLSearchParams(location.search).get("limit")) || 50;

function filtersFromUrl() {
  const url = new URLSearchParams(location.search);
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) for (const value of url.getAll(key)) if (value) params.append(key, value);
  return params;
}

function fillForm(params) {
  const form = $("#filters");
  for (const input of form.querySelectorAll("input[type=checkbox]")) {
    input.checked = params.getAll(input.name).flatMap((v) => v.split(","))
      .some((v) => v.toLowerCase() === input.value.toLowerCase());
  }
  for (const name of ["period", "trigger", "from", "to", "q"]) form.elements[name].value = params.get(name) || "";
  form.elements.sort.value = params.get("sort") || "-startTime";
}

function formParams() {
  const form = $("#filters");
  const params = new URLSearchParams();
  for (const input of form.querySelectorAll("input[type=checkbox]:checked")) params.append(input.name, input.value);
  for (const name of ["period", "trigger", "from", "to", "q"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  if (form.elements.sort.value !== "-startTime") params.set("sort", form.elements.sort.value);
  const limit = new URLSearchParams(location.search).get("limit");  // page size, kept across filters
  if (limit) params.set("limit", limit);
  return params;
}

function applyFilters() {
  const query = formParams().toString();
  const href = `${UI}/${query ? `?${query}` : ""}`;
  if (href !== location.pathname + location.search) navigate(href);
}

function renderRuns() {
  const params = filtersFromUrl();
  fillForm(params);
  const csv = new URLSearchParams(params); csv.delete("limit"); csv.set("format", "csv");
  $("#csv-link").href = `${BASE}/runs?${csv}`;
  state.cursor = null;
  loadRuns(false);
}

async function loadRuns(append, { refresh = false } = {}) {
  // A load supersedes a refresh in flight (older generation) and the next one (timer stopped).
  if (!refresh) stopPolling();
  const generation = refresh ? state.listGeneration : ++state.listGeneration;
  const params = filtersFromUrl();
  if (append && state.cursor) params.set("cursor", state.cursor);
  // A refresh re-reads every row shown so far in one page.
  if (refresh) params.set("limit", String(Math.min(200, Math.max(pageSize(), state.items.length))));
  let page;
  try { page = await api(`/runs?${params}`); }
  catch (error) { if (generation === state.listGeneration) showError(error); return; }
  if (generation !== state.listGeneration || route().screen !== "runs") return;
  showError(null);
  state.items = append ? state.items.concat(page.items) : page.items;
  if (!refresh || !append) state.cursor = page.pageInfo.nextCursor;
  const body = $("#runs tbody");
  body.replaceChildren(...state.items.map(runRow));
  if (!state.items.length) body.append(el("tr", {}, el("td", { colspan: 9, class: "muted", text: "No run matches these filters." })));
  $("#more").hidden = !state.cursor;
  $("#total").textContent = `${page.totalItems} run(s)`;
  schedulePolling();
}

function schedulePolling() {
  stopPolling();
  const active = state.items.filter((run) => ACTIVE.has(run.status)).length;
  $("#refresh-state").textContent = active ? `${active} run(s) in progress: refreshing every ${POLL_MS / 1000} s` : "";
  if (!active) return;
  state.pollTimer = setTimeout(() => {
    state.pollTimer = null;
    if (document.hidden) { schedulePolling(); return; }
    loadRuns(false, { refresh: true });
  }, POLL_MS);
}

function stopPolling() {
  if (state.pollTimer) clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

function anomaliesOf(run, metric) { return (run.anomalies || []).filter((a) => a.metric === metric); }

function flagged(content, anomalies) {
  if (!anomalies.length) return content;
  return withTip(el("span", { class: "abnormal-value" }, content, el("span", { class: "sr-only", text: " (abnormal)" })),
    anomalies.map(anomalyText).join("\n"));
}

function runRow(run) {
  const links = run.links || {};
  const v = run.volumes || {};
  const selected = selectedDomains(run.domainStatuses);
  const durationAnomalies = anomaliesOf(run, "durationSeconds");
  const volumeAnomalies = anomaliesOf(run, "relevesInserted").concat(anomaliesOf(run, "billedCost"));
  const errors = run.errors || {};
  return el("tr", { "data-run-id": run.runId, "data-status": run.status, class: (run.anomalies || []).length ? "abnormal" : null },
    el("td", {}, badge(run.status, errors.message)),
    el("td", { class: "nowrap" }, navLink(runHref(run.runId), shortId(run.runId), { class: "mono run-link", title: run.runId }), " ",
      copyButton(run.runId, "run id")),
    el("td", {}, el("div", { text: run.trigger }), el("div", { class: "muted small", text: run.launchedBy || "—" })),
    el("td", { class: "nowrap" }, (run.periods || []).map((p) => el("div", { text: p }))),
    el("td", { class: "nowrap small" },
      el("div", { text: fmtTime(run.startTime) }), el("div", { text: fmtTime(run.endTime) }),
      el("div", {}, flagged(fmtDuration(run.durationSeconds), durationAnomalies))),
    el("td", {}, el("div", { class: "chips" }, selected.map(([d, s]) => chip(d, s)))),
    el("td", { class: "nowrap small" },
      el("div", {}, flagged(`${fmtNumber(v.relevesInserted)} inserted`, volumeAnomalies)),
      el("div", { class: v.relevesRejected ? "warn" : null, text: `${fmtNumber(v.relevesRejected)} rejected` }),
      el("div", { text: `${fmtNumber(v.mvsRefreshed)} MVs refreshed` })),
    el("td", { class: "errors-cell" }, errors.count
      ? [el("strong", { class: "error-count", text: String(errors.count) }), " ",
        el("span", { class: "error-line", text: oneLine(errors.message || "failed") })]
      : el("span", { class: "muted", text: "—" })),
    el("td", { class: "actions" },
      navLink(runHref(run.runId), "Detail", { "aria-label": `Detail of run ${shortId(run.runId)}` }),
      may("logs") && links.logs ? downloadLink(links.logs, "Logs", { "aria-label": `Download the logs of run ${shortId(run.runId)}`, class: "logs-link" }) : null,
      extLink(links.dagster, "Dagster ↗", { "aria-label": `Open run ${shortId(run.runId)} in Dagster` }),
      may("logs") ? extLink(links.external, "Ext. logs ↗", { "aria-label": `Open the external logs of run ${shortId(run.runId)}` }) : null,
      may("reprocess") && run.status === "FAILED" ? el("button", { type: "button", class: "link-button reprocess-row",
        "aria-label": `Reprocess the failed domains of run ${shortId(run.runId)}`,
        onclick: () => openReprocess(reprocessPrefill(run, selectedDomains(run.domainStatuses)
          .filter(([, s]) => s === "FAILED").map(([d]) => d), run.periods || [])) }, "Reprocess…") : null));
}

// ---- Run Detail --------------------------------------------------------------------------

function panel(id, title, ...content) {
  return el("section", { class: "panel", id, "aria-labelledby": `${id}-title` },
    el("h2", { id: `${id}-title`, text: title }), ...content);
}

function kv(pairs) {
  return el("dl", { class: "kv" }, pairs.filter(Boolean).map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
}

function table(headers, rows, cls = "") {
  // Focusable: a table wider than its panel scrolls, and a keyboard must reach that scroll.
  return el("div", { class: "scroll", tabindex: "0" }, el("table", { class: cls },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows)));
}

async function renderDetail(runId) {
  const body = $("#detail-body");
  body.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  document.title = `Run ${shortId(runId)} — FinOps Batch Admin`;
  let run;
  try { run = await api(`/runs/${encodeURIComponent(runId)}`); }
  catch (error) { body.replaceChildren(el("h1", { text: `Run ${runId}` }), el("p", { class: "error", role: "alert", text: String(error.message) })); return; }
  if (route().runId !== runId) return;
  const logs = run.logs || {}, links = run.links || {};
  const failedDomains = (run.blocks || []).filter((b) => b.status === "FAILED").map((b) => b.domain);
  body.replaceChildren(
    el("h1", {}, "Run ", el("span", { class: "mono", text: run.runId }), " ", copyButton(run.runId, "run id")),
    summarySection(run, failedDomains),
    panel("periods", "B · Periods", el("ul", { class: "periods" }, (run.periods || []).map((p) =>
      el("li", {}, el("strong", { text: p.period }), " ", el("span", { class: `role r-${p.role}`, text: ROLE_LABELS[p.role] || p.role }))))),
    panel("blocks", "C · Domains", el("div", { class: "blocks" }, (run.blocks || []).filter((b) => b.status !== "NOT_SELECTED").map(blockCard)),
      notSelected(run.blocks || [])),
    aggregatesSection(run.aggregates || {}),
    logsSection(logs, links));
  if (ACTIVE.has(run.status)) {
    state.pollTimer = setTimeout(() => { if (route().runId === runId) renderDetail(runId); }, POLL_MS);
  }
}

function summarySection(run, failedDomains) {
  const errors = run.errors || {};
  const actions = el("p", { class: "actions-row" },
    may("reprocess") ? el("button", { type: "button", class: "primary", id: "reprocess-run",
      onclick: () => openReprocess(reprocessPrefill(run, failedDomains, (run.periods || []).map((p) => p.period))) },
      failedDomains.length ? "Reprocess failed domains…" : "Reprocess…") : null);
  return panel("summary", "A · Summary",
    kv([
      ["Status", el("span", {}, badge(run.status), run.dagsterStatus ? el("span", { class: "muted", text: ` Dagster ${run.dagsterStatus}` }) : null)],
      ["Trigger", `${run.trigger} — ${run.launchedBy || "unknown"}`],
      run.reason ? ["Reason", run.reason] : null,
      run.reprocessRequestId ? ["Reprocess request", el("span", { class: "mono", text: run.reprocessRequestId })] : null,
      ["Started", fmtTime(run.startTime)],
      ["Ended", fmtTime(run.endTime)],
      ["Duration", flagged(fmtDuration(run.durationSeconds), anomaliesOf(run, "durationSeconds"))],
      ["Domains", el("span", { class: "chips" }, selectedDomains(run.domainStatuses).map(([d, s]) => chip(d, s)))],
      ["Version", el("span", { class: "mono", text: run.version || "—" })],
      ["Errors", errors.count ? el("span", { class: "error-text", text: `${errors.count}: ${oneLine(errors.message, 300)}` }) : "none"],
      (run.anomalies || []).length ? ["Anomalies", el("ul", { class: "plain" }, run.anomalies.map((a) => el("li", { class: "abnormal-value", text: anomalyText(a) })))] : null,
    ]), actions);
}

/** A reprocess of a run: its periods, its failed domains (all its domains when none failed). */
function reprocessPrefill(run, failedDomains, periods) {
  return {
    periods,
    domains: failedDomains.length ? failedDomains : run.domains,
    reason: `Reprocess of run ${shortId(run.runId)}${failedDomains.length ? ` (failed: ${failedDomains.join(", ")})` : ""}`,
  };
}

function notSelected(blocks) {
  const names = blocks.filter((b) => b.status === "NOT_SELECTED").map((b) => label(b.domain));
  return names.length ? el("p", { class: "muted", text: `Not selected in this run: ${names.join(", ")}.` }) : null;
}

function blockCard(b) {
  const v = b.volumes || {};
  const rejected = Object.entries(v.rejectedByReason || {});
  const perPeriod = b.periods || [];
  return el("article", { class: `block b-${b.status}`, "data-domain": b.domain, "aria-label": `${label(b.domain)} block` },
    el("h3", {}, label(b.domain), " ", badge(b.status), " ",
      el("span", { class: "muted small", text: `${b.stepKey} · ${fmtDuration(b.durationSeconds)} · ${b.attempts || 0} attempt(s)` })),
    el("div", { class: "figures" },
      figure("Rows read", fmtNumber(v.rowsRead)),
      figure("Inserted", flagged(fmtNumber(v.relevesInserted), (b.anomalies || []).filter((a) => a.metric === "relevesInserted"))),
      figure("Deleted", fmtNumber(v.relevesDeleted)),
      figure("Rejected", fmtNumber(v.relevesRejected)),
      figure("Billed cost", fmtCost(v.billedCost))),
    rejected.length ? el("p", { class: "small" }, "Rejected by reason: ",
      rejected.map(([reason, n], i) => [i ? ", " : "", el("span", { class: "mono", text: reason }), ` ${fmtNumber(n)}`])) : null,
    perPeriod.length ? table(["Period", "Read", "Inserted", "Deleted", "Rejected", "Billed cost", "Gate"],
      perPeriod.map((p) => el("tr", { "data-period": p.period }, el("td", { text: p.period }), el("td", { text: fmtNumber(p.rowsRead) }),
        el("td", { text: fmtNumber(p.relevesInserted) }), el("td", { text: fmtNumber(p.relevesDeleted) }),
        el("td", { text: fmtNumber(p.relevesRejected) }), el("td", { text: fmtCost(p.billedCost) }),
        el("td", {}, p.gate ? el("span", { class: "badge s-FAILED", text: p.gate }) : "—"))), "compact") : null,
    (b.errors || []).length ? el("ul", { class: "block-errors" }, b.errors.map((e) =>
      el("li", {}, el("span", { class: "kind", text: e.kind }), " ", el("span", { text: shortenPaths(e.message) })))) : null,
    (b.anomalies || []).length ? el("ul", { class: "plain" }, b.anomalies.map((a) => el("li", { class: "abnormal-value", text: anomalyText(a) }))) : null,
    Array.isArray(b.quality) && b.quality.length ? qualityTable(b.quality) : null,
    el("p", { class: "actions-row" },
      may("logs") && b.links && b.links.logs ? downloadLink(b.links.logs, `${label(b.domain)} logs`, { class: "button" }) : null,
      may("logs") && b.links ? extLink(b.links.external, "External logs ↗") : null));
}

const figure = (name, value) => el("div", { class: "figure" }, el("span", { class: "muted small", text: name }), el("strong", {}, value));

function qualityTable(quality) {
  return el("div", { class: "quality" }, el("h4", { text: "Load quality" }),
    table(["Period", "FOCUS", "Files", "Rows read", "Rows loaded", "Rejected", "Warnings", "Unassigned cost", "Gate"],
      quality.map((q) => el("tr", {},
        el("td", { text: q.period }),
        el("td", { text: (q.focusVersions || []).join(", ") || "—" }),
        el("td", { text: fmtNumber(q.files) }),
        el("td", { text: fmtNumber(q.rowsRead) }),
        el("td", { text: fmtNumber(q.rowsLoaded) }),
        el("td", {}, (q.rejected || []).length ? q.rejected.map((r) => el("div", {},
          el("span", { class: "mono", text: r.reason }), `: ${fmtNumber(r.count)}`,
          (r.samples || []).map((s) => el("div", { class: "muted small sample",
            text: `${shortenPaths(s.file)}${s.line != null ? `:${s.line}` : ""}${s.column ? ` ${s.column}` : ""}${s.value != null ? ` = ${s.value}` : ""}` })))) : "—"),
        el("td", {}, (q.warnings || []).length ? q.warnings.map((w) => el("div", {}, el("span", { class: "mono", text: w.rule }), `: ${fmtNumber(w.count)}`)) : "—"),
        el("td", { text: `${fmtCost(q.unassignedCost)}${q.unassignedRows ? ` (${fmtNumber(q.unassignedRows)} rows)` : ""}` }),
        el("td", {}, q.gate ? el("span", { class: "badge s-FAILED", text: q.gate }) : "—"))), "compact"));
}

function aggregatesSection(agg) {
  const mvs = agg.mvs || [];
  return panel("aggregates", "D · Aggregates",
    el("div", { class: "figures" },
      figure("Relevés inserted", fmtNumber(agg.relevesInserted)),
      figure("Relevés deleted", fmtNumber(agg.relevesDeleted)),
      agg.relevesRejected !== undefined ? figure("Rejected", fmtNumber(agg.relevesRejected)) : null,
      agg.billedCost !== undefined ? figure("Billed cost", fmtCost(agg.billedCost)) : null),
    mvs.length ? table(["Materialized view", "Status", "Refreshed at", "Refresh time", "Rows"],
      mvs.map((mv) => el("tr", { "data-mv": mv.name }, el("td", { class: "mono", text: mv.name }), el("td", {}, badge(mv.status)),
        el("td", { text: fmtTime(mv.refreshedAt) }), el("td", { text: fmtDuration(mv.durationSeconds) }),
        el("td", { text: fmtNumber(mv.rowCount) }))), "mvs")
      : el("p", { class: "muted", text: "No materialized view in this run." }));
}

function logsSection(logs, links) {
  const excerpt = logs.excerpt;
  if (!may("logs")) {
    return panel("logs", "E · Logs", el("p", { class: "muted", text: "Logs are for FinOps admins." }),
      el("p", {}, extLink(logs.dagsterUrl || links.dagster, "Open in Dagster ↗")));
  }
  return panel("logs", "E · Logs",
    el("p", { class: "actions-row" },
      logs.downloadUrl ? downloadLink(logs.downloadUrl, "Download logs", { class: "button", id: "download-logs" }) : null,
      logs.downloadUrl ? downloadLink(`${logs.downloadUrl}?stream=stderr`, "stderr only", { class: "button" }) : null,
      extLink(logs.dagsterUrl || links.dagster, "Open in Dagster ↗", { class: "button" }),
      extLink(logs.externalUrl || links.external, "Open external logs ↗", { class: "button" })),
    excerpt ? [el("p", {}, "Failing step: ", el("span", { class: "mono", text: excerpt.stepKey })),
      el("pre", { class: "excerpt", tabindex: "0", "aria-label": "Failure excerpt", text: (excerpt.lines || []).join("\n") })]
      : el("p", { class: "muted", text: "No failure excerpt: no step failed." }));
}

// ---- Coverage ----------------------------------------------------------------------------

async function renderCoverage() {
  document.title = "Coverage — FinOps Batch Admin";
  const target = $("#coverage-body");
  target.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  let coverage, failed;
  try {
    [coverage, failed] = await Promise.all([api("/coverage"), api("/runs?status=FAILED&limit=200")]);
  } catch (error) { target.replaceChildren(); showError(error); return; }
  if (route().screen !== "coverage") return;
  const cells = new Map(coverage.items.map((c) => [`${c.period}|${c.domain}`, c]));
  // A later failed attempt on a cell: a failed run whose block of that domain failed, started after the last load.
  const failures = new Map();
  for (const run of failed.items) {
    for (const [domain, status] of Object.entries(run.domainStatuses || {})) {
      if (status !== "FAILED") continue;
      for (const period of run.periods || []) {
        const key = `${period}|${domain}`;
        const cell = cells.get(key);
        const since = cell && cell.lastLoad ? new Date(cell.lastLoad.time) : null;
        if (!since || (run.startTime && new Date(run.startTime) > since)) {
          if (!failures.has(key)) failures.set(key, run);
        }
      }
    }
  }
  $("#coverage-legend").textContent = `Last successful load of each month and domain. Stale: never loaded, or the current or previous month not reloaded within ${Math.round(coverage.staleAfterSeconds / 3600)} h. Failed: a later run failed on it.`;
  target.replaceChildren(el("table", { id: "coverage", class: "coverage" },
    el("caption", { class: "sr-only", text: "Coverage: months by domains" }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Month" }), coverage.domains.map((d) => el("th", { scope: "col", text: label(d) })))),
    el("tbody", {}, coverage.periods.map((period) => el("tr", {}, el("th", { scope: "row", text: period }),
      coverage.domains.map((domain) => coverageCell(cells.get(`${period}|${domain}`), failures.get(`${period}|${domain}`))))))));
}

function coverageCell(cell, failure) {
  if (!cell) return el("td", { text: "—" });
  const marks = [];
  if (failure) marks.push(el("span", { class: "mark failed" }, "failed ", navLink(runHref(failure.runId), shortId(failure.runId), { class: "mono" })));
  if (cell.stale) marks.push(el("span", { class: "mark stale", text: cell.lastLoad ? "stale" : "never loaded" }));
  const cls = ["cov", failure ? "is-failed" : "", cell.stale ? "is-stale" : "", cell.lastLoad ? "" : "is-missing"].filter(Boolean).join(" ");
  return el("td", { class: cls, "data-period": cell.period, "data-domain": cell.domain },
    cell.lastLoad ? [
      el("div", {}, navLink(runHref(cell.lastLoad.runId), shortId(cell.lastLoad.runId), { class: "mono" }), " ",
        el("span", { class: "muted small", text: fmtAge(cell.ageSeconds) })),
      el("div", { class: "small", text: `${fmtTime(cell.lastLoad.time)}` }),
      el("div", { class: "small", text: `${fmtNumber(cell.lastLoad.relevesInserted)} relevés` }),
    ] : null,
    marks);
}

// ---- Reprocess ---------------------------------------------------------------------------

function openReprocess(prefill = {}) {
  const dialog = $("#reprocess-dialog"), form = $("#reprocess-form");
  clearTimeout(state.reprocess.timer);
  form.reset();
  form.elements.periods.value = (prefill.periods || []).join(", ");
  const domains = prefill.domains || DOMAINS;
  for (const input of form.querySelectorAll("input[name=domains]")) input.checked = domains.includes(input.value);
  form.elements.reason.value = prefill.reason || "";
  state.reprocess.previewed = null;
  $("#submit-reprocess").disabled = true;
  $("#dry-run").disabled = false;
  $("#reprocess-result").replaceChildren();
  dialog.showModal();
}

function reprocessInput() {
  const form = $("#reprocess-form");
  return {
    periods: form.elements.periods.value.split(/[\s,]+/).map((p) => p.trim()).filter(Boolean),
    domains: [...form.querySelectorAll("input[name=domains]:checked")].map((i) => i.value),
    reason: form.elements.reason.value.trim(),
  };
}

function checkInput(input) {
  if (!input.periods.length) return "Give at least one period (YYYY-MM).";
  const bad = input.periods.find((p) => !/^\d{4}-(0[1-9]|1[0-2])$/.test(p));
  if (bad) return `Period must be YYYY-MM, got '${bad}'.`;
  if (!input.domains.length) return "Choose at least one domain.";
  if (input.reason.length < 3) return "Give a reason (3 to 500 characters).";
  return null;
}

async function previewReprocess() {
  const out = $("#reprocess-result"), input = reprocessInput();
  const problem = checkInput(input);
  if (problem) { out.replaceChildren(el("p", { class: "error", role: "alert", text: problem })); return; }
  out.replaceChildren(el("p", { class: "muted", text: "Computing the impact…" }));
  try {
    const preview = await api("/runs/reprocess", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...input, dryRun: true }) });
    state.reprocess.previewed = JSON.stringify(input);
    out.replaceChildren(previewView(preview));
    $("#submit-reprocess").disabled = false;
  } catch (error) { out.replaceChildren(el("p", { class: "error", role: "alert", text: String(error.message) })); }
}

function previewView(p) {
  const t = p.totals || {};
  return el("div", { id: "dry-run-result" },
    el("h3", { text: "Dry run: nothing filed yet" }),
    el("p", { text: p.message }),
    el("p", { class: "small", text: `${fmtNumber(t.rowsToDelete)} rows deleted, ${fmtNumber(t.rowsToInsert)} inserted, ${fmtNumber(t.rowsRejected)} rejected; ${t.failingPairs || 0} pair(s) would fail.` }),
    table(["Period", "Domain", "Outcome", "Delete", "Insert", "Rejected", "Note"],
      (p.pairs || []).map((pair) => el("tr", {}, el("td", { text: pair.period }), el("td", { text: label(pair.domain) }),
        el("td", {}, el("span", { class: `badge ${pair.outcome === "FAIL" ? "s-FAILED" : "s-SUCCESS"}`, text: pair.outcome })),
        el("td", { text: fmtNumber(pair.rowsToDelete) }), el("td", { text: fmtNumber(pair.rowsToInsert) }),
        el("td", { text: fmtNumber(pair.landing && pair.landing.rowsRejected) }),
        el("td", { class: "small", text: pair.landing && pair.landing.error ? oneLine(pair.landing.error, 200) : "" }))), "compact"),
    el("p", { class: "small", text: `Materialized views refreshed: ${(p.materializedViews || []).join(", ") || "none"}` }),
    el("p", { class: "confirm-note", text: "Check the impact, then confirm to file the request." }));
}

async function submitReprocess() {
  const out = $("#reprocess-result"), input = reprocessInput();
  if (state.reprocess.previewed !== JSON.stringify(input)) {
    $("#submit-reprocess").disabled = true;
    out.replaceChildren(el("p", { class: "error", role: "alert", text: "The request changed since its preview: preview it again." }));
    return;
  }
  $("#submit-reprocess").disabled = true;
  $("#dry-run").disabled = true;
  const key = (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/[^A-Za-z0-9._:-]/g, "");
  try {
    const request = await api("/runs/reprocess", { method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": key },
      body: JSON.stringify({ ...input, dryRun: false }) });
    followRequest(request);
  } catch (error) {
    $("#dry-run").disabled = false;
    out.replaceChildren(el("p", { class: "error", role: "alert", text: String(error.message) }));
  }
}

function followRequest(request) {
  const out = $("#reprocess-result");
  const steps = {
    PENDING: "Waiting for the Dagster sensor to launch its run…",
    LAUNCHED: "Launched.",
    FAILED: "The launch failed.",
    REJECTED: "The request was rejected.",
  };
  out.replaceChildren(el("div", { id: "reprocess-state", "data-state": request.state },
    el("p", {}, "Request ", el("span", { class: "mono", text: request.requestId }), ": ",
      el("span", { class: `badge rp-${request.state}`, text: request.state }), " ", steps[request.state] || ""),
    request.message ? el("p", { class: "error-text", text: request.message }) : null,
    request.runId ? el("p", {}, "Run: ", navLink(runHref(request.runId), request.runId, { class: "mono", id: "reprocess-run-link" })) : null));
  const link = $("#reprocess-run-link");
  if (link) link.addEventListener("click", () => $("#reprocess-dialog").close());
  if (request.state === "PENDING" && $("#reprocess-dialog").open) {
    state.reprocess.timer = setTimeout(async () => {
      try { followRequest(await api(`/reprocess/${encodeURIComponent(request.requestId)}`)); }
      catch (error) { out.append(el("p", { class: "error", text: String(error.message) })); }
    }, REPROCESS_POLL_MS);
  }
}

// ---- start -------------------------------------------------------------------------------

async function loadCaller() {
  try { state.me = await api("/me"); } catch (error) { state.me = null; showError(error); }
  const me = state.me;
  $("#dev-banner").hidden = !(me ? me.devMode : state.config && state.config.authMode === "dev");
  $("#who").textContent = me ? `${me.subject}${me.role ? ` (${me.role})` : ""}` : "";
  $("#open-reprocess").hidden = !may("reprocess");
}

async function init() {
  try { state.config = await api("/ui-config"); } catch { state.config = null; }
  if (state.config && state.config.dagsterUiUrl) {
    $("#dagster-link").href = state.config.dagsterUiUrl;
    $("#dagster-link").hidden = false;
  }
  await loadCaller();
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-nav]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if ($("#reprocess-dialog").open) $("#reprocess-dialog").close();
    navigate(link.getAttribute("href"));
  });
  window.addEventListener("popstate", render);
  const form = $("#filters");
  form.addEventListener("submit", (e) => { e.preventDefault(); applyFilters(); });
  form.addEventListener("change", (e) => { if (e.target.name !== "q" && e.target.checkValidity()) applyFilters(); });
  $("#reset-filters").addEventListener("click", () => navigate(`${UI}/`));
  $("#more").addEventListener("click", () => loadRuns(true));
  $("#auth-form").addEventListener("submit", async (e) => {
    e.preventDefault(); state.token = $("#auth-token").value.trim();
    sessionStorage.setItem("finops-token", state.token); $("#auth-panel").hidden = true;
    await loadCaller(); render();
  });
  $("#open-reprocess").addEventListener("click", () => openReprocess());
  $("#close-reprocess").addEventListener("click", () => $("#reprocess-dialog").close());
  $("#reprocess-dialog").addEventListener("close", () => clearTimeout(state.reprocess.timer));
  $("#reprocess-form").addEventListener("submit", (e) => e.preventDefault());
  $("#reprocess-form").addEventListener("input", () => {
    if (state.reprocess.previewed && state.reprocess.previewed !== JSON.stringify(reprocessInput())) $("#submit-reprocess").disabled = true;
  });
  $("#dry-run").addEventListener("click", previewReprocess);
  $("#submit-reprocess").addEventListener("click", submitReprocess);
  document.addEventListener("visibilitychange", () => { if (!document.hidden && route().screen === "runs" && !state.pollTimer) schedulePolling(); });
  render();
}

init();
