import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { registerMswTestHooks, renderInTestApp } from '@backstage/test-utils';
import { http, HttpResponse } from 'msw';
import {
  API,
  errorBody,
  fixtures,
  LocationProbe,
  NOT_ALLOWED_MESSAGE,
  requests,
  requestsTo,
  server,
  useApiHandlers,
  withApi,
} from '../../__testUtils__/server';
import { formatMoney } from '../common/format';
import { BatchRunsPage } from './BatchRunsPage';

const FAILED_ID = fixtures.runFailed.runId;

function render(path = '/', props: { refreshMs?: number } = {}) {
  return renderInTestApp(
    withApi(
      <>
        <BatchRunsPage {...props} />
        <LocationProbe />
      </>,
    ),
    { routeEntries: [path] },
  );
}

describe('BatchRunsPage', () => {
  registerMswTestHooks(server);
  beforeEach(() => {
    requests.length = 0;
    useApiHandlers();
  });

  it('shows each run: status with its text, short linked id, trigger, domains, volumes, errors', async () => {
    await render();
    expect(
      await screen.findByText(`Batch Runs (${fixtures.runs.totalItems})`),
    ).toBeInTheDocument();
    const link = screen.getAllByRole('link', {
      name: FAILED_ID.slice(0, 8),
    })[0];
    expect(link).toHaveAttribute('href', `/runs/${FAILED_ID}`);
    const row = link.closest('tr')!;
    expect(within(row).getByText('FAILED')).toBeInTheDocument();
    expect(
      within(row).getByText('Native · failed').closest('[data-status]'),
    ).toHaveAttribute('data-status', 'FAILED');
    expect(
      within(row).getByText('Open').closest('[data-status]'),
    ).toHaveAttribute('data-status', 'SUCCESS');
    expect(within(row).getByText('1 error')).toBeInTheDocument();
    expect(
      within(row).getByText(/Parquet magic bytes not found/),
    ).toBeInTheDocument();
    const listed = fixtures.runs.items.find(r => r.runId === FAILED_ID)!;
    expect(
      within(row).getByText(
        `${listed.volumes.relevesInserted.toLocaleString('en-US')} inserted`,
      ),
    ).toBeInTheDocument();
    expect(
      within(row).getByText(`${listed.volumes.mvsRefreshed} MVs refreshed`),
    ).toBeInTheDocument();
    // textContent, exact: toHaveTextContent would fold the no-break spaces Intl writes.
    expect(within(row).getByTitle('USD 657841.67').textContent).toBe(
      formatMoney([{ currency: 'USD', amount: '657841.67' }]),
    );
    expect(
      within(row).getByText(fixtures.runFailed.launchedBy!),
    ).toBeInTheDocument();
    expect(
      within(row).getByRole('link', { name: 'Open in Dagster' }),
    ).toHaveAttribute('href', expect.stringContaining(`/runs/${FAILED_ID}`));
  });

  it('shows the billed cost of a run in each of its currencies, apart', async () => {
    await render();
    const [link] = await screen.findAllByRole('link', {
      name: fixtures.runSuccess.runId.slice(0, 8),
    });
    const row = link.closest('tr')!;
    expect(within(row).getByTitle('USD 702697.57')).toBeInTheDocument();
    expect(within(row).getByTitle('EUR 1250.4749').textContent).toBe(
      formatMoney([{ currency: 'EUR', amount: '1250.4749' }]),
    );
  });

  it('sends the filters of the URL to the API and shows them in the form', async () => {
    await render(
      '/?status=FAILED&domain=open&domain=native&period=2026-10&anomalous=true',
    );
    await screen.findByText(/Batch Runs \(/);
    const sent = requestsTo('/runs')[0].searchParams;
    expect(sent.getAll('status')).toEqual(['FAILED']);
    expect(sent.getAll('domain')).toEqual(['open', 'native']);
    expect(sent.get('period')).toBe('2026-10');
    expect(sent.get('anomalous')).toBe('true');
    expect(screen.getByLabelText('Period')).toHaveValue('2026-10');
    expect(
      screen.getByRole('checkbox', { name: 'Abnormal only' }),
    ).toBeChecked();
    expect(
      screen.getByText('FAILED', { selector: '[role="combobox"]' }),
    ).toBeInTheDocument();
  });

  it('writes a changed filter to the URL and asks the API again', async () => {
    await render('/?status=FAILED');
    await screen.findByText(/Batch Runs \(/);
    fireEvent.click(screen.getByRole('checkbox', { name: 'Abnormal only' }));
    await waitFor(() =>
      expect(screen.getByTestId('location')).toHaveTextContent(
        '/?status=FAILED&anomalous=true',
      ),
    );
    fireEvent.change(screen.getByLabelText('Period'), {
      target: { value: '2026-09' },
    });
    await waitFor(() =>
      expect(screen.getByTestId('location')).toHaveTextContent(
        '/?status=FAILED&period=2026-09&anomalous=true',
      ),
    );
    await waitFor(() =>
      expect(requestsTo('/runs').at(-1)!.searchParams.get('period')).toBe(
        '2026-09',
      ),
    );
    fireEvent.click(screen.getByRole('button', { name: 'Clear filters' }));
    await waitFor(() =>
      expect(screen.getByTestId('location')).toHaveTextContent(/^\/$/),
    );
  });

  it("shows the API's error in the error panel", async () => {
    server.use(
      http.get(`${API}/runs`, () =>
        errorBody('InputError', "period must be YYYY-MM, got '2026-13'", 400),
      ),
    );
    await render('/?period=2026-13');
    expect(
      (await screen.findAllByText("period must be YYYY-MM, got '2026-13'"))
        .length,
    ).toBeGreaterThan(0);
  });

  it('gives admins the reprocess and log controls', async () => {
    await render();
    await screen.findByText(/Batch Runs \(/);
    expect(
      await screen.findByRole('button', { name: 'Reprocess…' }),
    ).toBeInTheDocument();
    expect(
      screen.getAllByRole('button', { name: 'Download logs' }),
    ).toHaveLength(fixtures.runs.items.length);
    expect(screen.getAllByRole('button', { name: 'Reprocess' })).toHaveLength(
      fixtures.runs.items.length,
    );
  });

  it('hides reprocess and logs from a read-only caller', async () => {
    useApiHandlers({ me: fixtures.meReader });
    await render();
    await screen.findByText(/Batch Runs \(/);
    await waitFor(() => expect(requestsTo('/me')).toHaveLength(1));
    expect(
      screen.queryByRole('button', { name: 'Reprocess…' }),
    ).not.toBeInTheDocument();
    expect(
      screen.queryByRole('button', { name: 'Download logs' }),
    ).not.toBeInTheDocument();
    expect(
      screen.queryByRole('button', { name: 'Reprocess' }),
    ).not.toBeInTheDocument();
    // What every reader may do stays.
    expect(screen.getAllByRole('link', { name: 'Run detail' }).length).toBe(
      fixtures.runs.items.length,
    );
    expect(
      screen.getByRole('button', { name: 'Export CSV' }),
    ).toBeInTheDocument();
    // Dagster's UI shows the logs this caller may not read.
    expect(
      screen.queryByRole('link', { name: 'Open in Dagster' }),
    ).not.toBeInTheDocument();
  });

  it("shows only the API's reason to a caller it refuses: no filters, no export", async () => {
    useApiHandlers({ me: fixtures.meNone });
    server.use(
      http.get(`${API}/runs`, () =>
        errorBody('NotAllowedError', NOT_ALLOWED_MESSAGE, 403),
      ),
    );
    await render();
    expect(
      (await screen.findAllByText(NOT_ALLOWED_MESSAGE)).length,
    ).toBeGreaterThan(0);
    expect(screen.queryByText(/Request failed with 403/)).toBeNull();
    expect(screen.queryByRole('button', { name: 'Export CSV' })).toBeNull();
    expect(screen.queryByLabelText('Period')).toBeNull();
  });

  it('pages with the API cursors: Next sends nextCursor, Previous goes back', async () => {
    const [first, ...rest] = fixtures.runs.items;
    server.use(
      http.get(`${API}/runs`, ({ request }) => {
        const cursor = new URL(request.url).searchParams.get('cursor');
        return HttpResponse.json(
          cursor === 'page-2'
            ? { items: rest, pageInfo: { nextCursor: null }, totalItems: 4 }
            : {
                items: [first],
                pageInfo: { nextCursor: 'page-2' },
                totalItems: 4,
              },
        );
      }),
    );
    await render();
    await screen.findByText('Page 1');
    expect(screen.getByRole('button', { name: 'Previous' })).toBeDisabled();
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    await screen.findByText('Page 2');
    expect(requestsTo('/runs').at(-1)!.searchParams.get('cursor')).toBe(
      'page-2',
    );
    await screen.findByRole('link', { name: rest[0].runId.slice(0, 8) });
    expect(screen.getByRole('button', { name: 'Next' })).toBeDisabled();
    fireEvent.click(screen.getByRole('button', { name: 'Previous' }));
    await screen.findByText('Page 1');
    await waitFor(() =>
      expect(requestsTo('/runs').at(-1)!.searchParams.get('cursor')).toBeNull(),
    );
  });

  it('refreshes while a run is RUNNING and stops once none is', async () => {
    // The run ends when the test says so, not after a number of calls: a loaded machine could
    // otherwise refresh past RUNNING before the test has looked at it. The refresh is slower
    // than the render: `renderInTestApp` returns once React is idle, never with a 50 ms one.
    let calls = 0;
    let ended = false;
    server.use(
      http.get(`${API}/runs`, () => {
        calls += 1;
        return HttpResponse.json({
          ...fixtures.runs,
          items: [
            {
              ...fixtures.runs.items[0],
              status: ended ? 'SUCCESS' : 'RUNNING',
            },
          ],
        });
      }),
    );
    await render('/', { refreshMs: 300 });
    expect(await screen.findByText('RUNNING')).toBeInTheDocument();
    expect(
      screen.getByText(/refreshing every few seconds/),
    ).toBeInTheDocument();
    // It asks again while the run is RUNNING...
    await waitFor(() => expect(calls).toBeGreaterThanOrEqual(3));
    ended = true;
    // ...shows the run's end, then asks no more.
    await screen.findByText('SUCCESS');
    expect(
      screen.queryByText(/refreshing every few seconds/),
    ).not.toBeInTheDocument();
    await new Promise(resolve => setTimeout(resolve, 300));
    const settled = calls;
    // Three refresh periods without a call.
    await new Promise(resolve => setTimeout(resolve, 900));
    expect(calls).toBe(settled);
  });
});
