// The reprocess dialog: pre-filled from a run, previewed (dry run), confirmed, then followed
// until the sensor launches its run.
import { api } from "./api.js";
import { $, el, navLink, runHref, table } from "./dom.js";
import { firstLine, formatNumber, shortId } from "./format.js";
import { domainLabel, domains, state } from "./state.js";

const REPROCESS_POLL_MS = 1500;
const BODY_SCHEMA = "ReprocessBody";  // components.schemas of the API's OpenAPI document

/** A reprocess of a run: its periods, its failed domains (all its domains when none failed). */
export function reprocessPrefill(run, failedDomains, periods) {
  return {
    periods,
    domains: failedDomains.length ? failedDomains : run.domains,
    reason: `Reprocess of run ${shortId(run.runId)}${failedDomains.length ? ` (failed: ${failedDomains.join(", ")})` : ""}`,
  };
}

/** `key` of a schema, looked up through `$ref`s and `allOf`/`anyOf`/`oneOf` members. */
function ruleOf(schema, key, schemas, depth = 0) {
  if (!schema || typeof schema !== "object" || depth > 8) return undefined;
  if (schema[key] !== undefined) return schema[key];
  if (typeof schema.$ref === "string") return ruleOf(schemas[schema.$ref.split("/").pop()], key, schemas, depth + 1);
  for (const member of [...(schema.allOf || []), ...(schema.anyOf || []), ...(schema.oneOf || [])]) {
    const found = ruleOf(member, key, schemas, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The body's rules as the API's OpenAPI document states them: the period pattern and the
 * reason's length bounds. A rule the document does not state is not pre-checked here; the API
 * checks every request anyway and its 400 message is shown.
 */
function loadRules() {
  if (!state.reprocess.rules) {
    state.reprocess.rules = api("/openapi.json").then((doc) => {
      const schemas = (doc.components && doc.components.schemas) || {};
      const body = schemas[BODY_SCHEMA] || {};
      const props = ruleOf(body, "properties", schemas) || {};
      const items = ruleOf(props.periods, "items", schemas);
      let period = null;
      try {
        const pattern = ruleOf(items, "pattern", schemas);
        period = typeof pattern === "string" ? new RegExp(pattern) : null;
      } catch { period = null; }  // a pattern JavaScript cannot read: the API checks it
      const bound = (key) => {
        const value = ruleOf(props.reason, key, schemas);
        return Number.isInteger(value) ? value : null;
      };
      return { period, reasonMin: bound("minLength"), reasonMax: bound("maxLength") };
    }).catch(() => ({ period: null, reasonMin: null, reasonMax: null }));
  }
  return state.reprocess.rules;
}

export async function openReprocess(prefill = {}) {
  const dialog = $("#reprocess-dialog"), form = $("#reprocess-form");
  clearTimeout(state.reprocess.timer);
  form.reset();
  form.elements.periods.value = (prefill.periods || []).join(", ");
  const wanted = prefill.domains || domains();
  for (const input of form.querySelectorAll("input[name=domains]")) input.checked = wanted.includes(input.value);
  form.elements.reason.value = prefill.reason || "";
  state.reprocess.previewed = null;
  $("#submit-reprocess").disabled = true;
  $("#dry-run").disabled = false;
  $("#reprocess-result").replaceChildren();
  dialog.showModal();
  const rules = await loadRules();
  const reason = form.elements.reason;
  if (rules.reasonMin !== null) reason.minLength = rules.reasonMin;
  if (rules.reasonMax !== null) reason.maxLength = rules.reasonMax;
}

function reprocessInput() {
  const form = $("#reprocess-form");
  return {
    periods: form.elements.periods.value.split(/[\s,]+/).map((p) => p.trim()).filter(Boolean),
    domains: [...form.querySelectorAll("input[name=domains]:checked")].map((i) => i.value),
    reason: form.elements.reason.value.trim(),
  };
}

function checkInput(input, rules) {
  if (!input.periods.length) return "Give at least one period (YYYY-MM).";
  const bad = rules.period && input.periods.find((p) => !rules.period.test(p));
  if (bad) return `Period must be YYYY-MM, got '${bad}'.`;
  if (!input.domains.length) return "Choose at least one domain.";
  const { reasonMin: min, reasonMax: max } = rules;
  if ((min !== null && input.reason.length < min) || (max !== null && input.reason.length > max)) {
    const bounds = min !== null && max !== null ? `${min} to ${max}` : min !== null ? `at least ${min}` : `at most ${max}`;
    return `Give a reason (${bounds} characters).`;
  }
  return null;
}

async function previewReprocess() {
  const out = $("#reprocess-result"), input = reprocessInput();
  const problem = checkInput(input, await loadRules());
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
    el("p", { class: "small", text: `${formatNumber(t.rowsToDelete)} rows deleted, ${formatNumber(t.rowsToInsert)} inserted, ${formatNumber(t.rowsRejected)} rejected; ${t.failingPairs || 0} pair(s) would fail.` }),
    table(["Period", "Domain", "Outcome", "Delete", "Insert", "Rejected", "Note"],
      (p.pairs || []).map((pair) => el("tr", {}, el("td", { text: pair.period }), el("td", { text: domainLabel(pair.domain) }),
        el("td", {}, el("span", { class: `badge ${pair.outcome === "FAIL" ? "s-FAILED" : "s-SUCCESS"}`, text: pair.outcome })),
        el("td", { text: formatNumber(pair.rowsToDelete) }), el("td", { text: formatNumber(pair.rowsToInsert) }),
        el("td", { text: formatNumber(pair.landing && pair.landing.rowsRejected) }),
        el("td", { class: "small", text: pair.landing && pair.landing.error ? firstLine(pair.landing.error, 200) : "" }))), "compact"),
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

/** The dialog's controls; an edit after a preview asks for a new preview. */
export function bindReprocess() {
  $("#open-reprocess").addEventListener("click", () => openReprocess());
  $("#close-reprocess").addEventListener("click", () => $("#reprocess-dialog").close());
  $("#reprocess-dialog").addEventListener("close", () => clearTimeout(state.reprocess.timer));
  $("#reprocess-form").addEventListener("submit", (e) => e.preventDefault());
  $("#reprocess-form").addEventListener("input", () => {
    if (state.reprocess.previewed && state.reprocess.previewed !== JSON.stringify(reprocessInput())) $("#submit-reprocess").disabled = true;
  });
  $("#dry-run").addEventListener("click", previewReprocess);
  $("#submit-reprocess").addEventListener("click", submitReprocess);
}
