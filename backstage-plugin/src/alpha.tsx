import {
  convertLegacyRouteRefs,
  convertLegacyRouteRef,
} from '@backstage/core-compat-api';
import {
  ApiBlueprint,
  createFrontendPlugin,
  discoveryApiRef,
  fetchApiRef,
  PageBlueprint,
} from '@backstage/frontend-plugin-api';
import MonetizationOnIcon from '@mui/icons-material/MonetizationOn';
import { finopsAdminApiRef, FinopsAdminClient } from './api';
import { rootRouteRef } from './routes';

/** The API client, for apps on the new frontend system. @alpha */
export const finopsAdminApi = ApiBlueprint.make({
  params: defineParams =>
    defineParams({
      api: finopsAdminApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) =>
        new FinopsAdminClient({ discoveryApi, fetchApi }),
    }),
});

/** Batch Runs, Run Detail, Coverage, Sources and Failures, mounted at `/finops-admin`. @alpha */
export const finopsAdminPage = PageBlueprint.make({
  params: {
    path: '/finops-admin',
    title: 'Batch Runs',
    routeRef: convertLegacyRouteRef(rootRouteRef),
    // The page draws its own header with its tabs (Batch Runs, Coverage, Sources, Failures).
    noHeader: true,
    loader: () =>
      import('./components/FinopsAdminPage').then(m => <m.FinopsAdminPage />),
  },
});

/**
 * FinOps Batch Admin for the new frontend system: an app with `app.packages: all`
 * discovers it from this entry point.
 *
 * @alpha
 */
export default createFrontendPlugin({
  pluginId: 'finops-admin',
  title: 'Batch Runs',
  // The app's sidebar (app/nav) lists a page only when it or its plugin has an icon: without
  // one, Backstage 1.55 mounts the page but shows no nav item for it. Set on the plugin, it also
  // marks the page header; inherit: the sidebar sizes it.
  icon: <MonetizationOnIcon fontSize="inherit" />,
  routes: convertLegacyRouteRefs({ root: rootRouteRef }),
  extensions: [finopsAdminApi, finopsAdminPage],
});
