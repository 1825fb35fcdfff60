import { useApi } from '@backstage/core-plugin-api';
import useAsync from 'react-use/esm/useAsync';
import { Caller, finopsAdminApiRef } from '../api';

const NO_ACCESS = { read: false, logs: false, reprocess: false };

/**
 * The caller as the API sees them (`GET /me`). Until it answers, or when it fails, the
 * caller gets no admin control: the API decides, the page only hides what would be refused.
 */
export function useCaller(): {
  caller?: Caller;
  access: Caller['access'];
  loading: boolean;
} {
  const api = useApi(finopsAdminApiRef);
  const { value, loading } = useAsync(() => api.getMe(), [api]);
  return { caller: value, access: value?.access ?? NO_ACCESS, loading };
}
