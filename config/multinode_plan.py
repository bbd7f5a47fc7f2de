"""The arithmetic of multi-node replicas (config/multinode.py has their config): the network
between pipeline stages, Ray's placement group of a replica, the pods of a LeaderWorkerSet group.

Kept apart from the config models so that the stack config does not depend on the plan
(config.stack -> config.multinode must not reach config.plan).
"""

from __future__ import annotations

from dataclasses import dataclass

from .architectures import ModelArchitecture
from .multinode import NODE_NETWORK, RAY_PLACEMENT_STRATEGY, MultiNodeModelConfig, NodeNetwork
from .plan import ModelPlan
from .pods import pod_size


def stage_boundary_bytes_per_token(arch: ModelArchitecture, dtype_bytes: int = 2) -> int:
    """Bytes one token sends across one pipeline-stage boundary: vLLM passes the hidden states
    and the residual (``IntermediateTensors`` of the Llama-style decoders), 16-bit each."""
    return 2 * arch.hidden_size * dtype_bytes


def interconnect_plan(plan: ModelPlan, instance_type: str | None, cloud: str) -> dict:
    """How the stages of one replica talk, and what TCP costs: the bytes per token crossing each
    stage boundary and the time a full prefill batch and one decode step spend on the wire."""
    pp = plan.pipeline_parallel_size
    net = NODE_NETWORK.get((cloud, instance_type or ""))
    per_token = stage_boundary_bytes_per_token(plan.architecture)
    out: dict = {
        "stageBoundaries": pp - 1,
        "bytesPerTokenPerBoundary": per_token,
        "transport": "TCP (NCCL sockets)",
        "fabric": net.fabric if net else None,
        "fabricEnabled": False,
        "nicGbps": net.nic_gbps if net else None,
    }
    prefill_tokens = plan.capacity.profile_tokens
    decode_tokens = plan.capacity.max_num_seqs
    if net is not None:
        bytes_per_s = net.nic_gbps * 1e9 / 8
        out["prefillBatchMs"] = round(prefill_tokens * per_token * (pp - 1) / bytes_per_s * 1000, 2)
        out["decodeStepMs"] = round(decode_tokens * per_token * (pp - 1) / bytes_per_s * 1000, 3)
    out["note"] = interconnect_note(plan, net, per_token)
    return out


def interconnect_note(plan: ModelPlan, net: NodeNetwork | None, per_token: int) -> str:
    pp = plan.pipeline_parallel_size
    kib = per_token / 1024
    what = f"{pp - 1} stage boundar{'y' if pp == 2 else 'ies'} x {kib:g} KiB per token"
    if net is None:
        return f"cross-node traffic uses TCP ({what}); the node type's bandwidth is not catalogued"
    fabric = (
        f"; the nodes' {net.fabric} ({net.fabric_interfaces} interface{'s' if net.fabric_interfaces > 1 else ''}) "
        "is not enabled by this stack (no device plugin / network config), so NCCL stays on TCP"
        if net.fabric
        else ""
    )
    return f"cross-node traffic uses TCP over the {net.nic_gbps} Gbps node network ({what}){fabric}"


# -- Ray Serve LLM ----------------------------------------------------------------------------
def ray_placement_group_config(plan: ModelPlan, cpus_per_bundle: int = 1) -> dict:
    """``LLMConfig.placement_group_config`` of a multi-node replica: one bundle per GPU (Ray
    2.58 ``VLLMEngineConfig.placement_bundles`` uses an explicit ``bundles`` list as given and
    adds the accelerator-type hint itself) and PACK (``RAY_PLACEMENT_STRATEGY``)."""
    return {
        "bundles": [{"CPU": cpus_per_bundle, "GPU": 1} for _ in range(plan.gpus_per_replica)],
        "strategy": RAY_PLACEMENT_STRATEGY,
    }


# -- pod sizing -------------------------------------------------------------------------------
RAY_OBJECT_STORE_GIB = 2
"""``ray start --object-store-memory``: vLLM's Ray executor passes tensors through NCCL, the
object store only carries control messages; fixed so Ray does not take 30 % of the pod."""


@dataclass(frozen=True)
class StagePodResources:
    cpu: float
    memory_gib: int
    shm_gib: int


def stage_pod_resources(model: MultiNodeModelConfig, plan: ModelPlan) -> StagePodResources:
    """CPU and memory of one pod of a group (leader and workers alike), sized like a vLLM pod
    (config/pods.py ``pod_size``): its stage's weights stage through host memory once, plus the
    processes (the API server / Ray head on the leader, one Ray worker per GPU), the Ray object
    store and /dev/shm."""
    stage_gib = plan.capacity.weights_per_gpu_gib * plan.tensor_parallel_size
    cpu, memory = pod_size(model.resources, plan, stage_gib, extra_gib=RAY_OBJECT_STORE_GIB, shm_gib=model.shm_size_gib)
    return StagePodResources(cpu=cpu, memory_gib=memory, shm_gib=model.shm_size_gib)


def group_plan(plan: ModelPlan) -> dict:
    """What one replica takes, for the plan: GPUs, pods and whole nodes."""
    return {
        "tensorParallelSize": plan.tensor_parallel_size,
        "pipelineParallelSize": plan.pipeline_parallel_size,
        "gpusPerReplica": plan.gpus_per_replica,
        "nodesPerReplica": plan.nodes_per_replica,
    }
