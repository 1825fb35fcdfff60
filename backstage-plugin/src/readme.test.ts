import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The proxy entry the README gives portal teams to copy (the block after `<!-- proxy-entry -->`). */
function proxyEntry(): string {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  const marker = readme.indexOf('<!-- proxy-entry -->');
  expect(marker).toBeGreaterThan(-1);
  const block = readme.slice(marker).match(/```yaml\n([\s\S]*?)```/);
  expect(block).not.toBeNull();
  return block![1];
}

describe("the README's proxy entry", () => {
  it("forwards the user's token to the API's base path", () => {
    const entry = proxyEntry();
    expect(entry).toMatch(/^ {4}'\/finops-admin':$/m);
    expect(entry).toMatch(/^ {6}target: '[^']+\/finops\/admin'$/m);
    expect(entry).toMatch(/^ {6}credentials: forward$/m);
  });

  it('lets through the headers Backstage would drop, in both directions', () => {
    const line = proxyEntry().match(/^ {6}allowedHeaders: \[(.*)\]$/m);
    expect(line).not.toBeNull();
    const allowed = line![1].split(',').map(h => h.trim().replace(/'/g, ''));
    // Idempotency-Key: sent by requestReprocess. Content-Disposition: the file name of a
    // download (attachmentName). Neither is CORS-safelisted, so the proxy drops both unless listed.
    expect(allowed).toEqual(
      expect.arrayContaining(['Idempotency-Key', 'Content-Disposition']),
    );
  });
});
