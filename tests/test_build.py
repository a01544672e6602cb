"""The build: requirements.lock pins every dependency pyproject.toml declares (a dependency added without
`make lock` fails here), and the image's build context holds what the Dockerfile copies and nothing else
(not the virtualenv, not var/ with its keys and database)."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            requirement = Requirement(line)
            [spec] = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_the_lock_pins_every_declared_dependency_at_a_version_it_allows():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    pins = locked()
    stale = [str(r) for r in declared if pins.get(canonicalize_name(r.name)) not in r.specifier]
    assert not stale, f"not in requirements.lock, or at a version pyproject.toml refuses: {stale}; run `make lock`"


def test_the_build_context_is_what_the_dockerfile_copies():
    ignore = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert ignore[0] == "*", "the context starts empty and names what goes in"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied.update(line.split()[1:-1])
    assert allowed == copied
    assert not allowed & {"var", ".venv", ".git", ".env", "tests", "bench"}
    # Inside what goes in, never a database, bytecode or an environment file.
    assert {"**/*.db", "**/*.sqlite*", "**/__pycache__", "**/.env"} <= set(ignore)
    assert not re.search(r"^!.*\*", "\n".join(ignore), re.M)  # nothing re-included by a wildcard
