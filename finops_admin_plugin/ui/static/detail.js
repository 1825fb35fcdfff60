// Run Detail (`/ui/runs/{runId}`): summary, periods, one card per domain block, aggregates and
// logs (with a live tail while the run is active, logtail.js); refreshed while the run is active.
import { api } from "./api.js";
import {
  $, ACTIVE, anomaliesOf, badge, chip, copyButton, downloadLink, el, extLink, figure, flagged, kv,
  money, panel, selectedDomains, table,
} from "./dom.js";
import { anomalyText, firstLine, formatBytes, formatDuration, formatNumber, formatTime, shortId } from "./format.js";
import { seenInRuns } from "./failures.js";
import { hasTail, liveTail } from "./logtail.js";
import { openReprocess, reprocessPrefill } from "./reprocess.js";
import { route } from "./router.js";
import { domainLabel, may, state } from "./state.js";

const POLL_MS = 5000;
const ROLE_LABELS = { CURRENT: "CURRENT", PREVIOUS: "N-1", OTHER: "OTHER" };

export async function renderDetail(runId) {
  const body = $("#detail-body");
  // A refresh of the run shown keeps it on screen until the new detail replaces it (and with it
  // the live tail, whose scroll position a blank page would lose).
  if (body.dataset.runId !== runId) body.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  document.title = `Run ${shortId(runId)} — FinOps Batch Admin`;
  let run;
  try { run = await api(`/runs/${encodeURIComponent(runId)}`); }
  catch (error) { body.dataset.runId = ""; body.replaceChildren(el("h1", { text: `Run ${runId}` }), el("p", { class: "error", role: "alert", text: String(error.message) })); return; }
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
    logsSection(run, logs, links));
  body.dataset.runId = runId;
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
      ["Started", formatTime(run.startTime)],
      ["Ended", formatTime(run.endTime)],
      ["Duration", flagged(formatDuration(run.durationSeconds), anomaliesOf(run, "durationSeconds"))],
      ["Domains", el("span", { class: "chips" }, selectedDomains(run.domainStatuses).map(([d, s]) => chip(d, s)))],
      ["Version", el("span", { class: "mono", text: run.version || "—" })],
      ["Errors", errors.count ? el("span", {}, el("span", { class: "error-text", text: `${errors.count}: ${firstLine(errors.message, 300)}` }),
        seenInRuns(errors) ? [" — ", seenInRuns(errors)] : null) : "none"],
      (run.anomalies || []).length ? ["Anomalies", el("ul", { class: "plain" }, run.anomalies.map((a) => el("li", { class: "abnormal-value", text: anomalyText(a) })))] : null,
    ]), actions);
}

/** A block's label as the API sends it with the block. */
const blockLabel = (b) => b.label || domainLabel(b.domain);

function notSelected(blocks) {
  const names = blocks.filter((b) => b.status === "NOT_SELECTED").map(blockLabel);
  return names.length ? el("p", { class: "muted", text: `Not selected in this run: ${names.join(", ")}.` }) : null;
}

function blockCard(b) {
  const v = b.volumes || {};
  const rejected = Object.entries(v.rejectedByReason || {});
  const perPeriod = b.periods || [];
  const name = blockLabel(b);
  return el("article", { class: `block b-${b.status}`, "data-domain": b.domain, "aria-label": `${name} block` },
    el("h3", {}, name, " ", badge(b.status), " ",
      el("span", { class: "muted small", text: `${b.stepKey} · ${formatDuration(b.durationSeconds)} · ${b.attempts || 0} attempt(s)` })),
    el("div", { class: "figures" },
      figure("Rows read", formatNumber(v.rowsRead)),
      figure("Inserted", flagged(formatNumber(v.relevesInserted), (b.anomalies || []).filter((a) => a.metric === "relevesInserted"))),
      figure("Deleted", formatNumber(v.relevesDeleted)),
      figure("Rejected", formatNumber(v.relevesRejected)),
      figure("Billed cost", flagged(money(v.billedCost), anomaliesOf(b, "billedCost")))),
    rejected.length ? el("p", { class: "small" }, "Rejected by reason: ",
      rejected.map(([reason, n], i) => [i ? ", " : "", el("span", { class: "mono", text: reason }), ` ${formatNumber(n)}`])) : null,
    perPeriod.length ? table(["Period", "Read", "Inserted", "Deleted", "Rejected", "Billed cost", "Gate"],
      perPeriod.map((p) => el("tr", { "data-period": p.period }, el("td", { text: p.period }), el("td", { text: formatNumber(p.rowsRead) }),
        el("td", { text: formatNumber(p.relevesInserted) }), el("td", { text: formatNumber(p.relevesDeleted) }),
        el("td", { text: formatNumber(p.relevesRejected) }), el("td", {}, money(p.billedCost)),
        el("td", {}, p.gate ? el("span", { class: "badge s-FAILED", text: p.gate }) : "—"))), "compact") : null,
    (b.errors || []).length ? el("ul", { class: "block-errors" }, b.errors.map((e) =>
      el("li", {}, el("span", { class: "kind", text: e.kind }), " ", el("span", { text: e.message })))) : null,
    (b.anomalies || []).length ? el("ul", { class: "plain" }, b.anomalies.map((a) => el("li", { class: "abnormal-value", text: anomalyText(a) }))) : null,
    Array.isArray(b.quality) && b.quality.length ? qualityTable(b.quality) : null,
    el("p", { class: "actions-row" },
      may("logs") && b.links && b.links.logs ? downloadLink(b.links.logs, `${name} logs`, { class: "button" }) : null,
      may("logs") && b.links ? extLink(b.links.external, "External logs ↗") : null));
}

/** Each source's delivery a period loaded: name, id (shortened, full in the title), files, size. */
function deliveriesCell(deliveries) {
  if (!deliveries.length) return el("td", { text: "—" });
  return el("td", { class: "deliveries" }, deliveries.map((d) => el("div", { "data-source": d.source },
    el("strong", { text: d.source }), " ",
    el("span", { class: "mono", title: d.deliveryId, text: d.deliveryId.length > 12 ? `${d.deliveryId.slice(0, 12)}…` : d.deliveryId }),
    el("span", { class: "muted small" }, ` ${formatNumber(d.files)} file${d.files === 1 ? "" : "s"}, `,
      el("span", { title: `${formatNumber(d.bytes)} bytes`, text: formatBytes(d.bytes) })))));
}

function qualityTable(quality) {
  // The column only for loads that took deliveries: the landing layout (FINOPS_LANDING_URI) has none.
  const withDeliveries = quality.some((q) => (q.deliveries || []).length);
  const headers = ["Period", "FOCUS", "Files", "Rows read", "Rows loaded", "Rejected", "Warnings", "Unassigned cost", "Gate"];
  return el("div", { class: "quality" }, el("h4", { text: "Load quality" }),
    table(withDeliveries ? [...headers, "Deliveries"] : headers,
      quality.map((q) => el("tr", { "data-period": q.period },
        el("td", { text: q.period }),
        el("td", { text: (q.focusVersions || []).join(", ") || "—" }),
        el("td", { text: formatNumber(q.files) }),
        el("td", { text: formatNumber(q.rowsRead) }),
        el("td", { text: formatNumber(q.rowsLoaded) }),
        el("td", {}, (q.rejected || []).length ? q.rejected.map((r) => el("div", {},
          el("span", { class: "mono", text: r.reason }), `: ${formatNumber(r.count)}`,
          (r.samples || []).map((s) => el("div", { class: "muted small sample",
            text: `${s.file}${s.line != null ? `:${s.line}` : ""}${s.column ? ` ${s.column}` : ""}${s.value != null ? ` = ${s.value}` : ""}` })))) : "—"),
        el("td", {}, (q.warnings || []).length ? q.warnings.map((w) => el("div", {}, el("span", { class: "mono", text: w.rule }), `: ${formatNumber(w.count)}`)) : "—"),
        el("td", {}, money(q.unassignedCost), q.unassignedRows ? ` (${formatNumber(q.unassignedRows)} rows)` : null),
        el("td", {}, q.gate ? el("span", { class: "badge s-FAILED", text: q.gate }) : "—"),
        withDeliveries ? deliveriesCell(q.deliveries || []) : null)), "compact"));
}

function aggregatesSection(agg) {
  const mvs = agg.mvs || [];
  return panel("aggregates", "D · Aggregates",
    el("div", { class: "figures" },
      figure("Relevés inserted", formatNumber(agg.relevesInserted)),
      figure("Relevés deleted", formatNumber(agg.relevesDeleted)),
      agg.relevesRejected !== undefined ? figure("Rejected", formatNumber(agg.relevesRejected)) : null,
      agg.billedCost !== undefined ? figure("Billed cost", money(agg.billedCost)) : null),
    mvs.length ? table(["Materialized view", "Status", "Refreshed at", "Refresh time", "Rows"],
      mvs.map((mv) => el("tr", { "data-mv": mv.name }, el("td", { class: "mono", text: mv.name }), el("td", {}, badge(mv.status)),
        el("td", { text: formatTime(mv.refreshedAt) }), el("td", { text: formatDuration(mv.durationSeconds) }),
        el("td", { text: formatNumber(mv.rowCount) }))), "mvs")
      : el("p", { class: "muted", text: "No materialized view in this run." }));
}

function logsSection(run, logs, links) {
  const excerpt = logs.excerpt;
  if (!may("logs")) {
    // No Dagster link either: Dagster's UI shows the same logs.
    return panel("logs", "E · Logs", el("p", { class: "muted", text: "Logs are for FinOps admins." }));
  }
  return panel("logs", "E · Logs",
    el("p", { class: "actions-row" },
      logs.downloadUrl ? downloadLink(logs.downloadUrl, "Download logs", { class: "button", id: "download-logs" }) : null,
      logs.downloadUrl ? downloadLink(`${logs.downloadUrl}?stream=stderr`, "stderr only", { class: "button" }) : null,
      extLink(logs.dagsterUrl || links.dagster, "Open in Dagster ↗", { class: "button" }),
      extLink(logs.externalUrl || links.external, "Open external logs ↗", { class: "button" })),
    // Followed while the run is active; once it ends the tail stays, with its last lines.
    logs.downloadUrl && (ACTIVE.has(run.status) || hasTail(run.runId)) ? liveTail(run.runId, logs.downloadUrl) : null,
    excerpt ? [el("p", {}, "Failing step: ", el("span", { class: "mono", text: excerpt.stepKey })),
      el("pre", { class: "excerpt", tabindex: "0", "aria-label": "Failure excerpt", text: (excerpt.lines || []).join("\n") })]
      : el("p", { class: "muted", text: "No failure excerpt: no step failed." }));
}
