"""Guard rails for shared production clusters."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ConfigModel


class NetworkPolicyConfig(ConfigModel):
    enabled: bool = True
    ingress_namespaces: list[str] = Field(
        default_factory=lambda: ["ingress-nginx"],
        description="namespaces whose pods (gateway, ingress controller) may call the models",
    )
    egress_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="where model pods may connect (Hugging Face Hub and its CDN, the Kubernetes API for "
        "the Ray autoscaler); narrow it to a mirror or proxy where one exists",
    )
    egress_ports: list[int] = Field(default_factory=lambda: [443], description="TCP ports allowed to egressCidrs")


class SecurityConfig(ConfigModel):
    pod_security: Literal["baseline", "restricted"] = Field(
        "baseline", description="enforced Pod Security Standard; restricted is warned and audited"
    )
    gpu_quota: int | None = Field(None, ge=1, description="most GPUs the inference namespace may request")
    network_policy: NetworkPolicyConfig = NetworkPolicyConfig()
