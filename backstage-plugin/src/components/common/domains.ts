/**
 * Domain labels, for places where the API's answer names a domain without its label (run
 * summaries, coverage, filters). Where the API sends one (a run detail's `blocks[].label`), that
 * label is shown. The same table as the API's `finops_pipeline.contract.DOMAIN_LABELS`, which it
 * serves at `GET /ui-config` (`domains`).
 */
import type { Domain } from '../../api/types';

// Keyed by the schema's domain enum: a domain the API adds fails the type-check until labelled.
const DOMAIN_LABELS: Record<Domain, string> = {
  open: 'Open',
  private: 'Private',
  public: 'Public',
  native: 'Native',
};

export function domainLabel(domain: string): string {
  return (DOMAIN_LABELS as Record<string, string>)[domain] ?? domain;
}
