"""KubeRay RayService running Ray Serve LLM: several models on one shared GPU worker group."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from .base import DNS_LABEL, ConfigModel
from .serving import ModelSource


class RayModelConfig(ModelSource):
    """One ``llm_configs`` entry of ``ray.serve.llm:build_openai_app``."""

    model_id: str = Field(pattern=r"^[a-zA-Z0-9][\w.-]*$", description="name clients send as 'model'")
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(2, ge=1)
    target_ongoing_requests: int = Field(32, ge=1, description="per replica, drives Serve autoscaling")
    max_ongoing_requests: int = Field(64, ge=1, description="per replica; excess requests queue in the proxy")

    @model_validator(mode="after")
    def _bounds(self) -> RayModelConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) is greater than maxReplicas ({self.max_replicas})"
            )
        if self.target_ongoing_requests > self.max_ongoing_requests:
            raise ValueError("targetOngoingRequests must not exceed maxOngoingRequests")
        return self


class RayHeadConfig(ConfigModel):
    cpu: float = Field(4, gt=0)
    memory_gib: int = Field(16, ge=4)


class RayServiceConfig(ConfigModel):
    name: str
    worker_pool: str = Field(description="GPU node pool the worker group runs on")
    gpus_per_worker: int | None = Field(None, ge=1, description="default: all GPUs of one node")
    min_workers: int = Field(1, ge=0)
    max_workers: int = Field(2, ge=1)
    worker_cpu: float | None = Field(None, gt=0, description="default: node vCPUs share, minus system reserve")
    worker_memory_gib: int | None = Field(None, ge=8)
    shm_size_gib: int = Field(8, ge=1)
    head: RayHeadConfig = RayHeadConfig()
    upgrade_strategy: str = Field("NewCluster", pattern=r"^(NewCluster|NewClusterWithIncrementalUpgrade)$")
    models: list[RayModelConfig] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not DNS_LABEL.match(v):
            raise ValueError(f"'{v}' is not a lowercase DNS label of at most 40 characters")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> RayServiceConfig:
        if self.min_workers > self.max_workers:
            raise ValueError(f"minWorkers ({self.min_workers}) is greater than maxWorkers ({self.max_workers})")
        ids = [m.model_id for m in self.models]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"model ids must be unique (repeated: {', '.join(dupes)})")
        return self
