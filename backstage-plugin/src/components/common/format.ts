/** Display helpers: every time in UTC, durations from seconds, numbers with separators. */

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

export function formatCost(value?: number | null): string {
  if (value === null || value === undefined) return '—';
  return Number(value).toLocaleString('en-US', {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });
}

export function formatAge(seconds?: number | null): string {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** The first 8 characters of a Dagster run id, as Dagster's UI shows it. */
export function shortId(runId: string): string {
  return runId.slice(0, 8);
}

export const DOMAIN_LABELS: Record<string, string> = {
  open: 'Open',
  private: 'Private',
  public: 'Public',
  native: 'Native',
};

export function domainLabel(domain: string): string {
  return DOMAIN_LABELS[domain] ?? domain;
}

export const METRIC_LABELS: Record<string, string> = {
  durationSeconds: 'duration',
  relevesInserted: 'relevés inserted',
  billedCost: 'billed cost',
};

/** One line per anomaly: what, the value, the usual value and the score. */
export function anomalyText(anomaly: {
  metric: string;
  scope: string;
  value: number;
  baseline: number;
  score: number;
}): string {
  const format =
    anomaly.metric === 'durationSeconds' ? formatDuration : formatNumber;
  const metric = METRIC_LABELS[anomaly.metric] ?? anomaly.metric;
  return `${anomaly.scope} ${metric}: ${format(anomaly.value)}, baseline ${format(
    anomaly.baseline,
  )} (score ${anomaly.score.toFixed(1)})`;
}

// Absolute server paths and URLs: a message shows their last component only.
const SERVER_PATH =
  /(?:\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]+|(?<![\w.~-])(?:\/[^\s'":,;()<>[\]]+){2,}|\b[A-Za-z]:\\[^\s'"<>]+)/g;

/** An error message without where the server keeps its files: `/srv/x/native/a.parquet` → `…/a.parquet`. */
export function shortenPaths(text?: string | null): string {
  if (!text) return '';
  return text.replace(SERVER_PATH, path => {
    const parts = path.replace(/[\\/]+$/, '').split(/[\\/]/);
    return `…/${parts[parts.length - 1]}`;
  });
}
