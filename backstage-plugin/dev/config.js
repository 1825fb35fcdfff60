// App config of the dev harness (read by Backstage's config loader from window.__APP_CONFIG__):
// the app and its "backend" (dev/serve.mjs, which proxies /api/proxy/finops-admin) are both
// this page's origin.
window.__APP_CONFIG__ = {
  app: { title: 'FinOps Batch Admin (dev)', baseUrl: window.location.origin },
  backend: { baseUrl: window.location.origin },
};
// No auth backend here: the dev app's guest sign-in uses its local guest identity, and signs in
// by itself on load. The admin API decides who the caller is (its dev auth mode, or the token
// dev/serve.mjs --token adds).
window.localStorage.setItem('enableLegacyGuestToken', 'true');
window.localStorage.setItem('@backstage/core:SignInPage:provider', 'guest');
