"""Cross-field checks: Add-ons versus what the serving stacks need from them."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..addons import ADDON_NAMESPACES
from ..facts import DEVICE_PLUGIN_CONFIG_LABEL, NodePoolFacts
from .base import Issues, Stack


def check_addons(stack: Stack, pools: dict[str, NodePoolFacts]) -> Issues:
    out = Issues()
    addons = stack.config.addons
    kr = addons.kuberay
    if kr.enabled and kr.already_installed:
        out.add("addons.kuberay", "set either enabled (we install KubeRay) or alreadyInstalled (use the cluster's)")
    if stack.config.ray_services and kr.enabled is False and not kr.already_installed:
        out.add(
            "addons.kuberay.enabled",
            "rayServices need the KubeRay operator (enable it or set alreadyInstalled)",
        )
    out += check_gpu_operator(stack, pools)
    if stack.config.namespace in ADDON_NAMESPACES:
        out.add("namespace", f"'{stack.config.namespace}' is an add-on's namespace; serve the models from their own")
    mon = addons.monitoring
    if mon.mode == "existing" and not mon.selector_labels:
        out.add(
            "addons.monitoring.selectorLabels",
            "required with mode 'existing': the labels your Prometheus selects ServiceMonitors, PodMonitors "
            "and PrometheusRules by (e.g. {release: prometheus}); without them our monitors are silently ignored",
        )
    if mon.mode == "install" and mon.namespace in {stack.config.namespace, *ADDON_NAMESPACES}:
        out.add(
            "addons.monitoring.namespace",
            f"'{mon.namespace}' is already used by {'the models' if mon.namespace == stack.config.namespace else 'another add-on'}; kube-prometheus-stack needs its own",
        )
    if mon.mode == "existing" and mon.prometheus_url:
        host = (urlsplit(mon.prometheus_url).hostname or "").split(".")
        if len(host) >= 3 and host[2] == "svc" and host[1] != mon.namespace:
            out.add(
                "addons.monitoring.namespace",
                f"prometheusUrl points into namespace '{host[1]}', not '{mon.namespace}': the models' NetworkPolicy would block its scrapes",
            )
    for key, alias in (("selector_labels", "selectorLabels"), ("dashboard_labels", "dashboardLabels")):
        if mon.mode != "existing" and getattr(mon, key):
            out.add(f"addons.monitoring.{alias}", f"only used with mode 'existing' (mode is '{mon.mode}')")
    installs_grafana = mon.mode == "install" and mon.grafana.enabled
    if installs_grafana and not stack.has_credential("grafanaAdminPassword"):
        out.add(
            "grafanaAdminPassword",
            "monitoring installs Grafana: set its admin password with pulumi config set --secret grafanaAdminPassword",
        )
    elif not installs_grafana and "grafanaAdminPassword" in stack.secrets:
        # a credential nothing reads would be silently ignored
        out.add(
            "grafanaAdminPassword",
            f"not used: no Grafana is installed (addons.monitoring.mode '{mon.mode}'"
            f"{'' if mon.mode != 'install' else ', grafana.enabled false'}); remove it with pulumi config rm grafanaAdminPassword",
        )
    if addons.prometheus_adapter.enabled and mon.mode == "none":
        out.add(
            "addons.prometheusAdapter.enabled",
            "reads metrics from Prometheus, but addons.monitoring.mode is 'none'",
        )
    if addons.gpu_operator.mig_strategy != "none" and not any(pool.mig_capable for pool in pools.values()):
        out.add("addons.gpuOperator.migStrategy", "no node pool has MIG-capable GPUs (A100/H100)")
    return out


def check_gpu_operator(stack: Stack, pools: dict[str, NodePoolFacts]) -> Issues:
    """Driver/toolkit settings against what the node image or GKE already installs."""
    out = Issues()
    op = stack.config.addons.gpu_operator
    c = stack.config.cluster
    gke_driver = c.gke.gpu_driver if c.gke else None
    if c.cloud == "gke" and gke_driver == "operator":
        if not op.enabled:
            out.add(
                "cluster.gke.gpuDriver",
                "'operator' leaves the nodes without a driver for the GPU Operator to install, but addons.gpuOperator.enabled is false",
            )
        elif op.driver == "disabled":
            out.add(
                "addons.gpuOperator.driver",
                "cluster.gke.gpuDriver 'operator' turns GKE's driver installation off; the GPU Operator must install it (auto or enabled)",
            )
    if not op.enabled:
        return out
    if op.driver == "enabled" and c.cloud == "eks":
        out.add(
            "addons.gpuOperator.driver",
            "the EKS NVIDIA AMIs (AL2023/Bottlerocket) ship the driver; a second, containerized driver conflicts (use auto or disabled)",
        )
    if op.driver == "enabled" and c.cloud == "gke" and gke_driver == "gke":
        out.add(
            "addons.gpuOperator.driver",
            "GKE installs the driver (cluster.gke.gpuDriver 'gke'); set cluster.gke.gpuDriver 'operator' to let the GPU Operator install it",
        )
    if c.cloud == "existing":
        for i, p in enumerate(c.node_pools):
            facts = pools.get(p.name)
            if facts is not None and facts.sharing_strategy != "none" and not facts.device_plugin_config:
                out.add(
                    f"cluster.nodePools[{i}].nodeSelector",
                    f"gpuSharing needs the nodes labelled {DEVICE_PLUGIN_CONFIG_LABEL}=<name> (the device plugin picks "
                    f"its sharing config by it); label them and add the label here",
                )
    return out
