// Failures (`/ui/failures`): failures grouped by cause (`GET /failures`), the most recently seen
// first; each row links to the run list filtered on its signature.
import { api } from "./api.js";
import { $, el, navLink, runHref, showError, UI } from "./dom.js";
import { formatTime, shortId } from "./format.js";
import { route } from "./router.js";
import { domainLabel, state } from "./state.js";

/** `?signature=` of the run list: the runs that failed with this cause. */
export const signatureHref = (signature) => `${UI}/?signature=${encodeURIComponent(signature)}`;
const failuresHref = (signature) => `${UI}/failures#signature-${encodeURIComponent(signature)}`;

/** "seen in N runs since …" of a failed run, linking to its cause on the Failures screen (or null). */
export function seenInRuns(errors) {
  if (!errors || !errors.signature || !errors.seenInRuns) return null;
  return navLink(failuresHref(errors.signature), `seen in ${errors.seenInRuns} run(s) since ${formatTime(errors.firstSeen)}`,
    { class: "seen-in-runs", "data-signature": errors.signature });
}

export async function renderFailures(append = false) {
  document.title = "Failures — FinOps Batch Admin";
  const body = $("#failures tbody");
  if (!append) { state.failuresCursor = null; body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "Loading…" }))); }
  const params = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const key of ["from", "to", "limit"]) if (params.get(key)) query.set(key, params.get(key));
  if (append && state.failuresCursor) query.set("cursor", state.failuresCursor);
  let page;
  try { page = await api(`/failures?${query}`); } catch (error) { body.replaceChildren(); showError(error); return; }
  if (route().screen !== "failures") return;
  state.failuresCursor = page.pageInfo.nextCursor;
  const rows = page.items.map(failureRow);
  if (append) body.append(...rows); else body.replaceChildren(...rows);
  if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No failed run in this window." })));
  $("#failures-total").textContent = `${page.totalItems} cause(s) of failure`;
  $("#failures-more").hidden = !state.failuresCursor;
  const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (target && !append) { target.classList.add("highlight"); target.scrollIntoView({ block: "center" }); }
}

function failureRow(item) {
  return el("tr", { id: `signature-${item.signature}`, "data-signature": item.signature },
    el("td", { class: "failure-text" }, el("code", { text: item.text })),
    el("td", {}, el("span", { class: "mono", text: item.kind })),
    el("td", { class: "num" }, el("strong", { class: "failure-count", text: String(item.count) })),
    el("td", { class: "nowrap small" }, el("div", { text: formatTime(item.firstSeen) }), el("div", { text: formatTime(item.lastSeen) })),
    el("td", {}, item.domains.map(domainLabel).join(", ") || "—"),
    el("td", {}, item.sources.join(", ") || "—"),
    el("td", { class: "nowrap" },
      navLink(signatureHref(item.signature), `${item.count} run(s)`, { class: "failure-runs", "aria-label": `Runs that failed with ${item.signature}` }),
      el("div", { class: "small" }, item.runs.map((id) => [navLink(runHref(id), shortId(id), { class: "mono" }), " "]))));
}

export function bindFailures() {
  $("#failures-more").addEventListener("click", () => renderFailures(true));
}
