"""The documented defaults, pinned: a minimal stack renders exactly these values.

Every other test reads its expectation back from the config models, so a changed default
(queue-depth target 5 -> 50, scale-down stabilization 300 s -> 30 s) would pass them all.
This table is the one place that says what a user gets when they set nothing, each value a
literal with the source it comes from. Changing a default means changing this table on
purpose, in the same commit, with its source.

The minimal stack is an existing cluster with one 1x L4 pool and one 4x L4 pool, one vLLM
model and one RayService, each given only the fields that have no default.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from conftest import PROJECT

from llm_infra.components.render import Recording, helm_releases, manifests, run_program

NAMESPACE = "llm"
MODEL = "m"
RAY = "r"
MINIMAL_STACK: dict[str, Any] = {
    "cluster": {
        "cloud": "existing",
        "name": "minimal",
        "existing": {"kubeconfigPath": "/nonexistent/kubeconfig"},
        "nodePools": [
            # maxNodes 2: the default maxReplicas (2) of a 1-GPU model needs two 1-GPU nodes; the
            # default maxNodes (1) is rejected by the capacity feasibility plan (config/feasibility.py)
            {
                "name": "l4",
                "gpu": {"model": "NVIDIA L4", "count": 1, "memoryGib": 24, "productLabel": "NVIDIA-L4"},
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
                "maxNodes": 2,
            },
            {
                "name": "l4x4",
                "gpu": {"model": "NVIDIA L4", "count": 4, "memoryGib": 24, "productLabel": "NVIDIA-L4"},
                "nodeSelector": {"example.com/pool": "l4x4"},
                "maxNodes": 2,
            },
        ],
    },
    "namespace": NAMESPACE,
    "edge": None,  # dev's public Gateway (GKE) is not part of the minimal stack
    "apiKeys": None,
    "models": [{"name": MODEL, "model": "Qwen/Qwen2.5-7B-Instruct", "nodePool": "l4"}],
    # workerCpu/workerMemoryGib have no default on an existing cluster (node size unknown)
    "rayServices": [
        {
            "name": RAY,
            "workerPool": "l4x4",
            "workerCpu": 16,
            "workerMemoryGib": 64,
            "models": [{"modelId": "q", "model": "Qwen/Qwen2.5-7B-Instruct"}],
        }
    ],
    # everything else from the defaults (None drops the base stack's key)
    "addons": None,
    "alerts": None,
    "security": None,
    "credentials": None,
    "modelStore": None,
    # credentials as Pulumi secrets (the default source); the base stack takes them from Secret Manager
    "grafanaAdminPassword": {"secure": "minimal-grafana-password"},
}


class Minimal:
    """Accessors over the minimal stack's render."""

    def __init__(self, rec: Recording):
        self.objects = manifests(rec)
        self.helm = {r["name"]: r for r in helm_releases(rec)}

    def obj(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        return found

    def vllm(self) -> dict[str, Any]:
        (c,) = [
            c for c in self.obj("StatefulSet", MODEL)["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm"
        ]
        return c

    def flag(self, name: str) -> str | bool | None:
        """Value of a vLLM flag (True for a bare switch, None when absent)."""
        args = [str(a) for a in self.vllm()["args"]]
        if name not in args:
            return None
        i = args.index(name)
        return True if i + 1 == len(args) or args[i + 1].startswith("--") else args[i + 1]

    def alert(self, name: str) -> dict[str, Any]:
        rules = [
            r for g in self.obj("PrometheusRule", MODEL)["spec"]["groups"] for r in g["rules"] if r.get("alert") == name
        ]
        (rule,) = rules
        return rule

    def scaled_object(self) -> dict[str, Any]:
        return self.obj("ScaledObject", MODEL)["spec"]

    def serve(self) -> dict[str, Any]:
        (llm,) = yaml.safe_load(self.obj("RayService", RAY)["spec"]["serveConfigV2"])["applications"][0]["args"][
            "llm_configs"
        ]
        return llm

    def kps(self) -> dict[str, Any]:
        return self.helm["kube-prometheus-stack"]["values"]


@dataclass(frozen=True)
class Default:
    what: str
    get: Callable[[Minimal], Any]
    expected: Any
    source: str


def threshold_of(expr: str) -> str:
    """The constant an alert expression compares with (``... > 0.9`` -> ``0.9``)."""
    return expr.replace("\n", " ").rsplit(" ", 1)[-1]


DEFAULTS = [
    # ---- vLLM engine
    Default(
        "vLLM --gpu-memory-utilization",
        lambda m: m.flag("--gpu-memory-utilization"),
        "0.9",
        "vLLM CacheConfig.gpu_memory_utilization default 0.9; seeds 001-003: 0.85-0.90 leaves burst headroom",
    ),
    Default(
        "vLLM --max-model-len",
        lambda m: m.flag("--max-model-len"),
        "8192",
        "seed 004: cap the context at 8192 (Qwen2.5-7B's own context is 32768)",
    ),
    Default(
        "vLLM --tensor-parallel-size",
        lambda m: m.flag("--tensor-parallel-size"),
        "1",
        "fewest GPUs that hold the model: 7.6 B x 2 bytes = 14.2 GiB fits one 24 GiB L4",
    ),
    Default("vLLM prefix caching", lambda m: m.flag("--enable-prefix-caching"), True, "vLLM V1 default on; seed 004"),
    Default("vLLM chunked prefill", lambda m: m.flag("--enable-chunked-prefill"), True, "vLLM V1 default on"),
    Default("vLLM max-num-seqs unset (vLLM decides)", lambda m: m.flag("--max-num-seqs"), None, "vLLM's own default"),
    Default("vLLM image", lambda m: m.vllm()["image"], "vllm/vllm-openai:v0.31.0", "PULUMI-NOTES: v0.31.0 pinned"),
    # ---- pod lifecycle
    Default(
        "terminationGracePeriodSeconds",
        lambda m: m.obj("StatefulSet", MODEL)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        120,
        "seed 001: 120 s lets in-flight generations finish (Kubernetes' 30 s default cuts them)",
    ),
    Default(
        "preStop sleep",
        lambda m: m.vllm()["lifecycle"]["preStop"]["exec"]["command"],
        ["sleep", "15"],
        "seed 000: preStop so endpoints drain before SIGTERM",
    ),
    Default(
        "startup probe window",
        lambda m: {k: m.vllm()["startupProbe"][k] for k in ("periodSeconds", "failureThreshold")},
        {"periodSeconds": 10, "failureThreshold": 32},
        "derived from the cold-start estimate (config/cold_start.py): engine start = weight load from the "
        "replica's cache 14.19 GiB / 0.25 GiB/s (seed 000) = 57 s + uncached torch.compile 60 s (vLLM logs) + "
        "CUDA graphs 30 s (seed 004) + one 10 s probe period = 157 s; x startupMargin 2 = 314 s -> 320 s = 32 x 10 s",
    ),
    Default(
        "startup probe path",
        lambda m: m.vllm()["startupProbe"]["httpGet"],
        {"path": "/health", "port": "http"},
        "vLLM serves GET /health",
    ),
    Default(
        "readiness probe",
        lambda m: {k: m.vllm()["readinessProbe"][k] for k in ("periodSeconds", "failureThreshold", "timeoutSeconds")},
        {"periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 5},
        "Kubernetes default threshold 3; 5 s under load",
    ),
    Default(
        "liveness probe",
        lambda m: {k: m.vllm()["livenessProbe"][k] for k in ("periodSeconds", "failureThreshold", "timeoutSeconds")},
        {"periodSeconds": 15, "failureThreshold": 4, "timeoutSeconds": 10},
        "one minute of failed /health before a restart: a busy engine answers slowly",
    ),
    # ---- sizing (arithmetic: Qwen2.5-7B 7.62e9 params x 2 bytes = 14.19 GiB of weights)
    Default(
        "vLLM memory request",
        lambda m: m.vllm()["resources"]["requests"]["memory"],
        "28Gi",
        "weights x 1.1 + 4 GiB x (1 GPU + 1) processes + 4 GiB = 15.61 + 8 + 4 = 27.6 -> 28 GiB",
    ),
    Default(
        "model cache size",
        lambda m: m.obj("StatefulSet", MODEL)["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"][
            "storage"
        ],
        "28Gi",
        "weights x 1.25 + 10 GiB = 17.74 + 10 = 27.7 -> 28 GiB",
    ),
    Default(
        "model cache access mode",
        lambda m: m.obj("StatefulSet", MODEL)["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"],
        ["ReadWriteOnce"],
        "no RWX class on the cluster: a volume per replica",
    ),
    # ---- autoscaling (KEDA)
    Default(
        "KEDA queue-depth trigger",
        lambda m: (
            m.scaled_object()["triggers"][0]["metadata"] | {"type": m.scaled_object()["triggers"][0]["metricType"]}
        ),
        {
            "serverAddress": "http://kube-prometheus-stack-prometheus.monitoring.svc:9090",
            "query": 'sum(vllm:num_requests_waiting{namespace="llm", model_name="m"})',
            "threshold": "5",
            "type": "AverageValue",
        },
        "seed 000: queue depth (vllm:num_requests_waiting) target 3-5 waiting requests per replica",
    ),
    Default(
        "KEDA only the queue trigger by default",
        lambda m: [t["name"] for t in m.scaled_object()["triggers"]],
        ["queue-depth"],
        "KV-cache and TTFT triggers are opt-in",
    ),
    Default(
        "KEDA replicas",
        lambda m: (m.scaled_object()["minReplicaCount"], m.scaled_object()["maxReplicaCount"]),
        (1, 2),
        "seed 002: minReplicaCount stays 1 (cold starts take minutes)",
    ),
    Default("KEDA pollingInterval", lambda m: m.scaled_object()["pollingInterval"], 15, "seed 000: 15 s"),
    Default(
        "KEDA cooldownPeriod",
        lambda m: m.scaled_object()["cooldownPeriod"],
        300,
        "seeds 002/003: cooldownPeriod 300, GPU pods are costly to churn",
    ),
    Default(
        "HPA scale-up behavior",
        lambda m: m.scaled_object()["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"],
        {
            "selectPolicy": "Max",
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}],
        },
        "seed 000 (GKE best practice): scale-up stabilization 0 s",
    ),
    Default(
        "HPA scale-down behavior",
        lambda m: m.scaled_object()["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"],
        {
            "selectPolicy": "Min",
            "stabilizationWindowSeconds": 300,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        },
        "seed 000 (GKE best practice): scale-down stabilization 300 s, one pod at a time",
    ),
    # ---- availability
    Default(
        "PDB",
        lambda m: {k: v for k, v in m.obj("PodDisruptionBudget", MODEL)["spec"].items() if k != "selector"},
        {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
        "Kubernetes docs (PDB unhealthyPodEvictionPolicy): AlwaysAllow lets a drain evict a replica that never "
        "became ready, instead of blocking node upgrades",
    ),
    # ---- alerts
    Default(
        "alert KV cache",
        lambda m: (threshold_of(m.alert("VllmKvCacheNearlyFull")["expr"]), m.alert("VllmKvCacheNearlyFull")["for"]),
        ("0.9", "5m"),
        "seed 000: KV cache above 90 %",
    ),
    Default(
        "alert queue",
        lambda m: (threshold_of(m.alert("VllmRequestQueueBacklog")["expr"]), m.alert("VllmRequestQueueBacklog")["for"]),
        ("10", "2m"),
        "seed 000: queue depth above 10",
    ),
    Default(
        "alert TTFT",
        lambda m: (
            threshold_of(m.alert("VllmTimeToFirstTokenHigh")["expr"]),
            m.alert("VllmTimeToFirstTokenHigh")["for"],
        ),
        ("5", "5m"),
        "seed 000: TTFT p99 above 5 s",
    ),
    Default(
        "alert TTFT quantile",
        lambda m: m.alert("VllmTimeToFirstTokenHigh")["expr"].startswith("histogram_quantile(0.99,"),
        True,
        "seed 000: p99",
    ),
    Default(
        "alert GPU temperature",
        lambda m: (threshold_of(m.alert("VllmGpuTemperatureHigh")["expr"]), m.alert("VllmGpuTemperatureHigh")["for"]),
        ("85", "5m"),
        "seed guides: 85 C",
    ),
    Default(
        "alert error ratio",
        lambda m: (threshold_of(m.alert("VllmHighErrorRate")["expr"]), m.alert("VllmHighErrorRate")["for"]),
        ("0.05", "5m"),
        "5 % of requests answered 5xx",
    ),
    Default(
        "alert at max replicas",
        lambda m: m.alert("VllmReplicasAtMaximum")["for"],
        "15m",
        "capacity ceiling held 15 min",
    ),
    # ---- Ray Serve LLM
    Default(
        "Ray engine kwargs",
        lambda m: m.serve()["engine_kwargs"],
        {
            "tensor_parallel_size": 1,
            "max_model_len": 8192,
            "gpu_memory_utilization": 0.9,
            "dtype": "auto",
            "kv_cache_dtype": "auto",
            "enable_prefix_caching": True,
        },
        "same engine defaults as vLLM above",
    ),
    Default(
        "Ray Serve autoscaling",
        lambda m: m.serve()["deployment_config"],
        {
            "autoscaling_config": {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 32},
            "max_ongoing_requests": 64,
            "graceful_shutdown_timeout_s": 120,
        },
        "Ray Serve LLM docs: target_ongoing_requests below max_ongoing_requests; 120 s drain like vLLM",
    ),
    Default(
        "Ray head size",
        lambda m: m.obj("RayService", RAY)["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"][
            "containers"
        ][0]["resources"]["requests"],
        {"cpu": "2", "memory": "8Gi"},
        "KubeRay Serve LLM sample: head with 2 CPUs; 8 GiB for GCS + Serve controller",
    ),
    Default(
        "Ray autoscaler",
        lambda m: {
            k: m.obj("RayService", RAY)["spec"]["rayClusterConfig"]["autoscalerOptions"][k]
            for k in ("idleTimeoutSeconds", "upscalingMode")
        },
        {"idleTimeoutSeconds": 300, "upscalingMode": "Default"},
        "GPU nodes take minutes to come back: 5 min idle",
    ),
    Default(
        "Ray upgrade strategy",
        lambda m: m.obj("RayService", RAY)["spec"]["upgradeStrategy"]["type"],
        "NewCluster",
        "KubeRay default zero-downtime upgrade",
    ),
    # ---- monitoring
    Default("Prometheus retention", lambda m: m.kps()["prometheus"]["prometheusSpec"]["retention"], "15d", "15 days"),
    Default(
        "Prometheus volume",
        lambda m: m.kps()["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"][
            "requests"
        ]["storage"],
        "50Gi",
        "50 GiB",
    ),
    Default(
        "Prometheus retentionSize",
        lambda m: m.kps()["prometheus"]["prometheusSpec"]["retentionSize"],
        "42GiB",
        "85 % of the 50 GiB volume, so the TSDB prunes before the disk fills",
    ),
    Default("Grafana volume", lambda m: m.kps()["grafana"]["persistence"]["size"], "10Gi", "10 GiB"),
    # ---- namespace guard rails
    Default(
        "Pod Security labels",
        lambda m: {
            k: v for k, v in m.obj("Namespace", NAMESPACE)["metadata"]["labels"].items() if k.startswith("pod-security")
        },
        {
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
        },
        "config/security.py: baseline enforced, restricted reported",
    ),
    Default(
        "egress to the internet",
        lambda m: [
            r
            for r in m.obj("NetworkPolicy", "allow-dns-and-model-downloads")["spec"]["egress"]
            if {"ipBlock": {"cidr": "0.0.0.0/0"}} in r.get("to", [])
        ],
        [{"ports": [{"port": 443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
        "model downloads over HTTPS only (config/security.py egressPorts [443])",
    ),
]


@pytest.fixture(scope="module")
def minimal() -> Minimal:
    return Minimal(run_program(PROJECT, "dev", config_overrides=MINIMAL_STACK))


@pytest.mark.parametrize("default", DEFAULTS, ids=[d.what for d in DEFAULTS])
def test_documented_default(minimal, default):
    got = default.get(minimal)
    assert got == default.expected, (
        f"{default.what}: {json.dumps(got)} != {json.dumps(default.expected)} ({default.source})"
    )
