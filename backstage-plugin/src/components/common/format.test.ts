import {
  anomalyText,
  exactMoney,
  firstLine,
  formatDuration,
  formatMoney,
} from './format';

// The full table of cases, shared with the built-in UI's format.js, is
// tests/admin/test_format_parity.py; these few document the shapes.
describe('format', () => {
  it('formats durations and anomalies', () => {
    expect(formatDuration(59.94)).toBe('59.9 s');
    expect(formatDuration(3725)).toBe('1 h 2 min');
    expect(
      anomalyText({
        metric: 'durationSeconds',
        scope: 'run',
        value: 600,
        baseline: 60,
        score: 12.34,
      }),
    ).toBe('run duration: 10 min 0 s, baseline 1 min 0 s (score 12.3)');
  });

  it('keeps the first line of a message, cut to its length', () => {
    expect(firstLine('first\nsecond')).toBe('first');
    expect(firstLine('abcdef', 4)).toBe('abc…');
    expect(firstLine(null)).toBe('');
  });
});

// Intl separates the code from the number with a no-break space (U+00A0), and groups French
// thousands with a narrow one (U+202F).
describe('formatMoney', () => {
  it('keeps every digit of an amount a JS number cannot hold, rounded on the string', () => {
    const huge = [{ currency: 'USD', amount: '12345678901234567890.125' }];
    expect(formatMoney(huge, 'en-US')).toBe(
      'USD\u00a012,345,678,901,234,567,890.13',
    );
    expect(formatMoney(huge, 'fr-FR')).toBe(
      '12\u202f345\u202f678\u202f901\u202f234\u202f567\u202f890,13\u00a0USD',
    );
    expect(exactMoney(huge)).toBe('USD 12345678901234567890.125');
    // Half away from zero, the carry running through every digit.
    expect(
      formatMoney(
        [{ currency: 'USD', amount: '999999999999999999.995' }],
        'en-US',
      ),
    ).toBe('USD\u00a01,000,000,000,000,000,000.00');
  });

  it("rounds to the currency's minor unit and keeps tiny amounts and credits readable", () => {
    expect(formatMoney([{ currency: 'JPY', amount: '999.5' }], 'en-US')).toBe(
      'JPY\u00a01,000',
    );
    expect(formatMoney([{ currency: 'BHD', amount: '1.2345' }], 'en-US')).toBe(
      'BHD\u00a01.235',
    );
    const tiny = [{ currency: 'USD', amount: '0.00000006538030' }];
    expect(formatMoney(tiny, 'en-US')).toBe('USD\u00a00.00');
    expect(exactMoney(tiny)).toBe('USD 0.00000006538030');
    expect(formatMoney([{ currency: 'USD', amount: '-12.50' }], 'fr-FR')).toBe(
      '-12,50\u00a0USD',
    );
    // A credit rounded to zero shows no sign; its title keeps it.
    expect(formatMoney([{ currency: 'EUR', amount: '-0.004' }], 'en-US')).toBe(
      'EUR\u00a00.00',
    );
  });

  it('shows each currency apart, in the order the API sent, never a total', () => {
    const two = [
      { currency: 'USD', amount: '1361.73337406487786' },
      { currency: 'EUR', amount: '100.00' },
    ];
    expect(formatMoney(two, 'en-US')).toBe(
      'USD\u00a01,361.73 · EUR\u00a0100.00',
    );
    expect(exactMoney(two)).toBe('USD 1361.73337406487786 · EUR 100.00');
    expect(formatMoney([], 'en-US')).toBe('—');
    expect(formatMoney(null)).toBe('—');
    expect(exactMoney(undefined)).toBe('—');
  });

  it('says a cost anomaly in its currency', () => {
    expect(
      anomalyText(
        {
          metric: 'billedCost',
          scope: 'public',
          value: [{ currency: 'USD', amount: '1234.555' }],
          baseline: [{ currency: 'USD', amount: '800' }],
          score: 0.75,
        },
        'en-US',
      ),
    ).toBe(
      'public billed cost: USD\u00a01,234.56, baseline USD\u00a0800.00 (score 0.8)',
    );
  });

  it('says why a value was flagged: the runs compared and the threshold', () => {
    expect(
      anomalyText(
        {
          metric: 'durationSeconds',
          scope: 'open',
          value: 600,
          baseline: 60,
          score: 12.34,
          threshold: 3.5,
          comparedRuns: 20,
          comparedRunIds: ['0123456789abcdef'],
          comparedFrom: '2026-01-02T03:04:05Z',
          comparedTo: '2026-03-01T00:00:00Z',
        },
        'en-US',
      ),
    ).toBe(
      'open duration: 10 min 0 s, baseline 1 min 0 s (score 12.3); median of 20 comparable runs ' +
        'from 2026-01-02 to 2026-03-01 (latest 01234567), flagged beyond ±3.5',
    );
  });
});
