import {
  EmptyState,
  InfoCard,
  Link,
  Progress,
  ResponseErrorPanel,
} from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import useAsync from 'react-use/esm/useAsync';
import Box from '@mui/material/Box';
import Chip, { ChipProps } from '@mui/material/Chip';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import Tooltip from '@mui/material/Tooltip';
import Typography from '@mui/material/Typography';
import { finopsAdminApiRef, Source, SourceMonth, SourceState } from '../../api';
import { usePluginPaths } from '../../hooks/useBasePath';
import { domainLabel } from '../common/domains';
import {
  firstLine,
  formatAge,
  formatBytes,
  formatNumber,
  formatShortTime,
  formatTime,
  shortId,
} from '../common/format';

// A Record names every state of the schema, so one the API adds fails the type-check.
const STATE_COLORS: Record<SourceState, ChipProps['color']> = {
  LOADED: 'success',
  PENDING: 'info',
  INCOMPLETE: 'warning',
  FAILED: 'error',
  MISSING: 'secondary',
};

const ID_CHARS = 12;

/** A delivery id shortened for a cell; the full id in its title. */
function DeliveryId(props: { id: string }) {
  const { id } = props;
  return (
    <Typography
      variant="body2"
      component="span"
      fontFamily="monospace"
      title={id}
    >
      {id.length > ID_CHARS ? `${id.slice(0, ID_CHARS)}…` : id}
    </Typography>
  );
}

function Time(props: { iso: string }) {
  return (
    <span title={formatTime(props.iso)}>{formatShortTime(props.iso)}</span>
  );
}

const files = (n: number) => `${formatNumber(n)} file${n === 1 ? '' : 's'}`;

export function StateChip(props: { month: SourceMonth }) {
  const { month } = props;
  const chip = (
    <Chip
      size="small"
      label={month.state}
      color={STATE_COLORS[month.state] ?? 'default'}
      data-testid={`state-${month.period}`}
    />
  );
  if (month.state !== 'FAILED' || !month.failure) return chip;
  const f = month.failure;
  const text = `${f.gate ? `gate ${f.gate}: ` : ''}${f.message ?? 'the load failed'}`;
  return (
    <Tooltip title={firstLine(text, 300)} describeChild>
      <span>{chip}</span>
    </Tooltip>
  );
}

function MonthRow(props: { month: SourceMonth }) {
  const { month } = props;
  const paths = usePluginPaths();
  const { latest, loaded, failure, incomplete } = month;
  return (
    <TableRow data-testid={`month-${month.period}`}>
      <TableCell>{month.period}</TableCell>
      <TableCell>
        <StateChip month={month} />
      </TableCell>
      <TableCell>
        {latest ? (
          <>
            <DeliveryId id={latest.deliveryId} />
            <Typography variant="caption" component="div">
              <Time iso={latest.deliveredAt} /> · {files(latest.files)},{' '}
              <span title={`${formatNumber(latest.bytes)} bytes`}>
                {formatBytes(latest.bytes)}
              </span>
            </Typography>
          </>
        ) : (
          '—'
        )}
      </TableCell>
      <TableCell>
        {loaded && (
          <>
            <DeliveryId id={loaded.deliveryId} />
            <Typography variant="caption" component="div">
              run{' '}
              <Link to={paths.run(loaded.runId)} underline="always">
                {shortId(loaded.runId)}
              </Link>{' '}
              · <Time iso={loaded.loadedAt} />
            </Typography>
          </>
        )}
        {failure && (
          <Typography variant="caption" component="div" color="error">
            failed in run{' '}
            <Link to={paths.run(failure.runId)} underline="always">
              {shortId(failure.runId)}
            </Link>
            {failure.gate ? ` (gate ${failure.gate})` : ''}
          </Typography>
        )}
        {!loaded && !failure && '—'}
      </TableCell>
      <TableCell>
        {incomplete && (
          <Box title={incomplete.reason ?? ''}>
            <Typography variant="body2">
              since {formatAge(incomplete.ageSeconds).replace(' ago', '')}
            </Typography>
            <Typography variant="caption" component="div">
              <Time iso={incomplete.since} /> · {files(incomplete.files)}
            </Typography>
          </Box>
        )}
        {!incomplete && month.state === 'MISSING' && month.expectedBy && (
          <Typography variant="caption">
            expected by <Time iso={month.expectedBy} />
          </Typography>
        )}
        {!incomplete && !(month.state === 'MISSING' && month.expectedBy) && '—'}
      </TableCell>
    </TableRow>
  );
}

function SourceCard(props: { source: Source }) {
  const { source } = props;
  const scan = source.lastScan;
  const subheader = (
    <>
      <Typography variant="body2" component="span">
        {source.kind} · {domainLabel(source.domain)}
      </Typography>
      <Typography
        variant="caption"
        component="div"
        fontFamily="monospace"
        sx={{ overflowWrap: 'anywhere' }}
      >
        {source.location ??
          'location unknown to the API (FINOPS_LANDING_URI not set here)'}
      </Typography>
      <Typography variant="caption" component="div">
        {scan ? (
          <>
            last listed <Time iso={scan.scannedAt} />
            {scan.error && (
              <Typography variant="caption" color="error" component="span">
                {' '}
                — listing failed: {scan.error}
              </Typography>
            )}
          </>
        ) : (
          'not listed yet by the delivery sensor'
        )}
      </Typography>
    </>
  );
  return (
    <Box mb={2} data-testid={`source-${source.name}`}>
      <InfoCard title={source.name} subheader={subheader}>
        {source.months.length === 0 ? (
          <Typography variant="body2" color="text.secondary">
            Nothing delivered yet.
          </Typography>
        ) : (
          <Box sx={{ overflowX: 'auto' }}>
            <Table size="small" sx={{ minWidth: 720 }}>
              <TableHead>
                <TableRow>
                  <TableCell>Month</TableCell>
                  <TableCell>State</TableCell>
                  <TableCell>Latest delivery</TableCell>
                  <TableCell>Loaded</TableCell>
                  <TableCell>Incomplete / expected</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {source.months.map(month => (
                  <MonthRow key={month.period} month={month} />
                ))}
              </TableBody>
            </Table>
          </Box>
        )}
      </InfoCard>
    </Box>
  );
}

/** Sources: each source of cost data and, per month (newest first), what was delivered and loaded. */
export function SourcesPage() {
  const api = useApi(finopsAdminApiRef);
  const { value, loading, error } = useAsync(() => api.getSources(), [api]);
  if (error) return <ResponseErrorPanel error={error} />;
  if (loading || !value) return <Progress />;
  const nothing = value.items.every(s => s.months.length === 0 && !s.lastScan);
  return (
    <>
      {!value.sourcesFile && nothing && (
        <Box mb={2} data-testid="sources-empty">
          <EmptyState
            missing="data"
            title="No sources file, nothing listed yet"
            description="No sources file is set (FINOPS_SOURCES) and the delivery sensor has not listed anything yet: each domain reads its landing folder, <landing>/<domain>/<YYYY-MM>/. Its months appear here once the sensor has listed them."
          />
        </Box>
      )}
      {value.items.map(source => (
        <SourceCard key={source.name} source={source} />
      ))}
    </>
  );
}
