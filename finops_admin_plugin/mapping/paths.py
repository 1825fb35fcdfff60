"""Server paths in run messages, shown relative to the landing root.

Run errors come from the batch's processes: they may name landing files by absolute path
(`/srv/finops/landing/open/2026-10/export.csv`, `s3://bucket/prefix/open/2026-10/`) and, for
an unexpected exception, files of the server. Callers (read-only users too, and the CSV
export) see a landing path from the landing root (`open/2026-10/export.csv`) and any other
absolute path as its last part only.
"""

from __future__ import annotations

import re

from finops_pipeline.contract import DOMAINS

__all__ = ["display_paths"]

_STOP = r"\s'\"`,;()<>"
_LANDING = re.compile(
    rf"(?:s3://|(?<![\w.~:/-])/)[^{_STOP}]*?/"
    rf"((?:{'|'.join(DOMAINS)})/\d{{4}}-\d{{2}}(?:/[^{_STOP}]*)?|reference/[^{_STOP}]*)"
)
_ABSOLUTE = re.compile(rf"(?<![\w.~:/-])/(?:[^{_STOP}/]+/)+([^{_STOP}/]+)")


def display_paths(text: str) -> str:
    """`text` with landing paths from the landing root and other absolute paths cut to their name."""
    if "/" not in text:
        return text
    return _ABSOLUTE.sub(lambda m: m.group(1), _LANDING.sub(lambda m: m.group(1), text))
