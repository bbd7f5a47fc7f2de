"""What one vLLM serving pod requests besides its GPUs: CPU and host memory.

Shared by the vLLM component (the container's requests = limits) and the capacity
feasibility plan (how many such pods a node holds), so both use the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .plan import ModelPlan
from .serving import ResourcesConfig, VllmModelConfig, node_share

HOST_MEMORY_PER_PROCESS_GIB = 4
"""API server + engine core + one worker per GPU: CUDA context, PyTorch, NCCL and torch.compile
workers, ~4 GiB each."""
WEIGHT_STAGING_FACTOR = 1.1
"""Weights pass through host memory while loading (mmapped safetensors in the page cache,
charged to the pod)."""
MEMORY_SAFETY_GIB = 4
MIN_MEMORY_GIB = 8
BASE_CPU = 2
CPU_PER_GPU = 2
"""Tokenization, scheduling and detokenization run on CPU; one busy core per GPU worker."""


@dataclass(frozen=True)
class HostResources:
    cpu: float
    memory_gib: int
    """The container's memory request = limit (the /dev/shm tmpfs counts against it)."""
    shm_gib: int | None


def pod_size(
    resources: ResourcesConfig,
    plan: ModelPlan,
    weights_gib: float,
    *,
    extra_gib: float = 0,
    shm_gib: int = 0,
    min_memory_gib: int = 0,
) -> tuple[float, int]:
    """(CPU, memory GiB) of one GPU pod of ``plan``: ``weights_gib`` staged through host memory,
    one process per GPU plus the API server, ``extra_gib`` (e.g. Ray's object store), a safety
    margin and the /dev/shm tmpfs; capped at the share of a node the pod's GPUs represent
    (``config.serving.node_share``); ``resources`` overrides replace either."""
    tp = plan.tensor_parallel_size
    cpu_share, mem_share = node_share(plan.pool, tp)
    if resources.cpu is not None:
        cpu: float = resources.cpu
    else:
        cpu = BASE_CPU + CPU_PER_GPU * tp
        if cpu_share is not None:
            cpu = min(cpu, max(1, math.floor(cpu_share)))
    if resources.memory_gib is not None:
        return cpu, resources.memory_gib
    memory = (
        math.ceil(
            weights_gib * WEIGHT_STAGING_FACTOR + HOST_MEMORY_PER_PROCESS_GIB * (tp + 1) + extra_gib + MEMORY_SAFETY_GIB
        )
        + shm_gib
    )
    memory = max(memory, min_memory_gib)
    if mem_share is not None:
        memory = min(memory, math.floor(mem_share))
    return cpu, memory


def host_resources(model: VllmModelConfig, plan: ModelPlan) -> HostResources:
    """CPU and memory for one replica: sized from the model, capped at the pod's node share.

    memory = weights x 1.1 + 4 GiB x (GPUs + 1 processes) + 4 GiB safety (+ /dev/shm when
    tensor parallel), at least 8 GiB; CPU = 2 + 2 per GPU. Both are capped at the share of a
    node that this replica's GPUs represent (``config.serving.node_share``) so replicas pack
    nodes as the capacity plan assumes; overrides in ``resources`` replace them.
    """
    shm = model.shm_size_gib if plan.tensor_parallel_size > 1 else None
    cpu, memory = pod_size(
        model.resources, plan, plan.capacity.weights_gib, shm_gib=shm or 0, min_memory_gib=MIN_MEMORY_GIB
    )
    return HostResources(cpu=cpu, memory_gib=memory, shm_gib=shm)
