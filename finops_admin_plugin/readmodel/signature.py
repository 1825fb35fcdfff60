"""Failure signatures: the same cause gets the same id, whichever run, period or file it struck.

`failure_signature(kind, message)` masks what changes from one occurrence of a cause to the next
(run ids, uuids, hex ids, times and dates, periods, numbers, IP addresses, the folders of paths
and URIs) and hashes what stays with the kind. `failure_cause` turns a failure as the run views
carry it (Dagster's kind, its one-line message, the quality gate of the period) into that kind
and the part of the message that names the cause.

Both are pure: the read model stores their result per failed block or run, and a change here
takes a `finops reindex` (or a re-projection) to reach runs stored before.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

__all__ = ["SIGNATURE_LENGTH", "failure_cause", "failure_signature", "mask_message"]

SIGNATURE_LENGTH: Final = 12  # hex digits of sha256: 48 bits, no collision among a few thousand causes
TEXT_LIMIT: Final = 300

# Order matters: a URI or path is masked before the numbers inside it, a datetime before the
# date, the date before the period, a uuid before the hex.
_URI: Final = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^/\s'\";,)]*)((?:/[^\s'\";,)]*)?)")
# A path of at least two segments; the first starts with "/" or a lower-case letter (not "1/2",
# "TCP/IP").
_PATH: Final = re.compile(r"(?<![\w<>/.:-])(?:/|\.{1,2}/|[a-z_][\w.-]*/)(?:[\w.@%+=-]+/)*[\w.@%+=-]+/?")
_UUID: Final = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_DATETIME: Final = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}|\s?UTC)?\b"
)
_DATE: Final = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_CLOCK: Final = re.compile(r"\b\d{2}:\d{2}:\d{2}(?:\.\d+)?\b")
_PERIOD: Final = re.compile(r"\b\d{4}-(?:0[1-9]|1[0-2])\b")
_IP: Final = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
# Hex ids: `0x` forms, and runs of 8+ hex digits holding at least one digit and one letter
# (a short run id `1f3c9a2b`, a request id): a plain number is left to `_NUMBER`.
_HEX: Final = re.compile(
    r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"
)
# Not inside a name ("S3", "ListObjectsV2"); "60s" is a number and its unit.
_NUMBER: Final = re.compile(r"(?<![A-Za-z0-9_])\d+(?:\.\d+)*")
_SPACES: Final = re.compile(r"\s+")

# The wrapper `finops_pipeline.ops.loads` puts around a domain's failed periods:
# "Native: 1 of 2 period(s) failed, keeping their previous rows. 2026-01: <cause> | 2026-02: ...".
_LOAD_WRAPPER: Final = re.compile(
    r"^[A-Z][a-z]+: \d+ of \d+ period\(s\) failed, keeping their previous rows\. (?:\d{4}-\d{2}: )?"
)
_GATE_PREFIX: Final = re.compile(r"^quality gate ([a-z_]+): ")
# "OperationalError: ..." as `mapping.runs.one_line` leaves an exception (module path removed).
_EXCEPTION: Final = re.compile(
    r"^([A-Z][A-Za-z0-9_]*(?:Error|Exception|Timeout|Failed|Failure|Exit|Interrupt|Refused|Missing)): "
)
# Any CamelCase class name ("QueryCanceled"), where the op's own reports (FAILURE: "Native: ...")
# cannot be mistaken for one.
_CLASS_NAME: Final = re.compile(r"^([A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+): ")


def _mask_values(text: str) -> str:
    text = _UUID.sub("<id>", text)
    text = _DATETIME.sub("<time>", text)
    text = _DATE.sub("<date>", text)
    text = _CLOCK.sub("<time>", text)
    text = _PERIOD.sub("<period>", text)
    text = _IP.sub("<ip>", text)
    text = _HEX.sub("<hex>", text)
    return _NUMBER.sub("<n>", text)


def _last_segment(path: str) -> str:
    """The shape of a path's last segment: `part-00001-3f2a9c1d.parquet` -> `part-<n>-<hex>.parquet`."""
    trailing = path.endswith("/")
    segment = path.rstrip("/").rsplit("/", 1)[-1]
    return _mask_values(segment) + ("/" if trailing else "")


def _mask_uri(match: re.Match[str]) -> str:
    scheme, host, path = match.group(1), match.group(2), match.group(3)
    end = ""
    if path.endswith("."):  # the end of the sentence, not of the path
        path, end = path[:-1], "."
    if "?" in path:  # a query string (S3's list-type, prefix...) varies with the request
        path, end = path.split("?", 1)[0], "?<query>" + end
    # The host (bucket, server) says which system failed: kept unless it is an address.
    host = _mask_values(host)
    if path.strip("/") and "/" in path.strip("/"):
        return f"{scheme}://{host}/<path>/{_last_segment(path)}{end}"
    return f"{scheme}://{host}{('/' + _last_segment(path)) if path.strip('/') else path}{end}"


def _mask_path(match: re.Match[str]) -> str:
    path = match.group(0)
    end = "." if path.endswith(".") else ""
    return f"<path>/{_last_segment(path.removesuffix('.'))}{end}"


def mask_message(message: str) -> str:
    """The message with what varies between occurrences of one cause masked, on one line."""
    text = _SPACES.sub(" ", message).strip()
    text = _URI.sub(_mask_uri, text)
    text = _PATH.sub(_mask_path, text)
    text = _mask_values(text)
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def failure_signature(kind: str, message: str) -> tuple[str, str]:
    """(signature id, masked text): the id is a short, stable hash of the kind and the masked text."""
    masked = mask_message(message)
    digest = hashlib.sha256(f"{kind}\n{masked}".encode()).hexdigest()
    return digest[:SIGNATURE_LENGTH], masked


def failure_cause(dagster_kind: str, message: str, gate: str | None = None) -> tuple[str, str]:
    """(kind, cause) of a failure: the quality gate's name, else the exception's type, else Dagster's
    kind (FAILURE, EXCEPTION, FRAMEWORK, INTERRUPTED, RUN); the cause is the message without the
    wrapper of a domain's load and without the gate or exception name (the kind says it)."""
    text = _SPACES.sub(" ", message).strip()
    wrapped = _LOAD_WRAPPER.match(text)
    if wrapped:
        # The first failed period names the cause; the periods after " | " vary with the run.
        text = text[wrapped.end() :].split(" | ", 1)[0]
    found_gate = _GATE_PREFIX.match(text)
    if found_gate:
        return found_gate.group(1), text[found_gate.end() :]
    if gate and wrapped:
        return gate, text
    exception = _EXCEPTION.match(text) or (_CLASS_NAME.match(text) if dagster_kind != "FAILURE" else None)
    if exception:
        return exception.group(1), text[exception.end() :]
    return dagster_kind, text
