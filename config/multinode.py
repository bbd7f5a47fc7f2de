"""Models larger than one node: pipeline-parallel replicas that span whole nodes.

Two ways to serve them, both sized here from the same arithmetic:

* **Ray Serve LLM** (``rayServices[].models[].pipelineParallelSize``): a replica is a Ray
  placement group of tensor x pipeline GPU bundles over ``pipelineParallelSize`` GPU workers
  of the RayService (``ray_placement_group_config``).
* **LeaderWorkerSet** (``multiNodeModels``): vLLM without Ray Serve, the recipe vLLM documents
  for Kubernetes (vllm docs/deployment/frameworks/lws.md): one LeaderWorkerSet group per
  replica, ``pipelineParallelSize`` pods of ``tensorParallelSize`` GPUs each; the leader runs
  the Ray head and ``vllm serve`` (vLLM's Ray executor spreads the stages over the group), the
  workers join its Ray cluster (examples/online_serving/multi-node-serving.sh in the image).

Tensor parallelism stays inside a node (NVLink/PCIe all-reduces on every layer); pipeline
parallelism crosses nodes and sends only each stage's hidden states (``interconnect_plan``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, field_validator, model_validator

from .base import ConfigModel, DnsLabel
from .serving import (
    FORBIDDEN_EXTRA_ARGS,
    MANAGED_VLLM_FLAGS,
    AutoscalingConfig,
    ModelSource,
    ResourcesConfig,
)

LWS_MANAGED_FLAGS = frozenset({"--pipeline-parallel-size", "-pp", "--distributed-executor-backend"})
"""Flags the LeaderWorkerSet path sets itself (stages and the Ray executor that spans the group)."""

RAY_PLACEMENT_STRATEGY = "PACK"
"""Placement strategy of a multi-node Ray Serve LLM replica. Ray 2.58's ``PlacementGroupConfig``
(python/ray/llm/_internal/common/placement.py) takes PACK, SPREAD, STRICT_PACK or STRICT_SPREAD.
STRICT_PACK needs every bundle on one node (impossible across nodes) and (STRICT_)SPREAD puts the
GPUs of one tensor-parallel group on different nodes. PACK fills nodes first: with workers of
exactly ``tensorParallelSize`` GPUs (checked) each worker holds one whole stage, and vLLM's Ray
executor orders ranks by node so each tensor-parallel group shares a node."""


# -- interconnect -----------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeNetwork:
    """What a node type offers between nodes."""

    nic_gbps: int
    """Network bandwidth of the node (the NIC(s) pod traffic can use over TCP)."""
    fabric: str | None
    """GPU fabric besides TCP: "EFA" (AWS), "GPUDirect-TCPX" (GKE A3 High); None: TCP only."""
    fabric_interfaces: int
    source: str


NODE_NETWORK: dict[tuple[str, str], NodeNetwork] = {
    # AWS: "Amazon EC2 G5/G6e/P4/P5 Instances" product pages (network bandwidth column) and
    # "Elastic Fabric Adapter > Supported instance types" (EC2 User Guide) for EFA.
    ("eks", "g5.12xlarge"): NodeNetwork(40, None, 0, "Amazon EC2 G5 Instances (40 Gbps, no EFA)"),
    ("eks", "g5.24xlarge"): NodeNetwork(50, None, 0, "Amazon EC2 G5 Instances (50 Gbps, no EFA)"),
    ("eks", "g5.48xlarge"): NodeNetwork(100, "EFA", 1, "Amazon EC2 G5 Instances (100 Gbps, EFA)"),
    ("eks", "g6e.2xlarge"): NodeNetwork(20, None, 0, "Amazon EC2 G6e Instances (up to 20 Gbps, no EFA)"),
    ("eks", "g6e.12xlarge"): NodeNetwork(100, "EFA", 1, "Amazon EC2 G6e Instances (100 Gbps, EFA)"),
    ("eks", "g6e.24xlarge"): NodeNetwork(200, "EFA", 2, "Amazon EC2 G6e Instances (200 Gbps, EFA)"),
    ("eks", "g6e.48xlarge"): NodeNetwork(400, "EFA", 4, "Amazon EC2 G6e Instances (400 Gbps, EFA)"),
    ("eks", "p4d.24xlarge"): NodeNetwork(400, "EFA", 4, "Amazon EC2 P4 Instances (400 Gbps, 4 x EFA)"),
    ("eks", "p5.48xlarge"): NodeNetwork(3200, "EFA", 32, "Amazon EC2 P5 Instances (3200 Gbps, 32 x EFAv2)"),
    # GCP: "GPU machine types" (Compute Engine docs): A2 up to 100 Gbps; A3 High 8g with
    # GPUDirect-TCPX over 4 GPU NICs (GKE "Maximize GPU network bandwidth" guide).
    ("gke", "a2-highgpu-8g"): NodeNetwork(100, None, 0, "GPU machine types (A2: 100 Gbps)"),
    ("gke", "a2-ultragpu-8g"): NodeNetwork(100, None, 0, "GPU machine types (A2: 100 Gbps)"),
    ("gke", "a3-highgpu-8g"): NodeNetwork(200, "GPUDirect-TCPX", 4, "GPU machine types (A3 High: GPUDirect-TCPX)"),
}
"""Inter-node network of the shapes a multi-node replica may use. A shape not listed is
planned as TCP of unknown bandwidth."""

NCCL_ENV = (
    {"name": "NCCL_SOCKET_IFNAME", "value": "eth0"},
    {"name": "GLOO_SOCKET_IFNAME", "value": "eth0"},
)
"""Cross-node NCCL/Gloo traffic over the pod's own interface (``eth0`` under the VPC CNI and
GKE dataplane alike): vLLM's multi-node troubleshooting names these two variables for hosts with
several interfaces, where NCCL could otherwise pick one that does not route between pods."""


# -- LeaderWorkerSet models -------------------------------------------------------------------
class MultiNodeCacheConfig(ConfigModel):
    """The group's shared Hugging Face cache: one ReadWriteMany PVC that the leader fills and
    every stage reads (each loads only its own layers' shards)."""

    size_gib: int | None = Field(default=None, ge=10, description="default: weights x 1.25 + 10 GiB")
    storage_class: str | None = Field(default=None, description="default: the cluster's ReadWriteMany class")


class MultiNodeModelConfig(ModelSource):
    """A vLLM model served by a LeaderWorkerSet: one group of ``pipelineParallelSize`` pods per
    replica, each pod ``tensorParallelSize`` GPUs of one node."""

    name: DnsLabel
    node_pool: str
    pipeline_parallel_size: int = Field(ge=2, le=16, description="stages = pods (nodes) per replica")
    served_model_name: str | None = Field(default=None, description="default: name")
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=256)
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    extra_args: list[str] = Field(default_factory=list)
    autoscaling: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig, description="replicas = LeaderWorkerSet groups (KEDA)"
    )
    resources: ResourcesConfig = ResourcesConfig()
    shm_size_gib: int = Field(default=16, ge=1, le=256, description="/dev/shm per pod (NCCL, Ray object store)")
    termination_grace_period_seconds: int = Field(default=300, ge=120, le=600)
    pre_stop_sleep_seconds: int = Field(default=15, ge=5, le=120, description="leader: endpoints drain before SIGTERM")
    startup_timeout_seconds: int | None = Field(
        default=None,
        ge=300,
        le=7200,
        description="group start (workers join, every stage loads its layers); default: the plan's cold-start "
        "estimate of the engine start x coldStart.startupMargin, plus the workers' node and image pull (the "
        "leader's startup probe runs while its group assembles)",
    )
    cache: MultiNodeCacheConfig = MultiNodeCacheConfig()

    @field_validator("extra_args")
    @classmethod
    def _extra_args(cls, args: list[str]) -> list[str]:
        for arg in args:
            flag = arg.split("=", 1)[0]
            if flag in LWS_MANAGED_FLAGS:
                raise ValueError(f"'{flag}' is set from pipelineParallelSize (the Ray executor spans the group)")
            if arg.startswith("--") and flag in MANAGED_VLLM_FLAGS:
                raise ValueError(f"'{flag}' is set from a typed field; use that field instead")
            if arg.startswith("-") and flag in FORBIDDEN_EXTRA_ARGS:
                raise ValueError(f"'{flag}' {FORBIDDEN_EXTRA_ARGS[flag]}")
        if args and not args[0].startswith("--"):
            raise ValueError(f"'{args[0]}' is not a flag (extra args start with '--')")
        return args

    @model_validator(mode="after")
    def _no_scale_to_zero(self) -> MultiNodeModelConfig:
        if self.autoscaling.scale_to_zero:
            raise ValueError("autoscaling.scaleToZero: a LeaderWorkerSet model has no wake-up signal (no ingress)")
        return self

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.name
