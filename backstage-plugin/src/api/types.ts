/**
 * JSON shapes of the FinOps Batch Admin API (base path `/finops/admin`, reached through the
 * Backstage proxy entry `/finops-admin`), named for the screens. Every shape is the generated
 * schema of the API (`schema.generated.ts`, from the Python models by `make contract`), so a
 * change of the API fails the type-check here until the schema is regenerated. Only what the
 * client itself builds (filters, downloaded files) is written by hand.
 */
import type { components, paths } from './schema.generated';

type Schemas = components['schemas'];

/** @public */
export type RunSummary = Schemas['RunResponse'];

/** @public */
export type RunDetail = Schemas['RunDetailResponse'];

/** @public */
export type RunList = Schemas['RunCollectionResponse'];

/** @public */
export type RunStatus = RunSummary['status'];

/** @public */
export type BlockStatus = Block['status'];

/** @public */
export type Trigger = RunSummary['trigger'];

/** @public */
export type PeriodRole = RunPeriod['role'];

/** @public */
export type RunPeriod = Schemas['PeriodResponse'];

/** An exact amount (decimal string) in one currency. @public */
export type CurrencyAmount = Schemas['CurrencyAmount'];

/** A figure that covers rows: one amount per currency, largest first; empty when nothing was loaded. @public */
export type Money = CurrencyAmount[];

/** @public */
export type Anomaly = Schemas['Anomaly'];

/** @public */
export type RunVolumes = Schemas['RunVolumes'];

/** @public */
export type ErrorSummary = Schemas['ErrorSummary'];

/** @public */
export type RunLinks = Schemas['RunLinks'];

/** @public */
export type PageInfo = Schemas['PageInfo'];

/** @public */
export type Block = Schemas['BlockResponse'];

/** @public */
export type BlockVolumes = Schemas['BlockVolumes'];

/** What one month of a domain loaded. @public */
export type BlockPeriod = Schemas['BlockPeriod'];

/** What a block's load saw for one period. @public */
export type BlockQuality = Schemas['LoadQuality'];

/** One source's delivery that a period's load took. @public */
export type QualityDelivery = Schemas['QualityDelivery'];

/** @public */
export type RejectedSample = Schemas['QualitySample'];

/** @public */
export type BlockError = Schemas['BlockError'];

/** @public */
export type MvRefresh = Schemas['MvRefreshResponse'];

/** @public */
export type Coverage = Schemas['CoverageResponse'];

/** @public */
export type CoverageCell = Schemas['CoverageCell'];

/** `GET /sources`: the configured sources and, per month, their deliveries. @public */
export type SourceList = Schemas['SourceCollectionResponse'];

/** @public */
export type Source = Schemas['SourceResponse'];

/** One month of a source: its state, latest delivery, loaded delivery, incomplete data. @public */
export type SourceMonth = Schemas['SourceMonth'];

/** @public */
export type SourceState = SourceMonth['state'];

/** `GET /me`: who the API thinks the caller is and what they may do. @public */
export type Caller = Schemas['CallerResponse'];

/** @public */
export type ReprocessRequest = Schemas['ReprocessRequestResponse'];

/** @public */
export type ReprocessState = ReprocessRequest['state'];

/** @public */
export type DryRunPair = Schemas['DryRunPair'];

/** @public */
export type DryRunResult = Schemas['DryRunResponse'];

/** The body of `POST /runs/reprocess`; the client sets `dryRun` itself. @public */
export type ReprocessInput = Omit<
  paths['/finops/admin/runs/reprocess']['post']['requestBody']['content']['application/json'],
  'dryRun'
>;

/** @public */
export type Domain = NonNullable<ReprocessInput['domains']>[number];

// A Record names every domain of the schema's enum, so one the API adds fails the type-check.
const DOMAIN_ORDER: Record<Domain, true> = {
  open: true,
  private: true,
  public: true,
  native: true,
};

/** @public The domains in canonical order. */
export const DOMAINS = Object.keys(DOMAIN_ORDER) as readonly Domain[];

/** @public */
export function isDomain(value: string): value is Domain {
  return Object.prototype.hasOwnProperty.call(DOMAIN_ORDER, value);
}

// A Record names every status, so one the API adds fails the type-check until it is placed.
const RUN_STATUS_ORDER: Record<RunStatus, true> = {
  QUEUED: true,
  RUNNING: true,
  SUCCESS: true,
  FAILED: true,
  CANCELED: true,
  UNKNOWN: true,
};

/** Every run status, in the order the filters list them. @public */
export const RUN_STATUSES = Object.keys(RUN_STATUS_ORDER) as RunStatus[];

// A Record names every trigger, so one the API adds fails the type-check until it is placed.
const TRIGGER_ORDER: Record<Trigger, true> = {
  CRON: true,
  DELIVERY: true,
  MANUAL: true,
};

/** Every trigger, in the order the filters list them. @public */
export const TRIGGERS = Object.keys(TRIGGER_ORDER) as Trigger[];

/** @public */
export const RUN_SORTS = [
  '-startTime',
  'startTime',
  '-durationSeconds',
  'durationSeconds',
] as const;

/** @public */
export type RunSort = (typeof RUN_SORTS)[number];

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
