// The JSON API, with the caller's token; a failure becomes an Error carrying the message of
// Backstage's error body (`{"error": {"name", "message"}}`) the API answers with.
import { state } from "./state.js";

export const BASE = "/finops/admin";

export async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) return `${body.error.name}: ${body.error.message}`;
  } catch { /* not JSON */ }
  return `HTTP ${response.status} ${response.statusText}`;
}

export async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(BASE + path, { ...options, headers });
  if (response.status === 401) document.getElementById("auth-panel").hidden = false;
  if (!response.ok) throw new Error(await errorOf(response));
  return response.status === 204 ? null : response.json();
}

/** A file fetched with the caller's token: its name (from Content-Disposition) and content. */
export async function fetchFile(href) {
  const response = await fetch(href, { headers: { Authorization: `Bearer ${state.token}` } });
  if (!response.ok) throw new Error(await errorOf(response));
  const disposition = response.headers.get("content-disposition") || "";
  const match = disposition.match(/filename="?([^";]+)"?/);
  return { name: match ? match[1] : "download", blob: await response.blob() };
}
