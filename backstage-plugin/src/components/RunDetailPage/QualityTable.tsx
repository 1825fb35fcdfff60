import Box from '@mui/material/Box';
import Chip from '@mui/material/Chip';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import Typography from '@mui/material/Typography';
import { BlockQuality } from '../../api';
import { formatNumber } from '../common/format';
import { MoneyAmounts } from '../common/MoneyAmounts';

/** What a block's load saw, period by period: files, rows, rejections (with samples), warnings, gate. */
export function QualityTable(props: { quality: BlockQuality[] }) {
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
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </Box>
    </Box>
  );
}
