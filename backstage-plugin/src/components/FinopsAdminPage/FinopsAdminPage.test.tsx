import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import { registerMswTestHooks, renderInTestApp } from '@backstage/test-utils';
import { http, HttpResponse } from 'msw';
import {
  API,
  errorBody,
  fixtures,
  NOT_ALLOWED_MESSAGE,
  requests,
  requestsTo,
  server,
  useApiHandlers,
  withApi,
} from '../../__testUtils__/server';
import { formatMoney } from '../common/format';
import { FinopsAdminPage } from './FinopsAdminPage';

const FAILED_ID = fixtures.runFailed.runId;

function render(path: string) {
  return renderInTestApp(withApi(<FinopsAdminPage />), {
    routeEntries: [path],
  });
}

describe('Run Detail', () => {
  registerMswTestHooks(server);
  beforeEach(() => {
    requests.length = 0;
    useApiHandlers();
  });

  it('shows the summary, periods with their role, one block per domain, aggregates and logs', async () => {
    await render(`/runs/${FAILED_ID}`);
    expect(
      await screen.findByText(`Run ${FAILED_ID.slice(0, 8)}`),
    ).toBeInTheDocument();
    expect(screen.getByText(fixtures.runFailed.version!)).toBeInTheDocument();
    expect(screen.getByText(FAILED_ID)).toBeInTheDocument();
    for (const period of fixtures.runFailed.periods) {
      const label =
        period.role === 'PREVIOUS'
          ? `${period.period} · PREVIOUS (N-1)`
          : `${period.period} · ${period.role}`;
      expect(screen.getByText(label)).toBeInTheDocument();
    }
    for (const block of fixtures.runFailed.blocks) {
      expect(screen.getByTestId(`block-${block.domain}`)).toBeInTheDocument();
    }
    const native = screen.getByTestId('block-native');
    expect(
      within(native).getByText(/Parquet magic bytes not found/),
    ).toBeInTheDocument();
    expect(within(native).getByText('FAILURE')).toBeInTheDocument();
    expect(
      within(native).getByRole('button', { name: 'Download Native logs' }),
    ).toBeInTheDocument();
    for (const mv of fixtures.runFailed.aggregates.mvs) {
      expect(screen.getByText(mv.name)).toBeInTheDocument();
    }
    expect(screen.getByTestId('aggregates-totals')).toHaveTextContent(
      `${fixtures.runFailed.aggregates.relevesInserted.toLocaleString('en-US')} relevés inserted`,
    );
    expect(
      screen.getByText(
        `Failing step: ${fixtures.runFailed.logs!.excerpt!.stepKey}`,
      ),
    ).toBeInTheDocument();
    expect(screen.getByTestId('failure-excerpt')).toBeInTheDocument();
    expect(
      screen.getByRole('button', { name: 'Download logs' }),
    ).toBeInTheDocument();
    expect(
      screen.getByRole('link', { name: /Open in Dagster/ }),
    ).toHaveAttribute('href', fixtures.runFailed.logs!.dagsterUrl);
    expect(
      screen.getByRole('button', { name: 'Reprocess…' }),
    ).toBeInTheDocument();
  });

  it('shows money per currency, rounded, with the exact amount in its title', async () => {
    const run = fixtures.runSuccess;
    await render(`/runs/${run.runId}`);
    const native = await screen.findByTestId('block-native');
    const [usd, eur] = native.querySelectorAll<HTMLElement>(
      '[data-testid=money] [title]',
    );
    // One line per currency, in the API's order, each with its own exact value: no total.
    // (textContent, exact: toHaveTextContent would fold the no-break spaces Intl writes.)
    expect(usd).toHaveAttribute('title', 'USD 67160.56');
    expect(usd.textContent).toBe(
      formatMoney([{ currency: 'USD', amount: '67160.56' }]),
    );
    expect(usd.textContent).toMatch(/USD/);
    expect(eur).toHaveAttribute('title', 'EUR 1250.4749');
    expect(eur.textContent).toMatch(/EUR/);
    expect(eur.textContent).toMatch(/1.?250[.,]47(?!\d)/);
    // The month that carries the euros shows them apart from its dollars.
    const october = within(native).getByText('2026-10').closest('tr')!;
    expect(
      within(october as HTMLElement).getByTitle('EUR 1250.4749'),
    ).toBeInTheDocument();
    expect(
      within(october as HTMLElement).getByTitle('USD 34027.41'),
    ).toBeInTheDocument();
    const aggregates = screen.getByTestId('aggregates-billed-cost');
    expect(within(aggregates).getByTitle('USD 702697.57').textContent).toBe(
      formatMoney([{ currency: 'USD', amount: '702697.57' }]),
    );
    expect(within(aggregates).getByTitle('EUR 1250.4749')).toBeInTheDocument();
  });

  it("renders a block's load quality when the API reports it", async () => {
    const withQuality = {
      ...fixtures.runFailed,
      blocks: fixtures.runFailed.blocks.map(b =>
        b.domain !== 'open'
          ? b
          : {
              ...b,
              quality: [
                {
                  period: '2026-11',
                  focusVersions: ['1.2'],
                  files: 2,
                  rowsRead: 6000,
                  rowsLoaded: 5976,
                  rejected: [
                    {
                      reason: 'negative_billed_cost',
                      count: 24,
                      samples: [
                        {
                          file: 'open/2026-11/export-000.csv',
                          line: 17,
                          column: 'BilledCost',
                          value: '-3.5',
                        },
                      ],
                    },
                  ],
                  warnings: [{ rule: 'missing_application_tag', count: 310 }],
                  unassignedCost: [{ currency: 'USD', amount: '1234.5' }],
                  unassignedRows: 310,
                  gate: 'rejected_ratio',
                },
              ],
            },
      ),
    };
    server.use(
      http.get(`${API}/runs/:runId`, () => HttpResponse.json(withQuality)),
    );
    await render(`/runs/${FAILED_ID}`);
    const quality = await screen.findByTestId('block-quality');
    expect(
      within(quality).getByText('negative_billed_cost: 24'),
    ).toBeInTheDocument();
    expect(
      within(quality).getByText(
        'open/2026-11/export-000.csv:17 BilledCost = -3.5',
      ),
    ).toBeInTheDocument();
    expect(
      within(quality).getByText('missing_application_tag: 310'),
    ).toBeInTheDocument();
    expect(
      within(quality).getByText('gate: rejected_ratio'),
    ).toBeInTheDocument();
    expect(within(quality).getByText('1.2')).toBeInTheDocument();
    expect(within(quality).getByTitle('USD 1234.5').textContent).toBe(
      formatMoney([{ currency: 'USD', amount: '1234.5' }]),
    );
    // Blocks without quality show none.
    expect(screen.getAllByTestId('block-quality')).toHaveLength(1);
  });

  it('downloads a block log through the API, with the step', async () => {
    const created: Blob[] = [];
    const createObjectURL = jest.fn((blob: Blob) => {
      created.push(blob);
      return 'blob:finops';
    });
    Object.assign(URL, { createObjectURL, revokeObjectURL: jest.fn() });
    const click = jest
      .spyOn(HTMLAnchorElement.prototype, 'click')
      .mockImplementation(() => {});
    server.use(
      http.get(
        `${API}/runs/:runId/logs`,
        () =>
          new HttpResponse('== stderr ==\nboom\n', {
            headers: {
              'Content-Disposition': 'attachment; filename="run-native.log"',
            },
          }),
      ),
    );
    await render(`/runs/${FAILED_ID}`);
    fireEvent.click(
      await screen.findByRole('button', { name: 'Download Native logs' }),
    );
    await waitFor(() => expect(click).toHaveBeenCalled());
    expect(await created[0].text()).toContain('boom');
    expect(
      requestsTo(`/runs/${FAILED_ID}/logs`)[0].searchParams.get('step'),
    ).toBe('native');
    click.mockRestore();
  });

  it('hides logs and reprocess from a read-only caller', async () => {
    useApiHandlers({ me: fixtures.meReader });
    await render(`/runs/${FAILED_ID}`);
    await screen.findByText(`Run ${FAILED_ID.slice(0, 8)}`);
    await waitFor(() => expect(requestsTo('/me').length).toBeGreaterThan(0));
    expect(
      screen.queryByRole('button', { name: 'Download logs' }),
    ).not.toBeInTheDocument();
    expect(
      screen.queryByRole('button', { name: /Download Native logs/ }),
    ).not.toBeInTheDocument();
    expect(
      screen.queryByRole('button', { name: 'Reprocess…' }),
    ).not.toBeInTheDocument();
    expect(
      screen.queryByRole('link', { name: /Open in Dagster/ }),
    ).not.toBeInTheDocument();
    expect(screen.getByText('Logs are for FinOps admins.')).toBeInTheDocument();
    expect(screen.getByTestId('block-native')).toBeInTheDocument();
  });

  it('shows a missing run as the API words it', async () => {
    await render('/runs/0000dead-0000');
    expect(
      (
        await screen.findAllByText(
          "no run with runId '0000dead-0000' in Dagster",
        )
      ).length,
    ).toBeGreaterThan(0);
  });

  it('pre-fills the reprocess dialog with the failed domains and the periods of the run', async () => {
    await render(`/runs/${FAILED_ID}`);
    fireEvent.click(await screen.findByRole('button', { name: 'Reprocess…' }));
    const dialog = await screen.findByRole('dialog');
    for (const period of fixtures.runFailed.periods) {
      expect(within(dialog).getByText(period.period)).toBeInTheDocument();
    }
    expect(
      within(dialog).getByRole('checkbox', { name: 'Native' }),
    ).toBeChecked();
    expect(
      within(dialog).getByRole('checkbox', { name: 'Open' }),
    ).not.toBeChecked();
  });
});

describe('Coverage', () => {
  registerMswTestHooks(server);
  beforeEach(() => {
    requests.length = 0;
    useApiHandlers();
  });

  it('shows months × domains with the last load, stale and missing cells marked', async () => {
    await render('/coverage');
    expect(
      await screen.findByText(/Last successful load per month and domain/),
    ).toBeInTheDocument();
    const cells = fixtures.coverage.items;
    await screen.findAllByTestId(/coverage-/);
    expect(screen.queryAllByTestId('coverage-missing')).toHaveLength(
      cells.filter(c => !c.lastLoad).length,
    );
    expect(screen.queryAllByTestId('coverage-stale')).toHaveLength(
      cells.filter(c => c.lastLoad && c.stale).length,
    );
    expect(screen.queryAllByTestId('coverage-fresh')).toHaveLength(
      cells.filter(c => c.lastLoad && !c.stale).length,
    );
    for (const period of fixtures.coverage.periods) {
      expect(screen.getByText(period)).toBeInTheDocument();
    }
    const loaded = cells.find(c => c.lastLoad)!;
    expect(
      screen.getAllByRole('link', {
        name: loaded.lastLoad!.runId.slice(0, 8),
      })[0],
    ).toHaveAttribute('href', `/runs/${loaded.lastLoad!.runId}`);
  });

  it('switches between the Batch Runs and Coverage tabs', async () => {
    await render('/coverage');
    await screen.findAllByTestId(/coverage-/);
    fireEvent.click(screen.getByRole('tab', { name: 'Batch Runs' }));
    expect(await screen.findByText(/Batch Runs \(/)).toBeInTheDocument();
  });
});

describe('the page and its caller', () => {
  registerMswTestHooks(server);
  beforeEach(() => {
    requests.length = 0;
    useApiHandlers();
  });

  it.each([
    ['Batch Runs', '/', () => screen.findByText(/Batch Runs \(/)],
    [
      'Run Detail',
      `/runs/${FAILED_ID}`,
      () => screen.findByText(`Run ${FAILED_ID.slice(0, 8)}`),
    ],
    [
      'Coverage',
      '/coverage',
      () => screen.findByText(/Last successful load per month/),
    ],
  ])('asks GET /me once for %s', async (_name, path, shown) => {
    await render(path);
    await shown();
    // Admin controls and the header come from that one answer.
    expect(await screen.findByText('user:default/dev')).toBeInTheDocument();
    expect(requestsTo('/me')).toHaveLength(1);
  });

  it('keeps that one answer across tabs', async () => {
    await render('/');
    await screen.findByText(/Batch Runs \(/);
    fireEvent.click(screen.getByRole('tab', { name: 'Coverage' }));
    await screen.findAllByTestId(/coverage-/);
    fireEvent.click(screen.getByRole('tab', { name: 'Batch Runs' }));
    await screen.findByText(/Batch Runs \(/);
    expect(requestsTo('/me')).toHaveLength(1);
  });

  it.each(['/', '/coverage', `/runs/${FAILED_ID}`])(
    "shows a caller without access the API's reason and nothing else (%s)",
    async path => {
      useApiHandlers({ me: fixtures.meNone });
      const refuse = () =>
        errorBody('NotAllowedError', NOT_ALLOWED_MESSAGE, 403);
      server.use(
        http.get(`${API}/runs`, refuse),
        http.get(`${API}/runs/:runId`, refuse),
        http.get(`${API}/coverage`, refuse),
      );
      await render(path);
      expect(
        (await screen.findAllByText(NOT_ALLOWED_MESSAGE)).length,
      ).toBeGreaterThan(0);
      expect(screen.queryByText(/Request failed with 403/)).toBeNull();
      // Who they are, for the admin they ask; nothing they could use.
      expect(screen.getByText('user:default/outsider')).toBeInTheDocument();
      expect(screen.queryByRole('tab')).toBeNull();
      expect(screen.queryByRole('button', { name: 'Export CSV' })).toBeNull();
      expect(screen.queryByLabelText('Period')).toBeNull();
      expect(screen.queryByRole('link', { name: /Dagster/ })).toBeNull();
    },
  );

  it("shows the API's message when GET /me itself fails", async () => {
    server.use(
      http.get(`${API}/me`, () =>
        errorBody(
          'AuthenticationError',
          'no Backstage token: sign in to Backstage',
          401,
          '/finops/admin/me',
        ),
      ),
    );
    await render('/');
    expect(
      (await screen.findAllByText('no Backstage token: sign in to Backstage'))
        .length,
    ).toBeGreaterThan(0);
    expect(screen.queryByRole('button', { name: 'Export CSV' })).toBeNull();
    expect(requestsTo('/runs')).toHaveLength(0);
  });
});
