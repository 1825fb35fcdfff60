export { finopsAdminApiRef } from './FinopsAdminApi';
export type { FinopsAdminApi, LogsOptions } from './FinopsAdminApi';
export { FinopsAdminClient } from './FinopsAdminClient';
export * from './types';
