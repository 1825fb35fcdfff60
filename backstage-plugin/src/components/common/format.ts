import type { CurrencyAmount } from '../../api/types';

/**
 * Display helpers: times in UTC, durations from seconds, counts in the `en-US` form whatever
 * the browser's locale; money in the browser's locale (or the one given), with its currency
 * code. The built-in UI's `finops_admin_plugin/ui/static/format.js` exports the
 * same functions with the same results (tests/admin/test_format_parity.py runs both over one
 * table of inputs).
 */

export function formatTime(iso?: string | null): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

/** Minutes precision, for table cells (the exact time is in the cell's title). */
export function formatShortTime(iso?: string | null): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toISOString().replace('T', ' ').slice(0, 16);
}

export function formatDuration(seconds?: number | null): string {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = Math.round(seconds % 60);
  if (minutes < 60) return `${minutes} min ${rest} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatNumber(value?: number | null): string {
  if (value === null || value === undefined) return '—';
  return Number(value).toLocaleString('en-US');
}

const AMOUNT = /^(-?)([0-9]+)(?:\.([0-9]+))?$/;
const moneyFormats = new Map<string, Intl.NumberFormat | null>();

/** The locale's currency format for `currency`, or null when the code is not a well-formed one. */
function currencyFormat(
  locale: string | undefined,
  currency: string,
): Intl.NumberFormat | null {
  const key = `${locale ?? ''}|${currency}`;
  if (!moneyFormats.has(key)) {
    let format: Intl.NumberFormat | null = null;
    try {
      format = new Intl.NumberFormat(locale, {
        style: 'currency',
        currency,
        currencyDisplay: 'code',
      });
    } catch {
      // RangeError: not a three-letter code; shown as it came, beside a plain number.
    }
    moneyFormats.set(key, format);
  }
  return moneyFormats.get(key) ?? null;
}

/**
 * `amount` (a decimal string) rounded to `digits` fraction digits, half away from zero (as a
 * cashier rounds, and as Intl rounds by default), digit by digit on the string: a JS number keeps
 * 15 to 17 significant digits, fewer than a sum of many small cost lines carries.
 */
function roundDecimal(
  sign: string,
  integer: string,
  fraction: string,
  digits: number,
): string {
  if (fraction.length <= digits) {
    return `${sign}${integer}${fraction ? `.${fraction}` : ''}`;
  }
  let kept = integer + fraction.slice(0, digits);
  if (fraction[digits] >= '5') {
    const carried = kept.split('');
    let i = carried.length - 1;
    for (; i >= 0 && carried[i] === '9'; i -= 1) carried[i] = '0';
    if (i < 0) carried.unshift('1');
    else carried[i] = String(Number(carried[i]) + 1);
    kept = carried.join('');
  }
  const whole = kept.slice(0, kept.length - digits);
  const part = kept.slice(kept.length - digits);
  // A credit that rounds to zero shows as zero, not "-0.00" (its exact value is in the title).
  const zero = /^0*$/.test(kept);
  return `${zero ? '' : sign}${whole}${digits ? `.${part}` : ''}`;
}

function formatAmount(
  item: Partial<CurrencyAmount>,
  locale: string | undefined,
): string {
  const currency = String(item.currency ?? '');
  const amount = String(item.amount ?? '');
  const match = AMOUNT.exec(amount);
  if (!match) return `${currency} ${amount}`.trim();
  const [, sign, integer, fraction = ''] = match;
  const format = currencyFormat(locale, currency);
  // Intl.NumberFormat reads a string as an exact decimal (ECMA-402 2023: Chromium 106+, Node 19+),
  // so grouping a long integer part loses no digit; it is given the digits already rounded. The
  // DOM typings still declare number | bigint only.
  type DecimalFormat = { format(value: string): string };
  if (!format) {
    const plain = new Intl.NumberFormat(locale, {
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    }) as unknown as DecimalFormat;
    return `${currency} ${plain.format(
      roundDecimal(sign, integer, fraction, 2),
    )}`.trim();
  }
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return (format as unknown as DecimalFormat).format(
    roundDecimal(sign, integer, fraction, digits),
  );
}

/**
 * Money as the API sends it (`[{currency, amount}]`, one item per currency, largest first):
 * each currency in the locale's form with its code, rounded to the currency's minor unit, in
 * the API's order; never a total across currencies. `locale`: the browser's when not given.
 */
export function formatMoney(
  amounts?: readonly CurrencyAmount[] | null,
  locale?: string,
): string {
  if (!Array.isArray(amounts) || !amounts.length) return '—';
  return amounts.map(item => formatAmount(item ?? {}, locale)).join(' · ');
}

/** The exact amounts, as the API sent them, with their codes: the title of a money figure. */
export function exactMoney(amounts?: readonly CurrencyAmount[] | null): string {
  if (!Array.isArray(amounts) || !amounts.length) return '—';
  return amounts
    .map(item => `${item?.currency ?? ''} ${item?.amount ?? ''}`.trim())
    .join(' · ');
}

export function formatAge(seconds?: number | null): string {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

/** A size in bytes for reading: `512 B`, `1.5 KiB`, `2.0 GiB` (binary units, one decimal). */
export function formatBytes(bytes?: number | null): string {
  if (bytes === null || bytes === undefined) return '—';
  if (Math.abs(bytes) < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${BYTE_UNITS[unit]}`;
}

/** The first 8 characters of a Dagster run id, as Dagster's UI shows it. */
export function shortId(runId: string): string {
  return runId.slice(0, 8);
}

const METRIC_LABELS: Record<string, string> = {
  durationSeconds: 'duration',
  relevesInserted: 'relevés inserted',
  billedCost: 'billed cost',
};

/** The first line of a message, cut to `max` characters: a table cell shows the cause only. */
export function firstLine(text?: string | null, max = 140): string {
  const line = String(text || '')
    .split('\n')[0]
    .trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * One line per anomaly: what, the value, the usual value and the score. A cost anomaly is one
 * currency's: its value and baseline are one-item money lists, shown in `locale` as formatMoney.
 */
export function anomalyText(
  anomaly: {
    metric: string;
    scope: string;
    value: number | readonly CurrencyAmount[];
    baseline: number | readonly CurrencyAmount[];
    score: number;
    threshold?: number | null;
    comparedRuns?: number | null;
    comparedRunIds?: readonly string[];
    comparedFrom?: string | null;
    comparedTo?: string | null;
  },
  locale?: string,
): string {
  const format = (value: number | readonly CurrencyAmount[]): string => {
    if (Array.isArray(value)) return formatMoney(value, locale);
    return anomaly.metric === 'durationSeconds'
      ? formatDuration(value as number)
      : formatNumber(value as number);
  };
  const metric = METRIC_LABELS[anomaly.metric] ?? anomaly.metric;
  return `${anomaly.scope} ${metric}: ${format(anomaly.value)}, baseline ${format(
    anomaly.baseline,
  )} (score ${anomaly.score.toFixed(1)})${anomalyWhy(anomaly)}`;
}

/** Why a value was flagged: which runs it was compared with (dates as stored, UTC) and the threshold. */
function anomalyWhy(anomaly: {
  threshold?: number | null;
  comparedRuns?: number | null;
  comparedRunIds?: readonly string[];
  comparedFrom?: string | null;
  comparedTo?: string | null;
}): string {
  if (anomaly.comparedRuns === null || anomaly.comparedRuns === undefined)
    return '';
  const from = anomaly.comparedFrom
    ? String(anomaly.comparedFrom).slice(0, 10)
    : '';
  const to = anomaly.comparedTo ? String(anomaly.comparedTo).slice(0, 10) : '';
  const window = from && to ? ` from ${from} to ${to}` : '';
  const ids = (anomaly.comparedRunIds ?? []).map(shortId);
  const latest = ids.length ? ` (latest ${ids.join(', ')})` : '';
  const threshold =
    anomaly.threshold === null || anomaly.threshold === undefined
      ? ''
      : `, flagged beyond ±${anomaly.threshold}`;
  return `; median of ${anomaly.comparedRuns} comparable runs${window}${latest}${threshold}`;
}
