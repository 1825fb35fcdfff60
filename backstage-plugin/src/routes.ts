import { createRouteRef } from '@backstage/core-plugin-api';

/** Where the app mounts the plugin's page (`/finops-admin` by convention). @public */
export const rootRouteRef = createRouteRef({ id: 'finops-admin' });
