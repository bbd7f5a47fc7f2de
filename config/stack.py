"""The whole stack's typed config (``StackConfig``); ``config/load.py`` checks it and derives the plan."""

from __future__ import annotations

from pydantic import Field

from .addons import AddonsConfig
from .base import ConfigModel, DnsLabel
from .cluster import ClusterConfig
from .cold_start_settings import ColdStartConfig
from .credentials import CredentialsConfig
from .edge import EdgeConfig
from .model_store import ModelStoreConfig
from .multinode import MultiNodeModelConfig
from .ray import RayServiceConfig
from .security import SecurityConfig
from .serving import VllmModelConfig

SECRET_KEYS = ("hfToken", "grafanaAdminPassword", "kubeconfig", "apiKeys")
"""Config keys that hold credentials. They are read with ``require_secret`` and must be set
with ``pulumi config set --secret``; they never enter the typed config below."""


class AlertThresholds(ConfigModel):
    """Alert thresholds (seed guides: KV cache 90 %, queue 10, TTFT p99 5 s, GPU 85 °C)."""

    kv_cache_usage: float = Field(default=0.90, gt=0, le=1)
    kv_cache_for: str = Field(default="5m", pattern=r"^\d+[smh]$")
    queue_depth: float = Field(default=10, gt=0)
    queue_depth_for: str = Field(default="2m", pattern=r"^\d+[smh]$")
    ttft_p99_seconds: float = Field(default=5, gt=0)
    ttft_for: str = Field(default="5m", pattern=r"^\d+[smh]$")
    gpu_temperature_celsius: float = Field(default=85, gt=0)
    gpu_temperature_for: str = Field(default="5m", pattern=r"^\d+[smh]$")
    error_ratio: float = Field(default=0.05, gt=0, le=1)
    error_ratio_for: str = Field(default="5m", pattern=r"^\d+[smh]$")
    max_replicas_for: str = Field(default="15m", pattern=r"^\d+[smh]$")
    no_healthy_replica_for: str = Field(default="5m", pattern=r"^\d+[smh]$")
    canary_error_ratio_margin: float = Field(
        default=0.02, gt=0, le=1, description="a canary's 5xx ratio above the stable model's by more than this alerts"
    )
    canary_ttft_ratio: float = Field(
        default=1.25, gt=1, description="a canary's p95 time to first token above the stable one's times this alerts"
    )
    canary_for: str = Field(default="10m", pattern=r"^\d+[smh]$")
    group_member_lost_for: str = Field(
        default="10m",
        pattern=r"^\d+[smh]$",
        description="a multi-node replica (LeaderWorkerSet group) missing a running member this long alerts",
    )
    runbook_base_url: str = Field(
        default="https://github.com/llm-infra/llm-infra/blob/main/docs/runbooks",
        pattern=r"^https?://\S+[^/]$",
        description="where docs/runbooks/*.md are served; each alert links <base>/<file>.md#<alert>",
    )


class StackConfig(ConfigModel):
    cluster: ClusterConfig
    addons: AddonsConfig = AddonsConfig()
    namespace: DnsLabel = Field(default="llm-inference", description="namespace of the serving workloads")
    models: list[VllmModelConfig] = Field(default_factory=list)
    ray_services: list[RayServiceConfig] = Field(default_factory=list)
    multi_node_models: list[MultiNodeModelConfig] = Field(
        default_factory=list, description="vLLM models whose replica spans nodes (LeaderWorkerSet groups)"
    )
    alerts: AlertThresholds = AlertThresholds()
    security: SecurityConfig = SecurityConfig()
    credentials: CredentialsConfig = CredentialsConfig()
    model_store: ModelStoreConfig = ModelStoreConfig()
    cold_start: ColdStartConfig = ColdStartConfig()
    edge: EdgeConfig = EdgeConfig()
