import { errorMessage } from '../../api/FinopsAdminClient';
import { useEffect, useMemo, useState } from 'react';
import { Link } from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import Alert from '@mui/material/Alert';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Checkbox from '@mui/material/Checkbox';
import Chip from '@mui/material/Chip';
import Dialog from '@mui/material/Dialog';
import DialogActions from '@mui/material/DialogActions';
import DialogContent from '@mui/material/DialogContent';
import DialogTitle from '@mui/material/DialogTitle';
import FormControlLabel from '@mui/material/FormControlLabel';
import FormGroup from '@mui/material/FormGroup';
import FormLabel from '@mui/material/FormLabel';
import LinearProgress from '@mui/material/LinearProgress';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import TextField from '@mui/material/TextField';
import Typography from '@mui/material/Typography';
import {
  DOMAINS,
  Domain,
  isDomain,
  DryRunResult,
  finopsAdminApiRef,
  ReprocessRequest,
} from '../../api';
import { domainLabel } from '../common/domains';
import { formatNumber, shortId } from '../common/format';
import { usePluginPaths } from '../../hooks/useBasePath';

function newKey(): string {
  const crypto = globalThis.crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * What the form lacks before it can be sent, or null. The rules on its values (the period
 * pattern, the reason's length) are the API's: its 400 message says which one failed.
 */
export function reprocessFormProblem(form: {
  periods: string[];
  domains: string[];
  reason: string;
}): string | null {
  if (!form.periods.length) return 'Add at least one period.';
  if (!form.domains.length) return 'Select at least one domain.';
  if (!form.reason.trim()) return 'Give a reason.';
  return null;
}

/**
 * Ask for a reprocess: periods, domains and a reason; a dry run previews the impact, a
 * confirmation files the request, then the dialog follows it until Dagster launches the run.
 */
export function ReprocessDialog(props: {
  open: boolean;
  onClose: () => void;
  initialPeriods?: string[];
  initialDomains?: string[];
  pollIntervalMs?: number;
}) {
  const { open, onClose, pollIntervalMs = 2000 } = props;
  const api = useApi(finopsAdminApiRef);
  const paths = usePluginPaths();
  const [periods, setPeriods] = useState<string[]>(props.initialPeriods ?? []);
  const [month, setMonth] = useState('');
  const [domains, setDomains] = useState<Domain[]>(() => {
    const initial = (props.initialDomains ?? []).filter(isDomain);
    return initial.length ? initial : [...DOMAINS];
  });
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | undefined>();
  const [preview, setPreview] = useState<
    { key: string; result: DryRunResult } | undefined
  >();
  const [request, setRequest] = useState<ReprocessRequest | undefined>();

  const input = useMemo(
    () => ({
      periods: [...periods].sort().reverse(),
      domains,
      reason: reason.trim(),
    }),
    [periods, domains, reason],
  );
  const inputKey = JSON.stringify(input);
  // One idempotency key per distinct form: a double click files one request.
  const idempotencyKey = useMemo(() => newKey(), [inputKey]); // eslint-disable-line react-hooks/exhaustive-deps
  const problem = reprocessFormProblem({ periods, domains, reason });
  const previewed = preview?.key === inputKey ? preview.result : undefined;

  useEffect(() => {
    if (!request || request.state !== 'PENDING') return undefined;
    const timer = setTimeout(async () => {
      try {
        setRequest(await api.getReprocess(request.requestId));
      } catch (e) {
        setError(e as Error);
      }
    }, pollIntervalMs);
    return () => clearTimeout(timer);
  }, [api, request, pollIntervalMs]);

  const addMonth = () => {
    if (month && !periods.includes(month)) {
      setPeriods([...periods, month]);
    }
    setMonth('');
  };

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };

  const onPreview = () =>
    run(async () => {
      setPreview({ key: inputKey, result: await api.previewReprocess(input) });
    });
  const onConfirm = () =>
    run(async () => {
      setRequest(await api.requestReprocess(input, { idempotencyKey }));
    });

  return (
    <Dialog open={open} onClose={onClose} maxWidth="md" fullWidth>
      <DialogTitle>Reprocess</DialogTitle>
      <DialogContent>
        {request ? (
          <RequestState request={request} runPath={paths.run} />
        ) : (
          <>
            <FormLabel component="legend">Periods</FormLabel>
            <Box
              display="flex"
              flexWrap="wrap"
              alignItems="center"
              gap={1}
              my={1}
            >
              {periods.map(period => (
                <Chip
                  key={period}
                  label={period}
                  onDelete={() => setPeriods(periods.filter(p => p !== period))}
                />
              ))}
              <TextField
                type="month"
                size="small"
                label="Add a period"
                InputLabelProps={{ shrink: true }}
                value={month}
                onChange={e => setMonth(e.target.value)}
                inputProps={{ 'aria-label': 'Add a period' }}
              />
              <Button size="small" onClick={addMonth} disabled={!month}>
                Add
              </Button>
            </Box>
            <FormLabel component="legend">Domains</FormLabel>
            <FormGroup row>
              {DOMAINS.map(domain => (
                <FormControlLabel
                  key={domain}
                  label={domainLabel(domain)}
                  control={
                    <Checkbox
                      checked={domains.includes(domain)}
                      onChange={e =>
                        setDomains(
                          e.target.checked
                            ? DOMAINS.filter(
                                d => d === domain || domains.includes(d),
                              )
                            : domains.filter(d => d !== domain),
                        )
                      }
                    />
                  }
                />
              ))}
            </FormGroup>
            <TextField
              label="Reason"
              fullWidth
              multiline
              minRows={2}
              margin="normal"
              value={reason}
              onChange={e => setReason(e.target.value)}
              helperText="Why these months are loaded again"
            />
            {previewed && <DryRunPreview result={previewed} />}
          </>
        )}
        {busy && <LinearProgress />}
        {error && (
          <Alert severity="error" sx={{ mt: 1 }}>
            {errorMessage(error)}
          </Alert>
        )}
        {!request && problem && (periods.length > 0 || reason) && (
          <Typography variant="body2" color="text.secondary" mt={1}>
            {problem}
          </Typography>
        )}
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>{request ? 'Close' : 'Cancel'}</Button>
        {!request && (
          <>
            <Button onClick={onPreview} disabled={busy || Boolean(problem)}>
              Preview (dry run)
            </Button>
            <Button
              variant="contained"
              onClick={onConfirm}
              disabled={busy || Boolean(problem) || !previewed}
            >
              Confirm reprocess
            </Button>
          </>
        )}
      </DialogActions>
    </Dialog>
  );
}

function DryRunPreview(props: { result: DryRunResult }) {
  const { result } = props;
  const failing = result.totals.failingPairs > 0;
  return (
    <Box mt={2} data-testid="dry-run-preview">
      <Alert severity={failing ? 'warning' : 'info'}>{result.message}</Alert>
      <Typography variant="body2" mt={1}>
        {formatNumber(result.totals.rowsToDelete)} relevés to delete,{' '}
        {formatNumber(result.totals.rowsToInsert)} to insert,{' '}
        {formatNumber(result.totals.rowsRejected)} rejected; views refreshed:{' '}
        {result.materializedViews.length
          ? result.materializedViews.join(', ')
          : 'none'}
      </Typography>
      <Table size="small">
        <TableHead>
          <TableRow>
            <TableCell>Period</TableCell>
            <TableCell>Domain</TableCell>
            <TableCell>Outcome</TableCell>
            <TableCell align="right">Rows to delete</TableCell>
            <TableCell align="right">Rows to insert</TableCell>
            <TableCell align="right">Rejected</TableCell>
            <TableCell>Landing</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {result.pairs.map(pair => (
            <TableRow key={`${pair.period}/${pair.domain}`}>
              <TableCell>{pair.period}</TableCell>
              <TableCell>{domainLabel(pair.domain)}</TableCell>
              <TableCell>{pair.outcome}</TableCell>
              <TableCell align="right">
                {formatNumber(pair.rowsToDelete)}
              </TableCell>
              <TableCell align="right">
                {formatNumber(pair.rowsToInsert)}
              </TableCell>
              <TableCell align="right">
                {formatNumber(pair.landing.rowsRejected)}
              </TableCell>
              <TableCell>
                {pair.landing.error ??
                  `${pair.landing.files.length} file(s) in ${pair.landing.folder}`}
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
    </Box>
  );
}

function RequestState(props: {
  request: ReprocessRequest;
  runPath: (runId: string) => string;
}) {
  const { request, runPath } = props;
  if (request.state === 'LAUNCHED' && request.runId) {
    return (
      <Alert severity="success">
        Reprocess {shortId(request.requestId)} launched run{' '}
        <Link to={runPath(request.runId)}>{shortId(request.runId)}</Link>.
      </Alert>
    );
  }
  if (request.state === 'FAILED' || request.state === 'REJECTED') {
    return (
      <Alert severity="error">
        Reprocess {shortId(request.requestId)} {request.state.toLowerCase()}
        {request.message ? `: ${request.message}` : '.'}
      </Alert>
    );
  }
  return (
    <Box>
      <Alert severity="info">
        Reprocess {shortId(request.requestId)} filed ({request.state}): waiting
        for Dagster to launch its run…
      </Alert>
      <LinearProgress sx={{ mt: 1 }} />
    </Box>
  );
}
