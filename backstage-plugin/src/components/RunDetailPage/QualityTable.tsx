import Box from '@mui/material/Box';
import Chip from '@mui/material/Chip';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import Typography from '@mui/material/Typography';
import { BlockQuality, QualityDelivery } from '../../api';
import { formatBytes, formatNumber } from '../common/format';
import { MoneyAmounts } from '../common/MoneyAmounts';

/** Each source's delivery a period loaded: name, id (shortened, full in the title), files, size. */
function Deliveries(props: { deliveries: QualityDelivery[] }) {
  if (props.deliveries.length === 0) return <>—</>;
  return (
    <>
      {props.deliveries.map(d => (
        <Box key={d.source} data-testid={`delivery-${d.source}`}>
          <Typography variant="body2" component="span" fontWeight={600}>
            {d.source}
          </Typography>{' '}
          <Typography
            variant="body2"
            component="span"
            fontFamily="monospace"
            title={d.deliveryId}
          >
            {d.deliveryId.length > 12
              ? `${d.deliveryId.slice(0, 12)}…`
              : d.deliveryId}
          </Typography>{' '}
          <Typography variant="caption" color="text.secondary">
            {formatNumber(d.files)} file{d.files === 1 ? '' : 's'},{' '}
            <span title={`${formatNumber(d.bytes)} bytes`}>
              {formatBytes(d.bytes)}
            </span>
          </Typography>
        </Box>
      ))}
    </>
  );
}

/** What a block's load saw, period by period: files, rows, rejections (with samples), warnings, gate,
 * and each source's delivery it loaded (a column only when some period took deliveries: the
 * landing layout has none). */
export function QualityTable(props: { quality: BlockQuality[] }) {
  const withDeliveries = props.quality.some(
    q => (q.deliveries ?? []).length > 0,
  );
  return (
    <Box mt={1} data-testid="block-quality">
      <Typography variant="subtitle2">Load quality</Typography>
      {/* Wide tables scroll in their own box instead of breaking words letter by letter. */}
      <Box sx={{ overflowX: 'auto' }}>
        <Table size="small" sx={{ minWidth: 760 }}>
          <TableHead>
            <TableRow>
              <TableCell>Period</TableCell>
              <TableCell>FOCUS</TableCell>
              <TableCell align="right">Files</TableCell>
              <TableCell align="right">Rows read</TableCell>
              <TableCell align="right">Rows loaded</TableCell>
              <TableCell>Rejected</TableCell>
              <TableCell>Warnings</TableCell>
              <TableCell align="right">Unassigned cost</TableCell>
              <TableCell>Gate</TableCell>
              {withDeliveries && <TableCell>Deliveries</TableCell>}
            </TableRow>
          </TableHead>
          <TableBody>
            {props.quality.map(q => (
              <TableRow key={q.period}>
                <TableCell>{q.period}</TableCell>
                <TableCell>
                  {(q.focusVersions ?? []).join(', ') || '—'}
                </TableCell>
                <TableCell align="right">{formatNumber(q.files)}</TableCell>
                <TableCell align="right">{formatNumber(q.rowsRead)}</TableCell>
                <TableCell align="right">
                  {formatNumber(q.rowsLoaded)}
                </TableCell>
                <TableCell>
                  {(q.rejected ?? []).length === 0
                    ? '—'
                    : (q.rejected ?? []).map(r => (
                        <Box key={r.reason}>
                          <Typography variant="body2">
                            {r.reason}: {formatNumber(r.count)}
                          </Typography>
                          {(r.samples ?? []).map((s, i) => (
                            <Typography
                              key={i}
                              variant="caption"
                              component="div"
                              color="text.secondary"
                            >
                              {s.file}
                              {s.line !== null && s.line !== undefined
                                ? `:${s.line}`
                                : ''}
                              {s.column ? ` ${s.column}` : ''}
                              {s.value !== null && s.value !== undefined
                                ? ` = ${s.value}`
                                : ''}
                            </Typography>
                          ))}
                        </Box>
                      ))}
                </TableCell>
                <TableCell>
                  {(q.warnings ?? []).length === 0
                    ? '—'
                    : (q.warnings ?? []).map(w => (
                        <Typography key={w.rule} variant="body2">
                          {w.rule}: {formatNumber(w.count)}
                        </Typography>
                      ))}
                </TableCell>
                <TableCell align="right">
                  <MoneyAmounts amounts={q.unassignedCost} />
                  {q.unassignedRows
                    ? ` (${formatNumber(q.unassignedRows)} rows)`
                    : ''}
                </TableCell>
                <TableCell>
                  {q.gate ? (
                    <Chip
                      size="small"
                      color="error"
                      label={`gate: ${q.gate}`}
                    />
                  ) : (
                    'passed'
                  )}
                </TableCell>
                {withDeliveries && (
                  <TableCell>
                    <Deliveries deliveries={q.deliveries ?? []} />
                  </TableCell>
                )}
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </Box>
    </Box>
  );
}
