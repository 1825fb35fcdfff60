// `react-dom/client` as an ES module with named exports. The dev app imports it dynamically
// and looks for `createRoot` on the module; esbuild gives a CommonJS module only a `default`
// export there, so the bundle resolves `react-dom/client` to this file.
import * as ReactDOMClient from 'react-dom/client';

export const createRoot = ReactDOMClient.createRoot;
export const hydrateRoot = ReactDOMClient.hydrateRoot;
