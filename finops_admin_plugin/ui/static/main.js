// FinOps Batch Admin — built-in UI, entry module. Plain DOM code in ES modules, no framework, no
// inline script or handler (the page is served with `script-src 'self'`).
import { api } from "./api.js";
import { $, el, showError } from "./dom.js";
import { renderCoverage } from "./coverage.js";
import { renderDetail } from "./detail.js";
import { bindFailures, renderFailures } from "./failures.js";
import { stopTail } from "./logtail.js";
import { bindReprocess } from "./reprocess.js";
import { navigate, onRoute, render, route } from "./router.js";
import { bindRuns, renderRuns } from "./runs.js";
import { renderSources } from "./sources.js";
import { may, state, stopPolling } from "./state.js";

function renderScreen() {
  stopPolling();
  showError(null);
  const r = route();
  stopTail(r.screen === "detail" ? r.runId : null);
  const screens = ["runs", "detail", "coverage", "sources", "failures"];
  for (const name of screens) $(`#screen-${name}`).hidden = r.screen !== name;
  $("#tab-runs").toggleAttribute("aria-current", r.screen === "runs" || r.screen === "detail");
  for (const name of ["coverage", "sources", "failures"]) $(`#tab-${name}`).toggleAttribute("aria-current", r.screen === name);
  if (r.screen === "runs") { $("#tab-runs").setAttribute("aria-current", "page"); renderRuns(); }
  else if (r.screen === "coverage") { $("#tab-coverage").setAttribute("aria-current", "page"); renderCoverage(); }
  else if (r.screen === "sources") { $("#tab-sources").setAttribute("aria-current", "page"); renderSources(); }
  else if (r.screen === "failures") { $("#tab-failures").setAttribute("aria-current", "page"); renderFailures(); }
  else renderDetail(r.runId);
}

/** One checkbox per domain the API names, with its label, in the list filters and the dialog. */
function fillDomainChoices() {
  const choices = (state.config && state.config.domains) || [];
  for (const [fieldset, name] of [["#filter-domains", "domain"], ["#reprocess-domains", "domains"]]) {
    $(fieldset).append(...choices.map((d) => el("label", {}, el("input", { type: "checkbox", name, value: d.domain }), d.label)));
  }
}

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
  fillDomainChoices();
  await loadCaller();
  onRoute(renderScreen);
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-nav]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if ($("#reprocess-dialog").open) $("#reprocess-dialog").close();
    navigate(link.getAttribute("href"));
  });
  window.addEventListener("popstate", render);
  bindRuns();
  bindFailures();
  bindReprocess();
  $("#auth-form").addEventListener("submit", async (e) => {
    e.preventDefault(); state.token = $("#auth-token").value.trim();
    sessionStorage.setItem("finops-token", state.token); $("#auth-panel").hidden = true;
    await loadCaller(); render();
  });
  render();
}

init();
