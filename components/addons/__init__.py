"""Cluster add-ons through Helm, each switchable per stack (config ``addons``).

``ClusterAddons`` composes one component per add-on and hands the serving components an
``AddonsHandle``: the Prometheus address, the labels monitors and dashboards must carry,
which autoscaler to use, and which releases own the CRDs their custom resources need.

Order of installation (as dependencies, so Pulumi runs the rest in parallel):
monitoring (prometheus-operator CRDs) -> GPU Operator, KEDA, KubeRay (their ServiceMonitors)
and prometheus-adapter (queries that Prometheus).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from llm_infra.components.cluster.base import ClusterHandle
from llm_infra.config import versions
from llm_infra.config.addons import AddonsConfig
from llm_infra.config.cluster import ClusterConfig
from llm_infra.config.credentials import CredentialsConfig

from . import gpu_operator, keda, kuberay, prometheus_adapter
from .external_secrets import ExternalSecrets, ExternalSecretsArgs
from .gpu_operator import GpuOperator, GpuOperatorArgs
from .handles import (
    EXTERNAL_SECRETS_GROUP,
    KEDA_GROUP,
    LWS_GROUP,
    MONITORING_GROUP,
    RAY_GROUP,
    AddonsHandle,
    MonitoringHandle,
)
from .keda import Keda, KedaArgs
from .kuberay import KubeRayArgs, KubeRayOperator
from .lws import LeaderWorkerSetController, LwsArgs
from .monitoring import Monitoring, MonitoringArgs
from .prometheus_adapter import PrometheusAdapter, PrometheusAdapterArgs


@dataclass(frozen=True)
class AddonsArgs:
    """What ``ClusterAddons`` needs: the add-on config and facts about the cluster, not the stack."""

    addons: AddonsConfig
    """Which add-ons to install and how (``addons`` of the stack config)."""
    cluster: ClusterHandle
    """The cluster component's handle: provider, node-pool facts, StorageClasses, readiness."""
    cluster_config: ClusterConfig
    """The cluster's config: cloud (managed control plane, GPU driver), region, names, protect."""
    serving_namespaces: Sequence[str]
    """Namespaces the models run in: dashboards, prometheus-adapter rules and scrapes cover them."""
    grafana_admin_password: pulumi.Input[str] | None = None
    """Secret: Grafana's admin password when Grafana is installed and the password is not synced."""
    credentials: CredentialsConfig = field(default_factory=CredentialsConfig)
    """Credentials from the cloud's secret manager (installs the External Secrets Operator)."""
    ray_services: bool = False
    """Whether RayLlmServices will run: KubeRay is installed for them unless ``addons.kuberay.enabled``
    says otherwise (``StackPlan.needs_kuberay``)."""

    multi_node_models: bool = False
    """Whether LeaderWorkerSet models will run: the LWS controller is installed for them unless
    ``addons.lws`` says otherwise (``StackPlan.needs_lws``)."""

    @property
    def needs_kuberay(self) -> bool:
        enabled = self.addons.kuberay.enabled
        return self.ray_services if enabled is None else enabled

    @property
    def needs_lws(self) -> bool:
        lws = self.addons.lws
        if lws.already_installed:
            return False
        return self.multi_node_models if lws.enabled is None else lws.enabled


class ClusterAddons(pulumi.ComponentResource):
    """Every add-on the stack enables; ``handle`` is what serving components need from them."""

    handle: AddonsHandle
    """Frozen: built once every add-on is declared."""
    prometheus_url: pulumi.Output[str | None]
    """Where Prometheus answers queries (installed or existing); None without monitoring."""
    autoscaler: pulumi.Output[str]
    """``keda``, ``hpa`` (prometheus-adapter) or ``none``: how models scale."""
    releases: dict[str, pulumi.Resource]
    """Helm releases by chart name."""

    # C901 waived: the args redesign of issue 16 rewrites this constructor; split it there, not twice
    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None):  # noqa: C901
        super().__init__("llm-infra:addons:ClusterAddons", name, None, opts)
        addons = args.addons
        cloud = args.cluster_config.cloud
        child = pulumi.ResourceOptions(parent=self)
        installs_kuberay = args.needs_kuberay and not addons.kuberay.already_installed
        # every release waits for the system nodes, the CSI add-on and the StorageClasses
        ready = list(args.cluster.platform_ready)

        # credentials from the cloud's secret manager: ESO first, its ExternalSecrets feed Grafana and the models
        self.external_secrets: ExternalSecrets | None = None
        synced = args.credentials.from_secret_manager()
        if synced:
            self.external_secrets = ExternalSecrets(
                f"{name}-external-secrets",
                ExternalSecretsArgs(
                    cluster_config=args.cluster_config,
                    credentials=args.credentials,
                    cluster=args.cluster,
                    cluster_ready=ready,
                ),
                opts=child,
            )
        sync = self.external_secrets.sync if self.external_secrets is not None else None

        namespaces = list(args.serving_namespaces)
        if addons.gpu_operator.enabled:
            namespaces.append(gpu_operator.NAMESPACE)
        if addons.keda.enabled:
            namespaces.append(keda.NAMESPACE)
        if installs_kuberay:
            namespaces.append(kuberay.NAMESPACE)
        if addons.prometheus_adapter.enabled:
            namespaces.append(prometheus_adapter.NAMESPACE)

        self.monitoring = Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(
                config=addons.monitoring,
                namespaces=namespaces,
                dashboard_namespaces=list(args.serving_namespaces),
                managed_control_plane=cloud in ("eks", "gke"),
                cloud=cloud,
                storage_class=args.cluster.storage_class,
                grafana_admin_password=args.grafana_admin_password,
                grafana_admin_source=synced.get("grafanaAdminPassword"),
                secret_sync=sync,
                cluster_ready=ready,
            ),
            opts=child,
        )
        installed = self.monitoring.handle
        # DCGM exporter metrics (with the workload's pod labels) reach Prometheus: decided here,
        # before any add-on receives the handle, so no one sees it change
        mon = dataclasses.replace(
            installed,
            gpu_metrics=addons.gpu_operator.enabled
            and addons.gpu_operator.dcgm_exporter
            and installed.prometheus_url is not None
            and installed.operator_crds,
        )
        mon_crds: list[pulumi.Resource] = [self.monitoring.release] if self.monitoring.release is not None else []

        self.releases: dict[str, pulumi.Resource] = {}
        if self.external_secrets is not None:
            self.releases[versions.EXTERNAL_SECRETS.name] = self.external_secrets.release
        if self.monitoring.release is not None:
            self.releases[versions.KUBE_PROMETHEUS_STACK.name] = self.monitoring.release
        gpu_ready: list[pulumi.Resource] = []
        if addons.gpu_operator.enabled:
            op = GpuOperator(
                f"{name}-gpu-operator",
                GpuOperatorArgs(
                    config=addons.gpu_operator,
                    cluster=args.cluster_config,
                    pools=args.cluster.pools,
                    monitoring=mon,
                    monitoring_crds=mon_crds,
                    cluster_ready=ready,
                ),
                opts=child,
            )
            self.releases[versions.GPU_OPERATOR.name] = op.release
            gpu_ready.append(op.release)

        keda_owners: list[pulumi.Resource] = []
        if addons.keda.enabled:
            k = Keda(
                f"{name}-keda", KedaArgs(monitoring=mon, monitoring_crds=mon_crds, cluster_ready=ready), opts=child
            )
            self.releases[versions.KEDA.name] = k.release
            keda_owners.append(k.release)

        ray_owners: list[pulumi.Resource] = []
        if installs_kuberay:
            kr = KubeRayOperator(
                f"{name}-kuberay",
                KubeRayArgs(monitoring=mon, monitoring_crds=mon_crds, cluster_ready=ready),
                opts=child,
            )
            self.releases[versions.KUBERAY_OPERATOR.name] = kr.release
            ray_owners.append(kr.release)

        lws_owners: list[pulumi.Resource] = []
        if args.needs_lws:
            controller = LeaderWorkerSetController(f"{name}-lws", LwsArgs(cluster_ready=ready), opts=child)
            self.releases[versions.LWS.name] = controller.release
            lws_owners.append(controller.release)

        if addons.prometheus_adapter.enabled:
            assert mon.prometheus_url is not None, "validated: the adapter needs monitoring"
            pa = PrometheusAdapter(
                f"{name}-prometheus-adapter",
                PrometheusAdapterArgs(
                    prometheus_url=mon.prometheus_url,
                    serving_namespaces=list(args.serving_namespaces),
                    depends_on=mon_crds,
                    cluster_ready=ready,
                ),
                opts=child,
            )
            self.releases[versions.PROMETHEUS_ADAPTER.name] = pa.release

        crd_owners: dict[str, list[pulumi.Resource]] = {}
        if addons.keda.available:
            crd_owners[KEDA_GROUP] = keda_owners
        if args.needs_kuberay or addons.kuberay.already_installed:
            crd_owners[RAY_GROUP] = ray_owners
        if args.needs_lws or addons.lws.already_installed:
            crd_owners[LWS_GROUP] = lws_owners
        if mon.operator_crds:
            crd_owners[MONITORING_GROUP] = mon_crds
        if self.external_secrets is not None:
            crd_owners[EXTERNAL_SECRETS_GROUP] = [self.external_secrets.release]

        if addons.keda.available:
            autoscaler = "keda"
        elif addons.prometheus_adapter.enabled:
            autoscaler = "hpa"
        else:
            autoscaler = "none"
        self.handle = AddonsHandle(
            monitoring=mon, autoscaler=autoscaler, crd_owners=crd_owners, gpu_ready=gpu_ready, secret_sync=sync
        )
        self.prometheus_url = pulumi.Output.from_input(mon.prometheus_url)
        self.autoscaler = pulumi.Output.from_input(autoscaler)
        self.register_outputs(
            {
                "releases": sorted(self.releases),
                "autoscaler": self.autoscaler,
                "prometheusUrl": self.prometheus_url,
            }
        )


__all__ = ["AddonsArgs", "AddonsHandle", "ClusterAddons", "MonitoringHandle"]
