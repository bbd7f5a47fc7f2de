"""Cluster add-ons installed through Helm, each one switchable per stack."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import ConfigModel

GPU_OPERATOR_NAMESPACE = "gpu-operator"
KEDA_NAMESPACE = "keda"
KUBERAY_NAMESPACE = "kuberay-system"
PROMETHEUS_ADAPTER_NAMESPACE = "prometheus-adapter"
LWS_NAMESPACE = "lws-system"
"""The LeaderWorkerSet controller's namespace (the name its installation guide uses)."""
ADDON_NAMESPACES = (
    GPU_OPERATOR_NAMESPACE,
    KEDA_NAMESPACE,
    KUBERAY_NAMESPACE,
    PROMETHEUS_ADAPTER_NAMESPACE,
    LWS_NAMESPACE,
)
"""Namespaces the add-ons are installed into (monitoring: ``addons.monitoring.namespace``)."""


class GpuOperatorConfig(ConfigModel):
    enabled: bool = True
    driver: Literal["auto", "enabled", "disabled"] = Field(
        default="auto",
        description="auto: off where the node image or GKE installs the driver (EKS AL2023/Bottlerocket "
        "NVIDIA AMIs, GKE with gpuDriver 'gke'), on otherwise",
    )
    toolkit: Literal["auto", "enabled", "disabled"] = Field(
        default="auto", description="auto: off on EKS NVIDIA AMIs (they ship the container toolkit), on elsewhere"
    )
    mig_strategy: Literal["none", "single", "mixed"] = "none"
    dcgm_exporter: bool = True


class KedaConfig(ConfigModel):
    enabled: bool = True
    already_installed: bool = Field(
        default=False, description="KEDA is installed by someone else: use it, do not install the chart"
    )

    @model_validator(mode="after")
    def _either(self) -> KedaConfig:
        if self.enabled and self.already_installed:
            raise ValueError("set either enabled (we install KEDA) or alreadyInstalled (use the cluster's)")
        return self

    @property
    def available(self) -> bool:
        return self.enabled or self.already_installed


class KubeRayConfig(ConfigModel):
    enabled: bool | None = Field(default=None, description="default: installed when a rayService is configured")
    already_installed: bool = False


class GrafanaConfig(ConfigModel):
    enabled: bool = True
    persistence_gib: int = Field(default=10, ge=1)


class MonitoringConfig(ConfigModel):
    mode: Literal["install", "existing", "none"] = Field(
        default="install", description="install kube-prometheus-stack, use an existing Prometheus by URL, or none"
    )
    prometheus_url: str | None = Field(
        default=None, pattern=r"^https?://", description="existing Prometheus (mode: existing)"
    )
    selector_labels: dict[str, str] = Field(
        default_factory=dict,
        description="labels the existing Prometheus selects ServiceMonitors/PodMonitors/rules by "
        "(mode: existing), e.g. {release: prometheus}",
    )
    dashboard_labels: dict[str, str] = Field(
        default_factory=dict,
        description="labels the existing Grafana's dashboard sidecar loads ConfigMaps by (mode: existing), "
        "e.g. {grafana_dashboard: '1'}; empty: no dashboards",
    )
    namespace: str = Field(
        default="monitoring",
        description="namespace of Prometheus (ours or the existing one): NetworkPolicies let it scrape the models",
    )
    retention: str = Field(default="15d", pattern=r"^\d+[dhw]$")
    storage_gib: int = Field(default=50, ge=1)
    grafana: GrafanaConfig = GrafanaConfig()

    @model_validator(mode="after")
    def _url(self) -> MonitoringConfig:
        if self.mode == "existing" and not self.prometheus_url:
            raise ValueError("mode 'existing' needs prometheusUrl")
        if self.mode != "existing" and self.prometheus_url:
            raise ValueError(f"prometheusUrl is only used with mode 'existing' (mode is '{self.mode}')")
        return self


class PrometheusAdapterConfig(ConfigModel):
    """Serves vLLM metrics on the custom metrics API for plain HPAs (when KEDA is off)."""

    enabled: bool = False


class LwsAddonConfig(ConfigModel):
    """The LeaderWorkerSet controller (kubernetes-sigs/lws Helm chart)."""

    enabled: bool | None = Field(default=None, description="default: installed when a multiNodeModel is configured")
    already_installed: bool = Field(default=False, description="the cluster runs LWS already: use it")

    @model_validator(mode="after")
    def _either(self) -> LwsAddonConfig:
        if self.enabled and self.already_installed:
            raise ValueError("set either enabled (we install LWS) or alreadyInstalled (use the cluster's)")
        return self


class AddonsConfig(ConfigModel):
    gpu_operator: GpuOperatorConfig = GpuOperatorConfig()
    keda: KedaConfig = KedaConfig()
    kuberay: KubeRayConfig = KubeRayConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    prometheus_adapter: PrometheusAdapterConfig = PrometheusAdapterConfig()
    lws: LwsAddonConfig = LwsAddonConfig()
