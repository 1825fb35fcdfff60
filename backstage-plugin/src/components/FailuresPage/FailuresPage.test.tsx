import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { registerMswTestHooks, renderInTestApp } from '@backstage/test-utils';
import { http, HttpResponse } from 'msw';
import {
  API,
  errorBody,
  fixtures,
  LocationProbe,
  requests,
  requestsTo,
  server,
  useApiHandlers,
  withApi,
} from '../../__testUtils__/server';
import failuresFixture from '../../__fixtures__/failures.json';
import type { FailureList } from '../../api';
import { FinopsAdminPage } from '../FinopsAdminPage';
import { shortId } from '../common/format';

// The API's answer over three runs of Native failing on the same truncated Parquet export, in
// three months, one launched by a source's delivery, and a launch that failed in the plan
// (tests/failures_world.py); signatures and masked texts as the API's own masking gives them.
const failures = failuresFixture as FailureList;
const [broken, plan] = failures.items;
const FAILED_ID = fixtures.runFailed.runId;

function render(path: string) {
  return renderInTestApp(
    withApi(
      <>
        <FinopsAdminPage />
        <LocationProbe />
      </>,
    ),
    { routeEntries: [path] },
  );
}

describe('Failures', () => {
  registerMswTestHooks(server);
  beforeEach(() => {
    requests.length = 0;
    useApiHandlers();
    server.use(http.get(`${API}/failures`, () => HttpResponse.json(failures)));
  });

  it('shows three runs failing for one cause as one row with count 3', async () => {
    await render('/failures');
    const row = await screen.findByTestId(`failure-${broken.signature}`);
    expect(within(row).getByTestId('failure-count')).toHaveTextContent('3');
    expect(within(row).getByTestId('failure-text')).toHaveTextContent(
      '<path>/export-<n>.parquet: not a readable Parquet file',
    );
    expect(within(row).getByText('unreadable_file')).toBeInTheDocument();
    expect(within(row).getByText('Native')).toBeInTheDocument();
    expect(within(row).getByText('native-drop')).toBeInTheDocument();
    expect(within(row).getByTitle('2026-09-02 06:00:41 UTC')).toHaveTextContent(
      '2026-09-02 06:00',
    );
    for (const runId of broken.runs) {
      expect(
        within(row).getByRole('link', { name: shortId(runId) }),
      ).toHaveAttribute('href', `/runs/${runId}`);
    }
    const other = screen.getByTestId(`failure-${plan.signature}`);
    expect(within(other).getByTestId('failure-count')).toHaveTextContent('1');
    expect(within(other).getByText('PeriodError')).toBeInTheDocument();
    expect(within(other).getByText('—')).toBeInTheDocument();
    expect(screen.getByTestId('failures-total')).toHaveTextContent(
      '2 cause(s) of failure',
    );
    expect(screen.getByRole('tab', { name: 'Failures' })).toHaveAttribute(
      'aria-selected',
      'true',
    );
    expect(requestsTo('/failures').map(u => u.search)).toEqual(['']);
  });

  it('links a cause to the run list, which passes signature= to the API and shows it as a removable chip', async () => {
    await render('/failures');
    const row = await screen.findByTestId(`failure-${broken.signature}`);
    const runs = within(row).getByRole('link', {
      name: `Runs that failed with ${broken.signature}`,
    });
    expect(runs).toHaveAttribute('href', `/?signature=${broken.signature}`);
    fireEvent.click(runs);
    await waitFor(() =>
      expect(
        requestsTo('/runs').map(u => u.searchParams.get('signature')),
      ).toContain(broken.signature),
    );
    const chip = await screen.findByTestId('filter-signature');
    expect(chip).toHaveTextContent(`Failure cause ${broken.signature}`);

    // The failed run says how often its cause was seen, and links back to it.
    const seen = await screen.findByTestId('seen-in-runs');
    expect(seen).toHaveTextContent(
      'seen in 3 run(s) since 2026-09-02 06:00:41 UTC',
    );
    expect(seen).toHaveAttribute(
      'href',
      `/failures#signature-${broken.signature}`,
    );

    fireEvent.click(within(chip).getByTestId('CancelIcon'));
    await waitFor(() =>
      expect(screen.getByTestId('location')).toHaveTextContent(/^\/$/),
    );
    await waitFor(() =>
      expect(
        requestsTo('/runs')
          .slice(-1)
          .map(u => u.searchParams.get('signature')),
      ).toEqual([null]),
    );
    expect(screen.queryByTestId('filter-signature')).not.toBeInTheDocument();
  });

  it('marks the cause a "seen in N runs" link points at', async () => {
    await render(`/failures#signature-${broken.signature}`);
    const row = await screen.findByTestId(`failure-${broken.signature}`);
    expect(row).toHaveClass('Mui-selected');
    expect(screen.getByTestId(`failure-${plan.signature}`)).not.toHaveClass(
      'Mui-selected',
    );
  });

  it('says on the run detail in how many runs its cause was seen', async () => {
    await render(`/runs/${FAILED_ID}`);
    const seen = await screen.findByTestId('seen-in-runs');
    expect(seen).toHaveTextContent(
      'seen in 3 run(s) since 2026-09-02 06:00:41 UTC',
    );
    expect(seen).toHaveAttribute(
      'href',
      `/failures#signature-${fixtures.runFailed.errors.signature}`,
    );
  });

  it('sends the window of the URL to the API and appends the next page', async () => {
    server.use(
      http.get(`${API}/failures`, ({ request }) =>
        HttpResponse.json(
          new URL(request.url).searchParams.get('cursor')
            ? { ...failures, items: [plan], pageInfo: { nextCursor: null } }
            : { ...failures, items: [broken], pageInfo: { nextCursor: 'p2' } },
        ),
      ),
    );
    await render('/failures?from=2026-09-01&to=2026-11-30');
    await screen.findByTestId(`failure-${broken.signature}`);
    fireEvent.click(screen.getByRole('button', { name: 'More' }));
    await screen.findByTestId(`failure-${plan.signature}`);
    expect(
      screen.getByTestId(`failure-${broken.signature}`),
    ).toBeInTheDocument();
    expect(
      screen.queryByRole('button', { name: 'More' }),
    ).not.toBeInTheDocument();
    expect(requestsTo('/failures').map(u => u.search)).toEqual([
      '?from=2026-09-01&to=2026-11-30',
      '?from=2026-09-01&to=2026-11-30&cursor=p2',
    ]);
  });

  it("shows the API's error", async () => {
    server.use(
      http.get(`${API}/failures`, () =>
        errorBody(
          'InputError',
          "from must be an ISO date (2026-11-01) or datetime (2026-11-01T06:00:00Z), got 'yesterday'",
          400,
          '/finops/admin/failures',
        ),
      ),
    );
    await render('/failures?from=yesterday');
    expect(
      (await screen.findAllByText(/from must be an ISO date/)).length,
    ).toBeGreaterThan(0);
    expect(requestsTo('/failures').map(u => u.search)).toEqual([
      '?from=yesterday',
    ]);
  });
});
