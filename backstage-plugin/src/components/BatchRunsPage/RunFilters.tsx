import { useEffect, useState } from 'react';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Checkbox from '@mui/material/Checkbox';
import FormControl from '@mui/material/FormControl';
import FormControlLabel from '@mui/material/FormControlLabel';
import InputLabel from '@mui/material/InputLabel';
import MenuItem from '@mui/material/MenuItem';
import Select from '@mui/material/Select';
import TextField from '@mui/material/TextField';
import {
  DOMAINS,
  RUN_SORTS,
  RUN_STATUSES,
  RunQuery,
  RunSort,
  RunStatus,
  TRIGGERS,
  Trigger,
} from '../../api';
import { domainLabel } from '../common/domains';
import { compact } from './filters';

const SORT_LABELS: Record<RunSort, string> = {
  '-startTime': 'Newest first',
  startTime: 'Oldest first',
  '-durationSeconds': 'Longest first',
  durationSeconds: 'Shortest first',
};

/** The run list's filters; each change goes straight to the URL (the run id search once typing pauses). */
export function RunFilters(props: {
  query: RunQuery;
  onChange: (query: RunQuery) => void;
}) {
  const { query, onChange } = props;
  const set = (patch: Partial<RunQuery>) =>
    onChange(compact({ ...query, ...patch }));
  const [q, setQ] = useState(query.q ?? '');
  useEffect(() => setQ(query.q ?? ''), [query.q]);
  useEffect(() => {
    if ((query.q ?? '') === q.trim()) return undefined;
    const timer = setTimeout(() => set({ q: q.trim() || undefined }), 400);
    return () => clearTimeout(timer);
  }); // eslint-disable-line react-hooks/exhaustive-deps

  return (
    <Box
      display="flex"
      flexWrap="wrap"
      gap={2}
      alignItems="center"
      mb={2}
      data-testid="run-filters"
    >
      <FormControl size="small" sx={{ minWidth: 160 }}>
        <InputLabel id="finops-status-label">Status</InputLabel>
        <Select
          labelId="finops-status-label"
          label="Status"
          multiple
          value={query.status ?? []}
          onChange={e => {
            const value = e.target.value;
            set({
              status: (typeof value === 'string'
                ? value.split(',')
                : value) as RunStatus[],
            });
          }}
          renderValue={selected => (selected as string[]).join(', ')}
          inputProps={{ 'data-testid': 'filter-status' }}
        >
          {RUN_STATUSES.map(status => (
            <MenuItem key={status} value={status}>
              {status}
            </MenuItem>
          ))}
        </Select>
      </FormControl>
      <TextField
        size="small"
        type="month"
        label="Period"
        InputLabelProps={{ shrink: true }}
        value={query.period ?? ''}
        onChange={e => set({ period: e.target.value || undefined })}
        inputProps={{ 'aria-label': 'Period' }}
      />
      <FormControl size="small" sx={{ minWidth: 160 }}>
        <InputLabel id="finops-domain-label">Domain</InputLabel>
        <Select
          labelId="finops-domain-label"
          label="Domain"
          multiple
          value={query.domain ?? []}
          onChange={e => {
            const value = e.target.value;
            set({
              domain: typeof value === 'string' ? value.split(',') : value,
            });
          }}
          renderValue={selected =>
            (selected as string[]).map(domainLabel).join(', ')
          }
        >
          {DOMAINS.map(domain => (
            <MenuItem key={domain} value={domain}>
              {domainLabel(domain)}
            </MenuItem>
          ))}
        </Select>
      </FormControl>
      <FormControl size="small" sx={{ minWidth: 120 }}>
        <InputLabel id="finops-trigger-label">Trigger</InputLabel>
        <Select
          labelId="finops-trigger-label"
          label="Trigger"
          value={query.trigger ?? ''}
          onChange={e =>
            set({
              trigger: (e.target.value || undefined) as Trigger | undefined,
            })
          }
        >
          <MenuItem value="">Any</MenuItem>
          {TRIGGERS.map(trigger => (
            <MenuItem key={trigger} value={trigger}>
              {trigger}
            </MenuItem>
          ))}
        </Select>
      </FormControl>
      <TextField
        size="small"
        type="date"
        label="Started from"
        InputLabelProps={{ shrink: true }}
        value={query.from ?? ''}
        onChange={e => set({ from: e.target.value || undefined })}
        inputProps={{ 'aria-label': 'Started from' }}
      />
      <TextField
        size="small"
        type="date"
        label="Started to"
        InputLabelProps={{ shrink: true }}
        value={query.to ?? ''}
        onChange={e => set({ to: e.target.value || undefined })}
        inputProps={{ 'aria-label': 'Started to' }}
      />
      <TextField
        size="small"
        label="Run id"
        placeholder="beginning of a run id"
        value={q}
        onChange={e => setQ(e.target.value)}
        onKeyDown={e => {
          if (e.key === 'Enter') set({ q: q.trim() || undefined });
        }}
        inputProps={{ 'aria-label': 'Run id' }}
      />
      <FormControlLabel
        label="Abnormal only"
        control={
          <Checkbox
            checked={query.anomalous === true}
            onChange={e =>
              set({ anomalous: e.target.checked ? true : undefined })
            }
          />
        }
      />
      <FormControl size="small" sx={{ minWidth: 150 }}>
        <InputLabel id="finops-sort-label">Sort</InputLabel>
        <Select
          labelId="finops-sort-label"
          label="Sort"
          value={query.sort ?? '-startTime'}
          onChange={e =>
            set({
              sort:
                e.target.value === '-startTime'
                  ? undefined
                  : (e.target.value as RunSort),
            })
          }
        >
          {RUN_SORTS.map(sort => (
            <MenuItem key={sort} value={sort}>
              {SORT_LABELS[sort]}
            </MenuItem>
          ))}
        </Select>
      </FormControl>
      <Button size="small" onClick={() => onChange({})}>
        Clear filters
      </Button>
    </Box>
  );
}
