"""The sources file (`FINOPS_SOURCES`): which exports feed which domain.

```yaml
sources:
  - name: aws-payer
    domain: public
    kind: aws-data-exports
    uri: s3://billing-exports/cur/payer
    storage:
      region: eu-west-1
      secret_access_key_env: PAYER_SECRET   # the value is read from $PAYER_SECRET
    expected_day: 3
```

The file is checked when the code location loads: an unknown key, kind or domain, a
duplicate name, or a secret written in the file is refused with a message naming the file
and line. Storage options whose key ends in `_env` name an environment variable; they are
resolved only when the storage is opened (`Source.storage_options`), so a process that
reads the file without reading the data (the admin API) needs no credentials.

Without the file, each domain has one `landing` source, `$FINOPS_LANDING_URI/<domain>`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

import yaml

from finops_pipeline.contract import DOMAINS

__all__ = [
    "LANDING_SOURCE_PREFIX",
    "SOURCE_KINDS",
    "Source",
    "SourceKind",
    "SourcesFileError",
    "configured_sources",
    "landing_sources",
    "load_sources_file",
    "redact_location",
]

SourceKind = Literal[
    "landing", "aws-data-exports", "azure-cost-exports", "oci-focus-reports", "gcp-focus-export"
]
SOURCE_KINDS: Final[tuple[str, ...]] = get_args(SourceKind)
# The sources made from FINOPS_LANDING_URI when no sources file is set: `landing-<domain>`.
LANDING_SOURCE_PREFIX: Final = "landing-"

_NAME: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_OPTION: Final = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Storage options that are secrets: written in the file, they would be read by everyone who
# can read the file (a ConfigMap, a repository). They must name an environment variable.
_SECRET_OPTION: Final = re.compile(
    r"(secret|password|passwd|token|sas|credential|connection_string|private_key|account_key"
    r"|(^|_)key$|session)"
)
_SCHEMES: Final = ("s3", "az", "abfs", "abfss", "gs", "file")
_FIELDS: Final = ("name", "domain", "kind", "uri", "storage", "expected_day")


class SourcesFileError(ValueError):
    """The sources file cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Source:
    name: str
    domain: str
    kind: SourceKind
    uri: str  # normalized: a local folder is absolute, without trailing slash
    storage: Mapping[str, str] = field(default_factory=dict)  # as written (`*_env` unresolved)
    expected_day: int | None = None
    origin: str = ""  # "<file>:<line>" where it is declared; "" for FINOPS_LANDING_URI

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri or self.uri.startswith("file://")

    @property
    def location(self) -> str:
        """The uri as screens and metrics show it: credentials and query string removed."""
        return redact_location(self.uri)

    def storage_options(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The storage options with every `<key>_env` replaced by `<key>` = that variable's value."""
        env = os.environ if environ is None else environ
        options: dict[str, str] = {}
        for key, value in self.storage.items():
            if key.endswith("_env"):
                if value not in env:
                    where = f" ({self.origin})" if self.origin else ""
                    raise SourcesFileError(
                        f"source {self.name!r}{where}: storage option {key} names the environment "
                        f"variable {value}, which is not set in this process: set it (e.g. from a "
                        "Kubernetes Secret) or remove the option"
                    )
                options[key.removesuffix("_env")] = env[value]
            else:
                options[key] = value
        return options


def redact_location(uri: str) -> str:
    """`uri` without user, password or query string (an Azure SAS token travels in the query)."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def landing_sources(landing_uri: str) -> list[Source]:
    """Today's layout as sources: `<landing>/<domain>/<YYYY-MM>/`, one per domain."""
    root = landing_uri.rstrip("/")
    return [
        Source(name=f"{LANDING_SOURCE_PREFIX}{domain}", domain=domain, kind="landing", uri=f"{root}/{domain}")
        for domain in DOMAINS
    ]


def configured_sources(sources_file: str | Path | None, landing_uri: str | None) -> list[Source]:
    """The sources of every domain: the sources file when set, else the landing layout."""
    if sources_file:
        return load_sources_file(sources_file)
    if not landing_uri:
        raise SourcesFileError(
            "no source of cost data is configured: set FINOPS_SOURCES to a sources file, or "
            "FINOPS_LANDING_URI to the landing folder (or s3://bucket/prefix)"
        )
    return landing_sources(landing_uri)


class _Node(dict[str, Any]):
    """A YAML mapping that remembers the line of itself and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]


class _RepeatedKey(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _RepeatedKey(line, f"key {key!r} is repeated (first on line {seen[key]})")
            seen[key] = line
        result = _Node(super().construct_mapping(node, deep=True))
        result.line = node.start_mark.line + 1
        result.key_lines = {str(k): v for k, v in seen.items()}
        return result


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    # Built in one go (PyYAML's default builds an empty dict first, losing the lines).
    return loader.construct_mapping(node)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def _error(path: Path, line: int, message: str) -> SourcesFileError:
    return SourcesFileError(f"{path}:{line}: {message}")


def load_sources_file(path: str | Path) -> list[Source]:
    """Read and check the sources file; raise SourcesFileError naming the line of any fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourcesFileError(
            f"FINOPS_SOURCES names {path}, which does not exist: point it at the sources file "
            "(format in the README, section Sources) or unset it to use FINOPS_LANDING_URI"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesFileError(f"{path}: cannot be read as UTF-8 text: {exc}") from None
    try:
        document = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except _RepeatedKey as exc:
        raise _error(path, exc.line, str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise _error(path, line, f"not valid YAML: {problem}") from None
    if not isinstance(document, _Node) or "sources" not in document:
        raise _error(path, 1, "expected a mapping with a `sources:` list (see the README, section Sources)")
    unknown = sorted(set(document) - {"sources"})
    if unknown:
        raise _error(
            path, document.key_lines[unknown[0]], f"unknown key {unknown[0]!r}: only `sources` is read"
        )
    items = document["sources"]
    if not isinstance(items, list) or not items:
        raise _error(path, document.key_lines["sources"], "`sources` must be a non-empty list of sources")
    sources: list[Source] = []
    names: dict[str, int] = {}
    for item in items:
        source = _source(path, item, document.key_lines["sources"])
        line = int(source.origin.rsplit(":", 1)[1])
        if source.name in names:
            raise _error(
                path, line, f"source name {source.name!r} is already used on line {names[source.name]}"
            )
        names[source.name] = line
        sources.append(source)
    return sources


def _source(path: Path, item: object, list_line: int) -> Source:
    if not isinstance(item, _Node):
        raise _error(
            path, list_line, f"each source must be a mapping (name, domain, kind, uri), got {item!r}"
        )
    line = item.line

    def at(key: str) -> int:
        return item.key_lines.get(key, line)

    for key in item:
        if key not in _FIELDS:
            raise _error(path, at(key), f"unknown key {key!r} in a source; known keys: {', '.join(_FIELDS)}")
    for key in ("name", "domain", "kind", "uri"):
        if key not in item or item[key] in (None, ""):
            raise _error(
                path, line, f"this source has no {key!r}; every source needs name, domain, kind and uri"
            )
    name = str(item["name"])
    if not _NAME.match(name):
        raise _error(
            path,
            at("name"),
            f"source name {name!r}: use 1-40 lower-case letters, digits and dashes, e.g. aws-payer",
        )
    domain = str(item["domain"])
    if domain not in DOMAINS:
        raise _error(
            path, at("domain"), f"source {name!r}: unknown domain {domain!r}; one of {', '.join(DOMAINS)}"
        )
    kind = str(item["kind"])
    if kind not in SOURCE_KINDS:
        raise _error(
            path, at("kind"), f"source {name!r}: unknown kind {kind!r}; one of {', '.join(SOURCE_KINDS)}"
        )
    uri = _uri(path, at("uri"), name, str(item["uri"]))
    storage = _storage(path, item, at, name)
    expected_day = item.get("expected_day")
    if expected_day is not None and (
        isinstance(expected_day, bool) or not isinstance(expected_day, int) or not 1 <= expected_day <= 28
    ):
        raise _error(
            path,
            at("expected_day"),
            f"source {name!r}: expected_day must be a day of the month from 1 to 28, got {expected_day!r}",
        )
    return Source(
        name=name,
        domain=domain,
        kind=kind,  # type: ignore[arg-type]  # checked against SOURCE_KINDS above
        uri=uri,
        storage=storage,
        expected_day=expected_day,
        origin=f"{path}:{line}",
    )


def _uri(path: Path, line: int, name: str, uri: str) -> str:
    if "://" in uri:
        scheme = uri.split("://", 1)[0].lower()
        if scheme not in _SCHEMES:
            raise _error(
                path,
                line,
                f"source {name!r}: uri {redact_location(uri)!r} has scheme {scheme!r}; use a local folder, "
                "s3://, az:// or abfs[s]://, gs://, or file://",
            )
        parts = urlsplit(uri)
        if parts.username or parts.password:
            raise _error(
                path,
                line,
                f"source {name!r}: the uri carries credentials; put them in storage options ending in _env "
                "(environment variables), never in the file",
            )
        if parts.query:
            raise _error(
                path,
                line,
                f"source {name!r}: the uri has a query string (a SAS token?); give credentials as storage "
                "options ending in _env",
            )
        if not parts.netloc:
            raise _error(path, line, f"source {name!r}: uri {uri!r} names no bucket or container")
        return uri.rstrip("/")
    folder = Path(uri).expanduser()
    if not folder.is_absolute():
        folder = path.parent / folder  # relative to the sources file, not to the process's cwd
    return str(folder.resolve())


def _storage(path: Path, item: _Node, at: Any, name: str) -> dict[str, str]:
    raw = item.get("storage")
    if raw is None:
        return {}
    if not isinstance(raw, _Node):
        raise _error(path, at("storage"), f"source {name!r}: storage must be a mapping of option: value")
    options: dict[str, str] = {}
    for key, value in raw.items():
        line = raw.key_lines.get(key, raw.line)
        if not isinstance(key, str) or not _OPTION.match(key):
            raise _error(
                path, line, f"source {name!r}: storage option {key!r} is not a lower_snake_case name"
            )
        if isinstance(value, (dict, list)) or value is None:
            raise _error(path, line, f"source {name!r}: storage option {key} must be a single value")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if key.endswith("_env"):
            if not _ENV_NAME.match(text):
                raise _error(
                    path, line, f"source {name!r}: {key} must name an environment variable, got {text!r}"
                )
        elif _SECRET_OPTION.search(key):
            raise _error(
                path,
                line,
                f"source {name!r}: storage option {key} is a secret written in the file; write "
                f"`{key}_env: SOME_VARIABLE` and set SOME_VARIABLE in the environment instead",
            )
        options[key] = text
    return options
