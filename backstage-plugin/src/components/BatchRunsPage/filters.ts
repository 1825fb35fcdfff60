import { RunQuery, RunSort, RunStatus, Trigger } from '../../api';
import { runQueryParams } from '../../api/FinopsAdminClient';

/**
 * The run list's filters and sort live in the page's query string, under the API's own
 * parameter names, so a filtered view is a link one can share (and the API explains a bad value).
 */
export function queryFromSearch(search: URLSearchParams): RunQuery {
  const list = (name: string) =>
    search
      .getAll(name)
      .flatMap(value => value.split(','))
      .map(value => value.trim())
      .filter(Boolean);
  const text = (name: string) => search.get(name)?.trim() || undefined;
  const anomalous = text('anomalous');
  const query: RunQuery = {
    status: list('status') as RunStatus[],
    period: text('period'),
    domain: list('domain'),
    trigger: text('trigger') as Trigger | undefined,
    from: text('from'),
    to: text('to'),
    q: text('q'),
    anomalous: anomalous === undefined ? undefined : anomalous === 'true',
    sort: text('sort') as RunSort | undefined,
    signature: text('signature'),
  };
  return compact(query);
}

export function searchFromQuery(query: RunQuery): URLSearchParams {
  return runQueryParams(query);
}

/** A stable key of a query: equal filters, equal key (pages are reset when it changes). */
export function queryKey(query: RunQuery): string {
  return searchFromQuery(query).toString();
}

export function compact(query: RunQuery): RunQuery {
  const out: RunQuery = {};
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === '') continue;
    if (Array.isArray(value) && value.length === 0) continue;
    (out as Record<string, unknown>)[key] = value;
  }
  return out;
}

export function hasFilters(query: RunQuery): boolean {
  const { sort: _sort, ...filters } = query;
  return Object.keys(compact(filters)).length > 0;
}
