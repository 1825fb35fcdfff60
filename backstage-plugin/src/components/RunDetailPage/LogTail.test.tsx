import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import {
  mockApis,
  MockFetchApi,
  registerMswTestHooks,
  renderInTestApp,
  TestApiProvider,
} from '@backstage/test-utils';
import { http, HttpResponse } from 'msw';
import { FinopsAdminClient, finopsAdminApiRef } from '../../api';
import {
  API,
  BACKEND,
  errorBody,
  fixtures,
  requests,
  requestsTo,
  server,
  TOKEN,
  useApiHandlers,
  withApi,
} from '../../__testUtils__/server';
import { FinopsAdminPage } from '../FinopsAdminPage';
import { KEEP_CHARS, keepEnd, LogTail } from './LogTail';

const RUN_ID = fixtures.runSuccess.runId;
const running = {
  ...fixtures.runSuccess,
  status: 'RUNNING',
  dagsterStatus: 'STARTED',
  endTime: null,
  durationSeconds: null,
};

/** A streamed body the test writes into line by line, as the API does while a run runs. */
function liveBody() {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      cancelled = true;
    },
  });
  return {
    stream,
    write: (text: string) => controller.enqueue(encoder.encode(text)),
    end: () => controller.close(),
    cancelled: () => cancelled,
  };
}

function followHandler(body: ReturnType<typeof liveBody>) {
  return http.get(`${API}/runs/:runId/logs`, ({ request }) => {
    const url = new URL(request.url);
    if (url.searchParams.get('follow') !== 'true')
      return new HttpResponse('whole log\n', {
        headers: { 'Content-Type': 'text/plain; charset=utf-8' },
      });
    return new HttpResponse(body.stream, {
      headers: {
        'Content-Type': 'text/plain; charset=utf-8',
        'Cache-Control': 'no-store',
      },
    });
  });
}

describe('LogTail', () => {
  registerMswTestHooks(server);
  beforeEach(() => {
    requests.length = 0;
    useApiHandlers();
  });

  it('shows lines as they stream in, pauses and resumes, and says when the stream ends', async () => {
    const body = liveBody();
    server.use(followHandler(body));
    await renderInTestApp(withApi(<LogTail runId={RUN_ID} step="open" />));
    const tail = await screen.findByTestId('log-tail');
    const log = within(tail).getByLabelText('Live log');

    body.write('# FinOps batch run\nslow line 000\n');
    await waitFor(() => expect(log).toHaveTextContent('slow line 000'));
    expect(tail).toHaveAttribute('data-state', 'following');
    const [url] = requestsTo(`/runs/${RUN_ID}/logs`);
    expect(url.searchParams.get('follow')).toBe('true');
    expect(url.searchParams.get('step')).toBe('open');
    expect(requests[0].headers.get('Authorization')).toBe(`Bearer ${TOKEN}`);

    body.write('slow line 001\n');
    await waitFor(() => expect(log).toHaveTextContent('slow line 001'));

    // Paused: what arrives is kept, not shown, until resumed.
    fireEvent.click(within(tail).getByRole('button', { name: 'Pause' }));
    expect(tail).toHaveAttribute('data-state', 'paused');
    body.write('slow line 002\n');
    await new Promise(resolve => setTimeout(resolve, 50));
    expect(log).not.toHaveTextContent('slow line 002');
    fireEvent.click(within(tail).getByRole('button', { name: 'Resume' }));
    await waitFor(() => expect(log).toHaveTextContent('slow line 002'));

    body.write(
      'slow line 003\n===== end of log (the run ended (SUCCESS)) =====\n',
    );
    body.end();
    await waitFor(() => expect(tail).toHaveAttribute('data-state', 'ended'));
    expect(log).toHaveTextContent('slow line 003');
    expect(within(tail).getByRole('status')).toHaveTextContent('Stream ended');
    expect(within(tail).queryByRole('button', { name: 'Pause' })).toBeNull();
  });

  it('closes the stream when it is unmounted', async () => {
    const body = liveBody();
    server.use(followHandler(body));
    // The real client, noting the abort signal each follow is given.
    const signals: AbortSignal[] = [];
    class Recording extends FinopsAdminClient {
      followLogs(
        runId: string,
        options: Parameters<FinopsAdminClient['followLogs']>[1] = {},
      ) {
        if (options.signal) signals.push(options.signal);
        return super.followLogs(runId, options);
      }
    }
    const client = new Recording({
      discoveryApi: mockApis.discovery({ baseUrl: BACKEND }),
      fetchApi: new MockFetchApi({ injectIdentityAuth: { token: TOKEN } }),
    });
    const rendered = await renderInTestApp(
      <TestApiProvider apis={[[finopsAdminApiRef, client]]}>
        <LogTail runId={RUN_ID} />
      </TestApiProvider>,
    );
    body.write('slow line 000\n');
    await waitFor(() =>
      expect(screen.getByLabelText('Live log')).toHaveTextContent(
        'slow line 000',
      ),
    );
    expect(signals).toHaveLength(1);
    expect(signals[0].aborted).toBe(false);
    rendered.unmount();
    expect(signals[0].aborted).toBe(true);
  });

  it("shows the API's message when the follow is refused", async () => {
    server.use(
      http.get(`${API}/runs/:runId/logs`, () =>
        errorBody(
          'TooManyRequestsError',
          'user:default/guest already follows 4 logs, the limit (FINOPS_LOG_FOLLOWERS_PER_CALLER)',
          429,
        ),
      ),
    );
    await renderInTestApp(withApi(<LogTail runId={RUN_ID} />));
    const tail = await screen.findByTestId('log-tail');
    await waitFor(() => expect(tail).toHaveAttribute('data-state', 'error'));
    expect(within(tail).getByRole('status')).toHaveTextContent(
      'already follows 4 logs',
    );
  });

  it('keeps the end of a long log, cut at a line start', () => {
    const line = `${'x'.repeat(99)}\n`;
    const kept = keepEnd(line.repeat(KEEP_CHARS / 100 + 10));
    expect(kept.length).toBeLessThanOrEqual(KEEP_CHARS);
    expect(kept.startsWith('x')).toBe(true);
  });
});

describe('Run Detail of a running run', () => {
  registerMswTestHooks(server);
  beforeEach(() => {
    requests.length = 0;
    useApiHandlers();
  });

  it('shows the live tail beside the download button', async () => {
    const body = liveBody();
    server.use(
      http.get(`${API}/runs/${RUN_ID}`, () => HttpResponse.json(running)),
      followHandler(body),
    );
    await renderInTestApp(withApi(<FinopsAdminPage />), {
      routeEntries: [`/runs/${RUN_ID}`],
    });
    const tail = await screen.findByTestId('log-tail');
    body.write('slow line 000\n');
    await waitFor(() =>
      expect(within(tail).getByLabelText('Live log')).toHaveTextContent(
        'slow line 000',
      ),
    );
    expect(
      screen.getByRole('button', { name: 'Download logs' }),
    ).toBeInTheDocument();
    body.end();
    await waitFor(() => expect(tail).toHaveAttribute('data-state', 'ended'));
  });

  it('shows no tail for an ended run', async () => {
    await renderInTestApp(withApi(<FinopsAdminPage />), {
      routeEntries: [`/runs/${RUN_ID}`],
    });
    expect(
      await screen.findByRole('button', { name: 'Download logs' }),
    ).toBeInTheDocument();
    expect(screen.queryByTestId('log-tail')).toBeNull();
  });
});
