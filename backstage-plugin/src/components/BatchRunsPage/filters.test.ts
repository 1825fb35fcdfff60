import {
  queryFromSearch,
  queryKey,
  searchFromQuery,
  hasFilters,
} from './filters';

describe('run list filters in the URL', () => {
  it('reads every filter under the API parameter names, repeatable ones repeated', () => {
    const search = new URLSearchParams(
      'status=FAILED&status=RUNNING&period=2026-10&domain=open&domain=native&trigger=CRON&from=2026-10-01&to=2026-10-31&q=4992&anomalous=true&sort=-durationSeconds&signature=180abf7ffad4',
    );
    expect(queryFromSearch(search)).toEqual({
      status: ['FAILED', 'RUNNING'],
      period: '2026-10',
      domain: ['open', 'native'],
      trigger: 'CRON',
      from: '2026-10-01',
      to: '2026-10-31',
      q: '4992',
      anomalous: true,
      sort: '-durationSeconds',
      signature: '180abf7ffad4',
    });
  });

  it('writes back the same query string (round trip)', () => {
    const text =
      'status=FAILED&period=2026-10&domain=open&domain=native&trigger=MANUAL&from=2026-10-01&to=2026-10-31&q=ab&anomalous=true&sort=startTime&signature=180abf7ffad4';
    expect(
      searchFromQuery(queryFromSearch(new URLSearchParams(text))).toString(),
    ).toBe(text);
  });

  it('accepts comma lists and drops empty values', () => {
    expect(
      queryFromSearch(new URLSearchParams('domain=open,public&q=&period=')),
    ).toEqual({
      domain: ['open', 'public'],
    });
    expect(queryFromSearch(new URLSearchParams(''))).toEqual({});
  });

  it('keeps unknown values so the API can say what is wrong with them', () => {
    expect(
      queryFromSearch(new URLSearchParams('status=DONE&period=2026-13')),
    ).toEqual({
      status: ['DONE'],
      period: '2026-13',
    });
  });

  it('keys equal filters equally, and tells filters from a sort', () => {
    expect(queryKey({ domain: ['open'], status: ['FAILED'] })).toBe(
      queryKey(
        queryFromSearch(new URLSearchParams('domain=open&status=FAILED')),
      ),
    );
    expect(hasFilters({ sort: 'startTime' })).toBe(false);
    expect(hasFilters({ anomalous: true })).toBe(true);
  });
});
