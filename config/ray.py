"""KubeRay RayService running Ray Serve LLM: several models on one shared GPU worker group."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import ConfigModel, DnsLabel
from .facts import NodePoolFacts
from .lora import RayLoraConfig
from .serving import ModelSource, node_share

RAY_NVIDIA_ACCELERATOR_TYPES = (
    "V100",
    "P100",
    "T4",
    "P4",
    "K80",
    "A10G",
    "L4",
    "L40S",
    "A100",
    "A100-40G",
    "A100-80G",
    "H100",
    "H200",
    "H20",
    "B200",
)
"""NVIDIA values of ``ray.util.accelerators.accelerators`` (Ray 2.5x), the only strings
``LLMConfig.accelerator_type`` accepts. Ray auto-detects the family name of a node's GPU
(``accelerator_type:A100``); the sized A100 names are never auto-detected, so the worker
group declares its type as a custom resource (see components/serving/rayservice.py)."""

_GPU_FAMILIES = {t for t in RAY_NVIDIA_ACCELERATOR_TYPES if "-" not in t} | {"A10"}


def ray_accelerator_type(pool: NodePoolFacts) -> str | None:
    """Ray's accelerator type for the pool's GPU, from its name and GFD product label.

    ``NVIDIA-A100-SXM4-80GB`` -> ``A100-80G``, ``NVIDIA L40S`` -> ``L40S``, ``NVIDIA A10`` ->
    ``A10G`` (Ray treats them as one type). ``None`` when Ray has no name for the GPU.
    """
    for text in (pool.product_label, pool.gpu_model):
        for token in re.split(r"[\s_-]+", text.upper()):
            if token not in _GPU_FAMILIES:
                continue
            if token == "A10":
                return "A10G"
            if token == "A100":
                return "A100-80G" if pool.gpu_memory_gib >= 80 else "A100-40G"
            return token
    return None


class RayModelConfig(ModelSource):
    """One ``llm_configs`` entry of ``ray.serve.llm:build_openai_app``."""

    model_id: str = Field(pattern=r"^[a-zA-Z0-9][\w.-]*$", description="name clients send as 'model'")
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=2, ge=1)
    target_ongoing_requests: int = Field(default=32, ge=1, description="per replica, drives Serve autoscaling")
    max_ongoing_requests: int = Field(default=64, ge=1, description="per replica; excess requests queue in the proxy")
    max_num_seqs: int | None = Field(default=None, ge=1, description="vLLM batch size cap (engine_kwargs)")
    enable_prefix_caching: bool = True
    lora: RayLoraConfig | None = Field(default=None, description="LoRA adapters loaded on demand from cloud storage")
    pipeline_parallel_size: int = Field(
        default=1,
        ge=1,
        le=16,
        description="pipeline stages per replica: tensorParallelSize x this GPUs; a replica larger than one "
        "worker spans workers (nodes), one stage per worker",
    )

    @model_validator(mode="after")
    def _bounds(self) -> RayModelConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) is greater than maxReplicas ({self.max_replicas})")
        if self.target_ongoing_requests > self.max_ongoing_requests:
            raise ValueError("targetOngoingRequests must not exceed maxOngoingRequests")
        return self


class RayHeadConfig(ConfigModel):
    """The head runs GCS, dashboard, Serve controller and autoscaler, no replicas (num-cpus 0):
    KubeRay's Serve LLM sample gives it 2 CPUs and 4 GiB. It must fit a CPU system node."""

    cpu: float = Field(default=2, gt=0)
    memory_gib: int = Field(default=8, ge=4)


class RayAutoscalerConfig(ConfigModel):
    """Ray autoscaler (in-tree, sidecar of the head): adds GPU workers for pending replicas."""

    upscaling_mode: Literal["Default", "Aggressive", "Conservative"] = "Default"
    idle_timeout_seconds: int = Field(
        default=300, ge=30, description="idle worker removal; GPU nodes take minutes to come back"
    )


class IncrementalUpgradeConfig(ConfigModel):
    """``NewClusterWithIncrementalUpgrade``: traffic moves step by step through a Gateway API
    HTTPRoute instead of doubling the GPUs (KubeRay >= 1.5, feature gate
    RayServiceIncrementalUpgrade, on by default in chart 1.7.0)."""

    gateway_class_name: str = Field(description="GatewayClass KubeRay creates the Gateway with")
    max_surge_percent: int = Field(default=20, ge=1, le=100, description="capacity added to the new cluster per step")
    step_size_percent: int = Field(default=10, ge=1, le=100, description="traffic moved per interval")
    interval_seconds: int = Field(default=30, ge=1)


class RayCacheConfig(ConfigModel):
    """The workers' shared Hugging Face cache: one ReadWriteMany PVC per rayService, filled once
    and read by every worker (restarts and scale-ups load weights instead of downloading them)."""

    enabled: bool | None = Field(
        default=None, description="default: on when the cluster has a ReadWriteMany class or storageClass is set"
    )
    size_gib: int | None = Field(default=None, ge=10, description="default: the models' weights x 1.25 + 10 GiB")
    storage_class: str | None = Field(default=None, description="default: the cluster's ReadWriteMany class")

    def shared(self, cluster_has_rwx: bool) -> bool:
        return self.enabled if self.enabled is not None else bool(self.storage_class) or cluster_has_rwx


class RayServiceConfig(ConfigModel):
    name: DnsLabel
    worker_pool: str = Field(description="GPU node pool the worker group runs on")
    gpus_per_worker: int | None = Field(default=None, ge=1, description="default: all GPUs of one node")
    min_workers: int = Field(default=1, ge=0)
    max_workers: int = Field(default=2, ge=1)
    worker_cpu: float | None = Field(
        default=None, gt=0, description="default: the worker's share of its node (serving.node_share)"
    )
    worker_memory_gib: int | None = Field(default=None, ge=8)
    shm_size_gib: int = Field(default=8, ge=1)
    cache: RayCacheConfig = RayCacheConfig()
    head: RayHeadConfig = RayHeadConfig()
    autoscaler: RayAutoscalerConfig = RayAutoscalerConfig()
    upgrade_strategy: str = Field(default="NewCluster", pattern=r"^(NewCluster|NewClusterWithIncrementalUpgrade)$")
    incremental_upgrade: IncrementalUpgradeConfig | None = None
    accelerator_type: str | None = Field(
        default=None, description="Ray accelerator type; default: derived from the pool's GPU"
    )
    termination_grace_period_seconds: int = Field(
        default=300, ge=60, le=3600, description="Ray pods' grace period (workers run `ray stop` in preStop)"
    )
    graceful_shutdown_timeout_seconds: int = Field(
        default=120,
        ge=5,
        le=3600,
        description="in-flight requests a stopping replica (or a replaced cluster) may still finish",
    )
    models: list[RayModelConfig] = Field(min_length=1)

    @field_validator("accelerator_type")
    @classmethod
    def _accelerator_type(cls, v: str | None) -> str | None:
        if v is not None and v not in RAY_NVIDIA_ACCELERATOR_TYPES:
            raise ValueError(f"'{v}' is not a Ray accelerator type ({', '.join(RAY_NVIDIA_ACCELERATOR_TYPES)})")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> RayServiceConfig:
        if self.min_workers > self.max_workers:
            raise ValueError(f"minWorkers ({self.min_workers}) is greater than maxWorkers ({self.max_workers})")
        ids = [m.model_id for m in self.models]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"model ids must be unique (repeated: {', '.join(dupes)})")
        incremental = self.upgrade_strategy == "NewClusterWithIncrementalUpgrade"
        if incremental and self.incremental_upgrade is None:
            raise ValueError(
                "upgradeStrategy NewClusterWithIncrementalUpgrade needs incrementalUpgrade.gatewayClassName"
            )
        if not incremental and self.incremental_upgrade is not None:
            raise ValueError("incrementalUpgrade is only used with upgradeStrategy NewClusterWithIncrementalUpgrade")
        if self.graceful_shutdown_timeout_seconds > self.termination_grace_period_seconds:
            raise ValueError(
                f"gracefulShutdownTimeoutSeconds ({self.graceful_shutdown_timeout_seconds}) exceeds "
                f"terminationGracePeriodSeconds ({self.termination_grace_period_seconds}): pods would be killed mid-drain"
            )
        return self

    def worker_gpus(self, pool: NodePoolFacts) -> int:
        return self.gpus_per_worker or pool.gpus_per_node

    def worker_share(self, pool: NodePoolFacts) -> tuple[int | None, int | None]:
        """Whole vCPUs and GiB one worker may take of its node (serving.node_share, floored:
        Ray counts whole CPUs); ``None`` where the node size is unknown."""
        cpu, memory = node_share(pool, self.worker_gpus(pool))
        return (None if cpu is None else math.floor(cpu), None if memory is None else math.floor(memory))

    def worker_resources(self, pool: NodePoolFacts) -> tuple[float, int] | None:
        """(CPU, memory GiB) of one worker: configured, else its share of the node."""
        share_cpu, share_memory = self.worker_share(pool)
        cpu = self.worker_cpu if self.worker_cpu is not None else share_cpu
        memory = self.worker_memory_gib if self.worker_memory_gib is not None else share_memory
        if cpu is None or memory is None:
            return None
        return cpu, memory

    def resolved_accelerator_type(self, pool: NodePoolFacts) -> str | None:
        return self.accelerator_type or ray_accelerator_type(pool)
