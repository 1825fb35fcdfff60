import { Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import { ReactRouterV6PageRouter } from '@backstage/frontend-adapter-react-router-v6';
import {
  Content,
  Header,
  HeaderLabel,
  HeaderTabs,
  Page,
  WarningPanel,
} from '@backstage/core-components';
import { BasePathProvider, usePluginPaths } from '../../hooks/useBasePath';
import { useCaller } from '../../hooks/useCaller';
import { BatchRunsPage } from '../BatchRunsPage';
import { CoveragePage } from '../CoveragePage';
import { RunDetailPage } from '../RunDetailPage';
import { SourcesPage } from '../SourcesPage';

function Layout() {
  const paths = usePluginPaths();
  const location = useLocation();
  const navigate = useNavigate();
  const { caller } = useCaller();
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
    <Page themeId="tool">
      <Header title="Batch Runs" subtitle="FinOps › Admin">
        {caller && <HeaderLabel label="Signed in as" value={caller.subject} />}
        {caller?.role && <HeaderLabel label="Role" value={caller.role} />}
      </Header>
      <HeaderTabs
        tabs={tabs.map(({ id, label }) => ({ id, label }))}
        selectedIndex={selected}
        onChange={index => navigate(tabs[index].path())}
      />
      <Content>
        {caller?.devMode && (
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
    </Page>
  );
}

/** The plugin's page: Batch Runs (`/`), Run Detail (`/runs/:runId`), Coverage (`/coverage`),
 * Sources (`/sources`). */
export function FinopsAdminPage() {
  return (
    <ReactRouterV6PageRouter>
      <BasePathProvider>
        <Layout />
      </BasePathProvider>
    </ReactRouterV6PageRouter>
  );
}
