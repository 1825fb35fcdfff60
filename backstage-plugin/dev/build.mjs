// Bundles the dev harness (dev/index.tsx: the plugin inside a Backstage dev app) into dev/dist/,
// static files that dev/serve.mjs serves. Usage: node dev/build.mjs
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
const started = Date.now();

/** Resolves `react-dom/client` (imported by the dev app) to dev/react-dom-client.ts, except there. */
const reactDomClientAsEsm = {
  name: 'react-dom-client-as-esm',
  setup(b) {
    b.onResolve({ filter: /^react-dom\/client$/ }, args =>
      args.importer.endsWith('react-dom-client.ts')
        ? undefined
        : { path: join(here, 'react-dom-client.ts') },
    );
  },
};

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: { index: join(here, 'index.tsx') },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  jsx: 'automatic',
  minify: process.env.DEV_MINIFY !== '0',
  sourcemap: false,
  logLevel: 'warning',
  // Backstage's config loader and React read these the way webpack's DefinePlugin gives them.
  define: {
    'process.env.NODE_ENV': '"production"',
    'process.env.APP_CONFIG': '[]',
    // React 18: render through react-dom/client's createRoot.
    'process.env.HAS_REACT_DOM_CLIENT': 'true',
    'process.env': '{}',
    global: 'globalThis',
  },
  plugins: [reactDomClientAsEsm],
  loader: {
    '.svg': 'dataurl',
    '.png': 'dataurl',
    '.woff': 'dataurl',
    '.woff2': 'dataurl',
  },
});
await copyFile(join(here, 'index.html'), join(out, 'index.html'));
await copyFile(join(here, 'config.js'), join(out, 'config.js'));
process.stdout.write(
  `dev/dist/ built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
);
