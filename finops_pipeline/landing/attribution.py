"""Tags -> applications: the first configured tag key a row's `Tags` object holds.

Keys are compared case-insensitively, in the order of `ReadRules.application_tag_keys`
(FINOPS_APPLICATION_TAG_KEYS); a row without any of them, or with an empty value, is
`unassigned`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from finops_pipeline.constants import UNASSIGNED_APPLICATION

__all__ = ["applications_of"]


def _tag_pattern(key: str) -> str:
    return r'"(?i:' + re.escape(key) + r')"\s*:\s*"(?P<app>[^"\\]*)"'


def applications_of(tags: pa.Array, json_ok: np.ndarray, keys: tuple[str, ...]) -> pa.Array:
    """The application of each row: the first configured tag key present (case-insensitive).

    Flat tag objects without escapes are read with vectorized regexes; the rare
    others (nested values, escapes, numbers) are parsed as JSON.
    """
    n = len(tags)
    if n == 0 or not keys:
        return pa.array([UNASSIGNED_APPLICATION] * n, pa.string())
    usable = pc.and_(pa.array(json_ok), pc.is_valid(tags))
    simple = pc.and_(usable, pc.invert(pc.fill_null(pc.match_substring(tags, "\\"), True)))
    found: pa.Array = pa.nulls(n, pa.string())
    for key in keys:
        # Each key looks only at the rows no earlier key named: usually none after the first.
        missing = pc.and_(simple, pc.is_null(found))
        if not pc.any(missing).as_py():
            break
        subset = pc.filter(tags, missing)
        value = pc.struct_field(pc.extract_regex(subset, _tag_pattern(key)), "app")
        value = pc.if_else(pc.fill_null(pc.equal(value, ""), True), pa.scalar(None, pa.string()), value)
        found = pc.replace_with_mask(found, missing, value)
    found = pc.if_else(simple, found, pa.scalar(None, pa.string()))
    hard = pc.and_(usable, pc.invert(simple))
    if pc.any(hard).as_py():
        values = found.to_pylist()
        wanted = [k.lower() for k in keys]
        for index in np.flatnonzero(hard.to_numpy(zero_copy_only=False)):
            parsed = json.loads(tags[int(index)].as_py())
            lowered: dict[str, Any] = {}
            for k, v in parsed.items():
                lowered.setdefault(k.lower(), v)
            for key in wanted:
                value = lowered.get(key)
                if value not in (None, ""):
                    values[int(index)] = value if isinstance(value, str) else json.dumps(value)
                    break
        found = pa.array(values, pa.string())
    return pc.fill_null(found, UNASSIGNED_APPLICATION)
