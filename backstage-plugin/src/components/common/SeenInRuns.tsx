import { Link } from '@backstage/core-components';
import { ErrorSummary } from '../../api';
import { usePluginPaths } from '../../hooks/useBasePath';
import { formatTime } from './format';

/**
 * "seen in N run(s) since …" of a failed run, linking to its cause on the Failures screen; nothing
 * until the read model has stored the run's signature (the API then sends null).
 */
export function SeenInRuns(props: { errors: ErrorSummary }) {
  const { signature, seenInRuns, firstSeen } = props.errors;
  const paths = usePluginPaths();
  if (!signature || !seenInRuns) return null;
  return (
    <Link
      to={paths.failures(signature)}
      data-signature={signature}
      data-testid="seen-in-runs"
      // Inside a line of text: underlined, so it is not told apart by its colour alone.
      underline="always"
    >
      seen in {seenInRuns} run(s) since {formatTime(firstSeen)}
    </Link>
  );
}
