import {
  StatusAborted,
  StatusError,
  StatusOK,
  StatusPending,
  StatusRunning,
  StatusWarning,
} from '@backstage/core-components';
import Box from '@mui/material/Box';
import CircularProgress from '@mui/material/CircularProgress';
import Tooltip from '@mui/material/Tooltip';
import { BlockStatus, RunStatus } from '../../api';

/** A status with its text (colour is not the only cue); RUNNING spins; a tooltip may explain it. */
export function StatusBadge(props: {
  status: RunStatus | BlockStatus | string;
  tooltip?: string | null;
}) {
  const { status, tooltip } = props;
  let badge;
  switch (status) {
    case 'SUCCESS':
      badge = <StatusOK>SUCCESS</StatusOK>;
      break;
    case 'FAILED':
      badge = <StatusError>FAILED</StatusError>;
      break;
    case 'RUNNING':
      badge = (
        <Box
          component="span"
          display="inline-flex"
          alignItems="center"
          gap={0.5}
        >
          <StatusRunning>RUNNING</StatusRunning>
          <CircularProgress size={12} aria-label="in progress" />
        </Box>
      );
      break;
    case 'QUEUED':
    case 'PENDING':
      badge = <StatusPending>{status}</StatusPending>;
      break;
    case 'CANCELED':
    case 'SKIPPED':
    case 'NOT_SELECTED':
      badge = <StatusAborted>{status}</StatusAborted>;
      break;
    default:
      badge = <StatusWarning>{status}</StatusWarning>;
  }
  if (!tooltip) return badge;
  return (
    <Tooltip title={tooltip} describeChild>
      <span data-testid="status-tooltip">{badge}</span>
    </Tooltip>
  );
}
