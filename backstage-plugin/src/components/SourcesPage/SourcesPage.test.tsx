import { screen, within } from '@testing-library/react';
import { registerMswTestHooks, renderInTestApp } from '@backstage/test-utils';
import { http, HttpResponse } from 'msw';
import {
  API,
  errorBody,
  requests,
  requestsTo,
  server,
  useApiHandlers,
  withApi,
} from '../../__testUtils__/server';
import sourcesFixture from '../../__fixtures__/sources.json';
import { DOMAINS } from '../../api';
import type { SourceList, SourceMonth, SourceState } from '../../api';
import { FinopsAdminPage } from '../FinopsAdminPage';
import { formatBytes, shortId } from '../common/format';

// Recorded from the API over a database written by the pipeline's own `record_scan` and
// `record_load` (tests/admin/api/test_sources.py's world): one month in each state.
const sources = sourcesFixture as SourceList;
const aws = sources.items.find(s => s.name === 'aws-payer')!;

function monthIn(state: SourceState): SourceMonth {
  return aws.months.find(m => m.state === state)!;
}

/** A month's row of aws-payer (another source may hold the same month). */
async function awsRow(period: string) {
  const card = await screen.findByTestId('source-aws-payer');
  return within(card).getByTestId(`month-${period}`);
}

function render() {
  return renderInTestApp(withApi(<FinopsAdminPage />), {
    routeEntries: ['/sources'],
  });
}

describe('Sources', () => {
  registerMswTestHooks(server);
  beforeEach(() => {
    requests.length = 0;
    useApiHandlers();
    server.use(http.get(`${API}/sources`, () => HttpResponse.json(sources)));
  });

  it('lists each source with its kind, domain, location and last listing', async () => {
    await render();
    const card = await screen.findByTestId('source-aws-payer');
    expect(within(card).getByText('aws-payer')).toBeInTheDocument();
    expect(
      within(card).getByText('aws-data-exports · Public'),
    ).toBeInTheDocument();
    expect(
      within(card).getByText('s3://billing-exports/cur/payer'),
    ).toBeInTheDocument();
    expect(within(card).getByText(/last listed/)).toBeInTheDocument();
    const oci = screen.getByTestId('source-oci-tenancy');
    expect(
      within(oci).getByText(/listing failed: AccessDenied/),
    ).toBeInTheDocument();
    const azure = screen.getByTestId('source-azure-ea');
    expect(
      within(azure).getByText('Nothing delivered yet.'),
    ).toBeInTheDocument();
    expect(
      within(azure).getByText('not listed yet by the delivery sensor'),
    ).toBeInTheDocument();
    expect(screen.queryByTestId('sources-empty')).not.toBeInTheDocument();
    expect(screen.getByRole('tab', { name: 'Sources' })).toHaveAttribute(
      'aria-selected',
      'true',
    );
  });

  it('shows the months newest first, each state as a chip', async () => {
    await render();
    const card = await screen.findByTestId('source-aws-payer');
    const rows = within(card).getAllByTestId(/^month-/);
    expect(rows.map(r => r.getAttribute('data-testid'))).toEqual(
      aws.months.map(m => `month-${m.period}`),
    );
    const states: SourceState[] = [
      'LOADED',
      'PENDING',
      'INCOMPLETE',
      'FAILED',
      'MISSING',
    ];
    for (const state of states) {
      const month = monthIn(state);
      expect(
        within(card).getByTestId(`state-${month.period}`),
      ).toHaveTextContent(state);
    }
  });

  it('PENDING: the latest delivery, id shortened with the full id in its title, size readable', async () => {
    await render();
    const month = monthIn('PENDING');
    const row = await awsRow(month.period);
    const latest = month.latest!;
    expect(within(row).getByTitle(latest.deliveryId)).toBeInTheDocument();
    expect(
      within(row).getByTitle(`${latest.bytes.toLocaleString('en-US')} bytes`),
    ).toHaveTextContent(formatBytes(latest.bytes));
    expect(within(row).getByText(/2 files/)).toBeInTheDocument();
  });

  it('LOADED: the loaded delivery and a link to its run', async () => {
    await render();
    const month = monthIn('LOADED');
    const row = await awsRow(month.period);
    const link = within(row).getByRole('link', {
      name: shortId(month.loaded!.runId),
    });
    expect(link).toHaveAttribute('href', `/runs/${month.loaded!.runId}`);
  });

  it('FAILED: the previous delivery still loaded, the failed run and its gate', async () => {
    await render();
    const month = monthIn('FAILED');
    const row = await awsRow(month.period);
    expect(
      within(row).getByRole('link', { name: shortId(month.loaded!.runId) }),
    ).toBeInTheDocument();
    expect(within(row).getByText(/failed in run/)).toHaveTextContent(
      `failed in run ${shortId(month.failure!.runId)} (gate incomplete_delivery)`,
    );
  });

  it('INCOMPLETE: how long the data has waited; MISSING: the day it was expected by', async () => {
    await render();
    const incomplete = monthIn('INCOMPLETE');
    const row = await awsRow(incomplete.period);
    expect(within(row).getByText('since 30 h')).toBeInTheDocument();
    expect(within(row).getByText(/5 files/)).toBeInTheDocument();
    const missing = monthIn('MISSING');
    expect(
      within(await awsRow(missing.period)).getByText(/expected by/),
    ).toBeInTheDocument();
  });

  it('says so when no sources file is set and nothing was listed', async () => {
    const landing: SourceList = {
      sourcesFile: false,
      items: DOMAINS.map(domain => ({
        name: `landing-${domain}`,
        domain,
        kind: 'landing',
        location: null,
        expectedDay: null,
        lastScan: null,
        months: [],
      })),
    };
    server.use(http.get(`${API}/sources`, () => HttpResponse.json(landing)));
    await render();
    expect(await screen.findByTestId('sources-empty')).toHaveTextContent(
      'No sources file is set (FINOPS_SOURCES)',
    );
    expect(screen.getAllByText(/location unknown to the API/)).toHaveLength(4);
  });

  it("shows the API's error", async () => {
    server.use(
      http.get(`${API}/sources`, () =>
        errorBody(
          'ServiceUnavailableError',
          "the sources file (FINOPS_SOURCES) cannot be used: /etc/finops/sources.yaml:12: source 'azure-ea': unknown kind 'azure-csv'",
          503,
          '/finops/admin/sources',
        ),
      ),
    );
    await render();
    expect(
      (await screen.findAllByText(/unknown kind 'azure-csv'/)).length,
    ).toBeGreaterThan(0);
    expect(requestsTo('/sources').map(u => u.search)).toEqual(['']);
  });
});
