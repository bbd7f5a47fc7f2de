"""An existing cluster (on-prem, kind, minikube, or a cloud cluster managed elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from config import NodePoolFacts
from config.cluster import ClusterConfig

from .base import ClusterHandle


@dataclass(frozen=True)
class ExistingClusterArgs:
    cluster: ClusterConfig
    pools: dict[str, NodePoolFacts]
    kubeconfig: pulumi.Output[str] | None
    """The secret config 'kubeconfig', if set; else cluster.existing.kubeconfigPath is read."""


class ExistingCluster(pulumi.ComponentResource):
    """Creates no cloud resources: a Kubernetes provider plus node-pool facts from config."""

    handle: ClusterHandle

    def __init__(self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:cluster:ExistingCluster", name, None, opts)
        existing = args.cluster.existing
        if args.kubeconfig is not None:
            kubeconfig = args.kubeconfig
        else:
            assert existing is not None and existing.kubeconfig_path
            path = Path(existing.kubeconfig_path).expanduser()
            # Read at deploy time only; the offline render does not need the file.
            text = path.read_text() if path.is_file() else ""
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
        self.register_outputs({"nodePools": sorted(args.pools)})
