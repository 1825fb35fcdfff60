import { createContext, ReactNode, useContext } from 'react';
import { useResolvedPath } from 'react-router-dom';

const BasePathContext = createContext<string>('');

/** Records where the plugin is mounted, so every screen can link to its siblings. */
export function BasePathProvider(props: { children: ReactNode }) {
  const { pathname } = useResolvedPath('');
  return (
    <BasePathContext.Provider value={pathname.replace(/\/+$/, '')}>
      {props.children}
    </BasePathContext.Provider>
  );
}

/** Paths inside the plugin: the list, a run's detail, the coverage, sources and failures tabs. */
export function usePluginPaths() {
  const base = useContext(BasePathContext);
  return {
    runs: () => base || '/',
    run: (runId: string) => `${base}/runs/${encodeURIComponent(runId)}`,
    coverage: () => `${base}/coverage`,
    sources: () => `${base}/sources`,
    /** The Failures tab, scrolled to one cause when given. */
    failures: (signature?: string) =>
      `${base}/failures${signature ? `#signature-${encodeURIComponent(signature)}` : ''}`,
    /** The run list of the runs that failed with one cause. */
    runsWithSignature: (signature: string) =>
      `${base || '/'}?signature=${encodeURIComponent(signature)}`,
  };
}
