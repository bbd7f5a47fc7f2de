"""Where the GPUs come from: a new or existing EKS/GKE cluster, or any existing cluster."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from . import catalog, versions
from .base import ConfigModel, DnsLabel

Cloud = Literal["eks", "gke", "existing"]
TaintEffect = Literal["NoSchedule", "NoExecute", "PreferNoSchedule"]
SharingStrategy = Literal["none", "time-slicing", "mps"]
CapacityType = Literal["on-demand", "spot"]

DEFAULT_TAINT_VALUE = {"eks": "true", "gke": "present"}
"""GPU taint value per cloud: EKS guides use ``nvidia.com/gpu=true``; GKE adds
``nvidia.com/gpu=present`` to GPU node pools itself."""

POOL_LABEL = "llm-infra.io/node-pool"
"""Label we put on every node of a GPU pool; serving workloads select on it (the GFD
product label changes to ``<product>-SHARED`` under time-slicing, so it is not used)."""

SYSTEM_POOL_NAME = "system"
"""``POOL_LABEL`` value of the CPU system nodes (operators, KEDA, Prometheus, Karpenter);
reserved, so no GPU pool may take this name."""

DEFAULT_SYSTEM_INSTANCE_TYPE = {"eks": "m6i.xlarge", "gke": "e2-standard-4"}


class Taint(ConfigModel):
    key: str = "nvidia.com/gpu"
    value: str
    effect: TaintEffect = "NoSchedule"


class GpuSharing(ConfigModel):
    """Several pods per physical GPU, without memory isolation (dev/test, small models)."""

    strategy: SharingStrategy = "none"
    clients_per_gpu: int = Field(default=1, ge=1, le=48)

    @model_validator(mode="after")
    def _clients(self) -> GpuSharing:
        if self.strategy == "none" and self.clients_per_gpu != 1:
            raise ValueError("clientsPerGpu needs a sharing strategy (time-slicing or mps)")
        if self.strategy != "none" and self.clients_per_gpu < 2:
            raise ValueError(f"{self.strategy} needs clientsPerGpu >= 2")
        return self


class GpuFacts(ConfigModel):
    """What the nodes of an existing cluster's GPU pool have (no catalog to look them up)."""

    model: str = Field(description="GPU name, e.g. 'NVIDIA A100 80GB'")
    count: int = Field(ge=1, le=16)
    memory_gib: int = Field(ge=4, le=288)
    cuda_memory_gib: float | None = Field(
        default=None,
        gt=0,
        le=288,
        description="memory per GPU as CUDA reports it (torch.cuda.mem_get_info, vLLM's total_gpu_memory); "
        "default: the catalog figure for productLabel, else memoryGib x 0.91",
    )
    product_label: str = Field(description="nvidia.com/gpu.product value set by GPU Feature Discovery")
    mig_capable: bool = False
    hourly_usd: float | None = Field(default=None, gt=0, description="cost per node-hour, for the estimate")

    @field_validator("cuda_memory_gib")
    @classmethod
    def _cuda_memory(cls, v: float | None, info: ValidationInfo) -> float | None:
        nominal = info.data.get("memory_gib")
        if v is not None and nominal is not None and v > nominal:
            raise ValueError(
                f"{v} GiB is more than the GPU's {nominal} GiB (CUDA reports a little less than the nominal size)"
            )
        return v


class NodePoolConfig(ConfigModel):
    name: DnsLabel
    instance_type: str | None = Field(
        default=None, description="EKS instance type or GKE machine type (from the GPU catalog)"
    )
    spot_instance_types: list[str] = Field(
        default_factory=list,
        description="more EKS instance types with the same GPUs, to widen spot capacity",
    )
    accelerator: str | None = Field(default=None, description="GKE accelerator type; defaults from the catalog")
    capacity_type: CapacityType = "on-demand"
    min_nodes: int = Field(default=0, ge=0, le=1000)
    max_nodes: int = Field(default=1, ge=1, le=1000)
    desired_nodes: int | None = Field(default=None, ge=0)
    disk_size_gib: int = Field(
        default=200, ge=200, le=16384, description="root disk: vLLM images are ~10 GiB, weights are cached on it"
    )
    ami_type: Literal["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"] = "AL2023_x86_64_NVIDIA"
    zones: list[str] = Field(default_factory=list)
    gpu_sharing: GpuSharing = GpuSharing()
    taint: Taint | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    # existing clusters only: facts the catalog cannot provide
    gpu: GpuFacts | None = None
    node_selector: dict[str, str] | None = None

    # field validators (not a model validator) so that errors name the field: cluster.nodePools[i].maxNodes
    @field_validator("max_nodes")
    @classmethod
    def _max(cls, v: int, info: ValidationInfo) -> int:
        low = info.data.get("min_nodes")
        if low is not None and low > v:
            raise ValueError(f"minNodes ({low}) is greater than maxNodes ({v})")
        return v

    @field_validator("desired_nodes")
    @classmethod
    def _desired(cls, v: int | None, info: ValidationInfo) -> int | None:
        low, high = info.data.get("min_nodes"), info.data.get("max_nodes")
        if v is not None and low is not None and high is not None and not low <= v <= high:
            raise ValueError(f"desiredNodes ({v}) must lie between minNodes ({low}) and maxNodes ({high})")
        return v


class SystemPoolConfig(ConfigModel):
    """CPU nodes for operators, KEDA, Prometheus and Grafana (kept off the GPU nodes)."""

    instance_type: str | None = Field(
        default=None, description="EC2 instance type / GCE machine type; default m6i.xlarge (EKS), e2-standard-4 (GKE)"
    )
    min_nodes: int = Field(default=2, ge=1)
    max_nodes: int = Field(default=4, ge=1)
    disk_size_gib: int = Field(default=100, ge=20)

    @model_validator(mode="after")
    def _sizes(self) -> SystemPoolConfig:
        if self.min_nodes > self.max_nodes:
            raise ValueError(f"minNodes ({self.min_nodes}) is greater than maxNodes ({self.max_nodes})")
        return self

    def machine_type(self, cloud: str) -> str:
        return self.instance_type or DEFAULT_SYSTEM_INSTANCE_TYPE[cloud]


class KarpenterConfig(ConfigModel):
    """Elastic GPU capacity: one Karpenter NodePool + EC2NodeClass per GPU pool it can extend
    (spot first, on-demand fallback), carrying that pool's labels and taint.

    A pool is extended by the listed instance types whose GPUs (count and memory per GPU)
    equal the pool's own instance type; with no list, each pool's own instance type and
    spotInstanceTypes are used."""

    enabled: bool = False
    instance_types: list[str] = Field(default_factory=list)
    gpu_limit: int = Field(
        default=16,
        ge=1,
        description="most GPUs each Karpenter NodePool may provision; never more than the pool's maxNodes allow "
        "beyond its managed node group (karpenter_gpu_limit)",
    )
    consolidate_after: str = Field(default="5m", pattern=r"^\d+(s|m|h)$")
    ami_version: str = Field(
        default=versions.KARPENTER_AL2023_AMI,
        pattern=r"^(latest|v\d{8})$",
        description="EKS AL2023 AMI release (v<YYYYMMDD>) for the amiSelectorTerms alias al2023@<version>; with "
        "'latest' every AMI release replaces all Karpenter GPU nodes (drift), so protected clusters reject it",
    )
    bottlerocket_ami_version: str = Field(
        default=versions.KARPENTER_BOTTLEROCKET_AMI,
        pattern=r"^(latest|v\d+\.\d+\.\d+)$",
        description="Bottlerocket release (v1.x.y) for the alias bottlerocket@<version> of Bottlerocket pools",
    )

    def ami_alias(self, ami_type: str) -> str:
        """The EC2NodeClass ``amiSelectorTerms`` alias of a pool's AMI type (Karpenter 1.x: family@version)."""
        if ami_type.startswith("BOTTLEROCKET"):
            return f"bottlerocket@{self.bottlerocket_ami_version}"
        return f"al2023@{self.ami_version}"


GpuAutoscaler = Literal["clusterAutoscaler", "karpenter"]


class ClusterAutoscalerConfig(ConfigModel):
    """Cluster Autoscaler settings for GPU serving (FAQ "What are the parameters to CA?").

    GPU nodes are costly and slow to come back (image pull, weight load: minutes), so empty
    ones are kept a while before removal, and the cheapest fit wins a scale-up."""

    expander: Literal["least-waste", "priority", "random", "most-pods", "price"] = Field(
        default="least-waste",
        description="which node group grows when several fit: least idle CPU/memory after the scale-up",
    )
    scale_down_unneeded_time: str = Field(
        default="15m",
        pattern=r"^\d+(s|m|h)$",
        description="how long a node stays unneeded before removal (chart default 10m)",
    )
    scale_down_delay_after_add: str = Field(default="10m", pattern=r"^\d+(s|m|h)$")
    max_node_provision_time: str = Field(
        default="20m",
        pattern=r"^\d+(s|m|h)$",
        description="GPU instances boot with drivers and large images: allow more than the 15m default",
    )


class EksConfig(ConfigModel):
    vpc_cidr: str = "10.0.0.0/16"
    public_endpoint: bool = Field(
        default=True, description="API server reachable from the internet (from publicAccessCidrs)"
    )
    public_access_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="who may reach the public API endpoint (EKS default: anywhere, which the plan warns about); "
        "narrow it to where pulumi and operators run",
    )
    efs_model_cache: bool = Field(default=False, description="EFS + CSI driver: a ReadWriteMany model cache")
    karpenter: KarpenterConfig = KarpenterConfig()
    gpu_autoscaler: GpuAutoscaler | None = Field(
        default=None,
        description="who adds GPU nodes: clusterAutoscaler (scales the managed node groups between minNodes and "
        "maxNodes) or karpenter (launches nodes for every GPU pool that grows); default: karpenter when "
        "karpenter.enabled, else clusterAutoscaler",
    )
    cluster_autoscaler: ClusterAutoscalerConfig = ClusterAutoscalerConfig()

    @property
    def gpu_autoscaler_choice(self) -> GpuAutoscaler:
        if self.gpu_autoscaler is not None:
            return self.gpu_autoscaler
        return "karpenter" if self.karpenter.enabled else "clusterAutoscaler"

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for cidr in v:
            try:
                ipaddress.IPv4Network(cidr, strict=True)
            except ValueError as err:
                raise ValueError(f"'{cidr}' is not an IPv4 CIDR block ({err})") from None
        return v


class AuthorizedNetwork(ConfigModel):
    cidr: str
    name: str = ""


class GkeConfig(ConfigModel):
    project: str
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = "REGULAR"
    network: str = Field(default="default", description="VPC network of a new cluster (and of Filestore instances)")
    subnetwork: str | None = Field(
        default=None, description="subnetwork of a new cluster; default: the region's auto subnet"
    )
    filestore_model_cache: bool = Field(default=False, description="Filestore CSI: a ReadWriteMany model cache")
    filestore_tier: Literal["standard", "premium", "enterprise", "zonal"] = Field(
        default="premium",
        description="Filestore tier of the model cache StorageClass: premium (BASIC_SSD, min 2.5 TiB) loads "
        "weights far faster than standard (BASIC_HDD, min 1 TiB)",
    )
    gpu_driver: Literal["gke", "operator"] = Field(
        default="gke",
        description="who runs the GPU stack: 'gke' = GKE-managed driver (gpuDriverVersion) and GKE's device "
        "plugin, the GPU Operator only adds GFD/DCGM; 'operator' = NVIDIA's driver manager on Ubuntu "
        "(INSTALLATION_DISABLED, GKE's plugin off), the GPU Operator runs the whole stack",
    )
    gpu_driver_version: Literal["DEFAULT", "LATEST"] = Field(
        default="LATEST", description="GKE-managed driver branch (gpuDriver 'gke'): LATEST is the newer branch on COS"
    )
    gpu_driver_branch: int | None = Field(
        default=None,
        ge=400,
        le=999,
        description="driver branch (e.g. 580) GKE installs for gpuDriverVersion on this cluster's GKE version, as "
        "GKE's GPU documentation lists it; needed with gpuDriver 'gke' while config/drivers.py has no row for it",
    )
    private_nodes: bool = Field(
        default=True,
        description="nodes without external IPs; a Cloud NAT on the network gives them egress (image pulls)",
    )
    public_endpoint: bool = Field(
        default=True, description="control plane reachable on its public IP (from masterAuthorizedNetworks)"
    )
    master_authorized_networks: list[AuthorizedNetwork] = Field(
        default_factory=list,
        description="CIDRs allowed to reach the control plane (where pulumi and kubectl run); required for a "
        "protected cluster with a public endpoint",
    )


class ExistingClusterConfig(ConfigModel):
    kubeconfig_path: str | None = Field(
        default=None, description="path to a kubeconfig file; otherwise the secret config key 'kubeconfig'"
    )
    context: str | None = None
    storage_class: str | None = Field(
        default=None, description="StorageClass for model caches; cluster default if unset"
    )
    rwx_storage_class: str | None = Field(
        default=None, description="a ReadWriteMany StorageClass, if the cluster has one"
    )


class ClusterConfig(ConfigModel):
    cloud: Cloud
    name: DnsLabel
    region: str | None = None
    kubernetes_version: str | None = Field(
        default=None,
        pattern=r"^1\.\d+(\.\d+(-gke\.\d+)?)?$",
        description="control-plane version; default: versions.KUBERNETES_VERSION on EKS, the release "
        "channel's default on GKE (no pinned minimum)",
    )
    existing_cluster_name: str | None = Field(
        default=None, description="attach to this EKS/GKE cluster instead of creating one"
    )
    protect: bool = Field(default=False, description="protect the cluster and file systems from deletion (prod)")
    system_pool: SystemPoolConfig = SystemPoolConfig()
    node_pools: list[NodePoolConfig] = Field(min_length=1)
    eks: EksConfig | None = None
    gke: GkeConfig | None = None
    existing: ExistingClusterConfig | None = None
    network_policy_enforced: bool | Literal["unknown"] = Field(
        default="unknown",
        description="whether the CNI of a cluster this project does not create (cloud existing, or "
        "existingClusterName) enforces NetworkPolicies; the plan warns unless true",
    )

    @field_validator("network_policy_enforced", mode="before")
    @classmethod
    def _enforced(cls, v: object) -> object:
        return {"true": True, "false": False}.get(v, v) if isinstance(v, str) else v

    @property
    def created_here(self) -> bool:
        """Whether this project creates the cluster (and so knows its CNI)."""
        return self.cloud != "existing" and not self.existing_cluster_name

    def network_policy_enforcement(self) -> bool | Literal["unknown"]:
        """Whether NetworkPolicies take effect: on EKS clusters we create the VPC CNI's network
        policy agent is on (components/cluster/eks.py), GKE clusters we create run Dataplane V2
        (components/cluster/gke.py); otherwise what ``networkPolicyEnforced`` states."""
        if self.created_here:
            return self.cloud in ("eks", "gke")
        return self.network_policy_enforced

    @property
    def has_rwx_storage(self) -> bool:
        """The cluster has a ReadWriteMany StorageClass for model caches (EFS, Filestore, given)."""
        return bool(
            (self.eks is not None and self.eks.efs_model_cache)
            or (self.gke is not None and self.gke.filestore_model_cache)
            or (self.existing is not None and self.existing.rwx_storage_class)
        )

    @property
    def control_plane_version(self) -> str | None:
        """The version a new cluster is created with (None: GKE's release channel default)."""
        if self.kubernetes_version:
            return self.kubernetes_version
        return versions.KUBERNETES_VERSION if self.cloud == "eks" else None


def fits_pool(pool_type: str, other: str, cloud: str = "eks") -> bool:
    """Whether every pod sized for a ``pool_type`` node also fits an ``other`` node: the same
    GPUs (count and memory per GPU) and at least as many vCPUs and as much memory."""
    a, b = catalog.lookup(cloud, pool_type), catalog.lookup(cloud, other)
    if a is None or b is None:
        return False
    return (a.gpu_count, a.gpu_memory_gib) == (b.gpu_count, b.gpu_memory_gib) and (
        b.vcpus >= a.vcpus and b.memory_gib >= a.memory_gib
    )


def desired_nodes(pool: NodePoolConfig) -> int:
    """Nodes a managed node group starts with (``desiredNodes``, default ``minNodes``)."""
    return pool.desired_nodes if pool.desired_nodes is not None else pool.min_nodes


def karpenter_gpu_limit(karpenter: KarpenterConfig, pool: NodePoolConfig, gpus_per_node: int) -> int:
    """GPUs Karpenter may add to ``pool`` (its NodePool's ``limits``): ``gpuLimit``, but never
    beyond ``maxNodes``, so maxNodes caps a pool whoever grows it (the managed node group
    holds ``desiredNodes``, Karpenter the rest)."""
    return max(0, min(karpenter.gpu_limit, (pool.max_nodes - desired_nodes(pool)) * gpus_per_node))


def karpenter_instance_types(karpenter: KarpenterConfig, pool: NodePoolConfig) -> list[str]:
    """Instance types a Karpenter NodePool may launch for ``pool`` (empty: Karpenter does not
    extend it): the configured ones (or the pool's own types) that fit the pool's pods."""
    if not pool.instance_type:
        return []
    candidates: Iterable[str] = karpenter.instance_types or [pool.instance_type, *pool.spot_instance_types]
    out: list[str] = []
    for name in candidates:
        if name not in out and fits_pool(pool.instance_type, name):
            out.append(name)
    return out
