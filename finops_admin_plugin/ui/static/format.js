// Pure formatting of API values for display: no DOM, no state. Times in UTC, durations from
// seconds, counts in the `en-US` form whatever the browser's locale; money in the browser's
// locale (or the one given), with its currency code. The Backstage plugin's
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

const AMOUNT = /^(-?)([0-9]+)(?:\.([0-9]+))?$/;
const moneyFormats = new Map();

/** The locale's currency format for `currency`, or null when the code is not a well-formed one. */
function currencyFormat(locale, currency) {
  const key = `${locale || ""}|${currency}`;
  if (!moneyFormats.has(key)) {
    let format = null;
    try { format = new Intl.NumberFormat(locale, { style: "currency", currency, currencyDisplay: "code" }); }
    catch { /* RangeError: not a three-letter code; shown as it came, beside a plain number */ }
    moneyFormats.set(key, format);
  }
  return moneyFormats.get(key);
}

/**
 * `amount` (a decimal string) rounded to `digits` fraction digits, half away from zero (as a
 * cashier rounds, and as Intl rounds by default), digit by digit on the string: a JS number keeps
 * 15 to 17 significant digits, fewer than a sum of many small cost lines carries.
 */
function roundDecimal(sign, integer, fraction, digits) {
  if (fraction.length <= digits) return `${sign}${integer}${fraction ? `.${fraction}` : ""}`;
  let kept = integer + fraction.slice(0, digits);
  if (fraction[digits] >= "5") {
    const carried = kept.split("");
    let i = carried.length - 1;
    for (; i >= 0 && carried[i] === "9"; i -= 1) carried[i] = "0";
    if (i < 0) carried.unshift("1");
    else carried[i] = String(Number(carried[i]) + 1);
    kept = carried.join("");
  }
  const whole = kept.slice(0, kept.length - digits), part = kept.slice(kept.length - digits);
  // A credit that rounds to zero shows as zero, not "-0.00" (its exact value is in the title).
  const zero = /^0*$/.test(kept);
  return `${zero ? "" : sign}${whole}${digits ? `.${part}` : ""}`;
}

function formatAmount(item, locale) {
  const currency = String(item.currency ?? "");
  const amount = String(item.amount ?? "");
  const match = AMOUNT.exec(amount);
  if (!match) return `${currency} ${amount}`.trim();
  const [, sign, integer, fraction = ""] = match;
  const format = currencyFormat(locale, currency);
  if (!format) {
    const plain = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return `${currency} ${plain.format(roundDecimal(sign, integer, fraction, 2))}`.trim();
  }
  // Intl.NumberFormat reads a string as an exact decimal (ECMA-402 2023: Chromium 106+, Node 19+),
  // so grouping a long integer part loses no digit; it is given the digits already rounded.
  return format.format(roundDecimal(sign, integer, fraction, format.resolvedOptions().maximumFractionDigits));
}

/**
 * Money as the API sends it (`[{currency, amount}]`, one item per currency, largest first):
 * each currency in the locale's form with its code, rounded to the currency's minor unit, in
 * the API's order; never a total across currencies. `locale`: the browser's when not given.
 */
export function formatMoney(amounts, locale) {
  if (!Array.isArray(amounts) || !amounts.length) return "—";
  return amounts.map((item) => formatAmount(item || {}, locale)).join(" · ");
}

/** The exact amounts, as the API sent them, with their codes: the title of a money figure. */
export function exactMoney(amounts) {
  if (!Array.isArray(amounts) || !amounts.length) return "—";
  return amounts.map((item) => `${(item || {}).currency ?? ""} ${(item || {}).amount ?? ""}`.trim()).join(" · ");
}

export function formatAge(seconds) {
  if (missing(seconds)) return "—";
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

const BYTE_UNITS = ["KiB", "MiB", "GiB", "TiB"];

/** A size in bytes for reading: `512 B`, `1.5 KiB`, `2.0 GiB` (binary units, one decimal). */
export function formatBytes(bytes) {
  if (missing(bytes)) return "—";
  if (Math.abs(bytes) < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(1)} ${BYTE_UNITS[unit]}`;
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

/**
 * One line per anomaly: what, the value, the usual value and the score. A cost anomaly is one
 * currency's: its value and baseline are one-item money lists, shown in `locale` as formatMoney.
 */
export function anomalyText(anomaly, locale) {
  const format = (value) => {
    if (Array.isArray(value)) return formatMoney(value, locale);
    return anomaly.metric === "durationSeconds" ? formatDuration(value) : formatNumber(value);
  };
  const metric = METRIC_LABELS[anomaly.metric] || anomaly.metric;
  return `${anomaly.scope} ${metric}: ${format(anomaly.value)}, baseline ${format(anomaly.baseline)} (score ${Number(anomaly.score).toFixed(1)})${anomalyWhy(anomaly)}`;
}

/** Why a value was flagged: which runs it was compared with (dates as stored, UTC) and the threshold. */
function anomalyWhy(anomaly) {
  if (anomaly.comparedRuns == null) return "";
  const from = anomaly.comparedFrom ? String(anomaly.comparedFrom).slice(0, 10) : "";
  const to = anomaly.comparedTo ? String(anomaly.comparedTo).slice(0, 10) : "";
  const window = from && to ? ` from ${from} to ${to}` : "";
  const ids = (anomaly.comparedRunIds || []).map(shortId);
  const latest = ids.length ? ` (latest ${ids.join(", ")})` : "";
  const threshold = anomaly.threshold == null ? "" : `, flagged beyond ±${anomaly.threshold}`;
  return `; median of ${anomaly.comparedRuns} comparable runs${window}${latest}${threshold}`;
}
