// Serves the dev harness (dev/dist/, built by dev/build.mjs) and proxies
// /api/proxy/finops-admin/* to the admin API, as Backstage's proxy does with the entry the
// README gives (target <api>/finops/admin, credentials: forward, its allowedHeaders): only
// CORS-safe headers and the entry's allowedHeaders pass, in both directions, so a header the
// entry forgets is lost here as it would be in a portal.
//
//   node dev/serve.mjs --api http://127.0.0.1:7007 [--port 3001] [--token T]
//
// The dev app signs in as a local guest, which has no Backstage token: with --token, the
// proxy sends `Authorization: Bearer T` (a static token of the API) when the page sends none.
// Other /api/* paths answer 404, as a backend without those plugins would.
// Listens on 127.0.0.1 only; prints "listening on <url>" once ready.
import { createReadStream, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { pipeline } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    api: { type: 'string', default: 'http://127.0.0.1:7007' },
    port: { type: 'string', default: '3001' },
    token: { type: 'string' },
  },
});
const root = join(dirname(fileURLToPath(import.meta.url)), 'dist');
const PROXY_PREFIX = '/api/proxy/finops-admin';
const target = new URL(`${values.api.replace(/\/+$/, '')}/finops/admin`);
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
};
// What Backstage's proxy always passes (plugins/proxy-backend, `safeForwardHeaders`); `host`
// is set to the target's below, as changeOrigin does.
const SAFE = [
  'cache-control',
  'content-language',
  'content-length',
  'content-type',
  'expires',
  'last-modified',
  'pragma',
  'accept',
  'accept-language',
  'user-agent',
];

/** `allowedHeaders` of the README's proxy entry (the block after `<!-- proxy-entry -->`). */
function readmeAllowedHeaders() {
  const readme = readFileSync(
    join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md'),
    'utf8',
  );
  const entry = readme.slice(readme.indexOf('<!-- proxy-entry -->'));
  const line = entry.match(/allowedHeaders: \[(.*)\]/);
  if (!line) throw new Error('README.md: no allowedHeaders in the proxy entry');
  return line[1].split(',').map(h => h.trim().replace(/'/g, ''));
}

const ALLOWED = [...SAFE, ...readmeAllowedHeaders()].map(h => h.toLowerCase());
// credentials: forward passes the caller's token on.
const REQUEST_HEADERS = new Set([...ALLOWED, 'authorization']);
const RESPONSE_HEADERS = new Set(ALLOWED);

function only(headers, names) {
  return Object.fromEntries(
    Object.entries(headers).filter(([name]) => names.has(name.toLowerCase())),
  );
}

function proxy(req, res) {
  const rest = req.url.slice(PROXY_PREFIX.length);
  const url = new URL(target.pathname + rest, target);
  const headers = only(req.headers, REQUEST_HEADERS);
  if (values.token && !headers.authorization)
    headers.authorization = `Bearer ${values.token}`;
  const upstream = http.request(
    url,
    { method: req.method, headers: { ...headers, host: url.host } },
    answer => {
      res.writeHead(
        answer.statusCode ?? 502,
        only(answer.headers, RESPONSE_HEADERS),
      );
      // Each chunk goes on as it comes (a followed log is one response as long as its run),
      // with no buffering of the body; an answer cut short (the API gone) cuts the browser's
      // response too, which `pipe` would leave open.
      pipeline(answer, res, () => {});
    },
  );
  // The browser gone (a live tail unmounted, a page left or closed), the API's request goes
  // too, as behind Backstage's proxy: the API stops following the log and frees the caller's
  // follower slot instead of writing into a paused stream until the run ends.
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  upstream.on('error', error => {
    // Destroyed above, or the API went mid-answer: nobody to tell, or too late for a 502.
    if (res.destroyed || res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        error: {
          name: 'Error',
          message: `proxy: the admin API at ${target} cannot be reached: ${error.message}`,
        },
        response: { statusCode: 502 },
      }),
    );
  });
  req.pipe(upstream);
}

async function file(req, res) {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  let candidate = normalize(join(root, path));
  if (!candidate.startsWith(root + sep) && candidate !== root) {
    res.writeHead(400).end('bad path');
    return;
  }
  let info = await stat(candidate).catch(() => null);
  // Anything that is not a file is a route of the single-page app.
  if (!info || !info.isFile()) {
    if (extname(path) && !path.endsWith('.html')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    candidate = join(root, 'index.html');
    info = await stat(candidate);
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(candidate)] ?? 'application/octet-stream',
    'content-length': info.size,
    'cache-control': 'no-cache',
  });
  createReadStream(candidate).pipe(res);
}

const server = http.createServer((req, res) => {
  if (
    req.url === PROXY_PREFIX ||
    req.url.startsWith(`${PROXY_PREFIX}/`) ||
    req.url.startsWith(`${PROXY_PREFIX}?`)
  ) {
    proxy(req, res);
  } else if (req.url.startsWith('/api/')) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        error: {
          name: 'NotFoundError',
          message: `no such backend route in the dev harness: ${req.url}`,
        },
        response: { statusCode: 404 },
      }),
    );
  } else {
    file(req, res).catch(error => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
    });
  }
});
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(
    `listening on http://127.0.0.1:${port}/finops-admin (API ${target})\n`,
  );
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
