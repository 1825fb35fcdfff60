import { shortenPaths } from './format';

describe('shortenPaths', () => {
  it('keeps the last component of an absolute server path', () => {
    expect(
      shortenPaths(
        '2026-09: cannot read landing file /srv/finops/landing/native/2026-09/export-000.parquet: bad footer',
      ),
    ).toBe(
      '2026-09: cannot read landing file …/export-000.parquet: bad footer',
    );
  });

  it('shortens URLs and Windows paths, and leaves relative names alone', () => {
    expect(shortenPaths('s3://bucket/prefix/open/2026-10/a.csv failed')).toBe(
      '…/a.csv failed',
    );
    expect(shortenPaths('C:\\data\\landing\\x.csv')).toBe('…/x.csv');
    expect(shortenPaths('native/2026-09 is empty')).toBe(
      'native/2026-09 is empty',
    );
    expect(shortenPaths(null)).toBe('');
  });
});
