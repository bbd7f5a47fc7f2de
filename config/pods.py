"""What one vLLM serving pod requests besides its GPUs: CPU and host memory.

Shared by the vLLM component (the container's requests = limits) and the capacity
feasibility plan (how many such pods a node holds), so both use the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .plan import ModelPlan
from .serving import VllmModelConfig, node_share

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


def host_resources(model: VllmModelConfig, plan: ModelPlan) -> HostResources:
    """CPU and memory for one replica: sized from the model, capped at the pod's node share.

    memory = weights x 1.1 + 4 GiB x (GPUs + 1 processes) + 4 GiB safety (+ /dev/shm when
    tensor parallel), at least 8 GiB; CPU = 2 + 2 per GPU. Both are capped at the share of a
    node that this replica's GPUs represent (``config.serving.node_share``) so replicas pack
    nodes as the capacity plan assumes; overrides in ``resources`` replace them.
    """
    tp = plan.tensor_parallel_size
    shm = model.shm_size_gib if tp > 1 else None
    cpu_share, mem_share = node_share(plan.pool, tp)
    if model.resources.cpu is not None:
        cpu: float = model.resources.cpu
    else:
        cpu = BASE_CPU + CPU_PER_GPU * tp
        if cpu_share is not None:
            cpu = min(cpu, max(1, math.floor(cpu_share)))
    if model.resources.memory_gib is not None:
        memory = model.resources.memory_gib
    else:
        memory = math.ceil(
            plan.capacity.weights_gib * WEIGHT_STAGING_FACTOR
            + HOST_MEMORY_PER_PROCESS_GIB * (tp + 1)
            + MEMORY_SAFETY_GIB
        ) + (shm or 0)
        memory = max(memory, MIN_MEMORY_GIB)
        if mem_share is not None:
            memory = min(memory, math.floor(mem_share))
    return HostResources(cpu=cpu, memory_gib=memory, shm_gib=shm)
