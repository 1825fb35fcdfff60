import { errorMessage } from '../../api/FinopsAdminClient';
import { useMemo, useState } from 'react';
import { useSearchParams } from 'react-router-dom';
import { Progress, Table } from '@backstage/core-components';
import { alertApiRef, useApi } from '@backstage/core-plugin-api';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Typography from '@mui/material/Typography';
import { finopsAdminApiRef, RunQuery, RunSummary } from '../../api';
import { useCaller } from '../../hooks/useCaller';
import { usePluginPaths } from '../../hooks/useBasePath';
import { useRunPages } from '../../hooks/useRunPages';
import { ApiErrorPanel, isNotAllowed } from '../common/ApiErrorPanel';
import { saveFile } from '../common/saveFile';
import { ReprocessDialog } from '../ReprocessDialog';
import { runColumns } from './columns';
import { queryFromSearch, searchFromQuery } from './filters';
import { RunFilters } from './RunFilters';

/** Failed domains of a run (all its domains when none failed), for a pre-filled reprocess. */
export function failedDomains(
  statuses: Record<string, string>,
  domains: string[],
): string[] {
  const failed = Object.entries(statuses)
    .filter(([, status]) => status === 'FAILED')
    .map(([domain]) => domain);
  return failed.length ? failed : domains;
}

/** Batch Runs: every run, filtered and sorted from the URL, paged by cursor. */
export function BatchRunsPage(props: {
  refreshMs?: number;
  pageSize?: number;
}) {
  const api = useApi(finopsAdminApiRef);
  const alertApi = useApi(alertApiRef);
  const paths = usePluginPaths();
  const { access } = useCaller();
  const [search, setSearch] = useSearchParams();
  const query = useMemo(() => queryFromSearch(search), [search]);
  const runs = useRunPages(query, props);
  const [reprocess, setReprocess] = useState<
    { periods: string[]; domains: string[] } | undefined
  >();

  const setQuery = (next: RunQuery) => setSearch(searchFromQuery(next));
  const report = (what: string) => (error: unknown) =>
    alertApi.post({
      message: `${what}: ${errorMessage(error)}`,
      severity: 'error',
    });

  const columns = runColumns({
    access,
    runPath: paths.run,
    onDownloadLogs: (run: RunSummary) =>
      api.downloadLogs(run.runId).then(saveFile, report('Log download failed')),
    onReprocess: (run: RunSummary) =>
      setReprocess({
        periods: run.periods,
        domains: failedDomains(run.domainStatuses, run.domains),
      }),
  });

  // A caller the API refuses gets its reason and nothing to act on.
  if (isNotAllowed(runs.error)) return <ApiErrorPanel error={runs.error!} />;

  const page = runs.value;
  return (
    <>
      <RunFilters query={query} onChange={setQuery} />
      <Box display="flex" gap={1} mb={1}>
        <Button
          variant="outlined"
          size="small"
          onClick={() =>
            api.exportRunsCsv(query).then(saveFile, report('CSV export failed'))
          }
        >
          Export CSV
        </Button>
        {access.reprocess && (
          <Button
            variant="contained"
            size="small"
            onClick={() => setReprocess({ periods: [], domains: [] })}
          >
            Reprocess…
          </Button>
        )}
        {runs.active && (
          <Typography
            variant="caption"
            color="text.secondary"
            alignSelf="center"
          >
            Runs in progress: refreshing every few seconds
          </Typography>
        )}
      </Box>
      {runs.error && <ApiErrorPanel error={runs.error} />}
      {!runs.error && runs.loading && !page && <Progress />}
      {!runs.error && page && (
        <>
          <Table<RunSummary>
            title={`Batch Runs (${page.totalItems})`}
            options={{
              paging: false,
              search: false,
              sorting: false,
              draggable: false,
              padding: 'dense',
            }}
            columns={columns}
            data={page.items}
            emptyContent={
              <Box p={2}>
                <Typography>No run matches these filters.</Typography>
              </Box>
            }
          />
          <Box
            display="flex"
            justifyContent="flex-end"
            alignItems="center"
            gap={1}
            mt={1}
          >
            <Typography variant="body2">Page {runs.pageNumber}</Typography>
            <Button
              size="small"
              disabled={!runs.hasPrevious}
              onClick={runs.previous}
            >
              Previous
            </Button>
            <Button size="small" disabled={!runs.hasNext} onClick={runs.next}>
              Next
            </Button>
          </Box>
        </>
      )}
      {reprocess && (
        <ReprocessDialog
          open
          onClose={() => setReprocess(undefined)}
          initialPeriods={reprocess.periods}
          initialDomains={reprocess.domains}
        />
      )}
    </>
  );
}
