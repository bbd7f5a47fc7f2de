"""The offline render: the real program under mocks, written one object per file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import yaml
from conftest import PROJECT, ROOT, STACKS, render

from llm_infra.components.render import helm_releases, manifests, run_program, write


def test_every_stack_file_renders():
    assert {"dev", "prod", "onprem"} <= set(STACKS)
    for stack in STACKS:
        rec = render(stack)
        assert rec.resources, stack
        assert any(r.type == "llm-infra:index:LlmPlatform" for r in rec.resources)


def test_render_writes_one_file_per_object_and_per_release(tmp_path, recording):
    out = tmp_path / recording.stack
    write(recording, out)
    objs = manifests(recording)
    files = sorted(out.glob("manifests/*/*.yaml"))
    assert len(files) == len(objs)
    for path in files:
        obj = yaml.safe_load(path.read_text())
        ns_dir = path.parent.name
        assert ns_dir == (obj["metadata"].get("namespace") or "_cluster")
        assert path.name == f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        assert "apiVersion" in obj and "kind" in obj
    for release in helm_releases(recording):
        data = yaml.safe_load((out / "helm" / f"{release['name']}.yaml").read_text())
        assert {"chart", "version", "repository", "namespace", "values"} <= set(data)
    plan = json.loads((out / "plan.json").read_text())
    assert plan["resourceCount"] == len(recording.resources)
    assert sum(plan["counts"].values()) == len(recording.resources)
    for res in plan["resources"]:
        assert {"type", "name", "parent", "inputs"} <= set(res)
    assert (out / "summary.md").read_text().startswith(f"# Plan for stack `{recording.stack}`")


def test_plan_reports_capacity_and_cost_for_every_model(recording):
    from stackfiles import stack_values

    values, _ = stack_values(recording.stack)
    expected = {m["name"] for m in values.get("models", [])}
    expected |= {f"{m['name']}-canary" for m in values.get("models", []) if "canary" in m}
    expected |= {f"{s['name']}/{m['modelId']}" for s in values.get("rayServices", []) for m in s["models"]}
    expected |= {m["name"] for m in values.get("multiNodeModels", [])}
    models = recording.outputs["models"]
    assert set(models) == expected
    for m in models.values():
        assert m["kvCacheTokens"] >= m["maxModelLen"]
        assert m["weightsGib"] > 0


def test_secrets_are_masked_in_outputs(recording):
    assert recording.outputs["kubeconfig"] == "[secret]"


def test_cli_renders_dev_and_prints_the_plan(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "llm_infra", "render", "--stack", "dev", "--out", str(tmp_path / "dev")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "# Plan for stack `dev`" in result.stdout
    assert "## Models: capacity and cost" in result.stdout
    assert (tmp_path / "dev" / "plan.json").is_file()


def test_cli_all_renders_every_stack(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "llm_infra", "render", "--all", "--quiet", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(STACKS)


def test_unknown_stack_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "llm_infra", "render", "--stack", "nope", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "no stack file Pulumi.nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_prod_renders_in_a_few_seconds():
    started = time.perf_counter()
    run_program(PROJECT, "prod")
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"prod took {elapsed:.1f}s"


def test_summary_is_actionable(recording):
    """summary.md names the system pool, every endpoint with its hosts, whole sequences with their
    explanation, and a cost or why there is none."""
    from stackfiles import stack_values

    from llm_infra.components.render import summary
    from llm_infra.config import load_stack_config

    text = summary(recording)
    plan = load_stack_config(recording.stack, *stack_values(recording.stack))
    cluster = plan.config.cluster
    if cluster.cloud == "existing":
        assert "System pool: none created (existing cluster)" in text
    else:
        pool = cluster.system_pool
        assert (
            f"System pool (operators, monitoring; CPU only): {pool.machine_type(cluster.cloud)}, {pool.min_nodes}..{pool.max_nodes} nodes."
            in text
        )
    for name in [m.name for m in plan.config.models] + [s.name for s in plan.config.ray_services]:
        assert f"| {name} | {recording.outputs['endpoints'][name]} |" in text
    for m in plan.config.models:
        hosts = ([m.ingress.host] if m.ingress else []) + (list(m.http_route.hostnames) if m.http_route else [])
        if hosts:
            assert ", ".join(hosts) in text
    assert "n/a" not in text
    assert not re.search(r"\| \d+\.\d+ × ", text), "concurrency is counted in whole sequences"
    assert "_¹ Whole sequences of maxModelLen tokens" in text
    priced = all(p.hourly_usd for p in plan.pools.values())
    assert ("unknown²" in text) is not priced
