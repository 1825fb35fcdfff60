import { useState } from 'react';
import { useApi } from '@backstage/core-plugin-api';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import useInterval from 'react-use/esm/useInterval';
import { finopsAdminApiRef, RunList, RunQuery } from '../api';
import { queryKey } from '../components/BatchRunsPage/filters';

export const PAGE_SIZE = 25;
export const ACTIVE_REFRESH_MS = 5000;

/**
 * One page of the run list, paged by the API's cursors: a stack of the cursors that led to
 * the page shown gives Previous, `pageInfo.nextCursor` gives Next. The page refreshes itself
 * while one of its runs is QUEUED or RUNNING, and stops once none is.
 */
export function useRunPages(
  query: RunQuery,
  options: { pageSize?: number; refreshMs?: number } = {},
) {
  const { pageSize = PAGE_SIZE, refreshMs = ACTIVE_REFRESH_MS } = options;
  const api = useApi(finopsAdminApiRef);
  const key = queryKey(query);
  // The stack belongs to one query: new filters start again from the first page.
  const [paging, setPaging] = useState<{
    key: string;
    cursors: (string | undefined)[];
  }>({ key, cursors: [undefined] });
  const cursors = paging.key === key ? paging.cursors : [undefined];
  const cursor = cursors[cursors.length - 1];

  const state = useAsyncRetry<RunList>(
    () => api.listRuns(query, { cursor, limit: pageSize }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [api, key, cursor, pageSize],
  );

  const active = Boolean(
    state.value?.items.some(
      run => run.status === 'RUNNING' || run.status === 'QUEUED',
    ),
  );
  useInterval(
    () => {
      if (!state.loading) state.retry();
    },
    active ? refreshMs : null,
  );

  const nextCursor = state.value?.pageInfo.nextCursor ?? null;
  return {
    ...state,
    active,
    pageNumber: cursors.length,
    hasPrevious: cursors.length > 1,
    hasNext: Boolean(nextCursor),
    next: () => {
      if (nextCursor) setPaging({ key, cursors: [...cursors, nextCursor] });
    },
    previous: () => {
      if (cursors.length > 1) setPaging({ key, cursors: cursors.slice(0, -1) });
    },
  };
}
