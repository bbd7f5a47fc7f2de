"""KEDA: ScaledObjects on Prometheus queries (queue depth, KV cache, TTFT) and scale to zero.

Runs on the system pool (no GPU tolerations). Its metrics API server serves
``external.metrics.k8s.io`` to the HPAs KEDA manages; the admission webhooks validate
ScaledObjects, which is why ScaledObjects depend on this release (Pulumi waits for its
Deployments to be ready), not only on its CRDs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.config import versions
from llm_infra.config.addons import KEDA_NAMESPACE

from .base import addon_namespace, helm_release, system_affinity
from .handles import MonitoringHandle

NAMESPACE = KEDA_NAMESPACE


@dataclass(frozen=True)
class KedaArgs:
    """What KEDA needs: monitoring (its metrics' ServiceMonitor) and the cluster ready."""

    monitoring: MonitoringHandle
    """Prometheus facts: whether KEDA's metrics get a ServiceMonitor, and its labels."""
    monitoring_crds: Sequence[pulumi.Resource] = field(default_factory=list)
    """Releases installing the ServiceMonitor CRD (``AddonsHandle.depends_for("monitoring.coreos.com")``)."""
    cluster_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """System nodes, CSI add-on and StorageClasses (``ClusterHandle.platform_ready``)."""


def keda_values(monitoring: MonitoringHandle) -> dict[str, Any]:
    values: dict[str, Any] = {
        "crds": {"install": True},
        "metricsServer": {"enabled": True},
        "affinity": system_affinity(),
    }
    if monitoring.prometheus_url is not None and monitoring.operator_crds:
        monitor = {"serviceMonitor": {"enabled": True, "additionalLabels": dict(monitoring.monitor_labels)}}
        # scaler errors and latency: why a ScaledObject did not scale
        values["prometheus"] = {
            "operator": {"enabled": True, **monitor},
            "metricServer": {"enabled": True, **monitor},
        }
    return values


class Keda(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:Keda", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = addon_namespace(f"{name}-ns", NAMESPACE, "baseline", child)
        self.values = keda_values(args.monitoring)
        self.release = helm_release(
            f"{name}-release",
            versions.KEDA,
            NAMESPACE,
            ns,
            self.values,
            child,
            depends_on=[*args.monitoring_crds, *args.cluster_ready],
        )
        self.register_outputs({"namespace": NAMESPACE})
