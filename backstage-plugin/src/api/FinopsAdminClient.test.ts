import { ResponseError } from '@backstage/errors';
import { registerMswTestHooks } from '@backstage/test-utils';
import { http, HttpResponse } from 'msw';
import {
  API,
  errorBody,
  fixtures,
  requests,
  server,
  testClient,
  TOKEN,
} from '../__testUtils__/server';
import {
  attachmentName,
  errorMessage,
  runQueryParams,
} from './FinopsAdminClient';
import type { ReprocessInput } from './types';

describe('FinopsAdminClient', () => {
  registerMswTestHooks(server);
  beforeEach(() => {
    requests.length = 0;
  });

  it('lists runs through the proxy entry, with repeated filters, the cursor and the caller token', async () => {
    server.use(http.get(`${API}/runs`, () => HttpResponse.json(fixtures.runs)));
    const page = await testClient().listRuns(
      {
        status: ['FAILED', 'RUNNING'],
        period: '2026-10',
        domain: ['open', 'native'],
        trigger: 'CRON',
        from: '2026-10-01',
        to: '2026-10-31',
        q: '4992',
        anomalous: true,
        sort: '-durationSeconds',
      },
      { cursor: 'abc', limit: 25 },
    );
    expect(page.totalItems).toBe(fixtures.runs.totalItems);
    expect(requests).toHaveLength(1);
    const url = new URL(requests[0].url);
    expect(url.origin + url.pathname).toBe(`${API}/runs`);
    expect(url.searchParams.getAll('status')).toEqual(['FAILED', 'RUNNING']);
    expect(url.searchParams.getAll('domain')).toEqual(['open', 'native']);
    expect(
      Object.fromEntries(
        [
          'period',
          'trigger',
          'from',
          'to',
          'q',
          'anomalous',
          'sort',
          'cursor',
          'limit',
        ].map(k => [k, url.searchParams.get(k)]),
      ),
    ).toEqual({
      period: '2026-10',
      trigger: 'CRON',
      from: '2026-10-01',
      to: '2026-10-31',
      q: '4992',
      anomalous: 'true',
      sort: '-durationSeconds',
      cursor: 'abc',
      limit: '25',
    });
    expect(requests[0].headers.get('Authorization')).toBe(`Bearer ${TOKEN}`);
    expect(requests[0].headers.get('Accept')).toBe('application/json');
  });

  it("throws a ResponseError carrying the server's message and error name", async () => {
    server.use(
      http.get(`${API}/runs`, () =>
        errorBody(
          'InputError',
          "period must be YYYY-MM, got '2026-13'",
          400,
          '/finops/admin/runs?period=2026-13',
        ),
      ),
    );
    const failure = await testClient()
      .listRuns({ period: '2026-13' })
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ResponseError);
    const error = failure as ResponseError;
    // The server's own error, as ResponseErrorPanel shows it.
    expect(error.cause.message).toBe("period must be YYYY-MM, got '2026-13'");
    expect(error.cause.name).toBe('InputError');
    expect(error.message).toBe('Request failed with 400 Bad Request');
    expect(error.statusCode).toBe(400);
    expect(error.body.error.name).toBe('InputError');
    expect(error.body.request?.url).toBe('/finops/admin/runs?period=2026-13');
  });

  it('reads a 503 and a 403 the same way', async () => {
    server.use(
      http.get(`${API}/coverage`, () =>
        errorBody(
          'ServiceUnavailableError',
          'the read model database does not answer',
          503,
        ),
      ),
      http.get(`${API}/reprocess/:id`, () =>
        errorBody('NotAllowedError', 'reprocess is for FinOps admins', 403),
      ),
    );
    await expect(testClient().getCoverage()).rejects.toMatchObject({
      cause: {
        name: 'ServiceUnavailableError',
        message: 'the read model database does not answer',
      },
      statusCode: 503,
    });
    await expect(testClient().getReprocess('r1')).rejects.toMatchObject({
      cause: {
        name: 'NotAllowedError',
        message: 'reprocess is for FinOps admins',
      },
      statusCode: 403,
    });
    expect(
      errorMessage(
        await testClient()
          .getCoverage()
          .catch(e => e),
      ),
    ).toBe('the read model database does not answer');
  });

  it('fetches a run by its encoded id, and the caller', async () => {
    server.use(
      http.get(`${API}/runs/:runId`, ({ params }) =>
        HttpResponse.json({ ...fixtures.runFailed, runId: params.runId }),
      ),
      http.get(`${API}/me`, () => HttpResponse.json(fixtures.meAdmin)),
    );
    const client = testClient();
    const run = await client.getRun('4992ccdb-8774-40d4-96c4-19ad27423a15');
    expect(run.runId).toBe('4992ccdb-8774-40d4-96c4-19ad27423a15');
    expect(new URL(requests[0].url).pathname).toBe(
      '/api/proxy/finops-admin/runs/4992ccdb-8774-40d4-96c4-19ad27423a15',
    );
    expect((await client.getMe()).access).toEqual({
      read: true,
      logs: true,
      reprocess: true,
    });
  });

  it('lists the sources, with the months per source when given', async () => {
    server.use(
      http.get(`${API}/sources`, () =>
        HttpResponse.json({ items: [], sourcesFile: false }),
      ),
    );
    const client = testClient();
    expect(await client.getSources()).toEqual({
      items: [],
      sourcesFile: false,
    });
    await client.getSources({ limit: 6 });
    expect(
      requests.map(r => new URL(r.url).pathname + new URL(r.url).search),
    ).toEqual([
      '/api/proxy/finops-admin/sources',
      '/api/proxy/finops-admin/sources?limit=6',
    ]);
  });

  it('downloads logs as a blob named by the server, with the token (a plain link would carry none)', async () => {
    server.use(
      http.get(
        `${API}/runs/:runId/logs`,
        () =>
          new HttpResponse('== events ==\nSTEP_FAILURE load_native\n', {
            headers: {
              'Content-Type': 'text/plain; charset=utf-8',
              'Content-Disposition':
                'attachment; filename="finops-run-4992ccdb-native.log"',
            },
          }),
      ),
    );
    const file = await testClient().downloadLogs('4992ccdb', {
      step: 'native',
    });
    expect(file.filename).toBe('finops-run-4992ccdb-native.log');
    expect(await file.blob.text()).toContain('STEP_FAILURE load_native');
    const url = new URL(requests[0].url);
    expect(url.pathname).toBe('/api/proxy/finops-admin/runs/4992ccdb/logs');
    expect(url.searchParams.get('step')).toBe('native');
    expect(requests[0].headers.get('Authorization')).toBe(`Bearer ${TOKEN}`);
  });

  it('exports the filtered list as CSV', async () => {
    server.use(
      http.get(
        `${API}/runs`,
        () =>
          new HttpResponse('runId,status\r\nabc,FAILED\r\n', {
            headers: {
              'Content-Type': 'text/csv; charset=utf-8',
              'Content-Disposition':
                'attachment; filename="finops-runs-20261129T000000Z.csv"',
            },
          }),
      ),
    );
    const file = await testClient().exportRunsCsv({ status: ['FAILED'] });
    expect(file.filename).toBe('finops-runs-20261129T000000Z.csv');
    expect(await file.blob.text()).toContain('abc,FAILED');
    const url = new URL(requests[0].url);
    expect(url.searchParams.get('format')).toBe('csv');
    expect(url.searchParams.getAll('status')).toEqual(['FAILED']);
  });

  it('posts a dry run, then a reprocess with its idempotency key', async () => {
    const bodies: unknown[] = [];
    server.use(
      http.post(`${API}/runs/reprocess`, async ({ request }) => {
        const body = (await request.json()) as { dryRun: boolean };
        bodies.push(body);
        if (body.dryRun) return HttpResponse.json(fixtures.dryRun);
        return HttpResponse.json(
          {
            requestId: 'r1',
            state: 'PENDING',
            periods: ['2026-09'],
            domains: ['native'],
            reason: 'x',
            requestedBy: 'user:default/dev',
            createdAt: '',
            updatedAt: '',
            links: { self: '/finops/admin/reprocess/r1' },
          },
          { status: 202 },
        );
      }),
    );
    const client = testClient();
    const input: ReprocessInput = {
      periods: ['2026-09'],
      domains: ['native'],
      reason: 'native export re-issued',
    };
    const preview = await client.previewReprocess(input);
    expect(preview.totals.failingPairs).toBe(1);
    const request = await client.requestReprocess(input, {
      idempotencyKey: 'key-1',
    });
    expect(request.state).toBe('PENDING');
    expect(bodies).toEqual([
      { ...input, dryRun: true },
      { ...input, dryRun: false },
    ]);
    expect(requests[1].headers.get('Idempotency-Key')).toBe('key-1');
    expect(requests[1].headers.get('Content-Type')).toBe('application/json');
    expect(requests[0].headers.get('Idempotency-Key')).toBeNull();
  });

  it('names query parameters as the API does and leaves unset filters out', () => {
    expect(runQueryParams({}).toString()).toBe('');
    expect(
      runQueryParams({ anomalous: false, domain: ['open'] }).toString(),
    ).toBe('domain=open&anomalous=false');
    expect(attachmentName(null, 'x.log')).toBe('x.log');
    expect(attachmentName('attachment; filename="a b.log"', 'x.log')).toBe(
      'a b.log',
    );
  });
});
