"""NVIDIA GPU Operator: device plugin, GPU Feature Discovery, DCGM exporter, MIG, sharing.

The values follow what the node image already provides:

* EKS AL2023/Bottlerocket NVIDIA AMIs ship driver and container toolkit: both off
  (``auto``), the operator only adds the device plugin, GFD and DCGM exporter; CDI stays
  off with the toolkit (the AMI's nvidia runtime injects the GPUs).
* GKE, one path per ``cluster.gke.gpuDriver`` (NVIDIA "GPU Operator with Google GKE",
  https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/google-gke.html, for
  GPU Operator v26.7.0; GKE "Manage the GPU stack with the NVIDIA GPU Operator on GKE",
  https://cloud.google.com/kubernetes-engine/docs/how-to/gpu-operator):

  - ``gke``: GKE-managed drivers (``gpu_driver_version`` DEFAULT/LATEST) and GKE's own
    device plugin, which also does time-sharing/MPS (the pool's ``gpu_sharing_config``).
    The operator adds only GFD and the DCGM exporter: its driver and device plugin are off,
    its toolkit points at GKE's driver in ``/home/kubernetes/bin/nvidia``
    (``hostPaths.driverInstallDir``/``toolkit.installDir``, CDI on, as NVIDIA's page sets
    them for the Google driver installer).
  - ``operator``: NVIDIA's driver manager path (Ubuntu nodes, ``INSTALLATION_DISABLED``,
    ``gke-no-default-nvidia-gpu-device-plugin=true``): the operator installs the driver
    (chart default ``driver.version``), toolkit and device plugin.

  Either way critical-priority pods are allowed by a ResourceQuota and the toolkit reads
  containerd's config from the file (NVIDIA's known issue for GKE 1.33+).
* Existing clusters: the operator installs the driver unless ``addons.gpuOperator.driver``
  says otherwise.

Time-slicing/MPS come from each pool's ``gpuSharing``: one entry per shared pool in the
device-plugin ConfigMap, chosen per node by the ``nvidia.com/device-plugin.config`` label
that the pool puts on its nodes (``NodePoolFacts.device_plugin_config``).
"""

# `pyright: ignore[reportArgumentType]` on a resource's metadata/spec: pulumi_kubernetes types them as its
# *Args TypedDicts; these manifests are plain dicts, validated against the Kubernetes OpenAPI schema of the
# pinned version by tests/test_rendered_schemas.py instead.
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from llm_infra.components.k8s import MANAGED_BY
from llm_infra.config import NodePoolFacts, versions
from llm_infra.config.addons import GPU_OPERATOR_NAMESPACE, GpuOperatorConfig
from llm_infra.config.cluster import ClusterConfig
from llm_infra.config.facts import operator_device_plugin

from .base import addon_namespace, gpu_pool_tolerations, helm_release
from .handles import MonitoringHandle

NAMESPACE = GPU_OPERATOR_NAMESPACE
DEVICE_PLUGIN_CONFIG_MAP = "device-plugin-config"
DEFAULT_DEVICE_PLUGIN_CONFIG = "default"
GPU_RESOURCE = "nvidia.com/gpu"
GKE_NVIDIA_DIR = "/home/kubernetes/bin/nvidia"
"""Where GKE's driver installer puts the driver; writable and persistent on GKE images."""
DCGM_SCRAPE_INTERVAL = "15s"
CONTROL_PLANE_TOLERATION = {
    "key": "node-role.kubernetes.io/control-plane",
    "operator": "Equal",
    "value": "",
    "effect": "NoSchedule",
}


@dataclass(frozen=True)
class GpuOperatorArgs:
    """What the GPU Operator needs: its config, the cluster's cloud, the GPU pools and monitoring."""

    config: GpuOperatorConfig
    """``addons.gpuOperator``: driver, toolkit, MIG strategy, DCGM exporter."""
    cluster: ClusterConfig
    """The cluster's config: its cloud decides the driver/toolkit defaults and GKE's quirks."""
    pools: Mapping[str, NodePoolFacts]
    """GPU node pools by name: their taints (tolerated) and GPU sharing (device-plugin configs)."""
    monitoring: MonitoringHandle
    """Prometheus facts: whether the DCGM exporter gets a ServiceMonitor, and its labels."""
    monitoring_crds: Sequence[pulumi.Resource] = field(default_factory=list)
    """Releases installing the ServiceMonitor CRD the DCGM exporter's monitor needs."""
    cluster_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """System nodes, CSI add-on and StorageClasses (``ClusterHandle.platform_ready``)."""


def driver_enabled(cfg: GpuOperatorConfig, cluster: ClusterConfig) -> bool:
    if cfg.driver != "auto":
        return cfg.driver == "enabled"
    if cluster.cloud == "eks":
        return False  # AL2023/Bottlerocket NVIDIA AMIs ship the driver
    if cluster.cloud == "gke":
        return cluster.gke is not None and cluster.gke.gpu_driver == "operator"
    return True


def toolkit_enabled(cfg: GpuOperatorConfig, cluster: ClusterConfig) -> bool:
    if cfg.toolkit != "auto":
        return cfg.toolkit == "enabled"
    return cluster.cloud != "eks"  # the EKS NVIDIA AMIs ship the container toolkit


def device_plugin_configs(pools: Mapping[str, NodePoolFacts], mig_strategy: str) -> dict[str, str]:
    """ConfigMap data: a default entry plus one per shared pool (empty when none shares).

    ``renameByDefault: false`` keeps the resource name ``nvidia.com/gpu`` (what our pods
    request); ``failRequestsGreaterThanOne`` rejects pods asking for two slices of one GPU,
    which would not give them more GPU.
    """
    shared = {
        p.device_plugin_config: p for p in pools.values() if p.sharing_strategy != "none" and p.device_plugin_config
    }
    if not shared:
        return {}
    flags = {"migStrategy": mig_strategy}
    data = {DEFAULT_DEVICE_PLUGIN_CONFIG: yaml.safe_dump({"version": "v1", "flags": flags}, sort_keys=False)}
    for key, pool in sorted(shared.items()):
        resources = [{"name": GPU_RESOURCE, "replicas": pool.clients_per_gpu}]
        if pool.sharing_strategy == "time-slicing":
            sharing = {
                "timeSlicing": {"renameByDefault": False, "failRequestsGreaterThanOne": True, "resources": resources}
            }
        else:
            sharing = {"mps": {"renameByDefault": False, "resources": resources}}
        data[key] = yaml.safe_dump({"version": "v1", "flags": flags, "sharing": sharing}, sort_keys=False)
    return data


def gpu_operator_values(args: GpuOperatorArgs, sharing: bool) -> dict[str, Any]:
    cfg, cluster = args.config, args.cluster
    gke = cluster.cloud == "gke"
    driver = driver_enabled(cfg, cluster)
    toolkit_on = toolkit_enabled(cfg, cluster)
    toolkit: dict[str, Any] = {"enabled": toolkit_on}
    values: dict[str, Any] = {
        "driver": {"enabled": driver},
        "toolkit": toolkit,
        # CDI (the chart default) injects GPUs through the container runtime's CDI support,
        # which the operator's toolkit configures. Without it (EKS AMIs) the image's own
        # nvidia runtime does the injection, as with AWS's standalone device-plugin setup.
        "cdi": {"enabled": toolkit_on},
        "mig": {"strategy": cfg.mig_strategy},
        # MIG manager applies its default ("all-disabled") to MIG-capable nodes: only run it
        # when we manage MIG, never behind the back of an admin who partitioned by hand.
        "migManager": {"enabled": cfg.mig_strategy != "none"},
        "gfd": {"enabled": True},
    }
    if not operator_device_plugin(cluster, True):
        # GKE-managed drivers come with GKE's device plugin; a second one would double-advertise
        values["devicePlugin"] = {"enabled": False}
    if gke:
        toolkit["env"] = [{"name": "RUNTIME_CONFIG_SOURCE", "value": "file"}]
        if not driver:
            values["hostPaths"] = {"driverInstallDir": GKE_NVIDIA_DIR}
            toolkit["installDir"] = GKE_NVIDIA_DIR
        if cfg.mig_strategy != "none":
            values["migManager"]["env"] = [{"name": "WITH_REBOOT", "value": "true"}]
    if sharing:
        values["devicePlugin"] = {"config": {"name": DEVICE_PLUGIN_CONFIG_MAP, "default": DEFAULT_DEVICE_PLUGIN_CONFIG}}
    mon = args.monitoring
    dcgm: dict[str, Any] = {"enabled": cfg.dcgm_exporter}
    if cfg.dcgm_exporter:
        if sharing:
            # one series per pod sharing a GPU (label vgpu), instead of one pod picked at random
            dcgm["env"] = [{"name": "KUBERNETES_VIRTUAL_GPUS", "value": "true"}]
        scraped = mon.prometheus_url is not None and mon.operator_crds
        service_monitor: dict[str, Any] = {"enabled": scraped}
        dcgm["serviceMonitor"] = service_monitor
        if scraped:
            service_monitor.update(
                {
                    # The exporter labels each GPU's series with the pod/namespace using it;
                    # without honorLabels Prometheus overwrites them with the exporter's own
                    # and per-workload GPU queries match nothing (seed 002).
                    "honorLabels": True,
                    "interval": DCGM_SCRAPE_INTERVAL,
                    "additionalLabels": dict(mon.monitor_labels),
                }
            )
    values["dcgmExporter"] = dcgm
    tolerations = gpu_pool_tolerations(args.pools.values())
    if tolerations:
        values["daemonsets"] = {"tolerations": tolerations}
        values["node-feature-discovery"] = {"worker": {"tolerations": [CONTROL_PLANE_TOLERATION, *tolerations]}}
    return values


class GpuOperator(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:GpuOperator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = addon_namespace(
            f"{name}-ns", NAMESPACE, "privileged", child
        )  # driver, toolkit, device plugin: host access
        after_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        deps: list[pulumi.Resource] = [*args.monitoring_crds, *args.cluster_ready]
        if args.cluster.cloud == "gke":
            # GKE admits system-node-critical/-cluster-critical pods outside kube-system only
            # up to a ResourceQuota that names those priority classes.
            deps.append(
                k8s.core.v1.ResourceQuota(
                    f"{name}-critical-pods",
                    metadata={"name": "gpu-operator-quota", "namespace": NAMESPACE, "labels": MANAGED_BY},
                    spec={  # pyright: ignore[reportArgumentType]
                        "hard": {"pods": "100"},
                        "scopeSelector": {
                            "matchExpressions": [
                                {
                                    "operator": "In",
                                    "scopeName": "PriorityClass",
                                    "values": ["system-node-critical", "system-cluster-critical"],
                                }
                            ]
                        },
                    },
                    opts=after_ns,
                )
            )
        configs = device_plugin_configs(args.pools, args.config.mig_strategy)
        if configs:
            deps.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-device-plugin-config",
                    metadata={"name": DEVICE_PLUGIN_CONFIG_MAP, "namespace": NAMESPACE, "labels": MANAGED_BY},
                    data=configs,
                    opts=after_ns,
                )
            )
        self.values = gpu_operator_values(args, sharing=bool(configs))
        self.release = helm_release(
            f"{name}-release", versions.GPU_OPERATOR, NAMESPACE, ns, self.values, child, depends_on=deps, timeout=600
        )
        self.register_outputs({"namespace": NAMESPACE, "driver": self.values["driver"]["enabled"]})
