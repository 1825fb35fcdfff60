import { screen, within } from '@testing-library/react';
import { registerMswTestHooks } from '@backstage/test-utils';
import { discoveryApiRef, fetchApiRef } from '@backstage/frontend-plugin-api';
import { renderTestApp } from '@backstage/frontend-test-utils';
import { mockApis, MockFetchApi } from '@backstage/test-utils';
import {
  BACKEND,
  fixtures,
  requests,
  server,
  TOKEN,
  useApiHandlers,
} from './__testUtils__/server';
import plugin from './alpha';

describe('new frontend system', () => {
  registerMswTestHooks(server);
  // The page's loader imports its screens lazily, and the first import compiles the whole
  // screen tree (MUI, core-components' table): on a busy machine that alone took longer than a
  // findBy* wait (the test failed once under load). Loading it here keeps the tests' waits for
  // what they check: rendering and the API's answers.
  beforeAll(() => import('./components/FinopsAdminPage'));
  beforeEach(() => {
    requests.length = 0;
    useApiHandlers();
  });

  it('declares the page at /finops-admin and the API, under plugin id finops-admin', () => {
    expect(plugin.pluginId).toBe('finops-admin');
    expect(plugin.getExtension('page:finops-admin')).toBeDefined();
    expect(plugin.getExtension('api:finops-admin')).toBeDefined();
  });

  it('renders Batch Runs at /finops-admin in an app that installs the plugin', async () => {
    renderTestApp({
      features: [plugin],
      initialRouteEntries: ['/finops-admin'],
      apis: [
        [discoveryApiRef, mockApis.discovery({ baseUrl: BACKEND })],
        [
          fetchApiRef,
          new MockFetchApi({ injectIdentityAuth: { token: TOKEN } }),
        ],
      ],
    });
    // In the order the page answers: /me (the header), then the list.
    expect(
      await screen.findByText(fixtures.meAdmin.subject),
    ).toBeInTheDocument();
    expect(
      await screen.findByText(`Batch Runs (${fixtures.runs.totalItems})`),
    ).toBeInTheDocument();
    const link = screen.getAllByRole('link', {
      name: fixtures.runFailed.runId.slice(0, 8),
    })[0];
    expect(link).toHaveAttribute(
      'href',
      `/finops-admin/runs/${fixtures.runFailed.runId}`,
    );
    expect(
      requests.some(r => r.headers.get('Authorization') === `Bearer ${TOKEN}`),
    ).toBe(true);
  });

  it("puts Batch Runs in the app's sidebar, with the plugin's icon", async () => {
    // Backstage 1.55's app/nav lists a page only when the page or its plugin has an icon.
    expect(plugin.icon).toBeTruthy();
    renderTestApp({
      features: [plugin],
      initialRouteEntries: ['/finops-admin'],
      apis: [
        [discoveryApiRef, mockApis.discovery({ baseUrl: BACKEND })],
        [
          fetchApiRef,
          new MockFetchApi({ injectIdentityAuth: { token: TOKEN } }),
        ],
      ],
    });
    const nav = await screen.findByRole('navigation');
    const item = within(nav).getByRole('link', { name: /Batch Runs/ });
    expect(item).toHaveAttribute('href', '/finops-admin');
    expect(item.querySelector('svg')).not.toBeNull();
  });
});
