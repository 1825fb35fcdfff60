import { fireEvent, screen } from '@testing-library/react';
import { registerMswTestHooks, renderInTestApp } from '@backstage/test-utils';
import { http, HttpResponse } from 'msw';
import {
  API,
  errorBody,
  fixtures,
  requests,
  server,
  withApi,
} from '../../__testUtils__/server';
import { ReprocessDialog, reprocessFormProblem } from './ReprocessDialog';

const RUN_ID = 'a1b2c3d4-0000-4000-8000-000000000001';
const request = (state: string, runId: string | null = null) => ({
  requestId: 'f00dcafe-1111-4222-8333-444455556666',
  state,
  periods: ['2026-09'],
  domains: ['native'],
  reason: 'native export re-issued',
  requestedBy: 'user:default/dev',
  createdAt: '2026-11-29T16:30:00Z',
  updatedAt: '2026-11-29T16:30:00Z',
  runId,
  links: {
    self: '/finops/admin/reprocess/f00dcafe-1111-4222-8333-444455556666',
  },
});

describe('ReprocessDialog', () => {
  registerMswTestHooks(server);
  beforeEach(() => {
    requests.length = 0;
  });

  it('previews with a dry run, files on confirm, then follows the request until its run is launched', async () => {
    const posted: { body: any; key: string | null }[] = [];
    let polls = 0;
    server.use(
      http.post(`${API}/runs/reprocess`, async ({ request: req }) => {
        const body = (await req.json()) as any;
        posted.push({ body, key: req.headers.get('Idempotency-Key') });
        return body.dryRun
          ? HttpResponse.json(fixtures.dryRun)
          : HttpResponse.json(request('PENDING'), { status: 202 });
      }),
      http.get(`${API}/reprocess/:id`, () => {
        polls += 1;
        return HttpResponse.json(
          polls < 2 ? request('PENDING') : request('LAUNCHED', RUN_ID),
        );
      }),
    );
    await renderInTestApp(
      withApi(
        <ReprocessDialog
          open
          onClose={() => {}}
          initialPeriods={['2026-09']}
          initialDomains={['native']}
          pollIntervalMs={20}
        />,
      ),
    );
    const confirm = screen.getByRole('button', { name: 'Confirm reprocess' });
    expect(confirm).toBeDisabled();
    fireEvent.change(screen.getByLabelText('Reason'), {
      target: { value: 'native export re-issued' },
    });
    fireEvent.click(screen.getByRole('button', { name: 'Preview (dry run)' }));
    expect(await screen.findByTestId('dry-run-preview')).toHaveTextContent(
      fixtures.dryRun.message,
    );
    expect(screen.getByText('FAIL')).toBeInTheDocument();
    fireEvent.click(screen.getByRole('button', { name: 'Confirm reprocess' }));
    expect(await screen.findByText(/filed \(PENDING\)/)).toBeInTheDocument();
    const link = await screen.findByRole('link', { name: RUN_ID.slice(0, 8) });
    expect(link).toHaveAttribute('href', `/runs/${RUN_ID}`);
    expect(posted.map(p => p.body)).toEqual([
      {
        periods: ['2026-09'],
        domains: ['native'],
        reason: 'native export re-issued',
        dryRun: true,
      },
      {
        periods: ['2026-09'],
        domains: ['native'],
        reason: 'native export re-issued',
        dryRun: false,
      },
    ]);
    expect(posted[1].key).toMatch(/\S{8,}/);
    expect(polls).toBeGreaterThanOrEqual(2);
  });

  it('asks for a new preview when the form changes, and adds months from the month picker', async () => {
    server.use(
      http.post(`${API}/runs/reprocess`, () =>
        HttpResponse.json(fixtures.dryRun),
      ),
    );
    await renderInTestApp(
      withApi(
        <ReprocessDialog
          open
          onClose={() => {}}
          initialPeriods={['2026-09']}
        />,
      ),
    );
    fireEvent.change(screen.getByLabelText('Reason'), {
      target: { value: 'provider re-issued files' },
    });
    fireEvent.click(screen.getByRole('button', { name: 'Preview (dry run)' }));
    await screen.findByTestId('dry-run-preview');
    expect(
      screen.getByRole('button', { name: 'Confirm reprocess' }),
    ).toBeEnabled();
    fireEvent.change(screen.getByLabelText('Add a period'), {
      target: { value: '2026-08' },
    });
    fireEvent.click(screen.getByRole('button', { name: 'Add' }));
    expect(screen.getByText('2026-08')).toBeInTheDocument();
    expect(screen.queryByTestId('dry-run-preview')).not.toBeInTheDocument();
    expect(
      screen.getByRole('button', { name: 'Confirm reprocess' }),
    ).toBeDisabled();
  });

  it("shows the API's refusal", async () => {
    server.use(
      http.post(`${API}/runs/reprocess`, () =>
        errorBody(
          'InputError',
          "periods: '2027-01' is in the future",
          400,
          '/finops/admin/runs/reprocess',
        ),
      ),
    );
    await renderInTestApp(
      withApi(
        <ReprocessDialog
          open
          onClose={() => {}}
          initialPeriods={['2027-01']}
        />,
      ),
    );
    fireEvent.change(screen.getByLabelText('Reason'), {
      target: { value: 'try the future' },
    });
    fireEvent.click(screen.getByRole('button', { name: 'Preview (dry run)' }));
    expect(
      await screen.findByText("periods: '2027-01' is in the future"),
    ).toBeInTheDocument();
  });

  it('says what the form lacks before asking the API', () => {
    expect(
      reprocessFormProblem({ periods: [], domains: ['open'], reason: 'abc' }),
    ).toMatch(/period/);
    expect(
      reprocessFormProblem({
        periods: ['2026-09'],
        domains: [],
        reason: 'abc',
      }),
    ).toMatch(/domain/);
    expect(
      reprocessFormProblem({
        periods: ['2026-09'],
        domains: ['open'],
        reason: '  ',
      }),
    ).toMatch(/reason/);
    expect(
      reprocessFormProblem({
        periods: ['2026-09'],
        domains: ['open'],
        reason: 'abc',
      }),
    ).toBeNull();
  });
});
