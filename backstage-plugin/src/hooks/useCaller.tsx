import { createContext, ReactNode, useContext, useMemo } from 'react';
import { useApi } from '@backstage/core-plugin-api';
import useAsync from 'react-use/esm/useAsync';
import { Caller, finopsAdminApiRef } from '../api';

const NO_ACCESS = { read: false, logs: false, reprocess: false };

/** The caller as the API sees them (`GET /me`), and whether that answer is still coming. */
export interface CallerState {
  caller?: Caller;
  access: Caller['access'];
  loading: boolean;
  error?: Error;
}

const CallerContext = createContext<CallerState | undefined>(undefined);

function callerState(state: {
  value?: Caller;
  loading: boolean;
  error?: Error;
}): CallerState {
  return {
    caller: state.value,
    access: state.value?.access ?? NO_ACCESS,
    loading: state.loading,
    error: state.error,
  };
}

/**
 * Asks `GET /me` once for everything below it: the page's header, its gate and each screen's
 * controls share one answer instead of asking again per component.
 */
export function CallerProvider(props: { children: ReactNode }) {
  const api = useApi(finopsAdminApiRef);
  const { value, loading, error } = useAsync(() => api.getMe(), [api]);
  const state = useMemo(
    () => callerState({ value, loading, error }),
    [value, loading, error],
  );
  return (
    <CallerContext.Provider value={state}>
      {props.children}
    </CallerContext.Provider>
  );
}

/**
 * The caller as the API sees them. Until it answers, or when it fails, the caller gets no
 * admin control: the API decides, the page only hides what would be refused. Inside a
 * `CallerProvider` (the plugin's page) this reads the shared answer; a screen rendered on its
 * own asks for itself.
 */
export function useCaller(): CallerState {
  const shared = useContext(CallerContext);
  const api = useApi(finopsAdminApiRef);
  const standalone = shared === undefined;
  const own = useAsync(
    async () => (standalone ? api.getMe() : undefined),
    [api, standalone],
  );
  return shared ?? callerState(own);
}
