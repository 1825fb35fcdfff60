// The screen is read from the address (`/ui/`, `/ui/runs/{runId}`, `/ui/coverage`, `/ui/sources`,
// `/ui/failures`); moving between screens changes the address without reloading the page.

let renderer = () => {};

/** The function that draws the screen of the current address (main.js sets it). */
export function onRoute(render) { renderer = render; }

export function route() {
  const path = location.pathname.replace(/\/+$/, "");
  const detail = path.match(/\/ui\/runs\/([^/]+)$/);
  if (detail) return { screen: "detail", runId: decodeURIComponent(detail[1]) };
  if (path.endsWith("/ui/coverage")) return { screen: "coverage" };
  if (path.endsWith("/ui/sources")) return { screen: "sources" };
  if (path.endsWith("/ui/failures")) return { screen: "failures" };
  return { screen: "runs" };
}

export function navigate(href, replace = false) {
  if (replace) history.replaceState(null, "", href); else history.pushState(null, "", href);
  renderer();
}

export const render = () => renderer();
