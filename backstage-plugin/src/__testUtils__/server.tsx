import { ReactElement } from 'react';
import { useLocation } from 'react-router-dom';
import { http, HttpResponse, JsonBodyType } from 'msw';
import { setupServer } from 'msw/node';
import { mockApis, MockFetchApi, TestApiProvider } from '@backstage/test-utils';
import { FinopsAdminClient, finopsAdminApiRef } from '../api';
import runsFixture from '../__fixtures__/runs.json';
import runFailedFixture from '../__fixtures__/run-failed.json';
import runSuccessFixture from '../__fixtures__/run-success.json';
import coverageFixture from '../__fixtures__/coverage.json';
import meAdminFixture from '../__fixtures__/me-admin.json';
import dryRunFixture from '../__fixtures__/dry-run.json';

/** Where the Backstage proxy forwards the plugin's calls in the tests. */
export const BACKEND = 'http://backstage.test';
export const API = `${BACKEND}/api/proxy/finops-admin`;
export const TOKEN = 'backstage-user-token';

export const fixtures = {
  runs: runsFixture,
  runFailed: runFailedFixture,
  runSuccess: runSuccessFixture,
  coverage: coverageFixture,
  meAdmin: meAdminFixture,
  meReader: {
    ...meAdminFixture,
    subject: 'user:default/reader',
    role: 'user',
    via: 'backstage',
    authMode: 'backstage',
    devMode: false,
    access: { read: true, logs: false, reprocess: false },
  },
  /** Authenticated, in neither group: `/me` answers, every read is refused. */
  meNone: {
    ...meAdminFixture,
    subject: 'user:default/outsider',
    role: null,
    groups: ['group:default/marketing'],
    via: 'backstage',
    authMode: 'backstage',
    devMode: false,
    access: { read: false, logs: false, reprocess: false },
  },
  dryRun: dryRunFixture,
};

/** The API's refusal of a caller in neither group (`auth/access.py` words it). */
export const NOT_ALLOWED_MESSAGE =
  'user:default/outsider is in none of the groups allowed here (admins: group:default/finops-admin; ' +
  'users: group:default/finops-user); ask a FinOps admin to add you to one (FINOPS_ADMIN_GROUPS, FINOPS_USER_GROUPS)';

/** Backstage's error body, as the API writes it. */
export function errorBody(
  name: string,
  message: string,
  status: number,
  url = '/finops/admin/runs',
) {
  return HttpResponse.json(
    {
      error: { name, message },
      request: { method: 'GET', url },
      response: { statusCode: status },
    },
    { status },
  );
}

export const server = setupServer();

/** Every request the API received, in order. */
export const requests: Request[] = [];
server.events.on('request:start', ({ request }) => {
  requests.push(request.clone());
});

export function requestsTo(path: string): URL[] {
  return requests
    .map(r => new URL(r.url))
    .filter(u => u.pathname === `/api/proxy/finops-admin${path}`);
}

/** The API answering with the fixtures (recorded from a `finops dev` stack); override per test. */
export function useApiHandlers(overrides: { me?: JsonBodyType } = {}) {
  server.use(
    http.get(`${API}/me`, () =>
      HttpResponse.json(overrides.me ?? fixtures.meAdmin),
    ),
    http.get(`${API}/runs`, () => HttpResponse.json(fixtures.runs)),
    http.get(`${API}/runs/:runId`, ({ params }) => {
      const run = [fixtures.runFailed, fixtures.runSuccess].find(
        r => r.runId === params.runId,
      );
      return run
        ? HttpResponse.json(run)
        : errorBody(
            'NotFoundError',
            `no run with runId '${params.runId}' in Dagster`,
            404,
          );
    }),
    http.get(`${API}/coverage`, () => HttpResponse.json(fixtures.coverage)),
  );
}

export function testClient() {
  return new FinopsAdminClient({
    discoveryApi: mockApis.discovery({ baseUrl: BACKEND }),
    fetchApi: new MockFetchApi({ injectIdentityAuth: { token: TOKEN } }),
  });
}

/** The plugin's screens over the real client and the mock server. */
export function withApi(element: ReactElement) {
  return (
    <TestApiProvider apis={[[finopsAdminApiRef, testClient()]]}>
      {element}
    </TestApiProvider>
  );
}

/** Shows the current URL, so tests can read the filters the page wrote there. */
export function LocationProbe() {
  const location = useLocation();
  return (
    <div data-testid="location">{`${location.pathname}${location.search}`}</div>
  );
}
