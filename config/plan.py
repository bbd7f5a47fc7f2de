"""What a validated stack implies: node-pool facts and a plan per model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .architectures import ModelArchitecture
from .capacity import CapacityEstimate
from .facts import NodePoolFacts

if TYPE_CHECKING:
    from .cold_start import ColdStartEstimate
    from .stack import StackConfig


@dataclass(frozen=True)
class RolloutPlan:
    """How a vLLM Deployment rolls (derived by config/feasibility.py from the pool's room):
    surge one replica where the pool can hold it at maxReplicas, else replace one at a time."""

    max_surge: int = 1
    max_unavailable: int = 0

    def rolling_update(self) -> dict[str, int]:
        return {"maxSurge": self.max_surge, "maxUnavailable": self.max_unavailable}


@dataclass(frozen=True)
class ModelPlan:
    """What the config implies for one model: architecture, GPUs, capacity and cost."""

    name: str
    path: str  # config path, e.g. "models[0]"
    kind: Literal["vllm", "ray", "lws"]
    architecture: ModelArchitecture
    pool: NodePoolFacts
    tensor_parallel_size: int
    max_model_len: int
    capacity: CapacityEstimate
    min_replicas: int
    max_replicas: int
    hourly_cost_min: float | None
    hourly_cost_max: float | None
    quantization: str | None = None  # what vLLM loads with: --quantization or the checkpoint's own
    rollout: RolloutPlan = RolloutPlan()
    cold_start: ColdStartEstimate | None = None
    """Scale-up to serving, phase by phase (config/cold_start.py); sizes the startup probe."""
    pipeline_parallel_size: int = 1
    """Pipeline stages of one replica; above one a replica spans nodes (config/multinode.py)."""

    @property
    def gpus_per_replica(self) -> int:
        """Tensor x pipeline parallel: every GPU one replica holds, over all its nodes."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def nodes_per_replica(self) -> int:
        """Whole nodes one replica takes when it spans nodes; 1 when it fits one node."""
        return max(1, -(-self.gpus_per_replica // self.pool.gpus_per_node))


@dataclass(frozen=True)
class StackPlan:
    """A validated stack: the typed config plus everything derived from it."""

    stack: str
    config: StackConfig
    pools: dict[str, NodePoolFacts]
    models: dict[str, ModelPlan]  # vLLM models by name
    ray_models: dict[str, ModelPlan]  # "<service>/<model_id>"
    secrets: frozenset[str]  # which SECRET_KEYS are set (never their values)
    multinode_models: dict[str, ModelPlan] = field(default_factory=dict)
    """multiNodeModels (LeaderWorkerSet) by name."""
    api_key_clients: tuple[str, ...] = ()
    """Client names of the ``apiKeys`` secret (its map keys; the keys themselves stay secret)."""
    feasibility: dict[str, Any] = field(default_factory=dict)
    """Pool name -> ``feasibility.PoolFeasibility`` (what each pool must hold and can reach)."""
    warnings: list[str] = field(default_factory=list)
    """Tight but possible plans (capacity feasibility), shown with the plan's warnings."""

    def has_credential(self, key: str) -> bool:
        """Whether a credential is available: a Pulumi secret, or synced from the secret manager."""
        return key in self.secrets or self.config.credentials.source(key).source == "secretManager"

    @property
    def needs_kuberay(self) -> bool:
        kr = self.config.addons.kuberay
        return bool(self.config.ray_services) if kr.enabled is None else kr.enabled

    @property
    def needs_lws(self) -> bool:
        """Whether the stack installs the LeaderWorkerSet controller (a multiNodeModel needs it)."""
        lws = self.config.addons.lws
        if lws.already_installed:
            return False
        return bool(self.config.multi_node_models) if lws.enabled is None else lws.enabled

    @property
    def uses_gateway_api(self) -> bool:
        """Whether anything routes through a Gateway API Gateway (a model's httpRoute, or a
        RayService's incremental upgrade): the cluster must serve the Gateway API."""
        return (
            self.config.edge.gateway is not None
            or any(m.http_route is not None for m in self.config.models)
            or any(r.incremental_upgrade is not None for r in self.config.ray_services)
        )
