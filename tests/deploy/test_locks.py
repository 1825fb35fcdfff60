"""The Python locks (requirements/*.txt, written by `make lock`) against pyproject.toml.

test.txt is the tested environment; dev.txt (`make dev`) and image.txt (the container
image) must pin exactly the versions it pins, hold every requirement of their extras
within its bounds, and the image must carry nothing only development needs.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"
PROJECT = "finops-batch-admin"
# Which extras each lock resolves (`make lock`).
LOCK_EXTRAS = {"test.txt": ("test", "lint"), "dev.txt": ("dev",), "image.txt": ("k8s",)}
# The platform the image and CI run on: the markers of the locks are evaluated for it.
TARGET = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.0",
          "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
          "implementation_name": "cpython", "platform_python_implementation": "CPython"}  # fmt: skip
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\\n]+?))?\s*\\?$", re.M)


def pins(lock: str) -> dict[str, str]:
    """Name -> version for the target platform (a lock may fork a package by Python version)."""
    found: dict[str, str] = {}
    for name, version, marker in PIN.findall((LOCKS / lock).read_text()):
        if marker and not Requirement(f"x; {marker}").marker.evaluate(TARGET):  # type: ignore[union-attr]
            continue
        found[canonicalize_name(name)] = version
    assert found, f"no pins read from requirements/{lock}"
    return found


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    """The runtime requirements plus those of `extras`, extras of this project expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == PROJECT:
                todo.extend(requirement.extras)
            else:
                requirements.append(requirement)
    return requirements


@pytest.mark.parametrize("lock", sorted(LOCK_EXTRAS))
def test_each_lock_holds_its_requirements_within_their_bounds(lock: str) -> None:
    pinned = pins(lock)
    for requirement in declared(LOCK_EXTRAS[lock]):
        if requirement.marker is not None and not requirement.marker.evaluate(TARGET):
            continue
        version = pinned.get(canonicalize_name(requirement.name))
        assert version is not None, f"requirements/{lock} has no {requirement.name}: run `make lock`"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock} pins {requirement.name}=={version}, outside pyproject.toml's "
            f"{requirement}: run `make lock`"
        )


@pytest.mark.parametrize("lock", ["dev.txt", "image.txt"])
def test_dev_and_image_locks_pin_the_tested_versions(lock: str) -> None:
    tested = pins("test.txt")
    differ = {name: (v, tested.get(name)) for name, v in pins(lock).items() if tested.get(name) != v}
    assert not differ, f"requirements/{lock} vs test.txt (its pin, test.txt's): {differ}; run `make lock`"


def test_the_image_carries_no_development_tools() -> None:
    image = pins("image.txt")
    for name in ("pgserver", "pandas", "pytest", "moto", "playwright", "schemathesis", "ruff", "mypy"):
        assert name not in image, f"{name} is for development only, yet requirements/image.txt has it"
    for name in ("dagster-k8s", "uvicorn", "h11", "numpy"):
        assert name in image
