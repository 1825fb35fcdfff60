import { CopyTextButton, Link, TableColumn } from '@backstage/core-components';
import Box from '@mui/material/Box';
import Chip from '@mui/material/Chip';
import IconButton from '@mui/material/IconButton';
import Tooltip from '@mui/material/Tooltip';
import Typography from '@mui/material/Typography';
import DescriptionIcon from '@mui/icons-material/Description';
import DownloadIcon from '@mui/icons-material/Download';
import OpenInNewIcon from '@mui/icons-material/OpenInNew';
import ReplayIcon from '@mui/icons-material/Replay';
import SearchIcon from '@mui/icons-material/ManageSearch';
import { Caller, DOMAINS, RunSummary } from '../../api';
import { AnomalyMark } from '../common/AnomalyMark';
import { DomainChip } from '../common/DomainChip';
import { MoneyAmounts } from '../common/MoneyAmounts';
import { StatusBadge } from '../common/StatusBadge';
import {
  formatDuration,
  formatNumber,
  formatShortTime,
  formatTime,
  shortId,
} from '../common/format';

export interface RunColumnsOptions {
  access: Caller['access'];
  runPath: (runId: string) => string;
  onDownloadLogs: (run: RunSummary) => void;
  onReprocess: (run: RunSummary) => void;
}

const runAnomalies = (run: RunSummary, metric: string) =>
  (run.anomalies ?? []).filter(a => a.metric === metric);

/** The Batch Runs table's columns. */
export function runColumns(
  options: RunColumnsOptions,
): TableColumn<RunSummary>[] {
  const { access, runPath, onDownloadLogs, onReprocess } = options;
  const columns: TableColumn<RunSummary>[] = [
    {
      title: 'Status',
      field: 'status',
      // One line: a status is never broken between letters in a narrow column.
      cellStyle: { whiteSpace: 'nowrap' },
      render: run => (
        <StatusBadge
          status={run.status}
          tooltip={
            run.status === 'FAILED' ? (run.errors.message ?? '') : undefined
          }
        />
      ),
    },
    {
      title: 'Run',
      field: 'runId',
      render: run => (
        <Box display="flex" alignItems="center" whiteSpace="nowrap">
          <Link to={runPath(run.runId)} title={run.runId}>
            <code>{shortId(run.runId)}</code>
          </Link>
          <Box
            component="span"
            sx={{ '& button': { p: 0.25 }, '& svg': { fontSize: 16 } }}
          >
            <CopyTextButton
              text={run.runId}
              tooltipText="Run id copied"
              aria-label="Copy run id"
            />
          </Box>
        </Box>
      ),
    },
    {
      title: 'Trigger',
      field: 'trigger',
      render: run => (
        <>
          <Chip
            size="small"
            variant="outlined"
            label={run.trigger}
            color={run.trigger === 'DELIVERY' ? 'primary' : 'default'}
          />
          <Typography variant="caption" color="text.secondary" display="block">
            {run.launchedBy ?? 'unknown'}
          </Typography>
        </>
      ),
    },
    {
      title: 'Periods',
      field: 'periods',
      // One month per line: the column stays narrow.
      render: run => (
        <Box whiteSpace="nowrap">
          {run.periods.map(period => (
            <Typography key={period} variant="body2">
              {period}
            </Typography>
          ))}
        </Box>
      ),
    },
    {
      title: 'Start / end (UTC) / duration',
      field: 'startTime',
      render: run => (
        <Box whiteSpace="nowrap">
          <Typography variant="body2" title={formatTime(run.startTime)}>
            {formatShortTime(run.startTime)}
          </Typography>
          <Typography variant="body2" title={formatTime(run.endTime)}>
            {formatShortTime(run.endTime)}
          </Typography>
          <AnomalyMark anomalies={runAnomalies(run, 'durationSeconds')}>
            {formatDuration(run.durationSeconds)}
          </AnomalyMark>
        </Box>
      ),
    },
    {
      title: 'Domains',
      field: 'domainStatuses',
      render: run => (
        <Box display="flex" flexWrap="wrap" maxWidth={110}>
          {DOMAINS.filter(
            d =>
              d in run.domainStatuses &&
              run.domainStatuses[d] !== 'NOT_SELECTED',
          ).map(domain => (
            <DomainChip
              key={domain}
              domain={domain}
              status={run.domainStatuses[domain]}
            />
          ))}
        </Box>
      ),
    },
    {
      title: 'Volumes',
      field: 'volumes',
      render: run => (
        <Box whiteSpace="nowrap">
          <Typography variant="body2">
            <AnomalyMark anomalies={runAnomalies(run, 'relevesInserted')}>
              {formatNumber(run.volumes.relevesInserted)}
            </AnomalyMark>{' '}
            inserted
          </Typography>
          <Typography variant="body2">
            {formatNumber(run.volumes.relevesRejected)} rejected
          </Typography>
          <Typography variant="body2">
            {formatNumber(run.volumes.mvsRefreshed)} MVs refreshed
          </Typography>
          <Typography variant="body2" component="div">
            <AnomalyMark anomalies={runAnomalies(run, 'billedCost')}>
              <MoneyAmounts amounts={run.volumes.billedCost} />
            </AnomalyMark>
          </Typography>
        </Box>
      ),
    },
    {
      title: 'Errors',
      field: 'errors',
      render: run =>
        run.errors.count ? (
          <Tooltip title={run.errors.message ?? ''}>
            <Box maxWidth={60}>
              <Typography variant="body2" color="error" fontWeight="bold">
                {run.errors.count} error{run.errors.count > 1 ? 's' : ''}
              </Typography>
              <Typography variant="caption" noWrap component="div">
                {run.errors.message ?? ''}
              </Typography>
            </Box>
          </Tooltip>
        ) : (
          '—'
        ),
    },
    {
      title: 'Actions',
      field: 'links',
      render: run => (
        <Box display="flex" whiteSpace="nowrap">
          <Tooltip title="Run detail">
            <IconButton
              size="small"
              sx={{ p: 0.25 }}
              component={Link}
              to={runPath(run.runId)}
              aria-label="Run detail"
            >
              <DescriptionIcon fontSize="small" />
            </IconButton>
          </Tooltip>
          {access.logs && (
            <Tooltip title="Download logs">
              <IconButton
                size="small"
                sx={{ p: 0.25 }}
                onClick={() => onDownloadLogs(run)}
                aria-label="Download logs"
              >
                <DownloadIcon fontSize="small" />
              </IconButton>
            </Tooltip>
          )}
          {/* Dagster's UI shows the run's logs, which a read-only caller may not read here. */}
          {access.logs && run.links?.dagster && (
            <Tooltip title="Open in Dagster">
              <IconButton
                size="small"
                sx={{ p: 0.25 }}
                href={run.links.dagster}
                target="_blank"
                rel="noopener noreferrer"
                aria-label="Open in Dagster"
              >
                <OpenInNewIcon fontSize="small" />
              </IconButton>
            </Tooltip>
          )}
          {access.logs && run.links?.external && (
            <Tooltip title="Open external logs">
              <IconButton
                size="small"
                sx={{ p: 0.25 }}
                href={run.links.external}
                target="_blank"
                rel="noopener noreferrer"
                aria-label="Open external logs"
              >
                <SearchIcon fontSize="small" />
              </IconButton>
            </Tooltip>
          )}
          {access.reprocess && (
            <Tooltip title="Reprocess">
              <IconButton
                size="small"
                sx={{ p: 0.25 }}
                onClick={() => onReprocess(run)}
                aria-label="Reprocess"
              >
                <ReplayIcon fontSize="small" />
              </IconButton>
            </Tooltip>
          )}
        </Box>
      ),
    },
  ];
  // Compact cells: the ten columns fit a 1280 px screen beside Backstage's sidebar.
  return columns.map(column => ({
    ...column,
    cellStyle: { padding: '6px 8px', ...(column.cellStyle as object) },
    headerStyle: { padding: '6px 8px' },
  }));
}
