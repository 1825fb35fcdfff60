import { createApiRef } from '@backstage/core-plugin-api';
import {
  Caller,
  Coverage,
  DownloadedFile,
  DryRunResult,
  ReprocessInput,
  ReprocessRequest,
  RunDetail,
  RunList,
  RunQuery,
  SourceList,
} from './types';

/** Log selection of `GET /runs/{runId}/logs`. @public */
export interface LogsOptions {
  /** a domain (open, private, ...) or a step key of the run */
  step?: string;
  stream?: 'all' | 'events' | 'stdout' | 'stderr';
}

/**
 * The FinOps Batch Admin API, as the plugin calls it through the Backstage proxy.
 * Every method rejects with a `ResponseError` carrying the server's error body.
 *
 * @public
 */
export interface FinopsAdminApi {
  /** `GET /me` */
  getMe(): Promise<Caller>;
  /** `GET /runs` (one page; `cursor` is the previous page's `pageInfo.nextCursor`) */
  listRuns(
    query: RunQuery,
    page?: { cursor?: string; limit?: number },
  ): Promise<RunList>;
  /** `GET /runs?format=csv`: the whole filtered list */
  exportRunsCsv(query: RunQuery): Promise<DownloadedFile>;
  /** `GET /runs/{runId}` */
  getRun(runId: string): Promise<RunDetail>;
  /** `GET /runs/{runId}/logs` */
  downloadLogs(runId: string, options?: LogsOptions): Promise<DownloadedFile>;
  /**
   * `GET /runs/{runId}/logs?follow=true`: the log as the run writes it. Resolves once the API
   * accepted the follow, with the body to read; the stream ends a few seconds after the run (or
   * step) ends. Aborting `signal` closes it (the API then stops its work).
   */
  followLogs(
    runId: string,
    options?: LogsOptions & { signal?: AbortSignal },
  ): Promise<ReadableStream<Uint8Array>>;
  /** `POST /runs/reprocess` with `dryRun: true` */
  previewReprocess(input: ReprocessInput): Promise<DryRunResult>;
  /** `POST /runs/reprocess` with `dryRun: false`; the key makes a repeated click file one request */
  requestReprocess(
    input: ReprocessInput,
    options?: { idempotencyKey?: string },
  ): Promise<ReprocessRequest>;
  /** `GET /reprocess/{requestId}` */
  getReprocess(requestId: string): Promise<ReprocessRequest>;
  /** `GET /coverage` */
  getCoverage(options?: { months?: number }): Promise<Coverage>;
  /** `GET /sources` (`limit`: months per source, newest first) */
  getSources(options?: { limit?: number }): Promise<SourceList>;
}

/** @public */
export const finopsAdminApiRef = createApiRef<FinopsAdminApi>({
  id: 'plugin.finops-admin.service',
});
