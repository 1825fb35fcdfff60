import { Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import { ReactRouterV6PageRouter } from '@backstage/frontend-adapter-react-router-v6';
import {
  Content,
  Header,
  HeaderLabel,
  HeaderTabs,
  Page,
  Progress,
  WarningPanel,
} from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import useAsync from 'react-use/esm/useAsync';
import { finopsAdminApiRef } from '../../api';
import { BasePathProvider, usePluginPaths } from '../../hooks/useBasePath';
import { CallerProvider, useCaller } from '../../hooks/useCaller';
import { BatchRunsPage } from '../BatchRunsPage';
import { CoveragePage } from '../CoveragePage';
import { RunDetailPage } from '../RunDetailPage';
import { SourcesPage } from '../SourcesPage';
import { ApiErrorPanel } from '../common/ApiErrorPanel';

/**
 * What a caller who may not read runs sees instead of the screens. `GET /me` says that they
 * may not, not why: the API words why (which groups, whom to ask) on the call it refuses.
 */
function NoAccess(props: { subject: string }) {
  const api = useApi(finopsAdminApiRef);
  const refusal = useAsync(() => api.listRuns({}, { limit: 1 }), [api]);
  if (refusal.loading) return <Progress />;
  if (refusal.error) return <ApiErrorPanel error={refusal.error} />;
  return (
    <WarningPanel
      severity="error"
      title={`${props.subject} may not read FinOps batch runs: ask a FinOps admin for access.`}
    />
  );
}

function Screens(props: { devMode: boolean }) {
  const paths = usePluginPaths();
  const location = useLocation();
  const navigate = useNavigate();
  const path = location.pathname.replace(/\/+$/, '');
  const tabs = [
    { id: 'runs', label: 'Batch Runs', path: paths.runs },
    { id: 'coverage', label: 'Coverage', path: paths.coverage },
    { id: 'sources', label: 'Sources', path: paths.sources },
  ];
  const selected = Math.max(
    0,
    tabs.findIndex(tab => tab.id !== 'runs' && path.endsWith(`/${tab.id}`)),
  );
  return (
    <>
      <HeaderTabs
        tabs={tabs.map(({ id, label }) => ({ id, label }))}
        selectedIndex={selected}
        onChange={index => navigate(tabs[index].path())}
      />
      <Content>
        {props.devMode && (
          <WarningPanel
            severity="warning"
            title="The API runs in dev auth mode: every caller is an admin."
          />
        )}
        <Routes>
          <Route path="/" element={<BatchRunsPage />} />
          <Route path="/runs/:runId" element={<RunDetailPage />} />
          <Route path="/coverage" element={<CoveragePage />} />
          <Route path="/sources" element={<SourcesPage />} />
        </Routes>
      </Content>
    </>
  );
}

function Layout() {
  const { caller, loading, error } = useCaller();
  // The screens wait for `/me`: a caller without access sees the API's refusal and nothing
  // else (no filters, no export), and admin controls never appear after the fact.
  let body;
  if (error) {
    body = (
      <Content>
        <ApiErrorPanel error={error} />
      </Content>
    );
  } else if (loading || !caller) {
    body = (
      <Content>
        <Progress />
      </Content>
    );
  } else if (!caller.access.read) {
    body = (
      <Content>
        <NoAccess subject={caller.subject} />
      </Content>
    );
  } else {
    body = <Screens devMode={caller.devMode} />;
  }
  return (
    <Page themeId="tool">
      <Header title="Batch Runs" subtitle="FinOps › Admin">
        {caller && <HeaderLabel label="Signed in as" value={caller.subject} />}
        {caller?.role && <HeaderLabel label="Role" value={caller.role} />}
      </Header>
      {body}
    </Page>
  );
}

/** The plugin's page: Batch Runs (`/`), Run Detail (`/runs/:runId`), Coverage (`/coverage`),
 * Sources (`/sources`). */
export function FinopsAdminPage() {
  return (
    <ReactRouterV6PageRouter>
      <BasePathProvider>
        <CallerProvider>
          <Layout />
        </CallerProvider>
      </BasePathProvider>
    </ReactRouterV6PageRouter>
  );
}
