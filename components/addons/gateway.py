"""Envoy Gateway with InferencePool support, and the Inference Extension CRDs.

Why Envoy Gateway (EKS and existing clusters): ingress-nginx was retired upstream in March
2026 and knows nothing of InferencePools. Envoy Gateway is a CNCF Gateway API implementation
whose chart ../shared/upstream pins (gateway-helm v1.9.0), it authenticates API keys at the
edge (``SecurityPolicy.apiKeyAuth``), and with the Envoy AI Gateway extension it routes
HTTPRoute backends of kind InferencePool through the pool's endpoint picker. Istio would route
InferencePools too but has no API-key authentication and a much larger footprint.

Envoy Gateway is configured exactly as the AI Gateway documents it (envoyproxy/ai-gateway v1.1.0,
manifests/envoy-gateway-values.yaml plus examples/inference-pool/envoy-gateway-values-addon.yaml):
the Backend and EnvoyPatchPolicy APIs on, the AI Gateway controller as extension server with
xDS translation hooks, and InferencePool (inference.networking.k8s.io/v1) as a backend resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.config import versions

from .base import addon_namespace, helm_release, system_affinity

NAMESPACE = "envoy-gateway-system"
"""Envoy Gateway's controller namespace; it also runs the Gateways' Envoy proxies there."""
AI_GATEWAY_NAMESPACE = "envoy-ai-gateway-system"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
GATEWAY_CLASS = "envoy"
AI_GATEWAY_EXTENSION_PORT = 1063
"""gRPC port of the AI Gateway controller's extension server (ai-gateway-helm v1.1.0 service.yaml)."""
INFERENCE_POOL_BACKEND = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "version": "v1"}


def envoy_gateway_values() -> dict[str, Any]:
    return {
        "config": {
            "envoyGateway": {
                "gateway": {"controllerName": CONTROLLER_NAME},
                "provider": {"type": "Kubernetes"},
                "extensionApis": {"enableEnvoyPatchPolicy": True, "enableBackend": True},
                "extensionManager": {
                    "hooks": {
                        "xdsTranslator": {
                            "translation": {
                                part: {"includeAll": True} for part in ("listener", "route", "cluster", "secret")
                            },
                            "post": ["Translation", "Cluster", "Route"],
                        }
                    },
                    "service": {
                        "fqdn": {
                            "hostname": f"ai-gateway-controller.{AI_GATEWAY_NAMESPACE}.svc.cluster.local",
                            "port": AI_GATEWAY_EXTENSION_PORT,
                        }
                    },
                    "backendResources": [dict(INFERENCE_POOL_BACKEND)],
                },
            }
        },
        "deployment": {"pod": {"affinity": system_affinity()}},
    }


@dataclass(frozen=True)
class EnvoyGatewayArgs:
    """What Envoy Gateway needs: the InferencePool CRDs its backends reference, and the cluster ready."""

    cluster_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """System nodes, CSI add-on and StorageClasses (``ClusterHandle.platform_ready``)."""
    inference_crds: Sequence[pulumi.Resource] = field(default_factory=list)
    """What installs the InferencePool CRDs (the AI Gateway's backend resources)."""


class EnvoyGateway(pulumi.ComponentResource):
    """Envoy Gateway, the AI Gateway extension and the GatewayClass ``envoy``."""

    release: k8s.helm.v3.Release
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: EnvoyGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:EnvoyGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = addon_namespace(f"{name}-ns", NAMESPACE, "baseline", child)
        ai_ns = addon_namespace(f"{name}-ai-ns", AI_GATEWAY_NAMESPACE, "baseline", child)
        self.values = envoy_gateway_values()
        self.release = helm_release(
            f"{name}-release",
            versions.ENVOY_GATEWAY,
            NAMESPACE,
            ns,
            self.values,
            child,
            depends_on=[*args.inference_crds, *args.cluster_ready],
        )
        ai_crds = helm_release(
            f"{name}-ai-crds",
            versions.AI_GATEWAY_CRDS,
            AI_GATEWAY_NAMESPACE,
            ai_ns,
            {},
            child,
            depends_on=[self.release],
        )
        # the AI Gateway chart adds the RBAC that lets Envoy Gateway read InferencePools
        # (templates/envoy_gateway_cluster_role_for_inference_pool.yaml at v1.1.0)
        ai = helm_release(
            f"{name}-ai",
            versions.AI_GATEWAY,
            AI_GATEWAY_NAMESPACE,
            ai_ns,
            {},
            child,
            depends_on=[ai_crds, self.release],
        )
        self.gateway_class = k8s.apiextensions.CustomResource(
            f"{name}-class",
            api_version="gateway.networking.k8s.io/v1",
            kind="GatewayClass",
            metadata={"name": GATEWAY_CLASS},
            spec={"controllerName": CONTROLLER_NAME},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        self.ready = [self.release, ai, self.gateway_class]
        self.register_outputs({"namespace": NAMESPACE, "gatewayClass": GATEWAY_CLASS})


class InferenceCrds(pulumi.ComponentResource):
    """InferencePool and InferenceObjective CRDs at their release tags (no chart ships them)."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:InferenceCrds", name, None, opts)
        self.crds = k8s.yaml.v2.ConfigGroup(
            f"{name}-crds",
            files=[*versions.INFERENCE_POOL_CRDS, *versions.INFERENCE_OBJECTIVE_CRDS],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
