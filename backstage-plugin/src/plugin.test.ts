import {
  finopsAdminPlugin,
  FinopsAdminPage,
  finopsAdminApiRef,
  FinopsAdminClient,
  rootRouteRef,
} from './index';

describe('legacy frontend system', () => {
  it('registers the plugin with its API factory and routable page', () => {
    expect(finopsAdminPlugin.getId()).toBe('finops-admin');
    expect(finopsAdminPlugin.routes.root).toBe(rootRouteRef);
    const factories = [...finopsAdminPlugin.getApis()];
    expect(factories.map(f => f.api.id)).toEqual([finopsAdminApiRef.id]);
    const client = factories[0].factory({
      discoveryApi: {
        getBaseUrl: async () => 'http://backstage.test/api/proxy',
      },
      fetchApi: { fetch },
    });
    expect(client).toBeInstanceOf(FinopsAdminClient);
    expect(FinopsAdminPage).toBeDefined();
  });
});
