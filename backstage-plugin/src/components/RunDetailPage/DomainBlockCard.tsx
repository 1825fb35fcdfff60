import { InfoCard, Link } from '@backstage/core-components';
import Alert from '@mui/material/Alert';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import Typography from '@mui/material/Typography';
import { Block } from '../../api';
import { AnomalyMark } from '../common/AnomalyMark';
import { StatusBadge } from '../common/StatusBadge';
import { formatDuration, formatNumber, formatTime } from '../common/format';
import { MoneyAmounts } from '../common/MoneyAmounts';
import { domainLabel } from '../common/domains';
import { QualityTable } from './QualityTable';

/** One domain's part of a run: status, timing, volumes, errors, load quality, its own logs. */
export function DomainBlockCard(props: {
  block: Block;
  canReadLogs: boolean;
  onDownloadLogs: (domain: string) => void;
}) {
  const { block, canReadLogs, onDownloadLogs } = props;
  const anomalies = block.anomalies ?? [];
  const of = (metric: string) => anomalies.filter(a => a.metric === metric);
  const rejectedByReason = Object.entries(block.volumes.rejectedByReason ?? {});
  return (
    <InfoCard
      title={
        <Box display="flex" alignItems="center" gap={1}>
          <span>{block.label ?? domainLabel(block.domain)}</span>
          <StatusBadge status={block.status} />
        </Box>
      }
      subheader={`step ${block.stepKey}`}
    >
      <Box data-testid={`block-${block.domain}`}>
        <Typography variant="body2">
          {formatTime(block.startTime)} → {formatTime(block.endTime)} ·{' '}
          <AnomalyMark anomalies={of('durationSeconds')}>
            {formatDuration(block.durationSeconds)}
          </AnomalyMark>
          {block.attempts && block.attempts > 1
            ? ` · ${block.attempts} attempts`
            : ''}
        </Typography>
        <Typography variant="body2" mt={1}>
          {formatNumber(block.volumes.rowsRead)} rows read ·{' '}
          <AnomalyMark anomalies={of('relevesInserted')}>
            {formatNumber(block.volumes.relevesInserted)}
          </AnomalyMark>{' '}
          inserted · {formatNumber(block.volumes.relevesDeleted)} deleted ·{' '}
          {formatNumber(block.volumes.relevesRejected)} rejected · billed{' '}
          <AnomalyMark anomalies={of('billedCost')}>
            <MoneyAmounts amounts={block.volumes.billedCost} />
          </AnomalyMark>
        </Typography>
        {rejectedByReason.length > 0 && (
          <Typography variant="body2" color="text.secondary">
            Rejected by reason:{' '}
            {rejectedByReason
              .map(([reason, count]) => `${reason} ${formatNumber(count)}`)
              .join(', ')}
          </Typography>
        )}
        {(block.periods ?? []).length > 0 && (
          <Table size="small" sx={{ mt: 1 }}>
            <TableHead>
              <TableRow>
                <TableCell>Period</TableCell>
                <TableCell align="right">Read</TableCell>
                <TableCell align="right">Inserted</TableCell>
                <TableCell align="right">Deleted</TableCell>
                <TableCell align="right">Rejected</TableCell>
                <TableCell align="right">Billed cost</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {(block.periods ?? []).map(p => (
                <TableRow key={p.period}>
                  <TableCell>{p.period}</TableCell>
                  <TableCell align="right">
                    {formatNumber(p.rowsRead)}
                  </TableCell>
                  <TableCell align="right">
                    {formatNumber(p.relevesInserted)}
                  </TableCell>
                  <TableCell align="right">
                    {formatNumber(p.relevesDeleted)}
                  </TableCell>
                  <TableCell align="right">
                    {formatNumber(p.relevesRejected)}
                  </TableCell>
                  <TableCell align="right">
                    <MoneyAmounts amounts={p.billedCost} />
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
        {(block.errors ?? []).map((error, i) => (
          <Alert key={i} severity="error" sx={{ mt: 1 }}>
            <strong>{error.kind}</strong>: {error.message}
          </Alert>
        ))}
        {block.quality && block.quality.length > 0 && (
          <QualityTable quality={block.quality} />
        )}
        {canReadLogs && (
          <Box display="flex" gap={1} mt={1}>
            <Button size="small" onClick={() => onDownloadLogs(block.domain)}>
              Download {block.label ?? domainLabel(block.domain)} logs
            </Button>
            {block.links?.external && (
              <Link
                to={block.links.external}
                target="_blank"
                rel="noopener noreferrer"
              >
                External logs
              </Link>
            )}
          </Box>
        )}
      </Box>
    </InfoCard>
  );
}
