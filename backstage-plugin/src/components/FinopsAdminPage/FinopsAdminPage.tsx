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

function Layout() {
  const paths = usePluginPaths();
  const location = useLocation();
  const navigate = useNavigate();
  const { caller } = useCaller();
  const onCoverage = location.pathname
    .replace(/\/+$/, '')
    .endsWith('/coverage');
  const tabs = [
    { id: 'runs', label: 'Batch Runs' },
    { id: 'coverage', label: 'Coverage' },
  ];
  return (
    <Page themeId="tool">
      <Header title="Batch Runs" subtitle="FinOps › Admin">
        {caller && <HeaderLabel label="Signed in as" value={caller.subject} />}
        {caller?.role && <HeaderLabel label="Role" value={caller.role} />}
      </Header>
      <HeaderTabs
        tabs={tabs}
        selectedIndex={onCoverage ? 1 : 0}
        onChange={index =>
          navigate(index === 1 ? paths.coverage() : paths.runs())
        }
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
        </Routes>
      </Content>
    </Page>
  );
}

/** The plugin's page: Batch Runs (`/`), Run Detail (`/runs/:runId`), Coverage (`/coverage`). */
export function FinopsAdminPage() {
  return (
    <ReactRouterV6PageRouter>
      <BasePathProvider>
        <Layout />
      </BasePathProvider>
    </ReactRouterV6PageRouter>
  );
}
