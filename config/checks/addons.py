"""Cross-field checks: Add-ons versus what the serving stacks need from them."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..addons import ADDON_NAMESPACES
from ..facts import DEVICE_PLUGIN_CONFIG_LABEL
from .base import CheckerBase


class AddonChecks(CheckerBase):
    # -- add-ons -------------------------------------------------------------------------
    def check_addons(self) -> None:
        addons = self.config.addons
        kr = addons.kuberay
        if kr.enabled and kr.already_installed:
            self.add(
                "addons.kuberay", "set either enabled (we install KubeRay) or alreadyInstalled (use the cluster's)"
            )
        if self.config.ray_services:
            if kr.enabled is False and not kr.already_installed:
                self.add(
                    "addons.kuberay.enabled",
                    "rayServices need the KubeRay operator (enable it or set alreadyInstalled)",
                )
        self.check_gpu_operator()
        if self.config.namespace in ADDON_NAMESPACES:
            self.add(
                "namespace", f"'{self.config.namespace}' is an add-on's namespace; serve the models from their own"
            )
        mon = addons.monitoring
        if mon.mode == "existing" and not mon.selector_labels:
            self.add(
                "addons.monitoring.selectorLabels",
                "required with mode 'existing': the labels your Prometheus selects ServiceMonitors, PodMonitors "
                "and PrometheusRules by (e.g. {release: prometheus}); without them our monitors are silently ignored",
            )
        if mon.mode == "install" and mon.namespace in {self.config.namespace, *ADDON_NAMESPACES}:
            self.add(
                "addons.monitoring.namespace",
                f"'{mon.namespace}' is already used by {'the models' if mon.namespace == self.config.namespace else 'another add-on'}; kube-prometheus-stack needs its own",
            )
        if mon.mode == "existing" and mon.prometheus_url:
            host = (urlsplit(mon.prometheus_url).hostname or "").split(".")
            if len(host) >= 3 and host[2] == "svc" and host[1] != mon.namespace:
                self.add(
                    "addons.monitoring.namespace",
                    f"prometheusUrl points into namespace '{host[1]}', not '{mon.namespace}': the models' NetworkPolicy would block its scrapes",
                )
        for key, alias in (("selector_labels", "selectorLabels"), ("dashboard_labels", "dashboardLabels")):
            if mon.mode != "existing" and getattr(mon, key):
                self.add(f"addons.monitoring.{alias}", f"only used with mode 'existing' (mode is '{mon.mode}')")
        installs_grafana = mon.mode == "install" and mon.grafana.enabled
        if installs_grafana and not self.has_credential("grafanaAdminPassword"):
            self.add(
                "grafanaAdminPassword",
                "monitoring installs Grafana: set its admin password with pulumi config set --secret grafanaAdminPassword",
            )
        elif not installs_grafana and "grafanaAdminPassword" in self.secrets:
            # a credential nothing reads would be silently ignored
            self.add(
                "grafanaAdminPassword",
                f"not used: no Grafana is installed (addons.monitoring.mode '{mon.mode}'"
                f"{'' if mon.mode != 'install' else ', grafana.enabled false'}); remove it with pulumi config rm grafanaAdminPassword",
            )
        if addons.prometheus_adapter.enabled and mon.mode == "none":
            self.add(
                "addons.prometheusAdapter.enabled",
                "reads metrics from Prometheus, but addons.monitoring.mode is 'none'",
            )
        if addons.gpu_operator.mig_strategy != "none":
            for name, pool in self.pools.items():
                if pool.mig_capable:
                    break
            else:
                self.add("addons.gpuOperator.migStrategy", "no node pool has MIG-capable GPUs (A100/H100)")

    def check_gpu_operator(self) -> None:
        """Driver/toolkit settings against what the node image or GKE already installs."""
        op = self.config.addons.gpu_operator
        c = self.config.cluster
        gke_driver = c.gke.gpu_driver if c.gke else None
        if c.cloud == "gke" and gke_driver == "operator":
            if not op.enabled:
                self.add(
                    "cluster.gke.gpuDriver",
                    "'operator' leaves the nodes without a driver for the GPU Operator to install, but addons.gpuOperator.enabled is false",
                )
            elif op.driver == "disabled":
                self.add(
                    "addons.gpuOperator.driver",
                    "cluster.gke.gpuDriver 'operator' turns GKE's driver installation off; the GPU Operator must install it (auto or enabled)",
                )
        if not op.enabled:
            return
        if op.driver == "enabled" and c.cloud == "eks":
            self.add(
                "addons.gpuOperator.driver",
                "the EKS NVIDIA AMIs (AL2023/Bottlerocket) ship the driver; a second, containerized driver conflicts (use auto or disabled)",
            )
        if op.driver == "enabled" and c.cloud == "gke" and gke_driver == "gke":
            self.add(
                "addons.gpuOperator.driver",
                "GKE installs the driver (cluster.gke.gpuDriver 'gke'); set cluster.gke.gpuDriver 'operator' to let the GPU Operator install it",
            )
        if c.cloud == "existing":
            for i, p in enumerate(c.node_pools):
                facts = self.pools.get(p.name)
                if facts is not None and facts.sharing_strategy != "none" and not facts.device_plugin_config:
                    self.add(
                        f"cluster.nodePools[{i}].nodeSelector",
                        f"gpuSharing needs the nodes labelled {DEVICE_PLUGIN_CONFIG_LABEL}=<name> (the device plugin picks "
                        f"its sharing config by it); label them and add the label here",
                    )
