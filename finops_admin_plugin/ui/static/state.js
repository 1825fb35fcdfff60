// What the screens share: the caller's token and access, the page's configuration, the list
// shown and the one timer that refreshes the current screen.

export const state = {
  token: sessionStorage.getItem("finops-token") || "",
  config: null,
  me: null,
  cursor: null,
  failuresCursor: null,
  items: [],
  pollTimer: null,
  listGeneration: 0,
  reprocess: { previewed: null, timer: null, rules: null },
};

/** What the API lets the caller do (`GET /me`): the page hides what the API would refuse. */
export const may = (what) => Boolean(state.me && state.me.access && state.me.access[what]);

export function stopPolling() {
  if (state.pollTimer) clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

/** A domain's label as the API names it (`GET /ui-config`), the domain itself until then. */
export function domainLabel(domain) {
  const known = state.config && (state.config.domains || []).find((d) => d.domain === domain);
  return known ? known.label : domain;
}

/** The domains in the API's order (`GET /ui-config`). */
export const domains = () => (state.config && state.config.domains ? state.config.domains.map((d) => d.domain) : []);
