import { screen } from '@testing-library/react';
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
});
