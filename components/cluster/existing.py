"""An existing cluster (on-prem, kind, minikube, or a cloud cluster managed elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.config import NodePoolFacts
from llm_infra.config.cluster import ClusterConfig

from .base import ClusterHandle


@dataclass(frozen=True)
class ExistingClusterArgs:
    cluster: ClusterConfig
    """The cluster's config (``cluster`` of the stack config): cloud, names, node pools, protect."""
    pools: dict[str, NodePoolFacts]
    """GPU node-pool facts by pool name (``StackPlan.pools``)."""
    kubeconfig: pulumi.Input[str] | None = None
    """Secret: the kubeconfig (e.g. the secret config 'kubeconfig'); None: cluster.existing.kubeconfigPath is read."""


def _offline() -> bool:
    """Whether the program runs under the offline render's mocks (not ``pulumi up``/preview)."""
    from pulumi.runtime.mocks import MockMonitor

    return isinstance(pulumi.runtime.settings.get_monitor(), MockMonitor)


class ExistingCluster(pulumi.ComponentResource):
    """Creates no cloud resources: a Kubernetes provider plus node-pool facts from config.

    Nothing is created on the nodes either: their labels, taints and GPUs are given in
    config (``nodeSelector``, ``taint``, ``gpu``) and serving workloads select and tolerate
    exactly those. ``gpu_capacity`` is empty (the nodes exist already)."""

    handle: ClusterHandle
    """Provider, node-pool facts, StorageClasses (frozen): what the other components take."""
    kubeconfig: pulumi.Output[str]
    """Secret: the kubeconfig the Kubernetes provider uses."""

    def __init__(self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:cluster:ExistingCluster", name, None, opts)
        existing = args.cluster.existing
        if args.kubeconfig is not None:
            kubeconfig = args.kubeconfig
        else:
            assert existing is not None and existing.kubeconfig_path
            path = Path(existing.kubeconfig_path).expanduser()
            if path.is_file():
                text = path.read_text()
            elif _offline():
                text = ""  # the offline render never contacts the cluster
            else:
                # an empty kubeconfig would make the provider fall back to ~/.kube/config:
                # whatever cluster that points at would get the deployment
                raise pulumi.RunError(f"cluster.existing.kubeconfigPath: {path} does not exist or is not a file")
            kubeconfig = pulumi.Output.secret(text)
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            context=existing.context if existing else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.handle = ClusterHandle(
            provider=provider,
            pools=args.pools,
            kubeconfig=pulumi.Output.secret(kubeconfig),
            storage_class=existing.storage_class if existing else None,
            rwx_storage_class=existing.rwx_storage_class if existing else None,
        )
        self.kubeconfig = self.handle.kubeconfig
        self.register_outputs({"nodePools": sorted(args.pools), "kubeconfig": self.kubeconfig})
