"""KubeRay operator: reconciles the RayServices (Ray Serve LLM) of the serving stacks.

Its CRDs are applied from the operator's release tag (``versions.KUBERAY_CRDS``, server-side
apply: the RayJob CRD is too large for client-side apply) before the chart, which is
installed with ``skip_crds``: Helm installs a chart's crds/ once and never upgrades them,
so a chart bump alone would leave the old RayService schema in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.config import versions
from llm_infra.config.addons import KUBERAY_NAMESPACE

from .base import addon_namespace, helm_release, system_affinity
from .handles import MonitoringHandle

NAMESPACE = KUBERAY_NAMESPACE


@dataclass(frozen=True)
class KubeRayArgs:
    """What the KubeRay operator needs: monitoring (its metrics' ServiceMonitor) and the cluster ready."""

    monitoring: MonitoringHandle
    """Prometheus facts: whether the operator's metrics get a ServiceMonitor, and its labels."""
    monitoring_crds: Sequence[pulumi.Resource] = field(default_factory=list)
    """Releases installing the ServiceMonitor CRD (``AddonsHandle.depends_for("monitoring.coreos.com")``)."""
    cluster_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """System nodes, CSI add-on and StorageClasses (``ClusterHandle.platform_ready``)."""


def kuberay_values(monitoring: MonitoringHandle) -> dict[str, Any]:
    values: dict[str, Any] = {"affinity": system_affinity()}
    if monitoring.prometheus_url is not None and monitoring.operator_crds:
        values["metrics"] = {
            "enabled": True,
            "serviceMonitor": {"enabled": True, "additionalLabels": dict(monitoring.monitor_labels)},
        }
    return values


class KubeRayOperator(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KubeRayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:KubeRayOperator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = addon_namespace(f"{name}-ns", NAMESPACE, "baseline", child)
        self.values = kuberay_values(args.monitoring)
        self.crds = k8s.yaml.v2.ConfigGroup(f"{name}-crds", files=list(versions.KUBERAY_CRDS), opts=child)
        self.release = helm_release(
            f"{name}-release",
            versions.KUBERAY_OPERATOR,
            NAMESPACE,
            ns,
            self.values,
            child,
            depends_on=[self.crds, *args.monitoring_crds, *args.cluster_ready],
            skip_crds=True,
        )
        self.register_outputs({"namespace": NAMESPACE})
