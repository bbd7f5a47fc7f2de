"""Monitoring: install kube-prometheus-stack, use an existing Prometheus by URL, or none.

Whatever the mode, the result is a ``MonitoringHandle``: the Prometheus address KEDA and
prometheus-adapter query, the labels our ServiceMonitors/PodMonitors/PrometheusRules must
carry to be selected, and the labels of Grafana dashboard ConfigMaps. Serving code never
repeats a URL or a label.

With ``install``, Prometheus selects monitors and rules by an explicit label selector
(``release: kube-prometheus-stack``: the label the chart puts on its own monitors and that
we put on ours) in an explicit list of namespaces (the add-ons' and the serving ones). The
chart's default (``*SelectorNilUsesHelmValues: true``) would silently ignore every monitor
created outside the release, which is how autoscaling ends up with no metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components.k8s import MANAGED_BY
from llm_infra.config import versions
from llm_infra.config.addons import MonitoringConfig
from llm_infra.config.credentials import CredentialSource

from .base import addon_namespace, helm_release, system_affinity
from .handles import MonitoringHandle

if TYPE_CHECKING:
    from .external_secrets import SecretSync

FULLNAME = "kube-prometheus-stack"
"""``fullnameOverride``: object names (``<fullname>-prometheus``) do not depend on the release."""
PROMETHEUS_PORT = 9090
MONITOR_LABELS = {"release": versions.KUBE_PROMETHEUS_STACK.name}
"""kube-prometheus-stack labels its own monitors ``release: <release name>``; the release is
named after the chart (``base.helm_release``), and Prometheus selects exactly this label."""
DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE = "grafana_dashboard", "1"
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_USER_KEY, GRAFANA_PASSWORD_KEY = "admin-user", "admin-password"
RETENTION_SIZE_FRACTION = 0.85
"""Prometheus deletes old blocks before its volume fills (the WAL and compaction need room)."""


@dataclass(frozen=True)
class MonitoringArgs:
    """What the monitoring stack needs: its config, the namespaces it watches and Grafana's password."""

    config: MonitoringConfig
    """``addons.monitoring``: install, use an existing Prometheus or none; retention, storage, Grafana."""
    namespaces: list[str]
    """Namespaces (besides its own) whose ServiceMonitors/PodMonitors/PrometheusRules
    Prometheus selects: the add-ons' and the serving ones."""
    dashboard_namespaces: list[str]
    """Namespaces (besides its own) whose dashboard ConfigMaps Grafana loads: the serving ones."""
    managed_control_plane: bool
    """EKS/GKE: etcd, scheduler, controller-manager and kube-proxy cannot be scraped."""
    cloud: str = "existing"
    """Which cluster DNS the chart scrapes: GKE Standard runs kube-dns, EKS CoreDNS."""
    storage_class: str | None = None
    """StorageClass of the Prometheus and Grafana volumes (None: the cluster default)."""
    grafana_admin_password: pulumi.Input[str] | None = None
    """Secret: Grafana's admin password (``grafanaAdminPassword``) when it is not synced."""
    grafana_admin_source: CredentialSource | None = None
    """Set when the password comes from the secret manager: ESO writes the Secret instead."""
    secret_sync: SecretSync | None = None
    """The External Secrets Operator's sync, when ``grafana_admin_source`` is set."""
    cluster_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """System nodes, CSI add-on and StorageClasses (``ClusterHandle.platform_ready``)."""


MANAGED_OFF = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")
"""kube-prometheus-stack scrape targets a managed control plane (EKS/GKE) does not expose."""
MANAGED_RULES_OFF = ("etcd", "kubeControllerManager", "kubeSchedulerAlerting", "kubeSchedulerRecording", "kubeProxy")
"""``defaultRules.rules`` groups about those targets (chart 88.5.3 values.yaml)."""


def prometheus_url(namespace: str) -> str:
    """The Service kube-prometheus-stack creates for Prometheus (``<fullname>-prometheus``)."""
    return f"http://{FULLNAME}-prometheus.{namespace}.svc:{PROMETHEUS_PORT}"


class Monitoring(pulumi.ComponentResource):
    """kube-prometheus-stack in ``addons.monitoring.namespace`` (mode install); only a handle otherwise."""

    handle: MonitoringHandle
    release: k8s.helm.v3.Release | None

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:Monitoring", name, None, opts)
        cfg = args.config
        self.release = None
        if cfg.mode == "none":
            self.handle = MonitoringHandle(prometheus_url=None)
        elif cfg.mode == "existing":
            self.handle = MonitoringHandle(
                prometheus_url=cfg.prometheus_url,
                monitor_labels=dict(cfg.selector_labels),
                dashboard_labels=dict(cfg.dashboard_labels),
                operator_crds=True,
                namespace=cfg.namespace,
            )
        else:
            self._install(name, args)
        self.register_outputs({"prometheusUrl": self.handle.prometheus_url, "mode": cfg.mode})

    def _install(self, name: str, args: MonitoringArgs) -> None:
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        ns = addon_namespace(
            f"{name}-ns", cfg.namespace, "privileged", child
        )  # node-exporter: hostNetwork/hostPID/hostPath
        deps: list[pulumi.Resource] = list(args.cluster_ready)
        grafana = cfg.grafana.enabled
        if grafana and args.grafana_admin_source is not None:
            assert args.secret_sync is not None, "ESO is installed when a credential uses it"
            # same Secret name and keys as below; the user is fixed, the password is the remote value
            deps.append(
                args.secret_sync.external_secret(
                    f"{name}-grafana-admin-sync",
                    cfg.namespace,
                    GRAFANA_ADMIN_SECRET,
                    args.grafana_admin_source,
                    GRAFANA_PASSWORD_KEY,
                    pulumi.ResourceOptions(parent=self, depends_on=[ns]),
                    template={
                        GRAFANA_USER_KEY: "admin",
                        GRAFANA_PASSWORD_KEY: f'{{{{ index . "{GRAFANA_PASSWORD_KEY}" }}}}',
                    },
                )
            )
        elif grafana:
            assert args.grafana_admin_password is not None, "validated: grafanaAdminPassword is set"
            deps.append(
                k8s.core.v1.Secret(
                    f"{name}-grafana-admin",
                    metadata={"name": GRAFANA_ADMIN_SECRET, "namespace": cfg.namespace, "labels": MANAGED_BY},
                    type="Opaque",
                    string_data={GRAFANA_USER_KEY: "admin", GRAFANA_PASSWORD_KEY: args.grafana_admin_password},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[ns]),
                )
            )
        self.release = helm_release(
            f"{name}-release",
            versions.KUBE_PROMETHEUS_STACK,
            cfg.namespace,
            ns,
            kube_prometheus_stack_values(args),
            child,
            depends_on=deps,
            timeout=900,  # first install: CRDs, operator, Prometheus with a new volume
        )
        self.handle = MonitoringHandle(
            prometheus_url=prometheus_url(cfg.namespace),
            monitor_labels=dict(MONITOR_LABELS),
            dashboard_labels={DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE} if grafana else {},
            operator_crds=True,
            namespace=cfg.namespace,
        )


def namespace_selector(namespaces: list[str]) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(set(namespaces))}
        ]
    }


def kube_prometheus_stack_values(args: MonitoringArgs) -> dict[str, Any]:
    cfg = args.config
    namespaces = sorted({cfg.namespace, *args.namespaces})
    selector = {"matchLabels": dict(MONITOR_LABELS)}
    ns_selector = namespace_selector(namespaces)
    volume: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{cfg.storage_gib}Gi"}},
    }
    if args.storage_class:
        volume["storageClassName"] = args.storage_class
    values: dict[str, Any] = {
        "fullnameOverride": FULLNAME,
        # Helm never upgrades crds/: the chart's pre-install/pre-upgrade hook job applies the
        # operator CRDs of the chart version server-side (chart values: crds.upgradeJob)
        "crds": {
            "upgradeJob": {
                "enabled": True,
                "image": {"busybox": {"tag": versions.KPS_CRD_UPGRADE_BUSYBOX_TAG}},
                "affinity": system_affinity(),
            }
        },
        "prometheus": {
            "prometheusSpec": {
                "retention": cfg.retention,
                "retentionSize": f"{math.floor(cfg.storage_gib * RETENTION_SIZE_FRACTION)}GiB",
                "storageSpec": {"volumeClaimTemplate": {"spec": volume}},
                "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}},
                "affinity": system_affinity(),
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "serviceMonitorSelector": selector,
                "podMonitorSelector": selector,
                "ruleSelector": selector,
                "serviceMonitorNamespaceSelector": ns_selector,
                "podMonitorNamespaceSelector": ns_selector,
                "ruleNamespaceSelector": ns_selector,
            }
        },
        "alertmanager": {"alertmanagerSpec": {"affinity": system_affinity()}},
        "prometheusOperator": {"affinity": system_affinity()},
    }
    if args.managed_control_plane:
        # The managed control plane is not scrapeable: these targets would only raise
        # "...Down"/TargetDown alerts forever; their default rule groups go with them.
        # kube-proxy: EKS binds its metrics to 127.0.0.1:10249, GKE Dataplane V2 runs none.
        for component in MANAGED_OFF:
            values[component] = {"enabled": False}
        values["defaultRules"] = {"rules": {rule: False for rule in MANAGED_RULES_OFF}}
    if args.cloud == "gke":
        # GKE Standard runs kube-dns (k8s-app=kube-dns with its dnsmasq/sidecar metrics), not
        # CoreDNS: the chart's coreDns target would be down forever (TargetDown).
        values["coreDns"] = {"enabled": False}
        values["kubeDns"] = {"enabled": True}
    if cfg.grafana.enabled:
        persistence: dict[str, Any] = {
            "enabled": True,
            "type": "pvc",
            "accessModes": ["ReadWriteOnce"],
            "size": f"{cfg.grafana.persistence_gib}Gi",
        }
        if args.storage_class:
            persistence["storageClassName"] = args.storage_class
        values["grafana"] = {
            "enabled": True,
            # The password lives only in the Secret; the chart reads it from there.
            "admin": {
                "existingSecret": GRAFANA_ADMIN_SECRET,
                "userKey": GRAFANA_USER_KEY,
                "passwordKey": GRAFANA_PASSWORD_KEY,
            },
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL,
                    "labelValue": DASHBOARD_LABEL_VALUE,
                    "searchNamespace": sorted({cfg.namespace, *args.dashboard_namespaces}),
                }
            },
            "persistence": persistence,
            "deploymentStrategy": {"type": "Recreate"},  # a ReadWriteOnce volume cannot be shared by old and new pod
            "affinity": system_affinity(),
        }
    else:
        values["grafana"] = {"enabled": False}
    return values
