"""The sources file: what it accepts, and each refusal naming its line and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from finops_pipeline.sources import SourcesFileError, configured_sources, load_sources_file, redact_location

GOOD = """\
sources:
  - name: aws-payer
    domain: public
    kind: aws-data-exports
    uri: s3://billing-exports/cur/payer/
    storage:
      endpoint_url: http://127.0.0.1:9000
      access_key_id: AKIAEXAMPLE
      secret_access_key_env: PAYER_SECRET
    expected_day: 3
  - name: private-cloud
    domain: private
    kind: landing
    uri: landing/private
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(SourcesFileError) as caught:
        load_sources_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    return message.removeprefix(f"{path}:")


def test_a_good_file_is_read_with_origins_and_resolved_paths(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    aws, private = load_sources_file(path)
    assert (aws.name, aws.domain, aws.kind, aws.uri, aws.expected_day) == (
        "aws-payer",
        "public",
        "aws-data-exports",
        "s3://billing-exports/cur/payer",
        3,
    )
    assert aws.origin == f"{path}:2"
    assert not aws.is_local and private.is_local
    # A relative folder is relative to the sources file, not to the process's working directory.
    assert private.uri == str((tmp_path / "landing" / "private").resolve())
    assert private.expected_day is None and dict(private.storage) == {}


def test_secrets_are_read_from_the_environment_only_when_the_storage_is_opened(tmp_path: Path) -> None:
    aws = load_sources_file(write(tmp_path, GOOD))[0]
    assert aws.storage_options({"PAYER_SECRET": "s3cr3t"}) == {
        "endpoint_url": "http://127.0.0.1:9000",
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": "s3cr3t",
    }
    with pytest.raises(SourcesFileError, match=r"PAYER_SECRET, which is not set in this process"):
        aws.storage_options({})


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            "sources:\n  - name: a\n    domain: public\n    kind: aws\n    uri: s3://b/c\n",
            4,
            "unknown kind 'aws'",
        ),
        (
            "sources:\n  - name: a\n    domain: pub\n    kind: landing\n    uri: /x\n",
            3,
            "unknown domain 'pub'",
        ),
        (
            "sources:\n  - name: a\n    domain: open\n    kind: landing\n    uri: /x\n"
            "  - name: a\n    domain: public\n    kind: landing\n    uri: /y\n",
            6,
            "source name 'a' is already used on line 2",
        ),
        (
            "sources:\n  - name: a\n    domain: open\n    kind: landing\n    uri: s3://b/x\n"
            "    storage:\n      secret_access_key: abc\n",
            7,
            "secret_access_key is a secret written in the file",
        ),
        (
            "sources:\n  - name: a\n    domain: open\n    kind: landing\n    uri: az://c/x\n"
            "    storage:\n      account_key: abc\n",
            7,
            "account_key_env: SOME_VARIABLE",
        ),
        (
            "sources:\n  - name: a\n    domain: open\n    kind: landing\n    uri: s3://u:p@b/x\n",
            5,
            "carries credentials",
        ),
        (
            "sources:\n  - name: a\n    domain: open\n    kind: landing\n    uri: az://c/x?sig=abc\n",
            5,
            "query string",
        ),
        (
            "sources:\n  - name: a\n    domain: open\n    kind: landing\n    uri: ftp://h/x\n",
            5,
            "scheme 'ftp'",
        ),
        ("sources:\n  - name: a\n    domain: open\n    domain: public\n", 4, "key 'domain' is repeated"),
        ("sources:\n  - name: Bad_Name\n    domain: open\n    kind: landing\n    uri: /x\n", 2, "lower-case"),
        ("sources:\n  - name: a\n    domain: open\n    kind: landing\n", 2, "no 'uri'"),
        (
            "sources:\n  - name: a\n    domain: open\n    kind: landing\n    uri: /x\n    expected_day: 31\n",
            6,
            "from 1 to 28",
        ),
        (
            "sources:\n  - name: a\n    domain: open\n    kind: landing\n    uri: /x\n    colour: red\n",
            6,
            "unknown key",
        ),
        ("sources: [\n", 2, "not valid YAML"),
        ("- name: a\n", 1, "a `sources:` list"),
    ],
)
def test_a_bad_file_is_refused_naming_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    message = refusal(tmp_path, text)
    assert message.startswith(f"{line}: "), message
    assert words in message


def test_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SourcesFileError, match=r"does not exist.*unset it to use FINOPS_LANDING_URI"):
        load_sources_file(tmp_path / "nope.yaml")


def test_without_a_file_each_domain_has_its_landing_source() -> None:
    sources = configured_sources(None, "s3://bucket/landing/")
    assert [(s.name, s.domain, s.kind, s.uri) for s in sources] == [
        ("landing-open", "open", "landing", "s3://bucket/landing/open"),
        ("landing-private", "private", "landing", "s3://bucket/landing/private"),
        ("landing-public", "public", "landing", "s3://bucket/landing/public"),
        ("landing-native", "native", "landing", "s3://bucket/landing/native"),
    ]
    with pytest.raises(SourcesFileError, match="set FINOPS_SOURCES"):
        configured_sources(None, "")


def test_locations_never_show_credentials() -> None:
    assert redact_location("az://u:secret@container/path?sig=abc") == "az://container/path"
    assert redact_location("/data/landing/open") == "/data/landing/open"
