// Batch Runs: the filtered list (filters and sort in the address), its pages, its CSV export,
// refreshed while one of its runs is active.
import { api, BASE } from "./api.js";
import {
  $, ACTIVE, anomaliesOf, badge, chip, copyButton, downloadLink, el, extLink, flagged, money, navLink,
  runHref, selectedDomains, showError, UI,
} from "./dom.js";
import { firstLine, formatDuration, formatNumber, formatTime, shortId } from "./format.js";
import { seenInRuns } from "./failures.js";
import { openReprocess, reprocessPrefill } from "./reprocess.js";
import { navigate, route } from "./router.js";
import { may, state, stopPolling } from "./state.js";

const POLL_MS = 5000;
const FILTER_KEYS = ["status", "period", "domain", "trigger", "from", "to", "q", "anomalous", "signature", "sort", "limit"];
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
  // Not a form field: kept from the address (a Failures link) until the filters are reset.
  const signature = new URLSearchParams(location.search).get("signature");
  if (signature) params.set("signature", signature);
  const limit = new URLSearchParams(location.search).get("limit");  // page size, kept across filters
  if (limit) params.set("limit", limit);
  return params;
}

function applyFilters() {
  const query = formParams().toString();
  const href = `${UI}/${query ? `?${query}` : ""}`;
  if (href !== location.pathname + location.search) navigate(href);
}

export function renderRuns() {
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

function runRow(run) {
  const links = run.links || {};
  const v = run.volumes || {};
  const selected = selectedDomains(run.domainStatuses);
  const durationAnomalies = anomaliesOf(run, "durationSeconds");
  const volumeAnomalies = anomaliesOf(run, "relevesInserted");
  const errors = run.errors || {};
  return el("tr", { "data-run-id": run.runId, "data-status": run.status, class: (run.anomalies || []).length ? "abnormal" : null },
    el("td", {}, badge(run.status, errors.message)),
    el("td", { class: "nowrap" }, navLink(runHref(run.runId), shortId(run.runId), { class: "mono run-link", title: run.runId }), " ",
      copyButton(run.runId, "run id")),
    el("td", {}, el("div", {}, el("span", { class: `trigger t-${run.trigger}`, text: run.trigger })), el("div", { class: "muted small", text: run.launchedBy || "—" })),
    el("td", { class: "nowrap" }, (run.periods || []).map((p) => el("div", { text: p }))),
    el("td", { class: "nowrap small" },
      el("div", { text: formatTime(run.startTime) }), el("div", { text: formatTime(run.endTime) }),
      el("div", {}, flagged(formatDuration(run.durationSeconds), durationAnomalies))),
    el("td", {}, el("div", { class: "chips" }, selected.map(([d, s]) => chip(d, s)))),
    el("td", { class: "nowrap small" },
      el("div", {}, flagged(`${formatNumber(v.relevesInserted)} inserted`, volumeAnomalies)),
      el("div", { class: v.relevesRejected ? "warn" : null, text: `${formatNumber(v.relevesRejected)} rejected` }),
      el("div", { text: `${formatNumber(v.mvsRefreshed)} MVs refreshed` }),
      el("div", { class: "billed" }, flagged(money(v.billedCost), anomaliesOf(run, "billedCost")))),
    el("td", { class: "errors-cell" }, errors.count
      ? [el("strong", { class: "error-count", text: String(errors.count) }), " ",
        el("span", { class: "error-line", text: firstLine(errors.message || "failed") }),
        seenInRuns(errors) ? el("div", { class: "small" }, seenInRuns(errors)) : null]
      : el("span", { class: "muted", text: "—" })),
    el("td", { class: "actions" },
      navLink(runHref(run.runId), "Detail", { "aria-label": `Detail of run ${shortId(run.runId)}` }),
      may("logs") && links.logs ? downloadLink(links.logs, "Logs", { "aria-label": `Download the logs of run ${shortId(run.runId)}`, class: "logs-link" }) : null,
      // Dagster's UI shows the run's logs: offered only to callers who may read them.
      may("logs") ? extLink(links.dagster, "Dagster ↗", { "aria-label": `Open run ${shortId(run.runId)} in Dagster` }) : null,
      may("logs") ? extLink(links.external, "Ext. logs ↗", { "aria-label": `Open the external logs of run ${shortId(run.runId)}` }) : null,
      may("reprocess") && run.status === "FAILED" ? el("button", { type: "button", class: "link-button reprocess-row",
        "aria-label": `Reprocess the failed domains of run ${shortId(run.runId)}`,
        onclick: () => openReprocess(reprocessPrefill(run, selectedDomains(run.domainStatuses)
          .filter(([, s]) => s === "FAILED").map(([d]) => d), run.periods || [])) }, "Reprocess…") : null));
}

/** The list's controls: filters applied as they change, reset, next page, refresh on return. */
export function bindRuns() {
  const form = $("#filters");
  form.addEventListener("submit", (e) => { e.preventDefault(); applyFilters(); });
  form.addEventListener("change", (e) => { if (e.target.name !== "q" && e.target.checkValidity()) applyFilters(); });
  $("#reset-filters").addEventListener("click", () => navigate(`${UI}/`));
  $("#more").addEventListener("click", () => loadRuns(true));
  document.addEventListener("visibilitychange", () => { if (!document.hidden && route().screen === "runs" && !state.pollTimer) schedulePolling(); });
}
