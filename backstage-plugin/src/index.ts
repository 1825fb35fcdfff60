/**
 * FinOps Batch Admin for Backstage: batch runs, run detail, coverage and reprocess.
 *
 * @packageDocumentation
 */
export { finopsAdminPlugin, FinopsAdminPage } from './plugin';
export { rootRouteRef } from './routes';
export * from './api';
