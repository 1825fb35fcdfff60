// Pure formatting of API values for display: no DOM, no state. Times in UTC, durations from
// seconds, numbers in the `en-US` form whatever the browser's locale. The Backstage plugin's
// `components/common/format.ts` exports the same functions with the same results
// (tests/admin/test_format_parity.py runs both over one table of inputs).

const METRIC_LABELS = { durationSeconds: "duration", relevesInserted: "relevés inserted", billedCost: "billed cost" };

const missing = (value) => value === null || value === undefined;

/** Seconds precision: `2026-10-03 04:05:06 UTC`. */
export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().replace("T", " ").slice(0, 19)} UTC`;
}

/** Minutes precision, for table cells (the exact time is in the cell's title). */
export function formatShortTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toISOString().replace("T", " ").slice(0, 16);
}

export function formatDuration(seconds) {
  if (missing(seconds)) return "—";
  if (seconds < 60) return `${Number(seconds).toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = Math.round(seconds % 60);
  if (minutes < 60) return `${minutes} min ${rest} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatNumber(value) {
  if (missing(value)) return "—";
  return Number(value).toLocaleString("en-US");
}

export function formatCost(value) {
  if (missing(value)) return "—";
  return Number(value).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

export function formatAge(seconds) {
  if (missing(seconds)) return "—";
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** The first 8 characters of a Dagster run id, as Dagster's UI shows it. */
export function shortId(runId) {
  return runId.slice(0, 8);
}

/** The first line of a message, cut to `max` characters: a table cell shows the cause only. */
export function firstLine(text, max = 140) {
  const line = String(text || "").split("\n")[0].trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** One line per anomaly: what, the value, the usual value and the score. */
export function anomalyText(anomaly) {
  const format = anomaly.metric === "durationSeconds" ? formatDuration : formatNumber;
  const metric = METRIC_LABELS[anomaly.metric] || anomaly.metric;
  return `${anomaly.scope} ${metric}: ${format(anomaly.value)}, baseline ${format(anomaly.baseline)} (score ${Number(anomaly.score).toFixed(1)})`;
}
