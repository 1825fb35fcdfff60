/*
 * A small Backstage app around the plugin, for a real browser against a running admin API.
 * `node dev/build.mjs` bundles it into `dev/dist/`; `node dev/serve.mjs --api <url>` serves
 * it and proxies `/api/proxy/finops-admin/*` to the API, the way Backstage's proxy does.
 */
import { createDevApp } from '@backstage/dev-utils';
import { FinopsAdminPage, finopsAdminPlugin } from '../src';

createDevApp()
  .registerPlugin(finopsAdminPlugin)
  .addPage({
    path: '/finops-admin',
    title: 'Batch Runs',
    element: <FinopsAdminPage />,
  })
  .render();
