"""Renders are deterministic, and credentials never leave Pulumi secrets and Kubernetes Secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT, ROOT, STACKS
from pulumi.runtime import rpc
from stackfiles import stack_values

from llm_infra.components.render import RenderError, run_program, write

SENTINELS = {
    "hfToken": "hf_SENTINEL_TOKEN_7f3a9c",
    "grafanaAdminPassword": "GRAFANA-SENTINEL-PASSWORD-41d2",
    "kubeconfig": "KUBECONFIG-SENTINEL-9b7e",
    "apiKeys": "sk-API-KEY-SENTINEL-5c1e",  # every client's key of the apiKeys map
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
    own = set(stack_values(stack)[1])  # --secret-values takes only the stack's own secrets
    secrets_file.write_text(yaml.safe_dump({k: v for k, v in SENTINELS.items() if k in own}))
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_infra",
            "render",
            "--stack",
            stack,
            "--out",
            str(out),
            "--secret-values",
            str(secrets_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
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
            assert value in (None, "[secret]") or all(v == "[secret]" for v in value.values()), (
                f"{record.name}.{field} not masked"
            )


EXPECTED_HOLDERS = {
    # secret config key -> (resource type, Kubernetes name or None) that may receive it, nothing else
    "hfToken": {("kubernetes:core/v1:Secret", "hf-token")},
    "grafanaAdminPassword": {("kubernetes:core/v1:Secret", "grafana-admin")},
    "kubeconfig": {("pulumi:providers:kubernetes", None)},
    # the gateway's key Secret (Envoy Gateway) or the one vLLM reads (GKE): components/serving/edge.py
    "apiKeys": {
        ("kubernetes:core/v1:Secret", "inference-gateway-api-keys"),
        ("kubernetes:core/v1:Secret", "vllm-api-keys"),
    },
}


def _paths_to(value, needle: str, path: tuple = ()):
    """Paths (tuples of keys) at which ``needle`` occurs inside ``value``."""
    if isinstance(value, str):
        return [path] if needle in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths_to(v, needle, (*path, k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _paths_to(v, needle, (*path, i))]
    return []


def _is_marked_secret(inputs: dict, path: tuple) -> bool:
    """Whether a value on ``path`` is wrapped as a Pulumi secret (the wire form the mocks see)."""
    node = inputs
    for part in path:
        if isinstance(node, dict) and node.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return True
        node = node[part]
    return False


CREDENTIALS = ("hfToken", "grafanaAdminPassword")


def used_credentials(stack: str) -> tuple[str, ...]:
    """The credentials the stack reads: the Grafana password only where Grafana is installed
    (an unused credential is a config error)."""
    monitoring = (stack_values(stack)[0].get("addons") or {}).get("monitoring") or {}
    grafana = monitoring.get("mode", "install") == "install" and (monitoring.get("grafana") or {}).get("enabled", True)
    return tuple(k for k in CREDENTIALS if k != "grafanaAdminPassword" or grafana)


def source_overrides(stack: str, source: str) -> dict:
    """The stack with its credentials from Pulumi secrets (the sentinels), or from the
    secret manager (no Pulumi secret at all; cloud existing reads through a named store)."""
    used = used_credentials(stack)
    if source == "pulumi":
        return {"credentials": None, **{k: {"secure": SENTINELS[k]} if k in used else None for k in CREDENTIALS}}
    values, _ = stack_values(stack)
    creds: dict = {k: {"source": "secretManager", "name": f"llm-{k.lower()}"} for k in used}
    if values["cluster"]["cloud"] == "existing":
        creds["clusterSecretStore"] = "vault"
    return {"credentials": creds, **{k: None for k in CREDENTIALS}}


@pytest.mark.parametrize("source", ["pulumi", "secretManager"])
@pytest.mark.parametrize("stack", STACKS)
def test_each_secret_reaches_only_its_kubernetes_secret_and_stays_marked(stack, source, monkeypatch):
    """Not vacuous: the sentinels do reach the program, exactly where they belong, and are
    still marked secret there (so Pulumi encrypts them in state and masks them in output).
    With the secret manager no credential value passes through Pulumi: ESO writes the same
    Kubernetes Secrets, so Pulumi declares ExternalSecrets of those names and no Secret."""
    from llm_infra.components.render import engine

    seen: list[tuple[str, dict]] = []

    class Spy(engine.RenderMocks):
        def new_resource(self, args):
            seen.append((args.typ, args.inputs))
            return super().new_resource(args)

    monkeypatch.setattr(engine, "RenderMocks", Spy)
    overrides = source_overrides(stack, source)
    run_program(PROJECT, stack, secret_values=SENTINELS, config_overrides=overrides)
    configured = {k for k in SENTINELS if f"{PROJECT.name}:{k}" in engine.stack_config(PROJECT, stack)[1]}
    configured = {k for k in configured if overrides.get(k, "") is not None} | {
        k for k, v in overrides.items() if isinstance(v, dict) and "secure" in v
    }
    if source == "pulumi":
        assert set(used_credentials(stack)) <= configured, f"{stack}: the credentials are not Pulumi secrets"
    else:
        assert not configured & set(CREDENTIALS)
        everything = repr(seen)
        for key in CREDENTIALS:
            assert SENTINELS[key] not in everything
        declared = {(typ, (inputs.get("metadata") or {}).get("name"), inputs.get("kind")) for typ, inputs in seen}
        assert ("kubernetes:core/v1:Secret", "hf-token", None) not in declared
        assert ("kubernetes:core/v1:Secret", "grafana-admin", None) not in declared
        assert ("kubernetes:external-secrets.io/v1:ExternalSecret", "hf-token", "ExternalSecret") in declared
    for key in configured:
        holders = set()
        for typ, inputs in seen:
            paths = _paths_to(inputs, SENTINELS[key])
            if not paths:
                continue
            name = (inputs.get("metadata") or {}).get("name") if typ != "pulumi:providers:kubernetes" else None
            holders.add((typ, name))
            for path in paths:
                assert _is_marked_secret(inputs, path), f"{key} reaches {typ} {name} at {path} unmarked"
        expected = EXPECTED_HOLDERS[key]
        if key == "grafanaAdminPassword" and not holders:
            continue  # a stack without Grafana does not use the password
        assert holders and holders <= expected, f"{key} reaches {sorted(holders, key=str)}, expected only {expected}"


@pytest.mark.parametrize("stack", STACKS)
def test_config_errors_never_print_secrets(stack):
    with pytest.raises(RenderError) as err:
        run_program(PROJECT, stack, secret_values=SENTINELS, config_overrides={"namespace": "Not A Namespace!"})
    message = str(err.value)
    assert "namespace" in message and "Traceback" not in message
    assert not any(s in message for s in SENTINELS.values())


def test_renders_in_separate_processes_are_byte_identical(tmp_path):
    """Across processes with different hash seeds too: output maps come back from the engine in
    no stable order, so everything written must be ordered by the writer (summary.md was not)."""
    for seed in ("1", "2"):
        subprocess.run(
            [sys.executable, "-m", "llm_infra", "render", "--stack", "prod", "--quiet", "--out", str(tmp_path / seed)],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
            timeout=300,
        )
    a, b = _files(tmp_path / "1"), _files(tmp_path / "2")
    assert a.keys() == b.keys()
    assert not [name for name in a if a[name] != b[name]]
