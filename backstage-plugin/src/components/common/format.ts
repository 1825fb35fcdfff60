/**
 * Display helpers: times in UTC, durations from seconds, numbers in the `en-US` form whatever
 * the browser's locale. The built-in UI's `finops_admin_plugin/ui/static/format.js` exports the
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
