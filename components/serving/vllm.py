"""vLLM serving. PLACEHOLDER while the vLLM issue is in progress (replaced in this session)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from config import ModelPlan
from config.serving import VllmModelConfig

from .context import ServingContext


@dataclass(frozen=True)
class VllmServiceArgs:
    model: VllmModelConfig
    plan: ModelPlan
    context: ServingContext


class VllmService(pulumi.ComponentResource):
    def __init__(self, name: str, args: VllmServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:VllmService", name, None, opts)
        self.name = name
        self.endpoint = f"http://{name}.{args.context.namespace}.svc.cluster.local:8000/v1"
        self.register_outputs({"endpoint": self.endpoint})
