import {
  createApiFactory,
  createPlugin,
  createRoutableExtension,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/core-plugin-api';
import { finopsAdminApiRef, FinopsAdminClient } from './api';
import { rootRouteRef } from './routes';

/** The FinOps Batch Admin plugin, for apps on the legacy frontend system. @public */
export const finopsAdminPlugin = createPlugin({
  id: 'finops-admin',
  apis: [
    createApiFactory({
      api: finopsAdminApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) =>
        new FinopsAdminClient({ discoveryApi, fetchApi }),
    }),
  ],
  routes: {
    root: rootRouteRef,
  },
});

/** Batch Runs, Run Detail, Coverage, Sources and Failures; mount it at `/finops-admin`. @public */
export const FinopsAdminPage = finopsAdminPlugin.provide(
  createRoutableExtension({
    name: 'FinopsAdminPage',
    component: () =>
      import('./components/FinopsAdminPage').then(m => m.FinopsAdminPage),
    mountPoint: rootRouteRef,
  }),
);
