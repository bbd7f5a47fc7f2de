"""Bad configuration: every mistake is reported, each as one line naming its config path,
before any resource is declared, without a traceback, with a non-zero exit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from stackfiles import ROOT, assert_rejected, stack_values

from llm_infra.config import ConfigError, load_stack_config

Mutation = Callable[[dict[str, Any], dict[str, bool]], object]  # (a lambda may return what it called)


def _pool(v, i=0):
    return v["cluster"]["nodePools"][i]


# (id, stack, mutation, expected path, expected words in the message)
CASES: list[tuple[str, str, Mutation, str, str]] = [
    ("unknown-top-level-key", "dev", lambda v, s: v.update(modles=[]), "modles", "unknown field"),
    (
        "unknown-nested-key",
        "dev",
        lambda v, s: v["models"][0].update(gpuMemUtil=0.8),
        "models[0].gpuMemUtil",
        "unknown field",
    ),
    ("bad-cloud", "dev", lambda v, s: v["cluster"].update(cloud="aks"), "cluster.cloud", "'eks', 'gke' or 'existing'"),
    (
        "pool-min-gt-max",
        "prod",
        lambda v, s: _pool(v).update(minNodes=5, maxNodes=2),
        "cluster.nodePools[0].maxNodes",
        "greater than maxNodes",
    ),
    (
        "instance-not-in-catalog",
        "prod",
        lambda v, s: _pool(v).update(instanceType="m5.large"),
        "cluster.nodePools[0].instanceType",
        "not an EKS GPU instance type",
    ),
    (
        "a100-on-g2",
        "dev",
        lambda v, s: _pool(v).update(accelerator="nvidia-tesla-a100"),
        "cluster.nodePools[0].accelerator",
        "carries nvidia-l4",
    ),
    (
        "small-disk",
        "prod",
        lambda v, s: _pool(v).update(diskSizeGib=50),
        "cluster.nodePools[0].diskSizeGib",
        "greater than or equal to 200",
    ),
    (
        "missing-pool",
        "dev",
        lambda v, s: v["models"][0].update(nodePool="h100"),
        "models[0].nodePool",
        "no node pool 'h100'",
    ),
    (
        "tp-over-node",
        "prod",
        lambda v, s: v["models"][0].update(tensorParallelSize=2),
        "models[0].tensorParallelSize",
        "exceeds the 1 GPUs",
    ),
    (
        "tp-not-divisor",
        "prod",
        lambda v, s: v["models"][1].update(tensorParallelSize=3),
        "models[1].tensorParallelSize",
        "must divide the 4 GPUs",
    ),
    (
        "70b-fp16-on-a10g",
        "prod",
        lambda v, s: v["models"][1].update(model="meta-llama/Llama-3.1-70B-Instruct", quantization=None),
        "models[1].tensorParallelSize",
        "cannot hold one 8192-token sequence",
    ),
    (
        "context-over-model",
        "dev",
        lambda v, s: v["models"][0].update(maxModelLen=65536),
        "models[0].maxModelLen",
        "exceeds the model's context of 8192",
    ),
    (
        "unknown-architecture",
        "dev",
        lambda v, s: v["models"][0].update(model="acme/secret-model-13b"),
        "models[0].architecture",
        "unknown model",
    ),
    (
        "gpu-util-too-high",
        "dev",
        lambda v, s: v["models"][0].update(gpuMemoryUtilization=0.99),
        "models[0].gpuMemoryUtilization",
        "less than or equal to 0.95",
    ),
    (
        "min-gt-max-replicas",
        "dev",
        lambda v, s: v["models"][0]["autoscaling"].update(minReplicas=3, maxReplicas=2),
        "models[0].autoscaling",
        "greater than maxReplicas",
    ),
    (
        "zero-without-opt-in",
        "dev",
        lambda v, s: v["models"][0]["autoscaling"].update(minReplicas=0),
        "models[0].autoscaling",
        "needs scaleToZero",
    ),
    (
        "grace-too-short",
        "dev",
        lambda v, s: v["models"][0].update(terminationGracePeriodSeconds=30),
        "models[0].terminationGracePeriodSeconds",
        "greater than or equal to 120",
    ),
    (
        "startup-too-short",
        "dev",
        lambda v, s: v["models"][0].update(startupTimeoutSeconds=120),
        "models[0].startupTimeoutSeconds",
        "greater than or equal to 300",
    ),
    (
        "managed-flag-in-extra-args",
        "dev",
        lambda v, s: v["models"][0].update(extraArgs=["--max-model-len=4096"]),
        "models[0].extraArgs",
        "set from a typed field",
    ),
    (
        "gated-model-without-token",
        "prod",
        lambda v, s: v["credentials"].pop("hfToken"),
        "models[0].requiresHfToken",
        "hfToken",
    ),
    ("plain-text-secret", "dev", lambda v, s: s.update(hfToken=False), "hfToken", "pulumi config set --secret"),
    (
        "grafana-without-password",
        "dev",
        lambda v, s: v["credentials"].pop("grafanaAdminPassword"),
        "grafanaAdminPassword",
        "admin password",
    ),
    (
        "duplicate-model-name",
        "prod",
        lambda v, s: v["models"][1].update(name=v["models"][0]["name"]),
        "models[1].name",
        "duplicate serving name",
    ),
    (
        "rwx-without-shared-fs",
        "dev",
        lambda v, s: v["models"][0].update(cache={"accessMode": "ReadWriteMany"}),
        "models[0].cache.accessMode",
        "ReadWriteMany needs a shared file system",
    ),
    (
        "eks-section-on-gke",
        "dev",
        lambda v, s: v["cluster"].update(eks={}),
        "cluster.eks",
        "only valid with cloud 'eks'",
    ),
    (
        "gke-without-region",
        "dev",
        lambda v, s: v["cluster"].pop("region"),
        "cluster.region",
        "required for cloud 'gke'",
    ),
    (
        "existing-without-facts",
        "onprem",
        lambda v, s: _pool(v).pop("gpu"),
        "cluster.nodePools[0].gpu",
        "required on an existing cluster",
    ),
    (
        "existing-without-kubeconfig",
        "onprem",
        lambda v, s: s.pop("kubeconfig"),
        "cluster.existing.kubeconfigPath",
        "kubeconfig",
    ),
    (
        "autoscaling-without-keda-or-adapter",
        "onprem",
        lambda v, s: v["addons"].update(prometheusAdapter={"enabled": False}),
        "models[0].autoscaling",
        "needs KEDA",
    ),
    (
        "scale-to-zero-without-keda",
        "onprem",
        lambda v, s: v["models"][0]["autoscaling"].update(minReplicas=0, scaleToZero=True),
        "models[0].autoscaling.scaleToZero",
        "needs KEDA",
    ),
    (
        "existing-prometheus-without-url",
        "onprem",
        lambda v, s: v["addons"]["monitoring"].pop("prometheusUrl"),
        "addons.monitoring",
        "needs prometheusUrl",
    ),
    (
        "pool-too-small-for-min-replicas",
        "prod",
        lambda v, s: (
            v["models"][0]["autoscaling"].update(minReplicas=6, maxReplicas=6)
            or _pool(v).update(maxNodes=4, desiredNodes=None)
        ),
        "cluster.nodePools[0].maxNodes",
        "minimum replicas",
    ),
    (
        "gpu-quota-too-small",
        "prod",
        lambda v, s: v["security"].update(gpuQuota=2),
        "security.gpuQuota",
        "less than the",
    ),
    (
        "spot-types-with-other-gpus",
        "prod",
        lambda v, s: _pool(v, 2).update(spotInstanceTypes=["g5.2xlarge"]),
        "cluster.nodePools[2].spotInstanceTypes[0]",
        "would not fit",
    ),
    (
        "mig-without-mig-gpus",
        "dev",
        lambda v, s: v.setdefault("addons", {}).update(gpuOperator={"migStrategy": "single"}),
        "addons.gpuOperator.migStrategy",
        "MIG-capable",
    ),
    (
        "bad-model-name",
        "dev",
        lambda v, s: v["models"][0].update(name="Llama_3"),
        "models[0].name",
        "not a lowercase DNS label",
    ),
]


@pytest.mark.parametrize("case_id,stack,mutate,path,words", CASES, ids=[c[0] for c in CASES])
def test_mistake_is_reported_with_its_path(case_id, stack, mutate, path, words):
    values, secrets = stack_values(stack)
    mutate(values, secrets)
    assert_rejected(stack, values, secrets, path, words)


def test_there_are_at_least_twenty_distinct_mistakes():
    assert len({c[3] + c[4] for c in CASES}) >= 20


def test_all_problems_are_reported_at_once():
    values, secrets = stack_values("prod")
    values["models"][0]["tensorParallelSize"] = 2  # cross-field
    values["models"][1]["nodePool"] = "nope"  # cross-field
    values["credentials"].pop("grafanaAdminPassword")  # credential
    with pytest.raises(ConfigError) as info:
        load_stack_config("prod", values, secrets)
    paths = {line.split(": ")[1] for line in info.value.lines()}
    assert {"models[0].tensorParallelSize", "models[1].nodePool", "grafanaAdminPassword"} <= paths

    values, secrets = stack_values("dev")
    values["models"][0]["gpuMemoryUtilization"] = 2  # field errors are collected too
    values["cluster"]["nodePools"][0]["minNodes"] = -1
    with pytest.raises(ConfigError) as info:
        load_stack_config("dev", values, secrets)
    paths = {line.split(": ")[1] for line in info.value.lines()}
    assert {"models[0].gpuMemoryUtilization", "cluster.nodePools[0].minNodes"} <= paths


def test_every_stack_in_the_repo_is_valid():
    for stack_file in sorted(ROOT.glob("Pulumi.*.yaml")):
        stack = stack_file.name.split(".")[1]
        values, secrets = stack_values(stack)
        plan = load_stack_config(stack, values, secrets)
        assert plan.config.cluster.node_pools


@pytest.fixture
def bad_project(tmp_path):
    """A copy of the project whose dev stack has two mistakes."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    text = text.replace("instanceType: g2-standard-8", "instanceType: g2-standard-7")
    text = text.replace("      name: llm-dev-grafana-admin-password\n", "")  # the Grafana password has no source
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    return tmp_path


def test_offline_render_reports_bad_config_without_traceback(bad_project, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_infra",
            "render",
            "--stack",
            "dev",
            "--out",
            str(tmp_path / "out"),
            "--project-dir",
            str(bad_project),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert "2 configuration errors in stack 'dev':" in lines[0]
    assert (
        "dev: cluster.nodePools[0].instanceType: 'g2-standard-7' is not a GKE GPU machine type in the catalog (did you mean 'g2-standard-8'?) (families: a2, a3, g2)"
        in lines
    )
    assert any(line.startswith("dev: credentials.grafanaAdminPassword.name: ") for line in lines)
    assert not (tmp_path / "out").exists(), "nothing is written for a stack with bad config"


def test_a_broken_model_does_not_hide_cross_field_errors_of_the_others():
    values, secrets = stack_values("prod")
    values["models"][0]["gpuMemoryUtilization"] = "high"  # field error in models[0]
    values["models"][1]["tensorParallelSize"] = 3  # cross-field error in models[1]
    values["rayServices"][0]["models"][0]["tensorParallelSize"] = 2  # cross-field error, other list
    with pytest.raises(ConfigError) as info:
        load_stack_config("prod", values, secrets)
    paths = [line.split(": ")[1] for line in info.value.lines()]
    assert "models[0].gpuMemoryUtilization" in paths
    assert "models[1].tensorParallelSize" in paths  # original index kept
    assert "rayServices[0].models[0].tensorParallelSize" in paths
    # no spurious errors about the model that was left out
    assert not [p for p in paths if p.startswith("models[0].") and p != "models[0].gpuMemoryUtilization"]


# -- the first hour: one clean line per mistake -------------------------------------------------
def cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llm_infra", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_yaml_syntax_error_is_file_line_column(tmp_path):
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace("    name: llm-dev\n", "   name: llm-dev\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    line = 1 + text.splitlines().index("   name: llm-dev")
    error = one_line_error(
        cli("render", "--stack", "dev", "--project-dir", str(tmp_path), "--out", str(tmp_path / "out"))
    )
    assert (
        error
        == f"Pulumi.dev.yaml:{line}:4: expected <block end>, but found '<block mapping start>' (while parsing a block mapping)"
    )


def test_a_typo_in_one_pool_reports_that_pool_only():
    values, secrets = stack_values("prod")
    values["cluster"]["nodePools"][2]["instanceType"] = "g6e.2xlrage"  # the pool rayServices[0] runs on
    with pytest.raises(ConfigError) as info:
        load_stack_config("prod", values, secrets)
    assert info.value.lines() == [
        "prod: cluster.nodePools[2].instanceType: 'g6e.2xlrage' is not an EKS GPU instance type in the catalog "
        "(did you mean 'g6e.2xlarge'?) (families: g5, g6, g6e, p4d, p5)"
    ]


@pytest.mark.parametrize(
    "section,key,expected",
    [
        (("models", 0), "maxNumSeq", "maxNumSeqs"),
        (("models", 0, "autoscaling"), "maxReplica", "maxReplicas"),
        (("cluster", "nodePools", 0), "minNodez", "minNodes"),
        (("cluster", "eks"), "karpentr", "karpenter"),
        ((), "securty", "security"),
    ],
)
def test_unknown_keys_get_a_suggestion(section, key, expected):
    values, secrets = stack_values("prod")
    target = values
    for part in section:
        target = target[part]
    target[key] = {} if isinstance(target.get(expected), dict) else 1
    with pytest.raises(ConfigError) as info:
        load_stack_config("prod", values, secrets)
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in (*section, key)).lstrip(".")
    assert info.value.lines() == [
        f"prod: {path}: unknown field (not part of the stack schema) (did you mean '{expected}'?)"
    ]


def test_unknown_pool_name_gets_a_suggestion():
    values, secrets = stack_values("prod")
    values["models"][0]["nodePool"] = "a10"
    with pytest.raises(ConfigError) as info:
        load_stack_config("prod", values, secrets)
    assert info.value.lines() == [
        "prod: models[0].nodePool: no node pool 'a10' (did you mean 'a10g'?) (pools: a10g, a10g-x4, a10g-x4-pp, l40s, l40s-pp)"
    ]


def test_secret_values_with_a_misspelled_key_are_rejected(tmp_path):
    (tmp_path / "secrets.yaml").write_text("kubeconfg: apiVersion\n")
    error = one_line_error(
        cli(
            "render",
            "--stack",
            "onprem",
            "--secret-values",
            str(tmp_path / "secrets.yaml"),
            "--out",
            str(tmp_path / "out"),
        )
    )
    assert error == (
        f"--secret-values {tmp_path / 'secrets.yaml'}: 'kubeconfg' is not a secret of stack 'onprem' "
        "(did you mean 'kubeconfig'?) (its secrets: apiKeys, kubeconfig)"
    )
    assert not (tmp_path / "out").exists()


def test_out_defaults_to_build_render_stack(tmp_path):
    result = cli("render", "--stack", "onprem", "--quiet", "--project-dir", str(ROOT), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "build" / "render" / "onprem" / "plan.json").is_file()


def test_unknown_model_id_gets_a_suggestion():
    values, secrets = stack_values("dev")
    values["models"][0]["model"] = "NousResearch/Meta-Llama-3-8B-Instruc"
    with pytest.raises(ConfigError) as info:
        load_stack_config("dev", values, secrets)
    (line,) = info.value.lines()
    assert line.startswith(
        "dev: models[0].architecture: unknown model 'NousResearch/Meta-Llama-3-8B-Instruc' "
        "(did you mean 'nousresearch/meta-llama-3-8b-instruct'?): not in the model catalog"
    )


@pytest.mark.parametrize(
    "args,expected",
    [
        (["render", "--stack", "nope"], "no stack file Pulumi.nope.yaml in {root} (stacks: dev, onprem, prod)"),
        (["render", "--stack", "dev", "--project-dir", "/nonexistent"], "error: no Pulumi.yaml in /nonexistent"),
        (
            ["render", "--stack", "dev", "--secret-values", "/nonexistent.yaml"],
            "error: --secret-values: cannot read /nonexistent.yaml: No such file or directory",
        ),
    ],
)
def test_cli_mistakes_are_one_line(args, expected):
    assert one_line_error(cli(*args)) == expected.format(root=ROOT)


def test_an_unused_grafana_password_is_not_silently_ignored():
    values, secrets = stack_values("onprem")  # existing Prometheus: no Grafana installed
    assert_rejected(
        "onprem",
        values,
        {**secrets, "grafanaAdminPassword": True},
        "grafanaAdminPassword",
        "not used: no Grafana is installed (addons.monitoring.mode 'existing'); remove it with pulumi config rm grafanaAdminPassword",
    )
