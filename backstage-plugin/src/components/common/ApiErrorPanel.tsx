import { ResponseErrorPanel } from '@backstage/core-components';
import { ResponseError } from '@backstage/errors';
import { errorMessage } from '../../api/FinopsAdminClient';

/** True when the API refused the caller (403 `NotAllowedError`): there is nothing else to show them. */
export function isNotAllowed(error: unknown): boolean {
  return ResponseError.is(error) && error.statusCode === 403;
}

/**
 * A failed call, titled with the API's own message ("user:default/x is in none of the groups
 * allowed here; ask a FinOps admin ..."). Backstage's panel would title it "Request failed with
 * 403 Forbidden" and keep the message behind the expander, where nobody reads it.
 */
export function ApiErrorPanel(props: { error: Error }) {
  return (
    <ResponseErrorPanel error={props.error} title={errorMessage(props.error)} />
  );
}
