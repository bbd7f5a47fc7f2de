"""Renders are deterministic, and credentials never leave Pulumi secrets and Kubernetes Secrets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.render import run_program, write
from conftest import PROJECT, ROOT, STACKS

SENTINELS = {
    "hfToken": "hf_SENTINEL_TOKEN_7f3a9c",
    "grafanaAdminPassword": "GRAFANA-SENTINEL-PASSWORD-41d2",
    "kubeconfig": "KUBECONFIG-SENTINEL-9b7e",
}


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stack", STACKS)
def test_two_renders_are_byte_identical(stack, tmp_path):
    write(run_program(PROJECT, stack), tmp_path / "a")
    write(run_program(PROJECT, stack), tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    different = [name for name in a if a[name] != b[name]]
    assert not different, f"non-deterministic files: {different}"


@pytest.mark.parametrize("stack", STACKS)
def test_secrets_never_appear_in_any_output(stack, tmp_path):
    secrets_file = tmp_path / "secrets.yaml"
    secrets_file.write_text(yaml.safe_dump(SENTINELS))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "components", "render", "--stack", stack, "--out", str(out), "--secret-values", str(secrets_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    texts = {"stdout": result.stdout, "stderr": result.stderr}
    texts.update({name: data.decode() for name, data in _files(out).items()})
    for name, text in texts.items():
        for key, sentinel in SENTINELS.items():
            assert sentinel not in text, f"{key} leaked into {name}"
    recording = run_program(PROJECT, stack, secret_values=SENTINELS)
    for log in recording.logs:
        assert not any(s in log for s in SENTINELS.values())
    assert recording.outputs["kubeconfig"] == "[secret]"
    # the token is used, but only inside a Kubernetes Secret (masked in the render)
    secrets = [r for r in recording.resources if r.type == "kubernetes:core/v1:Secret"]
    for record in secrets:
        for field in ("stringData", "data"):  # masked whole, or per key (keys are names, values masked)
            value = record.inputs.get(field)
            assert value in (None, "[secret]") or all(v == "[secret]" for v in value.values()), f"{record.name}.{field} not masked"
