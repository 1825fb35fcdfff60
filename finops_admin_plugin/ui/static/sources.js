// Sources (`/ui/sources`): each configured source of cost data and, per month (newest first),
// its latest complete delivery, the delivery loaded and by which run, and the month's state.
import { api } from "./api.js";
import { $, el, navLink, runHref, showError, withTip } from "./dom.js";
import { firstLine, formatAge, formatBytes, formatNumber, formatShortTime, formatTime, shortId } from "./format.js";
import { route } from "./router.js";
import { domainLabel } from "./state.js";

const ID_CHARS = 12;

/** A delivery id shortened for a cell; the full id in its title. */
function deliveryId(id) {
  const short = id.length > ID_CHARS ? `${id.slice(0, ID_CHARS)}…` : id;
  return el("span", { class: "mono delivery-id", title: id, text: short });
}

function time(iso) {
  return el("span", { title: formatTime(iso), text: formatShortTime(iso) });
}

export function stateChip(month) {
  const chip = el("span", { class: `badge src-${month.state}`, text: month.state });
  if (month.state === "FAILED" && month.failure) {
    const f = month.failure;
    return withTip(chip, firstLine(`${f.gate ? `gate ${f.gate}: ` : ""}${f.message || "the load failed"}`, 300), "badge-tip");
  }
  return chip;
}

function latestCell(month) {
  const d = month.latest;
  if (!d) return el("td", { class: "muted", text: "—" });
  return el("td", {},
    el("div", {}, deliveryId(d.deliveryId)),
    el("div", { class: "small" }, time(d.deliveredAt)),
    el("div", { class: "small" }, `${formatNumber(d.files)} file${d.files === 1 ? "" : "s"}, `,
      el("span", { title: `${formatNumber(d.bytes)} bytes`, text: formatBytes(d.bytes) })));
}

function loadedCell(month) {
  const parts = [];
  if (month.loaded) {
    parts.push(el("div", {}, deliveryId(month.loaded.deliveryId)),
      el("div", { class: "small" }, "run ", navLink(runHref(month.loaded.runId), shortId(month.loaded.runId), { class: "mono" }),
        " ", time(month.loaded.loadedAt)));
  }
  if (month.failure) {
    parts.push(el("div", { class: "small error-text" }, "failed in run ",
      navLink(runHref(month.failure.runId), shortId(month.failure.runId), { class: "mono" }),
      month.failure.gate ? ` (gate ${month.failure.gate})` : ""));
  }
  return parts.length ? el("td", {}, parts) : el("td", { class: "muted", text: "—" });
}

function incompleteCell(month) {
  const i = month.incomplete;
  if (i) {
    return el("td", { title: i.reason || "" },
      el("div", {}, `since ${formatAge(i.ageSeconds).replace(" ago", "")}`),
      el("div", { class: "small" }, time(i.since), `, ${formatNumber(i.files)} file${i.files === 1 ? "" : "s"}`));
  }
  if (month.state === "MISSING" && month.expectedBy) {
    return el("td", { class: "small" }, "expected by ", time(month.expectedBy));
  }
  return el("td", { class: "muted", text: "—" });
}

function sourcePanel(source) {
  const scan = source.lastScan;
  const head = el("div", { class: "source-head" },
    el("h2", { id: `source-${source.name}`, text: source.name }),
    el("span", { class: "muted", text: `${source.kind} · ${domainLabel(source.domain)}` }),
    el("div", { class: "mono small source-location", text: source.location || "location unknown to the API (FINOPS_LANDING_URI not set here)" }),
    el("div", { class: "small" }, scan
      ? ["last listed ", time(scan.scannedAt), scan.error ? el("span", { class: "error-text", text: ` — listing failed: ${scan.error}` }) : null]
      : el("span", { class: "muted", text: "not listed yet by the delivery sensor" })));
  const body = source.months.length
    ? el("div", { class: "scroll" }, el("table", { class: "sources", "data-source": source.name },
      el("caption", { class: "sr-only", text: `Months of source ${source.name}` }),
      el("thead", {}, el("tr", {}, ["Month", "State", "Latest delivery", "Loaded", "Incomplete / expected"].map((t) => el("th", { scope: "col", text: t })))),
      el("tbody", {}, source.months.map((m) => el("tr", { "data-period": m.period, "data-state": m.state },
        el("th", { scope: "row", text: m.period }), el("td", {}, stateChip(m)),
        latestCell(m), loadedCell(m), incompleteCell(m))))))
    : el("p", { class: "muted", text: "Nothing delivered yet." });
  return el("section", { class: "panel source", "aria-labelledby": `source-${source.name}` }, head, body);
}

export async function renderSources() {
  document.title = "Sources — FinOps Batch Admin";
  const target = $("#sources-body");
  target.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  let sources;
  try { sources = await api("/sources"); }
  catch (error) { target.replaceChildren(); showError(error); return; }
  if (route().screen !== "sources") return;
  const nothing = sources.items.every((s) => !s.months.length && !s.lastScan);
  const intro = !sources.sourcesFile && nothing
    ? el("p", { id: "sources-empty", class: "panel muted", text: "No sources file is set (FINOPS_SOURCES) and the delivery sensor has not listed anything yet: each domain reads its landing folder, <landing>/<domain>/<YYYY-MM>/. Its months appear here once the sensor has listed them." })
    : null;
  target.replaceChildren(...[intro, ...sources.items.map(sourcePanel)].filter(Boolean));
}
