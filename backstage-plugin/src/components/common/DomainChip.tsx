import Chip from '@mui/material/Chip';
import Tooltip from '@mui/material/Tooltip';
import { BlockStatus } from '../../api';
import { domainLabel } from './domains';

const COLORS: Record<string, 'default' | 'primary' | 'success' | 'error'> = {
  SUCCESS: 'success',
  FAILED: 'error',
  RUNNING: 'primary',
  PENDING: 'default',
  SKIPPED: 'default',
  NOT_SELECTED: 'default',
};

/** A domain coloured by its block status; the status is in the label too, not only the colour. */
export function DomainChip(props: { domain: string; status: BlockStatus }) {
  const { domain, status } = props;
  const label = domainLabel(domain);
  return (
    <Tooltip title={`${label}: ${status}`}>
      <Chip
        size="small"
        label={
          status === 'SUCCESS' ? label : `${label} · ${status.toLowerCase()}`
        }
        color={COLORS[status] ?? 'default'}
        variant={status === 'NOT_SELECTED' ? 'outlined' : 'filled'}
        data-status={status}
        sx={{ mr: 0.5, mb: 0.5 }}
      />
    </Tooltip>
  );
}
