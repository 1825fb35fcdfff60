/**
 * JSON shapes of the FinOps Batch Admin API (base path `/finops/admin`, reached through the
 * Backstage proxy entry `/finops-admin`). Keys are camelCase, times ISO-8601 UTC strings,
 * durations seconds.
 */

/** @public */
export type RunStatus =
  'QUEUED' | 'RUNNING' | 'SUCCESS' | 'FAILED' | 'CANCELED' | 'UNKNOWN';

/** @public */
export type BlockStatus =
  'NOT_SELECTED' | 'PENDING' | 'RUNNING' | 'SUCCESS' | 'FAILED' | 'SKIPPED';

/** @public */
export type Trigger = 'CRON' | 'MANUAL';

/** @public */
export type PeriodRole = 'CURRENT' | 'PREVIOUS' | 'OTHER';

/** @public */
export const DOMAINS = ['open', 'private', 'public', 'native'] as const;

/** @public */
export type Domain = (typeof DOMAINS)[number];

/** @public */
export const RUN_STATUSES: RunStatus[] = [
  'QUEUED',
  'RUNNING',
  'SUCCESS',
  'FAILED',
  'CANCELED',
  'UNKNOWN',
];

/** @public */
export const RUN_SORTS = [
  '-startTime',
  'startTime',
  '-durationSeconds',
  'durationSeconds',
] as const;

/** @public */
export type RunSort = (typeof RUN_SORTS)[number];

/** @public */
export interface Anomaly {
  metric: 'durationSeconds' | 'relevesInserted' | 'billedCost' | string;
  /** `run`, or the domain of a block */
  scope: string;
  value: number;
  baseline: number;
  score: number;
  method?: 'modified_z' | 'relative' | string;
}

/** @public */
export interface RunVolumes {
  rowsRead?: number;
  relevesInserted: number;
  relevesDeleted: number;
  relevesRejected: number;
  billedCost?: number;
  mvsRefreshed: number;
}

/** @public */
export interface ErrorSummary {
  count: number;
  message?: string | null;
}

/** @public */
export interface RunLinks {
  self: string;
  logs: string;
  dagster: string;
  external?: string | null;
}

interface RunFields {
  runId: string;
  status: RunStatus;
  dagsterStatus: string;
  trigger: Trigger;
  launchedBy?: string | null;
  reprocessRequestId?: string | null;
  reason?: string | null;
  domains: string[];
  domainStatuses: Record<string, BlockStatus>;
  createdTime?: string;
  startTime?: string | null;
  endTime?: string | null;
  durationSeconds?: number | null;
  volumes: RunVolumes;
  errors: ErrorSummary;
  anomalies?: Anomaly[];
  version?: string | null;
  links?: RunLinks | null;
}

/** A run in the list. @public */
export interface RunSummary extends RunFields {
  /** months processed, newest first */
  periods: string[];
}

/** @public */
export interface PageInfo {
  nextCursor: string | null;
}

/** @public */
export interface RunList {
  items: RunSummary[];
  pageInfo: PageInfo;
  totalItems: number;
}

/** @public */
export interface RunPeriod {
  period: string;
  role: PeriodRole;
}

/** @public */
export interface BlockVolumes {
  rowsRead?: number | null;
  relevesInserted?: number | null;
  relevesDeleted?: number | null;
  relevesRejected?: number | null;
  billedCost?: number | null;
  rejectedByReason?: Record<string, number> | null;
}

/** What one month of a domain loaded. @public */
export interface BlockPeriod {
  period: string;
  rowsRead?: number | null;
  relevesInserted?: number | null;
  relevesDeleted?: number | null;
  relevesRejected?: number | null;
  billedCost?: number | null;
}

/** @public */
export interface RejectedSample {
  file: string;
  line?: number | null;
  column?: string | null;
  value?: string | null;
}

/** What a block's load saw for one period (absent from APIs that do not report it). @public */
export interface BlockQuality {
  period: string;
  focusVersions?: string[];
  files?: number;
  rowsRead?: number | null;
  rowsLoaded?: number | null;
  rejected?: { reason: string; count: number; samples?: RejectedSample[] }[];
  warnings?: { rule: string; count: number }[];
  unassignedCost?: number | null;
  unassignedRows?: number | null;
  /** the quality gate that failed the period, or null */
  gate?: string | null;
}

/** @public */
export interface BlockError {
  message: string;
  kind: string;
}

/** @public */
export interface Block {
  domain: string;
  label?: string;
  status: BlockStatus;
  stepKey: string;
  startTime?: string | null;
  endTime?: string | null;
  durationSeconds?: number | null;
  attempts?: number;
  volumes: BlockVolumes;
  periods?: BlockPeriod[];
  errors?: BlockError[];
  anomalies?: Anomaly[];
  quality?: BlockQuality[] | null;
  links?: { logs: string; external?: string | null } | null;
}

/** @public */
export interface MvRefresh {
  name: string;
  status: string;
  refreshedAt?: string | null;
  durationSeconds?: number | null;
  rowCount?: number | null;
}

/** @public */
export interface RunDetail extends RunFields {
  periods: RunPeriod[];
  blocks: Block[];
  aggregates: {
    relevesInserted: number;
    relevesDeleted: number;
    relevesRejected?: number;
    billedCost?: number;
    mvs: MvRefresh[];
  };
  logs?: {
    downloadUrl: string;
    dagsterUrl: string;
    externalUrl?: string | null;
    excerpt?: { stepKey: string; lines: string[] } | null;
  } | null;
}

/** @public */
export interface CoverageCell {
  period: string;
  domain: string;
  lastLoad?: {
    runId: string;
    time: string;
    relevesInserted?: number | null;
    rowsRead?: number | null;
  } | null;
  ageSeconds?: number | null;
  stale: boolean;
}

/** @public */
export interface Coverage {
  periods: string[];
  domains: string[];
  staleAfterSeconds: number;
  items: CoverageCell[];
}

/** `GET /me`: who the API thinks the caller is and what they may do. @public */
export interface Caller {
  subject: string;
  role: 'admin' | 'user' | null;
  groups: string[];
  via: string;
  authMode: string;
  devMode: boolean;
  access: { read: boolean; logs: boolean; reprocess: boolean };
}

/** @public */
export type ReprocessState = 'PENDING' | 'LAUNCHED' | 'FAILED' | 'REJECTED';

/** @public */
export interface ReprocessInput {
  periods: string[];
  /** omitted means all four */
  domains?: string[];
  reason: string;
}

/** @public */
export interface ReprocessRequest {
  requestId: string;
  state: ReprocessState;
  periods: string[];
  domains: string[];
  reason: string;
  requestedBy: string;
  createdAt: string;
  updatedAt: string;
  launchedAt?: string | null;
  runId?: string | null;
  message?: string | null;
  links: { self: string; run?: string | null };
}

/** @public */
export interface DryRunPair {
  period: string;
  domain: string;
  outcome: 'REPLACE' | 'FAIL';
  rowsToDelete: number;
  rowsToInsert: number;
  loaded: { rows: number; runs: { runId: string; rows: number }[] };
  landing: {
    folder: string;
    files: {
      name: string;
      sizeBytes: number;
      rowsRead: number;
      rowsToLoad: number;
      rowsRejected: number;
    }[];
    rowsRead: number;
    rowsToLoad: number;
    rowsRejected: number;
    rejectedByReason: Record<string, number>;
    billedCost: number;
    error?: string | null;
  };
}

/** @public */
export interface DryRunResult {
  dryRun: true;
  periods: string[];
  domains: string[];
  reason: string;
  pairs: DryRunPair[];
  materializedViews: string[];
  totals: {
    rowsToDelete: number;
    rowsToInsert: number;
    rowsRejected: number;
    failingPairs: number;
  };
  message: string;
}

/** Filters and sort of the run list, named as the API's query parameters. @public */
export interface RunQuery {
  status?: RunStatus[];
  period?: string;
  domain?: string[];
  trigger?: Trigger;
  from?: string;
  to?: string;
  q?: string;
  anomalous?: boolean;
  sort?: RunSort;
}

/** A file fetched through the API (logs, CSV export). @public */
export interface DownloadedFile {
  blob: Blob;
  filename: string;
}
