"""Ray Serve LLM. PLACEHOLDER while the KubeRay issue is in progress (replaced in this session)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from config import ModelPlan, NodePoolFacts
from config.ray import RayServiceConfig

from .context import ServingContext


@dataclass(frozen=True)
class RayLlmServiceArgs:
    service: RayServiceConfig
    plans: list[ModelPlan]
    pool: NodePoolFacts
    context: ServingContext


class RayLlmService(pulumi.ComponentResource):
    def __init__(self, name: str, args: RayLlmServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:RayLlmService", name, None, opts)
        self.name = name
        self.endpoint = f"http://{name}-serve-svc.{args.context.namespace}.svc.cluster.local:8000/v1"
        self.register_outputs({"endpoint": self.endpoint})
