import { anomalyText, firstLine, formatCost, formatDuration } from './format';

// The full table of cases, shared with the built-in UI's format.js, is
// tests/admin/test_format_parity.py; these few document the shapes.
describe('format', () => {
  it('formats durations, costs and anomalies', () => {
    expect(formatDuration(59.94)).toBe('59.9 s');
    expect(formatDuration(3725)).toBe('1 h 2 min');
    expect(formatCost(1234.5)).toBe('1,234.50');
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
