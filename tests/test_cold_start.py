"""The plan tells the cold start: per model, phase by phase, next to the autoscaling settings.

Expected phase lengths are re-derived here from the documented rates (literals with their
sources, as config/cold_start.py states them) and the model's weights.
"""

from __future__ import annotations

import math

import pytest
from conftest import STACKS, render
from stackfiles import stack_values

from llm_infra.components.render import manifests, summary
from llm_infra.components.render.output import plan as plan_json
from llm_infra.components.reports import plan_warnings
from llm_infra.config import load_stack_config

PHASES = ("nodeProvisioning", "imagePull", "weightLoad", "compile", "cudaGraphs", "readiness")
IMAGE_PULL = math.ceil(10 * 1024 / 85)  # 10 GiB image at 85 MiB/s (seed 004's slow end) = 121 s
KARPENTER, GKE = 90, 360  # seed 003 (60-90 s), seed 002 (about six minutes to a usable L4 node)
STREAM, PVC, HUB = 1.0, 0.25, 0.05  # GiB/s: Run:ai S3 benchmark capped by NICs; seed 000; seed 002
COMPILE_CACHED, COMPILE_COLD, GRAPHS = 15, 60, 30


def _plan(stack: str, mutate=None):
    values, secrets = stack_values(stack)
    if mutate:
        mutate(values)
    return load_stack_config(stack, values, secrets)


@pytest.mark.parametrize("stack", STACKS)
def test_plan_json_carries_the_breakdown_of_every_model(stack):
    rec = render(stack)
    models = plan_json(rec)["outputs"]["models"]
    assert models
    for name, m in models.items():
        c = m["coldStart"]
        assert set(PHASES) <= set(c["phases"]), name
        assert c["totalSeconds"] == sum(p["seconds"] for p in c["phases"].values())
        for p in c["phases"].values():
            assert p["basis"], "every phase says where its figure comes from"
        assert m["autoscaling"]["minReplicas"] == m["minReplicas"]
    text = summary(rec)
    assert "## Models: cold start" in text
    for name, m in models.items():
        row = next(
            line for line in text.splitlines() if line.startswith(f"| {name} | {m['coldStart']['weightsSource']}")
        )
        assert f"| {m['coldStart']['totalSeconds']} |" in row
        assert f"| {m['coldStart']['startupProbeWindowSeconds']} |" in row


def test_prod_8b_streams_and_reuses_the_shared_compile_cache():
    plan = _plan("prod")
    m = plan.models["llama31-8b"]
    est = m.cold_start
    w = m.capacity.weights_gib
    # a10g: desiredNodes 2 hold the 2 minimum replicas (1 GPU each): the 3rd replica needs a node
    expected = {
        "nodeProvisioning": KARPENTER,
        "imagePull": IMAGE_PULL,
        "weightLoad": math.ceil(w / STREAM),
        "compile": COMPILE_CACHED,  # ReadWriteMany cache: replicas share the compile cache
        "cudaGraphs": GRAPHS,
        "readiness": 20,
    }
    assert {p.name: p.seconds for p in est.phases} == expected
    assert est.weights_source == "objectStore" and est.new_node
    # startup probe: weight load + uncached compile + graphs + a period, x2, at least 300 s
    assert est.startup_window_seconds == max(300, math.ceil((math.ceil(w) + COMPILE_COLD + GRAPHS + 10) * 2 / 10) * 10)


def test_dev_8b_on_a_fresh_spot_l4_node():
    plan = _plan("dev")
    est = plan.models["llama3-8b"].cold_start
    w = plan.models["llama3-8b"].capacity.weights_gib
    assert {p.name: p.seconds for p in est.phases} == {
        "nodeProvisioning": GKE,
        "imagePull": IMAGE_PULL,
        "weightLoad": math.ceil(w / STREAM),
        "compile": COMPILE_COLD,  # per-replica ReadWriteOnce cache: a new replica compiles
        "cudaGraphs": GRAPHS,
        "readiness": 20,
    }


def test_without_the_store_the_replica_downloads_then_loads():
    plan = _plan("dev", lambda v: v.pop("modelStore"))
    est = plan.models["llama3-8b"].cold_start
    w = plan.models["llama3-8b"].capacity.weights_gib
    phases = {p.name: p.seconds for p in est.phases}
    assert phases["weightDownload"] == math.ceil(w / HUB)
    assert phases["weightLoad"] == math.ceil(w / PVC)
    # seed 002 measured 6.3 min from pod start to /health on an L4 (download, load, graphs):
    # the in-pod phases of the estimate stay within 1.5x of it (conservative, not wild)
    in_pod = sum(v for k, v in phases.items() if k not in ("nodeProvisioning", "imagePull"))
    assert 0.8 * 378 <= in_pod <= 1.5 * 378


def test_warning_when_the_cold_start_outlasts_the_scale_up_window():
    plan = _plan("prod")
    est = plan.models["llama31-8b"].cold_start
    assert est.scale_up_window_seconds == 120  # alerts.queueDepthFor default 2m
    (warning,) = [w for w in plan_warnings(plan) if w.startswith("models/llama31-8b: an estimated")]
    assert f"{est.total_seconds}s cold start" in warning and "minReplicas 3" in warning
    # a longer tolerated backlog covers it: no warning
    relaxed = _plan("prod", lambda v: v.setdefault("alerts", {}).update(queueDepthFor="10m"))
    assert relaxed.models["llama31-8b"].cold_start.scale_up_window_seconds == 600
    assert not [w for w in plan_warnings(relaxed) if w.startswith("models/llama31-8b: an estimated")]
    # no headroom between the scale-up target and the backlog alert: the window is 0
    tight = _plan("prod", lambda v: v["models"][0]["autoscaling"].update(queueDepthTarget=10))
    assert tight.models["llama31-8b"].cold_start.scale_up_window_seconds == 0


def test_explicit_startup_timeout_overrides_the_estimate():
    from llm_infra.components.serving.vllm import startup_window_seconds

    plan = _plan("prod", lambda v: v["models"][1].update(startupTimeoutSeconds=1800))
    m = plan.config.models[1]
    assert startup_window_seconds(m, plan.models[m.name]) == 1800
    m0 = plan.config.models[0]
    assert startup_window_seconds(m0, plan.models[m0.name]) == plan.models[m0.name].cold_start.startup_window_seconds


@pytest.mark.parametrize("stack", STACKS)
def test_serving_images_are_prepulled_on_every_gpu_pool_in_use(stack):
    plan = _plan(stack)
    objs = manifests(render(stack))
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "image-prepull"]
    spec = ds["spec"]["template"]["spec"]
    assert [c["image"] for c in spec["initContainers"]] == [
        "vllm/vllm-openai:v0.31.0",
        "rayproject/ray-llm:2.58.0-py312-cu130",
    ]
    assert all(c["command"] == ["true"] and c["imagePullPolicy"] == "IfNotPresent" for c in spec["initContainers"])
    used = {m.node_pool for m in plan.config.models} | {r.worker_pool for r in plan.config.ray_services}
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    selectors = [{e["key"]: e["values"][0] for e in t["matchExpressions"]} for t in terms]
    assert sorted(map(sorted, (s.items() for s in selectors))) == sorted(
        map(sorted, (plan.pools[p].selector.items() for p in used))
    )
    for p in used:
        for t in plan.pools[p].tolerations():
            assert t in spec["tolerations"]
    assert ds["metadata"]["namespace"] == plan.config.namespace


def test_without_prepull_the_pull_is_paid_on_every_node():
    plan = _plan("prod", lambda v: v.update(coldStart={"prepullImages": False}))
    for m in plan.models.values():
        assert next(p.seconds for p in m.cold_start.phases if p.name == "imagePull") == IMAGE_PULL
