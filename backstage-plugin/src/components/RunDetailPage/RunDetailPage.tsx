import { errorMessage } from '../../api/FinopsAdminClient';
import { useEffect, useState } from 'react';
import { useParams } from 'react-router-dom';
import {
  CopyTextButton,
  InfoCard,
  Link,
  LogViewer,
  Progress,
  StructuredMetadataTable,
} from '@backstage/core-components';
import { alertApiRef, useApi } from '@backstage/core-plugin-api';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import useInterval from 'react-use/esm/useInterval';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Chip from '@mui/material/Chip';
import Grid from '@mui/material/Grid';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import Typography from '@mui/material/Typography';
import { finopsAdminApiRef, RunDetail, RunPeriod } from '../../api';
import { useCaller } from '../../hooks/useCaller';
import { usePluginPaths } from '../../hooks/useBasePath';
import { AnomalyMark } from '../common/AnomalyMark';
import { ApiErrorPanel } from '../common/ApiErrorPanel';
import { StatusBadge } from '../common/StatusBadge';
import {
  formatDuration,
  formatNumber,
  formatTime,
  shortId,
} from '../common/format';
import { saveFile } from '../common/saveFile';
import { ReprocessDialog } from '../ReprocessDialog';
import { MoneyAmounts } from '../common/MoneyAmounts';
import { DomainBlockCard } from './DomainBlockCard';
import { LogTail } from './LogTail';

export function periodRoleLabel(period: RunPeriod): string {
  if (period.role === 'PREVIOUS') return `${period.period} · PREVIOUS (N-1)`;
  return `${period.period} · ${period.role}`;
}

/** Run Detail: summary, periods, one block per domain, aggregates and logs (a live tail while the run is active). */
export function RunDetailPage(props: { refreshMs?: number }) {
  const { runId = '' } = useParams();
  const api = useApi(finopsAdminApiRef);
  const alertApi = useApi(alertApiRef);
  const paths = usePluginPaths();
  const { access } = useCaller();
  const [reprocessOpen, setReprocessOpen] = useState(false);
  const state = useAsyncRetry(() => api.getRun(runId), [api, runId]);
  const run = state.value;
  const active = run?.status === 'RUNNING' || run?.status === 'QUEUED';
  // The live tail opens while the run is active and stays, ended, once it is not.
  const [tailRunId, setTailRunId] = useState<string>();
  useEffect(() => {
    if (active && run) setTailRunId(run.runId);
  }, [active, run]);
  useInterval(
    () => {
      if (!state.loading) state.retry();
    },
    active ? (props.refreshMs ?? 5000) : null,
  );

  if (state.error) return <ApiErrorPanel error={state.error} />;
  if (!run) return <Progress />;

  const download = (step?: string) =>
    api
      .downloadLogs(run.runId, step ? { step } : {})
      .then(saveFile, (error: unknown) =>
        alertApi.post({
          message: `Log download failed: ${errorMessage(error)}`,
          severity: 'error',
        }),
      );
  const failed = run.blocks
    .filter(b => b.status === 'FAILED')
    .map(b => b.domain);

  return (
    <Grid container spacing={3}>
      <Grid item xs={12}>
        <Box display="flex" alignItems="center" gap={1}>
          <Link to={paths.runs()}>← Batch Runs</Link>
        </Box>
      </Grid>
      <Grid item xs={12} md={6}>
        <RunSummaryCard run={run} />
      </Grid>
      <Grid item xs={12} md={6}>
        <LogsCard
          run={run}
          canReadLogs={access.logs}
          onDownload={() => download()}
          tail={tailRunId === run.runId}
        />
        {access.reprocess && (
          <Box mt={2}>
            <Button variant="contained" onClick={() => setReprocessOpen(true)}>
              Reprocess…
            </Button>
          </Box>
        )}
      </Grid>
      <Grid item xs={12}>
        <Typography variant="h6">Domains</Typography>
      </Grid>
      {run.blocks.map(block => (
        // One block per line: its per-period and quality tables need the page's width.
        <Grid item xs={12} key={block.domain}>
          <DomainBlockCard
            block={block}
            canReadLogs={access.logs}
            onDownloadLogs={domain => download(domain)}
          />
        </Grid>
      ))}
      <Grid item xs={12}>
        <AggregatesCard run={run} />
      </Grid>
      {reprocessOpen && (
        <ReprocessDialog
          open
          onClose={() => setReprocessOpen(false)}
          initialPeriods={run.periods.map(p => p.period)}
          initialDomains={failed.length ? failed : run.domains}
        />
      )}
    </Grid>
  );
}

function RunSummaryCard(props: { run: RunDetail }) {
  const { run } = props;
  const of = (metric: string) =>
    (run.anomalies ?? []).filter(a => a.metric === metric);
  const metadata: Record<string, unknown> = {
    status: (
      <StatusBadge
        status={run.status}
        tooltip={
          run.status === 'FAILED' ? (run.errors.message ?? '') : undefined
        }
      />
    ),
    'run id': (
      <Box component="span" display="inline-flex" alignItems="center">
        <code>{run.runId}</code>
        <CopyTextButton
          text={run.runId}
          tooltipText="Run id copied"
          aria-label="Copy run id"
        />
      </Box>
    ),
    'dagster status': run.dagsterStatus,
    trigger: `${run.trigger} — ${run.launchedBy ?? 'unknown'}`,
    version: run.version ?? '—',
    started: formatTime(run.startTime),
    ended: formatTime(run.endTime),
    duration: (
      <AnomalyMark anomalies={of('durationSeconds')}>
        {formatDuration(run.durationSeconds)}
      </AnomalyMark>
    ),
    periods: (
      <Box display="flex" gap={0.5} flexWrap="wrap">
        {run.periods.map(p => (
          <Chip
            key={p.period}
            size="small"
            label={periodRoleLabel(p)}
            color={p.role === 'CURRENT' ? 'primary' : 'default'}
          />
        ))}
      </Box>
    ),
    errors: run.errors.count
      ? `${run.errors.count}: ${run.errors.message ?? ''}`
      : 'none',
  };
  if (run.reason) metadata.reason = run.reason;
  if (run.reprocessRequestId)
    metadata['reprocess request'] = run.reprocessRequestId;
  return (
    <InfoCard title={`Run ${shortId(run.runId)}`}>
      <StructuredMetadataTable metadata={metadata} />
    </InfoCard>
  );
}

function LogsCard(props: {
  run: RunDetail;
  canReadLogs: boolean;
  onDownload: () => void;
  tail?: boolean;
}) {
  const { run, canReadLogs, onDownload, tail } = props;
  const dagsterUrl = run.logs?.dagsterUrl ?? run.links?.dagster;
  const externalUrl = run.logs?.externalUrl ?? run.links?.external;
  const excerpt = run.logs?.excerpt;
  return (
    <InfoCard title="Logs">
      <Box display="flex" gap={2} alignItems="center" flexWrap="wrap">
        {!canReadLogs && (
          <Typography variant="body2" color="text.secondary">
            Logs are for FinOps admins.
          </Typography>
        )}
        {canReadLogs && (
          <Button variant="outlined" onClick={onDownload}>
            Download logs
          </Button>
        )}
        {canReadLogs && dagsterUrl && (
          <Link to={dagsterUrl} target="_blank" rel="noopener noreferrer">
            Open in Dagster
          </Link>
        )}
        {canReadLogs && externalUrl && (
          <Link to={externalUrl} target="_blank" rel="noopener noreferrer">
            Open external logs
          </Link>
        )}
      </Box>
      {canReadLogs && tail && <LogTail runId={run.runId} />}
      {excerpt && (
        <Box mt={2}>
          <Typography variant="subtitle2">
            Failing step: {excerpt.stepKey}
          </Typography>
          <Box height={280} data-testid="failure-excerpt">
            <LogViewer text={excerpt.lines.join('\n')} />
          </Box>
        </Box>
      )}
    </InfoCard>
  );
}

function AggregatesCard(props: { run: RunDetail }) {
  const { aggregates } = props.run;
  return (
    <InfoCard title="Aggregates">
      <Typography variant="body2" data-testid="aggregates-totals">
        {formatNumber(aggregates.relevesInserted)} relevés inserted ·{' '}
        {formatNumber(aggregates.relevesDeleted)} deleted
      </Typography>
      <Typography variant="body2" data-testid="aggregates-billed-cost">
        Billed cost: <MoneyAmounts amounts={aggregates.billedCost} />
      </Typography>
      {aggregates.mvs.length === 0 ? (
        <Typography variant="body2" color="text.secondary" mt={1}>
          No materialized view refreshed in this run.
        </Typography>
      ) : (
        <Table size="small" sx={{ mt: 1 }}>
          <TableHead>
            <TableRow>
              <TableCell>Materialized view</TableCell>
              <TableCell>Status</TableCell>
              <TableCell>Refreshed at</TableCell>
              <TableCell align="right">Refresh time</TableCell>
              <TableCell align="right">Rows</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {aggregates.mvs.map(mv => (
              <TableRow key={mv.name}>
                <TableCell>
                  <code>{mv.name}</code>
                </TableCell>
                <TableCell>
                  <StatusBadge status={mv.status} />
                </TableCell>
                <TableCell>{formatTime(mv.refreshedAt)}</TableCell>
                <TableCell align="right">
                  {formatDuration(mv.durationSeconds)}
                </TableCell>
                <TableCell align="right">{formatNumber(mv.rowCount)}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
    </InfoCard>
  );
}
