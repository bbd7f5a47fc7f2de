"""What every cluster component hands to the rest of the program."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.config import NodePoolFacts


@dataclass(frozen=True)
class AwsIrsa:
    """What an in-cluster AWS controller's IRSA role needs (EKS only)."""

    oidc_arn: pulumi.Input[str]
    oidc_url: pulumi.Input[str]
    partition: str
    region: str
    account_id: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterHandle:
    """What a cluster component hands on, built once when the cluster is complete (frozen)."""

    provider: k8s.Provider
    """Kubernetes provider for this cluster; pass it to components as providers={"kubernetes": ...}."""
    pools: dict[str, NodePoolFacts]
    """GPU node-pool facts by pool name: taint, selector, GPUs per node, GPU memory."""
    kubeconfig: pulumi.Output[str]
    """Secret: exported as such, never in plain text."""
    storage_class: str | None = None
    """StorageClass for ReadWriteOnce model caches (None: the cluster default)."""
    rwx_storage_class: str | None = None
    """ReadWriteMany StorageClass (EFS / Filestore / given), if the stack has one."""
    gpu_capacity: Sequence[pulumi.Resource] = ()
    """Resources that create GPU nodes (node groups, Karpenter pools); GPU workloads wait for them."""
    platform_ready: Sequence[pulumi.Resource] = ()
    """What every Helm release and every PVC waits for on a new cluster: the system nodes (chart
    pods schedule there), the CSI driver add-on and the StorageClasses (PVCs bind through them).
    Without it the first ``pulumi up`` races: PVC-backed charts time out on an empty cluster."""
    aws_irsa: AwsIrsa | None = None
    """EKS: the OIDC provider and account, for add-ons that need an IRSA role (ESO)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpu_capacity", tuple(self.gpu_capacity))
        object.__setattr__(self, "platform_ready", tuple(self.platform_ready))
