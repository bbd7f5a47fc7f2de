"""cert-manager: issues and renews the public Gateway's TLS certificate (ACME HTTP-01).

The chart installs its CRDs (``crds.enabled``; ``crds.keep`` leaves them, and every
certificate, in place on uninstall) and runs with Gateway API support on
(``config.enableGatewayAPI``, cert-manager v1.21.1 ControllerConfiguration), which the
``gatewayHTTPRoute`` ACME solver needs: the challenge is answered by an HTTPRoute that
cert-manager attaches to the Gateway's HTTP listener.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.config import versions

from .base import addon_namespace, helm_release, system_affinity

NAMESPACE = "cert-manager"
GROUP = "cert-manager.io"


def cert_manager_values() -> dict[str, Any]:
    return {
        "crds": {"enabled": True, "keep": True},
        "config": {
            "apiVersion": "controller.config.cert-manager.io/v1alpha1",
            "kind": "ControllerConfiguration",
            "enableGatewayAPI": True,
        },
        "affinity": system_affinity(),
        "webhook": {"affinity": system_affinity()},
        "cainjector": {"affinity": system_affinity()},
    }


@dataclass(frozen=True)
class CertManagerArgs:
    """What cert-manager needs: the Gateway API CRDs installed and the cluster ready."""

    cluster_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """System nodes, CSI add-on and StorageClasses (``ClusterHandle.platform_ready``)."""
    gateway_api: Sequence[pulumi.Resource] = field(default_factory=list)
    """What installs the Gateway API CRDs (cert-manager only watches Gateways if they exist at start)."""


class CertManager(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:CertManager", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = addon_namespace(f"{name}-ns", NAMESPACE, "restricted", child)
        self.values = cert_manager_values()
        self.release = helm_release(
            f"{name}-release",
            versions.CERT_MANAGER,
            NAMESPACE,
            ns,
            self.values,
            child,
            depends_on=[*args.gateway_api, *args.cluster_ready],
        )
        self.register_outputs({"namespace": NAMESPACE})
