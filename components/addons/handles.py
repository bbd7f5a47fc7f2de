"""What the add-ons give the serving components (no literals repeated in serving code).

Handles are frozen: a component builds its handle once, after everything it describes is
known, and whoever receives it can rely on it not changing afterwards (``dataclasses.replace``
makes an adjusted copy)."""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass(frozen=True)
class MonitoringHandle:
    """Where Prometheus is and what it selects: from ``Monitoring`` (installed or existing)."""

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


@dataclass(frozen=True)
class AddonsHandle:
    """What ``ClusterAddons`` hands the serving components."""

    monitoring: MonitoringHandle
    """Prometheus address, selector labels, CRDs and GPU metrics."""
    autoscaler: Literal["keda", "hpa", "none"]
    """KEDA ScaledObjects, plain HPAs through prometheus-adapter, or nothing."""
    crd_owners: dict[str, list[pulumi.Resource]] = field(default_factory=dict)
    """API group -> releases that install its CRDs ("keda.sh", "ray.io", "monitoring.coreos.com");
    custom resources of that group depend on them. Empty list: the CRDs already exist."""
    gpu_ready: Sequence[pulumi.Resource] = ()
    """What GPU workloads wait for besides GPU nodes: the GPU Operator release whose device
    plugin advertises ``nvidia.com/gpu`` (empty when the cluster already has one)."""
    secret_sync: SecretSync | None = None
    """The External Secrets Operator's store, when any credential comes from a secret manager."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpu_ready", tuple(self.gpu_ready))

    @classmethod
    def existing(
        cls,
        *,
        autoscaler: Literal["keda", "hpa", "none"] = "none",
        prometheus_url: str | None = None,
        monitor_labels: dict[str, str] | None = None,
        dashboard_labels: dict[str, str] | None = None,
        prometheus_namespace: str | None = None,
        operator_crds: bool | None = None,
    ) -> AddonsHandle:
        """The handle for add-ons that already run on the cluster (nothing installed here): KEDA
        (``keda``) or prometheus-adapter (``hpa``), and a Prometheus at ``prometheus_url`` that
        selects monitors by ``monitor_labels``. Their CRDs exist, so nothing is waited for.
        ``operator_crds`` (default: whether a Prometheus is given) says the prometheus-operator
        CRDs exist (ServiceMonitor, PrometheusRule)."""
        crds = prometheus_url is not None if operator_crds is None else operator_crds
        owners: dict[str, list[pulumi.Resource]] = {}
        if autoscaler == "keda":
            owners[KEDA_GROUP] = []
        if crds:
            owners[MONITORING_GROUP] = []
        return cls(
            monitoring=MonitoringHandle(
                prometheus_url=prometheus_url,
                monitor_labels=dict(monitor_labels or {}),
                dashboard_labels=dict(dashboard_labels or {}),
                operator_crds=crds,
                namespace=prometheus_namespace,
            ),
            autoscaler=autoscaler,
            crd_owners=owners,
        )

    def depends_for(self, api_group: str) -> list[pulumi.Resource]:
        return list(self.crd_owners.get(api_group, []))
