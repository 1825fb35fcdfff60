import {
  Link,
  Progress,
  StatusError,
  StatusOK,
  StatusWarning,
  Table,
  TableColumn,
} from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import useAsync from 'react-use/esm/useAsync';
import Box from '@mui/material/Box';
import Typography from '@mui/material/Typography';
import { CoverageCell, finopsAdminApiRef } from '../../api';
import { usePluginPaths } from '../../hooks/useBasePath';
import { formatAge, formatNumber, formatTime, shortId } from '../common/format';
import { domainLabel } from '../common/domains';
import { ApiErrorPanel } from '../common/ApiErrorPanel';

type CoverageRow = { period: string; cells: Record<string, CoverageCell> };

function Cell(props: {
  cell?: CoverageCell;
  runPath: (runId: string) => string;
}) {
  const { cell, runPath } = props;
  if (!cell || !cell.lastLoad) {
    return (
      <Box data-testid="coverage-missing">
        <StatusError>no successful load</StatusError>
      </Box>
    );
  }
  const load = cell.lastLoad;
  return (
    <Box data-testid={cell.stale ? 'coverage-stale' : 'coverage-fresh'}>
      {cell.stale ? (
        <StatusWarning>stale · {formatAge(cell.ageSeconds)}</StatusWarning>
      ) : (
        <StatusOK>{formatAge(cell.ageSeconds)}</StatusOK>
      )}
      <Typography
        variant="caption"
        component="div"
        title={formatTime(load.time)}
      >
        <Link to={runPath(load.runId)} underline="always">
          {shortId(load.runId)}
        </Link>{' '}
        · {formatNumber(load.relevesInserted)} relevés
      </Typography>
    </Box>
  );
}

/** Coverage: months × domains, the last successful load of each, stale or missing ones marked. */
export function CoveragePage() {
  const api = useApi(finopsAdminApiRef);
  const paths = usePluginPaths();
  const { value, loading, error } = useAsync(() => api.getCoverage(), [api]);
  if (error) return <ApiErrorPanel error={error} />;
  if (loading || !value) return <Progress />;

  const rows: CoverageRow[] = value.periods.map(period => ({
    period,
    cells: Object.fromEntries(
      value.items.filter(c => c.period === period).map(c => [c.domain, c]),
    ),
  }));
  const columns: TableColumn<CoverageRow>[] = [
    { title: 'Month', field: 'period' },
    ...value.domains.map(domain => ({
      title: domainLabel(domain),
      field: domain,
      render: (row: CoverageRow) => (
        <Cell cell={row.cells[domain]} runPath={paths.run} />
      ),
    })),
  ];
  const hours = Math.round(value.staleAfterSeconds / 3600);
  return (
    <Table<CoverageRow>
      title="Coverage"
      subtitle={`Last successful load per month and domain; the current month and N-1 are stale after ${hours} h without a load`}
      options={{
        paging: false,
        search: false,
        sorting: false,
        padding: 'dense',
      }}
      columns={columns}
      data={rows}
    />
  );
}
