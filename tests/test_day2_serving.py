"""Day-2 serving behaviour on every stack: the GPU quota, KEDA's fallback while Prometheus is
unreachable, and the Ray workers' shared model cache.

Expected values are literals with their source (the stack file, a default of the typed
config, an upstream document), never recomputed with the code's own helpers.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import pytest
import yaml
from conftest import PROJECT, objects
from stackfiles import assert_rejected, stack_values
from test_rayservice import ONPREM_RAY, Case, _render
from upstream import UPSTREAM, required

from llm_infra.components.render import run_program
from llm_infra.components.serving import autoscaling
from llm_infra.config import load_stack_config

# ============================================================================ GPU quota
EXPECTED_QUOTAS = {
    # the serving namespace's quotas (llm-infra:namespace of the stack file)
    "dev": ("llm-dev", []),  # Pulumi.dev.yaml sets no security.gpuQuota
    "prod": ("llm-prod", [{"requests.nvidia.com/gpu": "64"}]),  # Pulumi.prod.yaml security.gpuQuota: 64
    "onprem": ("llm-onprem", []),  # Pulumi.onprem.yaml sets no security.gpuQuota
}
NATIVE_RESOURCES = {"cpu", "memory", "storage", "ephemeral-storage", "pods", "services", "persistentvolumeclaims"}


def test_gpu_quota_counts_gpu_requests_only(stack, recording):
    """Kubernetes "Resource Quotas", extended resources: quota items for them may only use the
    ``requests.`` prefix (a GPU's request always equals its limit); ``limits.nvidia.com/gpu``
    is never counted."""
    namespace, expected = EXPECTED_QUOTAS[stack]
    assert [q["spec"]["hard"] for q in objects(recording, "ResourceQuota", namespace)] == expected
    for hard in [q["spec"]["hard"] for q in objects(recording, "ResourceQuota")]:  # every namespace
        for key in hard:
            prefix, _, resource = key.partition(".")
            if "/" in key and resource.split("/")[0] not in NATIVE_RESOURCES:
                assert prefix == "requests", f"{key}: extended resources are only quota'd by requests"


def test_gpu_quota_on_a_stack_that_sets_one():
    values, _ = stack_values("onprem")
    # 12 = qwen25-72b's maxReplicas 3 x 4 GPUs: a smaller quota could never admit the maximum
    # replicas, which the capacity feasibility plan rejects (config/feasibility.py)
    security = {**values.get("security", {}), "gpuQuota": 12}
    rec = run_program(PROJECT, "onprem", config_overrides={"security": security})
    assert [q["spec"]["hard"] for q in objects(rec, "ResourceQuota", "llm-onprem")] == [
        {"requests.nvidia.com/gpu": "12"}
    ]


# ======================================================================= KEDA fallback
DEFAULT_FALLBACK = {"failureThreshold": 3, "behavior": "currentReplicasIfHigher"}
"""config/serving.py AutoscalingFallbackConfig defaults: 3 failed polls, never below the current count."""
EXPECTED_FALLBACK = {
    # replicas: the model's autoscaling.minReplicas in the stack file
    "dev": {"llama3-8b": {**DEFAULT_FALLBACK, "replicas": 1}},
    "prod": {
        "llama31-8b": {**DEFAULT_FALLBACK, "replicas": 2},
        "llama31-70b-awq": {**DEFAULT_FALLBACK, "replicas": 1},
        # multiNodeModels: replicas are LeaderWorkerSet groups
        "llama31-70b-pp": {**DEFAULT_FALLBACK, "replicas": 1},
    },
    "onprem": {},  # plain HPA through prometheus-adapter: without metrics an HPA keeps its replicas
}


@lru_cache(maxsize=1)
def keda_fallback_schema() -> dict[str, Any] | None:
    path = UPSTREAM / "crds" / "keda.sh" / "scaledobjects.yaml"
    if not path.is_file():
        return None
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["fallback"]


def test_every_scaled_object_falls_back_to_holding_its_replicas(stack, recording):
    found = {o["metadata"]["name"]: o["spec"]["fallback"] for o in objects(recording, "ScaledObject")}
    assert found == EXPECTED_FALLBACK[stack]
    if stack == "onprem":
        assert [h["metadata"]["name"] for h in objects(recording, "HorizontalPodAutoscaler")] == ["qwen25-72b"]


def test_fallback_is_valid_for_keda(stack, recording):
    """The KEDA v2.20.2 CRD's fallback schema (read at test time) and its webhook's
    CheckFallbackValid: one trigger that is not cpu/memory; every trigger names its metricType
    (#6696); we keep an AverageValue trigger (queue depth), which KEDA v2.17 required."""
    schema = keda_fallback_schema()
    if schema is None:
        required(f"{UPSTREAM / 'crds' / 'keda.sh' / 'scaledobjects.yaml'} is missing")  # fails on CI
    for obj in objects(recording, "ScaledObject"):
        fallback, triggers = obj["spec"]["fallback"], obj["spec"]["triggers"]
        assert set(schema["required"]) <= set(fallback) <= set(schema["properties"])
        assert fallback["behavior"] in schema["properties"]["behavior"]["enum"]
        assert fallback["failureThreshold"] >= 0 and fallback["replicas"] >= 0
        assert obj["spec"]["minReplicaCount"] <= fallback["replicas"] <= obj["spec"]["maxReplicaCount"]
        assert all(t["metricType"] in {"AverageValue", "Value"} for t in triggers)
        assert any(t["type"] == "prometheus" and t["metricType"] == "AverageValue" for t in triggers)


def test_prod_70b_keeps_its_value_trigger_next_to_an_average_value_one():
    """p95 TTFT is a latency (``Value``); KEDA >= 2.18 falls it back too (replicas / ready pods)."""
    (so,) = [o for o in objects(_prod(), "ScaledObject") if o["metadata"]["name"] == "llama31-70b-awq"]
    assert [(t["name"], t["metricType"]) for t in so["spec"]["triggers"]] == [
        ("queue-depth", "AverageValue"),  # Pulumi.prod.yaml queueDepthTarget: 3
        ("ttft-p95", "Value"),  # Pulumi.prod.yaml ttftP95TargetSeconds: 2
    ]


def _prod():
    from conftest import render

    return render("prod")


def test_fallback_is_configurable():
    values, secrets = stack_values("prod")
    values["models"][0]["autoscaling"]["fallback"] = {"failureThreshold": 5, "behavior": "static", "replicas": 4}
    plan = load_stack_config("prod", values, secrets)
    assert autoscaling.fallback(plan.config.models[0].autoscaling) == {
        "failureThreshold": 5,
        "replicas": 4,
        "behavior": "static",
    }


@pytest.mark.parametrize(
    ("fallback", "path", "words"),
    [
        ({"replicas": 7}, "models[0].autoscaling", "fallback.replicas (7) is outside minReplicas..maxReplicas (2..6)"),
        ({"replicas": 1}, "models[0].autoscaling", "fallback.replicas (1) is outside"),
        ({"behavior": "scalingModifiers"}, "models[0].autoscaling.fallback.behavior", "currentReplicasIfHigher"),
        ({"failureThreshold": 0}, "models[0].autoscaling.fallback.failureThreshold", "greater than or equal to 1"),
        ({"replica": 2}, "models[0].autoscaling.fallback.replica", "unknown field"),
    ],
)
def test_bad_fallback_is_reported_with_its_path(fallback, path, words):
    values, secrets = stack_values("prod")
    values["models"][0]["autoscaling"]["fallback"] = fallback  # llama31-8b: minReplicas 2, maxReplicas 6
    assert_rejected("prod", values, secrets, path, words)


def test_fallback_on_a_stack_without_keda_is_reported():
    values, secrets = stack_values("onprem")  # plain HPA through prometheus-adapter
    values["models"][0]["autoscaling"]["fallback"] = {"behavior": "static"}
    assert_rejected("onprem", values, secrets, "models[0].autoscaling.fallback", "is a KEDA setting")


# ================================================================= Ray shared model cache
EXPECTED_RAY_CACHE = {
    # prod: cluster.eks.efsModelCache: true -> the EFS class (components/cluster/eks.py
    # EFS_STORAGE_CLASS); size: weights of mistral-7b (13.5 GiB) + qwen2.5-7b (14.2 GiB), as
    # summary.md's capacity table shows, x 1.25 + 10 GiB, rounded up
    "prod": {
        "ray-llm": {"storageClassName": "efs-model-cache", "storage": "45Gi"},
        # Qwen2.5-72B-AWQ: 38.6 GiB of weights x 1.25 + 10 GiB
        "ray-llm-72b": {"storageClassName": "efs-model-cache", "storage": "59Gi"},
    },
    "dev": {},  # no rayServices
    "onprem": {},  # no rayServices
}


def ray_cache_claims(rec) -> dict[str, dict[str, str]]:
    out = {}
    for pvc in objects(rec, "PersistentVolumeClaim"):
        if pvc["metadata"]["labels"].get("app.kubernetes.io/name") == "ray-llm":
            assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
            out[pvc["metadata"]["labels"]["app.kubernetes.io/instance"]] = {
                "storageClassName": pvc["spec"].get("storageClassName"),
                "storage": pvc["spec"]["resources"]["requests"]["storage"],
            }
    return out


def test_ray_cache_claims_on_every_stack(stack, recording):
    assert ray_cache_claims(recording) == EXPECTED_RAY_CACHE[stack]


def _groups(rec, name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    (rs,) = [o for o in objects(rec, "RayService") if o["metadata"]["name"] == name]
    cluster = rs["spec"]["rayClusterConfig"]
    (worker,) = cluster["workerGroupSpecs"]
    return rs, cluster["headGroupSpec"]["template"]["spec"], worker["template"]["spec"]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_prod_ray_workers_read_weights_from_the_shared_cache():
    # the shared Hub cache path (prod itself streams from the model store: test_model_store.py)
    from conftest import PROJECT

    from llm_infra.components.render import run_program

    rec = run_program(PROJECT, "prod", config_overrides={"modelStore": {"enabled": False}})
    rs, head, worker = _groups(rec, "ray-llm")
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "ray-llm-model-cache"}} in worker["volumes"]
    (container,) = worker["containers"]
    assert _env(container)["HF_HOME"] == "/model-cache"
    assert {"name": "model-cache", "mountPath": "/model-cache"} in container["volumeMounts"]
    (init,) = worker["initContainers"]
    assert init["name"] == "model-download" and init["image"] == container["image"]
    assert (
        _env(init)["HF_HOME"] == "/model-cache" and _env(init)["HF_TOKEN_PATH"] == "/var/run/secrets/huggingface/token"
    )
    # the Hub cache under HF_HOME, every model of Pulumi.prod.yaml rayServices[0], Meta's
    # reference checkpoints skipped as for the vLLM models
    assert init["command"][3:] == [
        "/model-cache/hub",
        "original/*",
        # pinned revisions of Pulumi.prod.yaml (repo@revision)
        "mistralai/Mistral-7B-Instruct-v0.3@c170c708c41dac9275d15a8fff4eca08d52bab71",
        "Qwen/Qwen2.5-7B-Instruct@a09a35458c702b33eeacc393d103063234e8bc28",
    ]
    assert {"name": "model-cache", "mountPath": "/model-cache"} in init["volumeMounts"]
    # vLLM reads the same Hub layout the init container filled ($HF_HOME/hub)
    serve = yaml.safe_load(rs["spec"]["serveConfigV2"])
    configs = serve["applications"][0]["args"]["llm_configs"]
    assert [c["engine_kwargs"]["download_dir"] for c in configs] == ["/model-cache/hub", "/model-cache/hub"]
    assert [c["model_loading_config"]["model_source"] for c in configs] == [
        m.split("@")[0] for m in init["command"][5:]
    ]
    # the head runs no replica (num-gpus 0) and loads no weights
    assert all(v["name"] != "model-cache" for v in head.get("volumes", []))
    assert "HF_HOME" not in _env(head["containers"][0])
    # the claim exists before the RayService (its pods mount it) and is kept under protect
    claim = next(
        r
        for r in rec.resources
        if r.type == "kubernetes:core/v1:PersistentVolumeClaim"
        and r.inputs["metadata"]["name"] == "ray-llm-model-cache"
    )
    rayservice = next(
        r
        for r in rec.resources
        if r.custom and r.inputs.get("kind") == "RayService" and r.inputs["metadata"]["name"] == "ray-llm"
    )
    assert claim.urn in rayservice.depends_on
    assert claim.retain_on_delete  # Pulumi.prod.yaml cluster.protect: true


def test_ray_without_a_shared_class_downloads_per_worker_and_the_plan_says_so():
    """onprem has only a ReadWriteOnce class (cluster.existing.storageClass: local-path)."""
    r = _render(Case("onprem+ray", "onprem", {"rayServices": ONPREM_RAY}))
    _, _, worker = _groups(r.recording, "ray-a100")
    assert "initContainers" not in worker
    assert all(v["name"] != "model-cache" for v in worker["volumes"])
    assert "HF_HOME" not in _env(worker["containers"][0])
    assert ray_cache_claims(r.recording) == {}
    assert (
        "rayServices/ray-a100: no shared model cache (no ReadWriteMany class, or cache.enabled false): "
        "every Ray worker downloads its models' weights at each start"
    ) in r.recording.outputs["warnings"]


def test_ray_cache_on_an_existing_cluster_rwx_class():
    values, _ = stack_values("onprem")
    cluster = copy.deepcopy(values["cluster"])
    cluster["existing"]["rwxStorageClass"] = "nfs-client"
    rays = copy.deepcopy(ONPREM_RAY)
    rays[0]["cache"] = {"sizeGib": 200}
    rec = run_program(PROJECT, "onprem", config_overrides={"cluster": cluster, "rayServices": rays})
    assert ray_cache_claims(rec) == {"ray-a100": {"storageClassName": "nfs-client", "storage": "200Gi"}}
    assert not any("no shared model cache" in w for w in rec.outputs.get("warnings") or [])


@pytest.mark.parametrize(
    ("cache", "path", "words"),
    [
        ({"enabled": True}, "rayServices[0].cache.enabled", "needs a ReadWriteMany class"),
        # weights of Llama-3.1-8B (~15 GiB) + Qwen2.5-72B-AWQ (~39 GiB)
        ({"sizeGib": 20}, "rayServices[0].cache.sizeGib", "20 GiB cannot hold the"),
    ],
)
def test_bad_ray_cache_is_reported_with_its_path(cache, path, words):
    values, secrets = stack_values("onprem")
    values["rayServices"] = copy.deepcopy(ONPREM_RAY)
    values["rayServices"][0]["cache"] = cache
    assert_rejected("onprem", values, secrets, path, words)
