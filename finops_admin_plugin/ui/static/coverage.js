// Coverage (`/ui/coverage`): months × domains, the last successful load of each, stale cells and
// cells a later run failed on.
import { api } from "./api.js";
import { $, el, navLink, runHref, showError } from "./dom.js";
import { formatAge, formatNumber, formatTime, shortId } from "./format.js";
import { route } from "./router.js";
import { domainLabel } from "./state.js";

export async function renderCoverage() {
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
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Month" }), coverage.domains.map((d) => el("th", { scope: "col", text: domainLabel(d) })))),
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
        el("span", { class: "muted small", text: formatAge(cell.ageSeconds) })),
      el("div", { class: "small", text: `${formatTime(cell.lastLoad.time)}` }),
      el("div", { class: "small", text: `${formatNumber(cell.lastLoad.relevesInserted)} relevés` }),
    ] : null,
    marks);
}
