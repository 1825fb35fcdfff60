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

/** Paths inside the plugin: the list, a run's detail, the coverage and sources tabs. */
export function usePluginPaths() {
  const base = useContext(BasePathContext);
  return {
    runs: () => base || '/',
    run: (runId: string) => `${base}/runs/${encodeURIComponent(runId)}`,
    coverage: () => `${base}/coverage`,
    sources: () => `${base}/sources`,
  };
}
