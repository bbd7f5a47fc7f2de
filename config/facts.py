"""Node-pool facts: what a serving workload must know about the GPUs it lands on.

Derived once from the cluster config and the GPU catalog (or, for existing clusters, from
the facts given in config). Cluster components hand these to serving components, so no
serving code repeats a taint, a selector or a GPU count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import catalog
from .cluster import (
    DEFAULT_TAINT_VALUE,
    POOL_LABEL,
    CapacityType,
    Cloud,
    ClusterConfig,
    NodePoolConfig,
    SharingStrategy,
    TaintEffect,
)

DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
"""Node label that picks the NVIDIA device plugin's config entry (time-slicing/MPS) by name;
the GPU Operator's device-plugin ConfigMap has one entry per shared pool, named after it."""

DEFAULT_CUDA_FRACTION = 0.91
"""CUDA-visible share of the nominal GPU memory when neither config nor catalog gives it: the
lowest ratio in the catalog (L4: 21.95 of 24 GiB = 0.915), rounded down."""

GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL = "gke-no-default-nvidia-gpu-device-plugin"
"""Node label that turns off GKE's own GPU device plugin, so that only the GPU Operator's
plugin advertises ``nvidia.com/gpu`` (NVIDIA's "GPU Operator with Google GKE" page)."""


@dataclass(frozen=True)
class NodePoolFacts:
    name: str
    cloud: Cloud
    instance_type: str | None
    gpu_model: str
    gpus_per_node: int
    gpu_memory_gib: int
    product_label: str
    vcpus: int | None
    memory_gib: int | None
    hourly_usd: float | None
    taint_key: str | None
    taint_value: str | None
    taint_effect: TaintEffect | None
    node_labels: dict[str, str] = field(default_factory=dict)
    """Labels the node pool puts on its nodes (we create them, or the cluster already has them)."""
    selector: dict[str, str] = field(default_factory=dict)
    """What workloads put in nodeSelector to land on this pool."""
    sharing_strategy: SharingStrategy = "none"
    clients_per_gpu: int = 1
    min_nodes: int = 0
    max_nodes: int = 1
    capacity_type: CapacityType = "on-demand"
    mig_capable: bool = False
    gpu_cuda_memory_gib: float | None = None
    """Memory per GPU as CUDA reports it (what vLLM budgets from); None: derived from the nominal size."""
    gpu_cuda_memory_source: str = ""

    @property
    def cuda_memory_gib(self) -> float:
        """What vLLM's ``total_gpu_memory`` will be on these nodes."""
        if self.gpu_cuda_memory_gib is not None:
            return self.gpu_cuda_memory_gib
        return round(self.gpu_memory_gib * DEFAULT_CUDA_FRACTION, 2)

    @property
    def device_plugin_config(self) -> str | None:
        """Name of this pool's entry in the GPU Operator's device-plugin config (shared pools)."""
        return self.node_labels.get(DEVICE_PLUGIN_CONFIG_LABEL)

    def tolerations(self) -> list[dict]:
        """Exactly the toleration for this pool's taint (none for an untainted pool)."""
        if not self.taint_key:
            return []
        return [
            {
                "key": self.taint_key,
                "operator": "Equal",
                "value": self.taint_value,
                "effect": self.taint_effect,
            }
        ]


def operator_device_plugin(cluster: ClusterConfig, gpu_operator: bool) -> bool:
    """Whether the GPU Operator's device plugin advertises the GPUs: not with GKE-managed
    drivers (``gpuDriver: gke``), where GKE's own plugin does (and does the sharing)."""
    if not gpu_operator:
        return False
    return not (cluster.cloud == "gke" and cluster.gke is not None and cluster.gke.gpu_driver == "gke")


def node_pool_facts(cluster: ClusterConfig, pool: NodePoolConfig, gpu_operator: bool = True) -> NodePoolFacts:
    """Facts of one pool. Assumes the pool passed validation (catalog entry or ``gpu`` facts).

    ``gpu_operator``: whether the NVIDIA GPU Operator is installed; whether its device plugin
    runs follows ``operator_device_plugin`` (on GKE its nodes then turn GKE's plugin off).
    """
    plugin = operator_device_plugin(cluster, gpu_operator)
    if cluster.cloud == "existing":
        gpu = pool.gpu
        assert gpu is not None
        selector = dict(pool.node_selector or {})
        return NodePoolFacts(
            name=pool.name,
            cloud="existing",
            instance_type=pool.instance_type,
            gpu_model=gpu.model,
            gpus_per_node=gpu.count,
            gpu_memory_gib=gpu.memory_gib,
            product_label=gpu.product_label,
            vcpus=None,
            memory_gib=None,
            hourly_usd=gpu.hourly_usd,
            taint_key=pool.taint.key if pool.taint else None,
            taint_value=pool.taint.value if pool.taint else None,
            taint_effect=pool.taint.effect if pool.taint else None,
            node_labels=selector,
            selector=selector,
            sharing_strategy=pool.gpu_sharing.strategy,
            clients_per_gpu=pool.gpu_sharing.clients_per_gpu,
            min_nodes=pool.min_nodes,
            max_nodes=pool.max_nodes,
            capacity_type=pool.capacity_type,
            mig_capable=gpu.mig_capable,
            **_existing_cuda_memory(gpu.cuda_memory_gib, gpu.product_label),
        )
    shape = catalog.lookup(cluster.cloud, pool.instance_type or "")
    assert shape is not None
    # spot types were checked against the catalog (config/checks/cluster.py) before facts are derived
    shapes = [shape, *(s for t in pool.spot_instance_types if (s := catalog.lookup(cluster.cloud, t)) is not None)]
    taint = pool.taint
    node_labels = {POOL_LABEL: pool.name, "nvidia.com/gpu.present": "true", **pool.labels}
    if pool.gpu_sharing.strategy != "none" and plugin:
        node_labels[DEVICE_PLUGIN_CONFIG_LABEL] = pool.name
    if cluster.cloud == "gke" and plugin:
        node_labels[GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL] = "true"
    return NodePoolFacts(
        name=pool.name,
        cloud=cluster.cloud,
        instance_type=shape.name,
        gpu_model=shape.gpu_model,
        gpus_per_node=shape.gpu_count,
        gpu_memory_gib=shape.gpu_memory_gib,
        product_label=shape.product_label,
        # spot pools mix instance types: size pods for the smallest node they may land on
        vcpus=min(s.vcpus for s in shapes),
        memory_gib=min(s.memory_gib for s in shapes),
        hourly_usd=shape.hourly_usd,
        taint_key=taint.key if taint else "nvidia.com/gpu",
        taint_value=taint.value if taint else DEFAULT_TAINT_VALUE[cluster.cloud],
        taint_effect=taint.effect if taint else "NoSchedule",
        node_labels=node_labels,
        selector={POOL_LABEL: pool.name},
        sharing_strategy=pool.gpu_sharing.strategy,
        clients_per_gpu=pool.gpu_sharing.clients_per_gpu,
        min_nodes=pool.min_nodes,
        max_nodes=pool.max_nodes,
        capacity_type=pool.capacity_type,
        mig_capable=shape.mig_capable,
        gpu_cuda_memory_gib=shape.cuda_memory_gib,
        gpu_cuda_memory_source=f"catalog: {shape.cuda_memory_source}",
    )


def _existing_cuda_memory(stated: float | None, product_label: str) -> dict:
    """CUDA-visible memory of an existing pool: as stated, else the catalog's figure for its GPU."""
    if stated is not None:
        return {"gpu_cuda_memory_gib": stated, "gpu_cuda_memory_source": "config: gpu.cudaMemoryGib"}
    known = catalog.CUDA_MEMORY_BY_PRODUCT.get(product_label)
    if known is not None:
        return {"gpu_cuda_memory_gib": known[0], "gpu_cuda_memory_source": f"catalog ({product_label}): {known[1]}"}
    return {"gpu_cuda_memory_source": f"gpu.memoryGib x {DEFAULT_CUDA_FRACTION} (set gpu.cudaMemoryGib)"}


def all_node_pool_facts(cluster: ClusterConfig, gpu_operator: bool = True) -> dict[str, NodePoolFacts]:
    return {pool.name: node_pool_facts(cluster, pool, gpu_operator) for pool in cluster.node_pools}
