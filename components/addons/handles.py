"""What the add-ons give the serving components (no literals repeated in serving code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import pulumi

if TYPE_CHECKING:
    from .external_secrets import SecretSync

KEDA_GROUP = "keda.sh"
RAY_GROUP = "ray.io"
MONITORING_GROUP = "monitoring.coreos.com"
EXTERNAL_SECRETS_GROUP = "external-secrets.io"
LWS_GROUP = "leaderworkerset.x-k8s.io"


@dataclass
class MonitoringHandle:
    prometheus_url: str | None
    """Where KEDA triggers and prometheus-adapter query (None: no Prometheus)."""
    monitor_labels: dict[str, str] = field(default_factory=dict)
    """Labels our ServiceMonitors, PodMonitors and PrometheusRules carry so Prometheus selects them."""
    dashboard_labels: dict[str, str] = field(default_factory=dict)
    """Labels of dashboard ConfigMaps that the Grafana sidecar loads (empty: no Grafana)."""
    operator_crds: bool = False
    """Whether the prometheus-operator CRDs exist (installed by us or already there)."""
    namespace: str | None = None
    """Namespace Prometheus runs in (NetworkPolicy peer for scrapes), if known."""
    gpu_metrics: bool = False
    """Whether DCGM exporter GPU metrics (DCGM_FI_DEV_*, with the workload's pod/namespace
    labels) reach this Prometheus: GPU alerts and dashboard panels only make sense then."""


@dataclass
class AddonsHandle:
    monitoring: MonitoringHandle
    autoscaler: Literal["keda", "hpa", "none"]
    """KEDA ScaledObjects, plain HPAs through prometheus-adapter, or nothing."""
    crd_owners: dict[str, list[pulumi.Resource]] = field(default_factory=dict)
    """API group -> releases that install its CRDs ("keda.sh", "ray.io", "monitoring.coreos.com");
    custom resources of that group depend on them. Empty list: the CRDs already exist."""
    gpu_ready: list[pulumi.Resource] = field(default_factory=list)
    """What GPU workloads wait for besides GPU nodes: the GPU Operator release whose device
    plugin advertises ``nvidia.com/gpu`` (empty when the cluster already has one)."""
    secret_sync: SecretSync | None = None
    """The External Secrets Operator's store, when any credential comes from a secret manager."""

    def depends_for(self, api_group: str) -> list[pulumi.Resource]:
        return list(self.crd_owners.get(api_group, []))
