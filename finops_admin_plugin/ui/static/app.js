// FinOps Batch Admin — built-in UI. Plain DOM code: every value from the API goes
// through textContent, never innerHTML.
"use strict";

const BASE = "/finops/admin";
const state = { cursor: null, token: sessionStorage.getItem("finops-token") || "", config: null };
const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fmtTime = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—");
function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return m < 60 ? `${m} min ${s} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
const fmtNumber = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
const badge = (status) => el("span", { class: `badge s-${status}`, text: status });

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(BASE + path, { ...options, headers });
  if (response.status === 401) $("#auth-panel").hidden = false;
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const body = isJson ? await response.json() : null;
  if (!response.ok) {
    const message = body && body.error ? `${body.error.name}: ${body.error.message}` : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

function showError(error) {
  const box = $("#error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

function queryFromFilters() {
  const form = $("#filters");
  const params = new URLSearchParams();
  for (const input of form.querySelectorAll("input[type=checkbox]:checked")) params.append(input.name, input.value);
  for (const name of ["period", "trigger", "from", "to", "q", "sort"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function runRow(run) {
  const domains = el("td", { class: "nowrap" }, Object.entries(run.domainStatuses || {}).map(([domain, status]) =>
    el("span", { class: `pill s-${status}`, title: `${domain}: ${status}`, text: domain })));
  const anomalies = (run.anomalies || []).length;
  const row = el("tr", { class: anomalies ? "abnormal" : "", "data-run-id": run.runId, onclick: () => openDetail(run.runId) },
    el("td", {}, badge(run.status)),
    el("td", { class: "mono", title: run.runId, text: run.runId.slice(0, 8) }),
    el("td", { text: run.trigger }),
    el("td", { text: run.launchedBy || "—" }),
    el("td", { text: (run.periods || []).join(", ") }),
    domains,
    el("td", { class: "nowrap", text: fmtTime(run.startTime) }),
    el("td", { class: "nowrap" }, fmtDuration(run.durationSeconds),
      anomalies ? el("span", { class: "anomaly", title: anomalyText(run.anomalies), text: " ⚠" }) : null),
    el("td", { text: fmtNumber(run.volumes && run.volumes.relevesInserted) }),
    el("td", { text: fmtNumber(run.volumes && run.volumes.relevesRejected) }),
    el("td", { class: run.errors && run.errors.count ? "errors" : "muted", text: errorText(run.errors) }));
  return row;
}

function errorText(errors) {
  if (!errors || !errors.count) return "—";
  const more = errors.count > 1 ? ` (+${errors.count - 1} more)` : "";
  return `${errors.message || "failed"}${more}`;
}

const anomalyText = (items) => (items || []).map((a) =>
  `${a.scope} ${a.metric}: ${fmtNumber(a.value)} vs usual ${fmtNumber(a.baseline)} (score ${Number(a.score).toFixed(1)})`).join("\n");

async function loadRuns(append = false) {
  showError(null);
  const params = queryFromFilters();
  if (append && state.cursor) params.set("cursor", state.cursor);
  try {
    const page = await api(`/runs?${params}`);
    const body = $("#runs tbody");
    if (!append) body.replaceChildren();
    for (const run of page.items) body.append(runRow(run));
    state.cursor = page.pageInfo.nextCursor;
    $("#more").hidden = !state.cursor;
    $("#total").textContent = `${page.totalItems} run(s)`;
    if (!page.items.length && !append) body.append(el("tr", {}, el("td", { colspan: 11, class: "muted", text: "No run matches these filters." })));
  } catch (error) { showError(error); }
  const csv = queryFromFilters(); csv.set("format", "csv");
  $("#csv-link").href = `${BASE}/runs?${csv}`;
}

function section(title, ...content) { return [el("h3", { text: title }), ...content]; }

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, rows));
}

async function openDetail(runId) {
  const drawer = $("#detail"), body = $("#detail-body");
  drawer.hidden = false;
  body.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  let run;
  try { run = await api(`/runs/${encodeURIComponent(runId)}`); }
  catch (error) { body.replaceChildren(el("p", { class: "error", text: String(error.message) })); return; }
  const links = run.links || {}, logs = run.logs || {};
  const blocks = (run.blocks || []).map((b) => el("tr", {},
    el("td", { text: b.domain }), el("td", {}, badge(b.status)),
    el("td", { text: fmtDuration(b.durationSeconds) }), el("td", { text: String(b.attempts ?? "—") }),
    el("td", { text: fmtNumber(b.volumes && b.volumes.rowsRead) }),
    el("td", { text: fmtNumber(b.volumes && b.volumes.relevesInserted) }),
    el("td", { text: fmtNumber(b.volumes && b.volumes.relevesDeleted) }),
    el("td", { text: fmtNumber(b.volumes && b.volumes.relevesRejected) }),
    el("td", { text: b.volumes && b.volumes.billedCost != null ? Number(b.volumes.billedCost).toFixed(2) : "—" }),
    el("td", {}, (b.errors || []).map((e) => el("div", { class: "error-cell", text: e.message })),
      (b.anomalies || []).length ? el("div", { class: "anomaly", text: anomalyText(b.anomalies) }) : null),
    el("td", {}, b.links && b.links.logs ? el("a", { href: b.links.logs, text: "logs" }) : null)));
  const mvs = ((run.aggregates && run.aggregates.mvs) || []).map((mv) => el("tr", {},
    el("td", { class: "mono", text: mv.name }), el("td", {}, badge(mv.status)),
    el("td", { text: fmtTime(mv.refreshedAt) }), el("td", { text: fmtDuration(mv.durationSeconds) }),
    el("td", { text: fmtNumber(mv.rowCount) })));
  const excerpt = logs.excerpt;
  body.replaceChildren(
    el("h2", {}, badge(run.status), " ", el("span", { class: "mono", text: run.runId })),
    el("dl", { class: "kv" },
      el("dt", { text: "Trigger" }), el("dd", { text: `${run.trigger} — ${run.launchedBy || "unknown"}` }),
      el("dt", { text: "Started / ended" }), el("dd", { text: `${fmtTime(run.startTime)} → ${fmtTime(run.endTime)}` }),
      el("dt", { text: "Duration" }), el("dd", { text: fmtDuration(run.durationSeconds) }),
      el("dt", { text: "Dagster status" }), el("dd", { text: run.dagsterStatus }),
      el("dt", { text: "Version" }), el("dd", { text: run.version || "—" }),
      el("dt", { text: "Periods" }), el("dd", { text: (run.periods || []).map((p) => `${p.period} (${p.role})`).join(", ") }),
      el("dt", { text: "Errors" }), el("dd", { text: run.errors && run.errors.count ? run.errors.message : "none" })),
    ...section("Logs", el("p", {},
      logs.downloadUrl ? el("a", { class: "button", href: logs.downloadUrl, text: "Download logs" }) : null, " ",
      logs.dagsterUrl ? el("a", { href: logs.dagsterUrl, target: "_blank", rel: "noopener", text: "Open in Dagster ↗" }) : null, " ",
      logs.externalUrl ? el("a", { href: logs.externalUrl, target: "_blank", rel: "noopener", text: "Open in log search ↗" }) : null),
      excerpt ? el("div", {}, el("p", { text: `Failing step: ${excerpt.stepKey}` }),
        el("pre", { class: "excerpt", text: (excerpt.lines || []).join("\n") })) : null),
    ...section("Domains", table(["Domain", "Status", "Duration", "Attempts", "Read", "Inserted", "Deleted", "Rejected", "Billed cost", "Errors", ""], blocks)),
    ...section("Materialized views", mvs.length ? table(["View", "Status", "Refreshed", "Duration", "Rows"], mvs)
      : el("p", { class: "muted", text: "Not refreshed in this run." })),
    ...section("Totals", el("p", { text: `${fmtNumber(run.aggregates && run.aggregates.relevesInserted)} inserted, ${fmtNumber(run.aggregates && run.aggregates.relevesDeleted)} deleted` })));
}

async function sendReprocess(dryRun) {
  const form = $("#reprocess-form"), out = $("#reprocess-result");
  const periods = form.elements.periods.value.split(",").map((p) => p.trim()).filter(Boolean);
  const domains = [...form.querySelectorAll("input[name=domains]:checked")].map((i) => i.value);
  out.replaceChildren(el("p", { class: "muted", text: dryRun ? "Computing impact…" : "Submitting…" }));
  try {
    const result = await api("/runs/reprocess", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ periods, domains, reason: form.elements.reason.value, dryRun }),
    });
    out.replaceChildren(el("pre", { class: "excerpt", text: JSON.stringify(result, null, 2) }));
  } catch (error) { out.replaceChildren(el("p", { class: "error", text: String(error.message) })); }
}

async function init() {
  try { state.config = await api("/ui-config"); } catch (error) { showError(error); }
  if (state.config) {
    $("#dev-banner").hidden = state.config.authMode !== "dev";
    $("#dagster-link").href = state.config.dagsterUiUrl;
  }
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadRuns(); });
  $("#more").addEventListener("click", () => loadRuns(true));
  $("#close-detail").addEventListener("click", () => { $("#detail").hidden = true; });
  $("#auth-form").addEventListener("submit", (e) => {
    e.preventDefault(); state.token = $("#auth-token").value.trim();
    sessionStorage.setItem("finops-token", state.token); $("#auth-panel").hidden = true; loadRuns();
  });
  $("#open-reprocess").addEventListener("click", () => $("#reprocess-dialog").showModal());
  $("#dry-run").addEventListener("click", () => sendReprocess(true));
  $("#submit-reprocess").addEventListener("click", () => sendReprocess(false));
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("#detail").hidden = true; });
  await loadRuns();
}

init();
