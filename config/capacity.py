"""Will a model fit its GPUs, and what is left for the KV cache?"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .architectures import ModelArchitecture

GIB = 1024**3

# Bytes per parameter of the quantized linear layers. 4-bit AWQ/GPTQ with group size 128
# store one fp16 scale and a packed 4-bit zero point per 128 weights: 0.5 + 2.5/128 bytes.
LINEAR_BYTES = {"awq": 0.5 + 2.5 / 128, "gptq": 0.5 + 2.5 / 128, "fp8": 1.0}
DTYPE_BYTES = {"auto": 2, "bfloat16": 2, "float16": 2, "float32": 4}
KV_CACHE_BYTES = {"auto": 2, "fp8": 1}

RUNTIME_RESERVE_GIB = 1.5
"""Per GPU, inside the gpu-memory-utilization budget but not available to the KV cache:
CUDA context and allocator slack (~0.5 GiB) plus the activation peak of vLLM's profiling
run and CUDA graphs (~1 GiB for 7-70B models at default batch sizes)."""
TENSOR_PARALLEL_RESERVE_GIB = 0.5
"""Extra per GPU when tensor parallelism is on: NCCL communication buffers."""


@dataclass(frozen=True)
class CapacityEstimate:
    gpus: int
    weights_gib: float               # whole model
    weights_per_gpu_gib: float
    budget_per_gpu_gib: float        # gpu memory x gpu-memory-utilization
    kv_cache_gib: float              # over all GPUs of one replica
    kv_bytes_per_token: int          # over all GPUs of one replica
    kv_cache_tokens: int
    max_model_len: int
    max_concurrent_sequences: float  # at full max-model-len; shorter requests fit more

    @property
    def fits(self) -> bool:
        return self.kv_cache_tokens >= self.max_model_len


def estimate_capacity(
    arch: ModelArchitecture,
    *,
    gpu_memory_gib: float,
    tensor_parallel_size: int,
    gpu_memory_utilization: float,
    max_model_len: int,
    dtype: str = "auto",
    quantization: str | None = None,
    kv_cache_dtype: str = "auto",
) -> CapacityEstimate:
    """Weights and KV-cache capacity of one replica (one tensor-parallel group).

    Derivation, for ``N`` parameters of which ``E`` are embedding/LM-head, ``tp`` GPUs of
    ``M`` GiB each and utilization ``u``:

    * weights: quantizers (AWQ, GPTQ, FP8) compress only the linear layers, so
      ``W = (N - E) * b_q + E * b_d`` bytes, with ``b_q`` the quantized and ``b_d`` the
      dtype's bytes per parameter (``b_q = b_d`` unquantized). Tensor parallelism shards
      weights evenly: ``W / tp`` per GPU.
    * vLLM pre-allocates ``u * M`` per GPU. It holds the weight shard, a runtime reserve
      ``R`` (CUDA context, activation peak, CUDA graphs, NCCL buffers when ``tp > 1``) and
      the KV cache: ``KV_gpu = u*M - W/tp - R``.
    * each token stores a key and a value vector per layer and KV head:
      ``2 * layers * kv_heads * head_dim * b_kv`` bytes. Tensor parallelism splits KV heads
      across GPUs (replicating them when ``tp > kv_heads``), so one GPU stores
      ``ceil(kv_heads / tp)`` heads per token and the replica holds
      ``tokens = KV_gpu / (2 * layers * ceil(kv_heads/tp) * head_dim * b_kv)``.
    * a replica can serve at least one request only if ``tokens >= max_model_len``;
      ``tokens / max_model_len`` sequences of full length run concurrently.
    """
    tp = tensor_parallel_size
    dtype_bytes = DTYPE_BYTES[dtype]
    linear_bytes = LINEAR_BYTES.get(quantization or "", dtype_bytes)
    embedding = arch.embedding_params_billion * 1e9
    linear = arch.params_billion * 1e9 - embedding
    weights = linear * linear_bytes + embedding * dtype_bytes
    weights_per_gpu = weights / tp

    reserve = (RUNTIME_RESERVE_GIB + (TENSOR_PARALLEL_RESERVE_GIB if tp > 1 else 0)) * GIB
    budget = gpu_memory_utilization * gpu_memory_gib * GIB
    kv_per_gpu = max(0.0, budget - weights_per_gpu - reserve)

    kv_heads_per_gpu = math.ceil(arch.kv_heads / tp)
    per_token_per_gpu = 2 * arch.layers * kv_heads_per_gpu * arch.head_dim * KV_CACHE_BYTES[kv_cache_dtype]
    tokens = int(kv_per_gpu // per_token_per_gpu)
    return CapacityEstimate(
        gpus=tp,
        weights_gib=weights / GIB,
        weights_per_gpu_gib=weights_per_gpu / GIB,
        budget_per_gpu_gib=budget / GIB,
        kv_cache_gib=kv_per_gpu * tp / GIB,
        kv_bytes_per_token=per_token_per_gpu * tp,
        kv_cache_tokens=tokens,
        max_model_len=max_model_len,
        max_concurrent_sequences=tokens / max_model_len,
    )


def nodes_for(replicas: int, gpus_per_replica: int, gpus_per_node: int) -> int:
    """Nodes needed when each node packs ``gpus_per_node // gpus_per_replica`` replicas."""
    per_node = max(1, gpus_per_node // gpus_per_replica)
    return math.ceil(replicas / per_node)


def hourly_cost(replicas: int, gpus_per_replica: int, gpus_per_node: int, node_hourly_usd: float) -> float:
    return nodes_for(replicas, gpus_per_replica, gpus_per_node) * node_hourly_usd
