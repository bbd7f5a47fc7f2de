"""Cold start: how long from a scale-up decision to a replica that serves, per model, phase by phase.

A new replica waits for a node (when its pool has no room), pulls the serving image, fetches and
loads the weights, compiles the model (torch.compile) and captures CUDA graphs, then passes its
probes. Each phase is estimated from the model's size and a documented rate; every rate below
names where it comes from (the seed guides in ../shared/seeds, vLLM / Run:ai documentation and
logs). The estimate goes into the plan (plan.json, summary.md), sizes the startup probes, and
is compared with the scale-up window the autoscaling settings leave (a warning suggests a warm
spare when the cold start is longer).

Estimates, not measurements: the rates are conservative ends of published ranges, so the
probe windows derived from them (x ``ColdStartConfig.startupMargin``) do not kill slow starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import versions
from .cluster import desired_nodes, karpenter_instance_types

if TYPE_CHECKING:
    from .stack import StackConfig


# -- rates, each with its source ---------------------------------------------------------------
NODE_PROVISIONING_SECONDS = {
    "karpenter": (90, "seed 003: Karpenter provisions GPU nodes in 60-90 s (upper end)"),
    "cluster-autoscaler": (300, "seed 003: Cluster Autoscaler takes 3-5 min (upper end)"),
    "gke": (360, "seed 002: a fresh GKE L4 node took about six minutes to report nvidia.com/gpu allocatable"),
    "existing": (300, "existing cluster: its autoscaler is unknown, taken as Cluster Autoscaler's 3-5 min (seed 003)"),
    "none": (0, "the pool does not grow: a replica waits for room instead"),
}
IMAGE_PULL_MIB_S = 85.0
"""seed 004: the vLLM image (4-8 GB) pulls in 30-90 s; the slow end, 8 GB in 90 s = 85 MiB/s."""
IMAGE_SIZE_GIB = {versions.VLLM_IMAGE: 10.0, versions.RAY_LLM_IMAGE: 10.0}
"""Compressed pull size of the serving images: issue 15 puts them at 10-20 GiB (CUDA 13 builds),
seed 004 at 4-8 GB for older tags; the lower end of issue 15's range. Check with
``crane manifest`` / ``docker manifest inspect`` when bumping an image."""
STREAM_GIB_S = 1.0
"""Run:ai Model Streamer from S3/GCS: 3.51 GiB/s from S3 on a g5.12xlarge (40 Gbps;
run-ai/runai-model-streamer docs/src/benchmarks.md, Meta-Llama-3-8B); single-GPU nodes have
"up to 10 Gbps" (EC2 G5/G6e instance pages) to 16 Gbps (GCE g2-standard-8), ~1.16 GiB/s line
rate: 1.0 GiB/s."""
PVC_LOAD_GIB_S = 0.25
"""Weights read from a cache volume by vLLM's safetensors loader: seed 000, "30-60 seconds for a
7B model" (~15 GiB) with weights pre-cached on a PVC: 15 GiB / 60 s."""
HF_DOWNLOAD_GIB_S = 0.05
"""Hugging Face Hub download: seed 002, the ~16 GB (14.9 GiB) download dominated a 6.3-minute cold
start (taken as 5 min: 0.05 GiB/s); seed 000: 5-10 min for a 7B model."""
COMPILE_SECONDS = {
    False: (
        60,
        (
            "torch.compile from scratch: vLLM logs 'torch.compile takes 30.03 / 34.61 / 51.11 s in total' "
            "for 7-8B models; rounded up"
        ),
    ),
    True: (
        15,
        (
            "torch.compile from the persisted cache: vLLM docs design/torch_compile.md (artifacts reused from "
            "VLLM_CACHE_ROOT/torch_compile_cache); Baseten measured 5-20 s with a persisted cache"
        ),
    ),
}
CUDA_GRAPH_SECONDS = 30
"""seed 004: warmup and CUDA graph capture take 10-30 s (upper end); never cached by vLLM."""
PROBE_PERIOD_SECONDS = 10
"""vLLM startup and readiness probe period (components/serving/vllm.py)."""
RAY_PROBE_PERIOD_SECONDS = 5
"""Ray worker readiness probe period (components/serving/rayservice.py)."""
MIN_STARTUP_WINDOW_SECONDS = 300
"""Floor of a derived startup probe window: engine start has fixed costs the rates do not cover
(process start, profiling run, KV-cache allocation)."""

WeightsSource = str  # "objectStore" | "sharedCache" | "replicaCache" | "huggingFace"

WEIGHT_SOURCES = {
    "objectStore": "streamed from the model store (Run:ai streamer, --load-format runai_streamer)",
    "sharedCache": "read from the shared ReadWriteMany cache, filled by the first replica",
    "replicaCache": "downloaded into the new replica's own ReadWriteOnce cache, then read from it",
    "huggingFace": "downloaded from the Hugging Face Hub at every start (no shared cache)",
}


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: int
    basis: str
    in_container: bool
    """Whether the phase runs in the serving container (the startup probe must cover it)."""


@dataclass(frozen=True)
class ColdStartEstimate:
    """One new replica, from the scale-up decision to passing readiness."""

    phases: tuple[Phase, ...]
    weights_source: str
    compile_cached: bool
    images_prepulled: bool
    new_node: bool
    """The scale-up replica needs a new node (its pool has no room left at minimum replicas)."""
    engine_start_seconds: int
    """Serving container start to /health, first start of a replica (uncached compile): what the
    startup probe must allow."""
    startup_window_seconds: int
    scale_up_window_seconds: int | None = None
    suggestions: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> int:
        return sum(p.seconds for p in self.phases)

    @property
    def exceeds_window(self) -> bool:
        return self.scale_up_window_seconds is not None and self.total_seconds > self.scale_up_window_seconds

    def report(self) -> dict[str, Any]:
        return {
            "totalSeconds": self.total_seconds,
            "phases": {p.name: {"seconds": p.seconds, "basis": p.basis} for p in self.phases},
            "weightsSource": self.weights_source,
            "compileCached": self.compile_cached,
            "imagesPrepulled": self.images_prepulled,
            "newNode": self.new_node,
            "engineStartSeconds": self.engine_start_seconds,
            "startupProbeWindowSeconds": self.startup_window_seconds,
            "scaleUpWindowSeconds": self.scale_up_window_seconds,
            "exceedsScaleUpWindow": self.exceeds_window,
        }


def duration_seconds(text: str) -> int:
    """``2m`` -> 120 (the alert ``for`` format: digits and s/m/h)."""
    return int(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]


def probe_window(engine_start_seconds: int, margin: float, period: int = PROBE_PERIOD_SECONDS) -> int:
    """Startup probe window: the engine start x margin, at least ``MIN_STARTUP_WINDOW_SECONDS``,
    rounded up to whole probe periods."""
    window = max(MIN_STARTUP_WINDOW_SECONDS, engine_start_seconds * margin)
    return math.ceil(window / period) * period


def estimate(
    *,
    provisioner: str,
    new_node: bool,
    image: str,
    prepulled: bool,
    weights_gib: float,
    weights: WeightsSource,
    compile_cached: bool,
    margin: float,
    probe_period: int = PROBE_PERIOD_SECONDS,
    scale_up_window: int | None = None,
) -> ColdStartEstimate:
    node_s, node_src = NODE_PROVISIONING_SECONDS[provisioner]
    phases = [
        Phase(
            "nodeProvisioning",
            node_s if new_node else 0,
            node_src if new_node else "the pool has room for the new replica on a running node",
            False,
        )
    ]
    size = IMAGE_SIZE_GIB[image]
    pull = math.ceil(size * 1024 / IMAGE_PULL_MIB_S)
    if prepulled and not new_node:
        phases.append(Phase("imagePull", 0, "pre-pulled by the image DaemonSet on every GPU node", False))
    else:
        why = (
            "; the pre-pull DaemonSet starts with the new node and races the pod, so it is counted in full"
            if prepulled
            else ""
        )
        phases.append(Phase("imagePull", pull, f"{size:g} GiB at {IMAGE_PULL_MIB_S:g} MiB/s (seed 004){why}", False))
    if weights == "replicaCache":
        fetch = math.ceil(weights_gib / HF_DOWNLOAD_GIB_S)
        phases.append(
            Phase("weightDownload", fetch, f"{weights_gib:.1f} GiB from the Hub at {HF_DOWNLOAD_GIB_S} GiB/s", False)
        )
    if weights == "objectStore":
        rate, how = STREAM_GIB_S, "streamed from the model store"
    elif weights == "huggingFace":
        rate, how = HF_DOWNLOAD_GIB_S, "downloaded from the Hub by the engine"
    else:
        rate, how = PVC_LOAD_GIB_S, "read from the cache volume"
    load = math.ceil(weights_gib / rate)
    phases.append(Phase("weightLoad", load, f"{weights_gib:.1f} GiB {how} at {rate} GiB/s", True))
    compile_s, compile_src = COMPILE_SECONDS[compile_cached]
    phases.append(Phase("compile", compile_s, compile_src, True))
    phases.append(Phase("cudaGraphs", CUDA_GRAPH_SECONDS, "seed 004: 10-30 s of warmup and CUDA graph capture", True))
    phases.append(
        Phase(
            "readiness",
            2 * probe_period,
            f"up to one startup and one readiness probe period ({probe_period} s each) after /health answers",
            True,
        )
    )
    engine_start = load + COMPILE_SECONDS[False][0] + CUDA_GRAPH_SECONDS + probe_period
    return ColdStartEstimate(
        phases=tuple(phases),
        weights_source=weights,
        compile_cached=compile_cached,
        images_prepulled=prepulled,
        new_node=new_node,
        engine_start_seconds=engine_start,
        startup_window_seconds=probe_window(engine_start, margin, probe_period),
        scale_up_window_seconds=scale_up_window,
    )


# -- the stack's models ---------------------------------------------------------------------------
def provisioner(config: StackConfig, pool_name: str) -> str:
    """Who adds a node to ``pool_name``: karpenter, cluster-autoscaler, gke, existing or none."""
    c = config.cluster
    index = next(i for i, p in enumerate(c.node_pools) if p.name == pool_name)
    pool = c.node_pools[index]
    if c.cloud == "eks" and c.eks is not None and c.eks.gpu_autoscaler_choice == "karpenter":
        return "karpenter" if c.eks.karpenter.enabled and karpenter_instance_types(c.eks.karpenter, pool) else "none"
    return {"eks": "cluster-autoscaler", "gke": "gke"}.get(c.cloud, "existing")


def needs_new_node(
    config: StackConfig, feasibility: dict[str, Any], pool_name: str, workload: str, min_count: int
) -> bool:
    """Whether the first scale-up pod needs a new node: the pool's floor (minNodes; the managed
    node group's desiredNodes under Karpenter, which does not shrink it) holds no more than the
    minimum needs, and the workload's last node is full. Other workloads' leftovers are not
    counted (conservative)."""
    pool_cfg = next(p for p in config.cluster.node_pools if p.name == pool_name)
    f = feasibility.get(pool_name)
    if f is None:
        return True
    floor = pool_cfg.min_nodes
    if f.autoscaler == "karpenter" or f.autoscaler == "none":
        floor = desired_nodes(pool_cfg)
    if floor > f.need.get("min", 0):
        return False
    per_node = f.pods_per_node.get(workload, 1)
    return not (per_node > 1 and min_count % per_node != 0)


def scale_up_window(config: StackConfig, model) -> int | None:
    """Seconds a scale-up may take before users feel it, for a vLLM model that autoscales.

    KEDA decides to scale up once the per-replica queue exceeds ``queueDepthTarget``; if the burst
    goes on, the ``minReplicas`` warm replicas keep queueing and the backlog alert fires once a
    replica's queue stays above ``alerts.queueDepth`` for ``alerts.queueDepthFor``. The new replica
    should serve by then: window = ``alerts.queueDepthFor``, but only while the warm replicas
    still have headroom between the scale-up target and the alert threshold
    (``queueDepthTarget < alerts.queueDepth``); with none left, or at ``minReplicas`` 0 (every
    request after idle waits), the window is 0. None when the model does not autoscale."""
    a = model.autoscaling
    if a.min_replicas == a.max_replicas:
        return None
    if a.min_replicas == 0 or a.queue_depth_target >= config.alerts.queue_depth:
        return 0
    return duration_seconds(config.alerts.queue_depth_for)
