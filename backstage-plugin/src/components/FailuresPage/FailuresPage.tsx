import { useEffect, useState } from 'react';
import { useLocation, useSearchParams } from 'react-router-dom';
import { Link, Progress } from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import useAsync from 'react-use/esm/useAsync';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Chip from '@mui/material/Chip';
import Paper from '@mui/material/Paper';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableContainer from '@mui/material/TableContainer';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import Typography from '@mui/material/Typography';
import { FailureSignature, finopsAdminApiRef } from '../../api';
import { usePluginPaths } from '../../hooks/useBasePath';
import { ApiErrorPanel } from '../common/ApiErrorPanel';
import { domainLabel } from '../common/domains';
import { formatShortTime, formatTime, shortId } from '../common/format';

/** The row a "seen in N runs" link points at (`#signature-<id>`), if any. */
function targetSignature(hash: string): string | undefined {
  const prefix = '#signature-';
  return hash.startsWith(prefix)
    ? decodeURIComponent(hash.slice(prefix.length))
    : undefined;
}

function Time(props: { iso: string }) {
  return (
    <span title={formatTime(props.iso)}>{formatShortTime(props.iso)}</span>
  );
}

function FailureRow(props: { item: FailureSignature; highlighted: boolean }) {
  const { item, highlighted } = props;
  const paths = usePluginPaths();
  return (
    <TableRow
      id={`signature-${item.signature}`}
      data-testid={`failure-${item.signature}`}
      selected={highlighted}
    >
      <TableCell sx={{ maxWidth: 480 }}>
        <Typography
          variant="body2"
          component="code"
          fontFamily="monospace"
          sx={{ overflowWrap: 'anywhere' }}
          data-testid="failure-text"
        >
          {item.text}
        </Typography>
      </TableCell>
      <TableCell>
        <Chip size="small" variant="outlined" label={item.kind} />
      </TableCell>
      <TableCell align="right">
        <Typography fontWeight="bold" data-testid="failure-count">
          {item.count}
        </Typography>
      </TableCell>
      <TableCell sx={{ whiteSpace: 'nowrap' }}>
        <Typography variant="body2">
          <Time iso={item.firstSeen} />
        </Typography>
        <Typography variant="body2">
          <Time iso={item.lastSeen} />
        </Typography>
      </TableCell>
      <TableCell>{item.domains.map(domainLabel).join(', ') || '—'}</TableCell>
      <TableCell>{item.sources.join(', ') || '—'}</TableCell>
      <TableCell sx={{ whiteSpace: 'nowrap' }}>
        <Link
          to={paths.runsWithSignature(item.signature)}
          aria-label={`Runs that failed with ${item.signature}`}
        >
          {item.count} run(s)
        </Link>
        <Typography variant="caption" component="div">
          {item.runs.map(runId => (
            <Box component="span" key={runId} mr={0.5}>
              <Link to={paths.run(runId)} title={runId}>
                <code>{shortId(runId)}</code>
              </Link>
            </Box>
          ))}
        </Typography>
      </TableCell>
    </TableRow>
  );
}

/**
 * Failures: failed runs grouped by cause (`GET /failures`), the most recently seen first; each
 * cause links to the run list filtered on its signature. `from`/`to`/`limit` of the page's URL
 * go to the API as they are, so it explains a bad value.
 */
export function FailuresPage() {
  const api = useApi(finopsAdminApiRef);
  const [search] = useSearchParams();
  const { hash } = useLocation();
  const from = search.get('from') || undefined;
  const to = search.get('to') || undefined;
  const limitText = search.get('limit');
  const limit = limitText ? Number(limitText) : undefined;
  // The pages already shown belong to one window: "More" appends the next page to them, a new
  // window starts again from the first page.
  const key = `${from}|${to}|${limit}`;
  const [paging, setPaging] = useState<{
    key: string;
    shown: FailureSignature[];
    cursor?: string;
  }>({ key, shown: [] });
  const { shown, cursor } =
    paging.key === key ? paging : { shown: [], cursor: undefined };
  const page = useAsync(
    async () => ({
      key,
      cursor,
      list: await api.listFailures({ from, to, limit, cursor }),
    }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [api, key, cursor],
  );
  const target = targetSignature(hash);
  // Until the page asked for arrives, react-use keeps the previous one as `value`: not shown twice.
  const loaded =
    page.value && page.value.key === key && page.value.cursor === cursor
      ? page.value.list
      : undefined;
  const items = [...shown, ...(loaded?.items ?? [])];
  useEffect(() => {
    if (!target || !loaded) return;
    // jsdom has no layout, hence no scrollIntoView.
    document
      .getElementById(`signature-${target}`)
      ?.scrollIntoView?.({ block: 'center' });
  }, [target, loaded]);

  if (page.error) return <ApiErrorPanel error={page.error} />;
  if (!loaded && shown.length === 0) return <Progress />;
  const nextCursor = loaded?.pageInfo.nextCursor;
  return (
    <>
      <Typography variant="h6" data-testid="failures-total">
        {page.value?.list.totalItems ?? items.length} cause(s) of failure
      </Typography>
      <TableContainer component={Paper} sx={{ mt: 1 }}>
        <Table size="small" sx={{ minWidth: 900 }}>
          <TableHead>
            <TableRow>
              <TableCell>Cause (what varies masked)</TableCell>
              <TableCell>Kind</TableCell>
              <TableCell align="right">Runs</TableCell>
              <TableCell>First / last seen (UTC)</TableCell>
              <TableCell>Domains</TableCell>
              <TableCell>Sources</TableCell>
              <TableCell>Failed runs</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {items.map(item => (
              <FailureRow
                key={item.signature}
                item={item}
                highlighted={item.signature === target}
              />
            ))}
            {items.length === 0 && (
              <TableRow>
                <TableCell colSpan={7}>
                  <Typography color="text.secondary">
                    No failed run in this window.
                  </Typography>
                </TableCell>
              </TableRow>
            )}
          </TableBody>
        </Table>
      </TableContainer>
      {!loaded && <Progress />}
      {nextCursor && (
        <Box display="flex" justifyContent="flex-end" mt={1}>
          <Button
            size="small"
            onClick={() => {
              setPaging({ key, shown: items, cursor: nextCursor });
            }}
          >
            More
          </Button>
        </Box>
      )}
    </>
  );
}
