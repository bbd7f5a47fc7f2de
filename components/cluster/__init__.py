"""Cluster components: each yields a ClusterHandle (Kubernetes provider + node-pool facts).

``cloud: eks`` -> eks.EksGpuCluster, ``gke`` -> gke.GkeGpuCluster, ``existing`` ->
existing.ExistingCluster. The cloud modules are imported only for their cloud: loading the
AWS/GCP SDK modules costs seconds, which an on-prem stack should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi

from llm_infra.config import StackPlan

from .base import ClusterHandle
from .existing import ExistingCluster, ExistingClusterArgs

if TYPE_CHECKING:
    from .eks import EksGpuCluster
    from .gke import GkeGpuCluster


def create_cluster(
    name: str, plan: StackPlan, kubeconfig: pulumi.Input[str] | None, opts: pulumi.ResourceOptions
) -> EksGpuCluster | GkeGpuCluster | ExistingCluster:
    """The cluster component for ``cluster.cloud``; its ``handle`` feeds everything else."""
    cluster = plan.config.cluster
    if cluster.cloud == "eks":
        from .eks import EksGpuCluster, EksGpuClusterArgs

        return EksGpuCluster(name, EksGpuClusterArgs(cluster=cluster, pools=plan.pools), opts)
    if cluster.cloud == "gke":
        from .gke import GkeGpuCluster, GkeGpuClusterArgs

        return GkeGpuCluster(
            name, GkeGpuClusterArgs(cluster=cluster, pools=plan.pools, gateway_api=plan.uses_gateway_api), opts
        )
    return ExistingCluster(name, ExistingClusterArgs(cluster=cluster, pools=plan.pools, kubeconfig=kubeconfig), opts)


__all__ = ["ClusterHandle", "ExistingCluster", "ExistingClusterArgs", "create_cluster"]
