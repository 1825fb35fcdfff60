import { DiscoveryApi, FetchApi } from '@backstage/core-plugin-api';
import { ResponseError } from '@backstage/errors';
import { FinopsAdminApi, LogsOptions } from './FinopsAdminApi';
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

/** The proxy entry (app-config `proxy.endpoints./finops-admin`) in front of the API. */
export const PROXY_PATH = '/finops-admin';

/** Query parameters of `GET /runs`, named and repeated as the API reads them. */
export function runQueryParams(query: RunQuery): URLSearchParams {
  const params = new URLSearchParams();
  for (const status of query.status ?? []) params.append('status', status);
  if (query.period) params.set('period', query.period);
  for (const domain of query.domain ?? []) params.append('domain', domain);
  if (query.trigger) params.set('trigger', query.trigger);
  if (query.from) params.set('from', query.from);
  if (query.to) params.set('to', query.to);
  if (query.q) params.set('q', query.q);
  if (query.anomalous !== undefined)
    params.set('anomalous', String(query.anomalous));
  if (query.sort) params.set('sort', query.sort);
  return params;
}

/** What a failure says to a person: the server's own message when it sent Backstage's error body. */
export function errorMessage(error: unknown): string {
  if (ResponseError.is(error) && error.cause?.message)
    return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** The file name a `Content-Disposition: attachment; filename="..."` header gives. */
export function attachmentName(
  header: string | null,
  fallback: string,
): string {
  const match = header?.match(/filename\*?=(?:UTF-8'')?"?([^";]+)"?/i);
  if (!match) return fallback;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}

/**
 * Calls the FinOps Batch Admin API through the Backstage proxy, with the caller's
 * Backstage token (added by `fetchApi`).
 *
 * @public
 */
export class FinopsAdminClient implements FinopsAdminApi {
  private readonly discoveryApi: DiscoveryApi;
  private readonly fetchApi: FetchApi;

  constructor(options: { discoveryApi: DiscoveryApi; fetchApi: FetchApi }) {
    this.discoveryApi = options.discoveryApi;
    this.fetchApi = options.fetchApi;
  }

  async getMe(): Promise<Caller> {
    return this.json('/me');
  }

  async listRuns(
    query: RunQuery,
    page: { cursor?: string; limit?: number } = {},
  ): Promise<RunList> {
    const params = runQueryParams(query);
    if (page.limit !== undefined) params.set('limit', String(page.limit));
    if (page.cursor) params.set('cursor', page.cursor);
    return this.json(`/runs${suffix(params)}`);
  }

  async exportRunsCsv(query: RunQuery): Promise<DownloadedFile> {
    const params = runQueryParams(query);
    params.set('format', 'csv');
    return this.file(`/runs${suffix(params)}`, 'finops-runs.csv');
  }

  async getRun(runId: string): Promise<RunDetail> {
    return this.json(`/runs/${encodeURIComponent(runId)}`);
  }

  async downloadLogs(
    runId: string,
    options: LogsOptions = {},
  ): Promise<DownloadedFile> {
    const params = new URLSearchParams();
    if (options.step) params.set('step', options.step);
    if (options.stream) params.set('stream', options.stream);
    const fallback = `finops-run-${runId}${options.step ? `-${options.step}` : ''}.log`;
    return this.file(
      `/runs/${encodeURIComponent(runId)}/logs${suffix(params)}`,
      fallback,
    );
  }

  async followLogs(
    runId: string,
    options: LogsOptions & { signal?: AbortSignal } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const params = new URLSearchParams({ follow: 'true' });
    if (options.step) params.set('step', options.step);
    if (options.stream) params.set('stream', options.stream);
    const response = await this.request(
      `/runs/${encodeURIComponent(runId)}/logs${suffix(params)}`,
      { signal: options.signal, headers: { Accept: 'text/plain' } },
    );
    if (!response.body) {
      throw new Error('the log stream cannot be read in this browser');
    }
    return response.body;
  }

  async previewReprocess(input: ReprocessInput): Promise<DryRunResult> {
    return this.json('/runs/reprocess', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...input, dryRun: true }),
    });
  }

  async requestReprocess(
    input: ReprocessInput,
    options: { idempotencyKey?: string } = {},
  ): Promise<ReprocessRequest> {
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
    };
    if (options.idempotencyKey)
      headers['Idempotency-Key'] = options.idempotencyKey;
    return this.json('/runs/reprocess', {
      method: 'POST',
      headers,
      body: JSON.stringify({ ...input, dryRun: false }),
    });
  }

  async getReprocess(requestId: string): Promise<ReprocessRequest> {
    return this.json(`/reprocess/${encodeURIComponent(requestId)}`);
  }

  async getCoverage(options: { months?: number } = {}): Promise<Coverage> {
    const params = new URLSearchParams();
    if (options.months !== undefined)
      params.set('months', String(options.months));
    return this.json(`/coverage${suffix(params)}`);
  }

  async getSources(options: { limit?: number } = {}): Promise<SourceList> {
    const params = new URLSearchParams();
    if (options.limit !== undefined) params.set('limit', String(options.limit));
    return this.json(`/sources${suffix(params)}`);
  }

  private async request(path: string, init?: RequestInit): Promise<Response> {
    const base = `${await this.discoveryApi.getBaseUrl('proxy')}${PROXY_PATH}`;
    const response = await this.fetchApi.fetch(`${base}${path}`, init);
    if (!response.ok) {
      throw await ResponseError.fromResponse(response);
    }
    return response;
  }

  private async json<T>(path: string, init?: RequestInit): Promise<T> {
    const response = await this.request(path, {
      ...init,
      headers: { Accept: 'application/json', ...init?.headers },
    });
    return (await response.json()) as T;
  }

  private async file(path: string, fallback: string): Promise<DownloadedFile> {
    const response = await this.request(path);
    return {
      blob: await response.blob(),
      filename: attachmentName(
        response.headers.get('Content-Disposition'),
        fallback,
      ),
    };
  }
}

function suffix(params: URLSearchParams): string {
  const text = params.toString();
  return text ? `?${text}` : '';
}
