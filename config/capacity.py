"""Will a model fit its GPUs, and what is left for the KV cache?

The arithmetic follows the pinned vLLM (config/versions.py ``VLLM_IMAGE``, v0.31; the Ray image
bundles 0.26, which budgets the same way) step by step:

1. ``vllm/v1/worker/gpu_worker.py`` ``Worker.init_device``: after the CUDA context and NCCL are
   up, ``MemorySnapshot()`` reads ``torch.cuda.mem_get_info()``; the instance may use
   ``requested_memory = total_memory * gpu_memory_utilization``. ``total_memory`` is what CUDA
   reports, a little less than the nominal size (catalog ``cuda_memory_gib``).
2. ``Worker.determine_available_memory``: the weights are loaded, then ``profile_run()`` runs
   one forward pass over ``max_num_batched_tokens`` dummy tokens and one sampler pass over
   ``min(max_num_seqs, max_num_batched_tokens)`` dummy requests inside
   ``vllm/utils/mem_utils.py`` ``memory_profiling``; ``non_kv_cache_memory = weights +
   torch_peak_increase (activation peak) + non_torch_increase`` (cuBLAS/attention workspaces,
   NCCL buffers that grow during the pass). Since v0.21 the CUDA graph pool is profiled too
   and charged to the same budget (``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` defaults to 1,
   "CUDA graph memory profiling is enabled (default since v0.21.0)" in the start-up log).
   ``available_kv_cache_memory = requested_memory - non_kv_cache_memory``.
3. ``vllm/v1/core/kv_cache_utils.py``: one block holds ``block_size`` (16) tokens of every
   layer: ``page = 2 * block_size * kv_heads_per_gpu * head_dim * kv_bytes`` per layer, so
   ``num_blocks = available // (page * layers)`` and the log's "GPU KV cache size" is
   ``num_blocks * block_size`` tokens. ``check_enough_kv_cache_memory`` refuses to start when
   one ``max_model_len`` sequence (``cdiv(max_model_len, 16)`` blocks) does not fit:
   "... KV cache is needed, which is larger than the available KV cache memory".

vLLM measures steps 2's terms on the GPU; here they are modelled from the settings that drive
them, each constant below with where it comes from. Where a term is uncertain it is taken
high, so the plan may promise fewer tokens than vLLM finds, not more. tests/test_capacity_calibration.py
holds the model against published start-up logs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .architectures import ModelArchitecture
from .lora import lora_bytes_per_gpu

GIB = 1024**3

BLOCK_SIZE = 16
"""Tokens per KV-cache block: vLLM's CUDA default (vllm/platforms/cuda.py sets
``cache_config.block_size = 16`` when unset)."""

DTYPE_BYTES = {"auto": 2, "bfloat16": 2, "float16": 2, "float32": 4}
KV_CACHE_BYTES = {"fp8": 1}
"""KV-cache element size; ``auto`` stores the KV cache in the model dtype."""

_INT4_GROUP128 = 0.5 + 2.5 / 128
"""4-bit weights with group size 128: one fp16 scale and a packed 4-bit zero point per 128
weights (AWQ/GPTQ checkpoint layout)."""
_FP4_BLOCK = 0.5 + 1 / 16
"""4-bit float with an 8-bit scale per block of 16 (NVFP4; MXFP4 uses 32, so this is an upper bound)."""

LINEAR_BYTES: dict[str, float | None] = {
    # 4-bit integer weights (checkpoint formats and their Marlin/CPU kernels)
    "awq": _INT4_GROUP128,
    "awq_marlin": _INT4_GROUP128,
    "cpu_awq": _INT4_GROUP128,
    "gptq": _INT4_GROUP128,
    "gptq_marlin": _INT4_GROUP128,
    "moe_wna16": _INT4_GROUP128,
    # 8-bit weights (FP8 / INT8, per-tensor, per-channel or per-block scales)
    "fp8": 1.0,
    "fbgemm_fp8": 1.0,
    "modelopt": 1.0,
    "modelopt_mxfp8": 1.0 + 1 / 32,
    "mxfp8": 1.0 + 1 / 32,
    "fp8_per_tensor": 1.0,
    "fp8_per_block": 1.0 + 1 / 128**2 * 4,
    "experts_int8": 1.0,
    "int8_per_channel_weight_only": 1.0,
    "deepseek_v4_fp8": 1.0 + 1 / 128**2 * 4,
    # 4-bit float weights with block scales
    "modelopt_fp4": _FP4_BLOCK,
    "mxfp4": _FP4_BLOCK,
    "gpt_oss_mxfp4": _FP4_BLOCK,
    "fp_quant": _FP4_BLOCK,
    "bitsandbytes": _FP4_BLOCK,  # NF4 with a scale per 64 weights: 0.5 + 4/64 bytes
    # storage set by the checkpoint (compressed-tensors W4A16/W8A8/FP8, GGUF Q2..Q8, Quark, TorchAO,
    # INC, mixed ModelOpt, vendor formats): not modelled, sized as unquantized (an upper bound)
    "compressed-tensors": None,
    "gguf": None,
    "quark": None,
    "torchao": None,
    "inc": None,
    "modelopt_mixed": None,
    "humming": None,
    "online": None,
}
"""Bytes per parameter of the linear layers for every method the pinned vLLM accepts
(``QuantizationMethods`` in vllm/model_executor/layers/quantization/__init__.py). ``None``:
the size depends on the checkpoint, so the dtype size is used (never under-counts weights)."""

FORWARD_ACTIVATIONS_PER_TOKEN = 3
"""Activation peak of the profiling forward pass, in units of ``intermediate_size/tp + hidden_size``
values per token (16-bit): the MLP holds its gate/up output (2 x intermediate) and the
activation output (1 x intermediate) at once, beside ~3 hidden-size tensors (residual, norm
output, attention output). Measured: Llama-3.1-8B on one RTX 3090 peaked at 2.07 GiB for a
20,000-token and 2.99 GiB for a 29,000-token profiling batch (vllm-project/vllm#10517:
peak_torch_memory 17.06/17.98 GiB minus 14.99 GiB weights); the formula gives 2.06 and 2.99."""

SAMPLER_BYTES_PER_LOGIT = 40
"""Sampler peak of the profiling run per (dummy request x vocabulary entry): fp32 logits (4),
the top-p/top-k sort's values and int64 indices (12), softmax probabilities, cumulative sum,
masks and log-probs (~4 each). Measured: 1.26 GiB for 256 requests x 128,256 (Llama-3-8B,
vllm-project/vllm#10511: 41 B), 1.42 GiB for 256 x 152,064 (Qwen2.5-7B, vllm-project/vllm#13882:
39 B) and 9.96 GiB for 1024 x 262,144 (gemma-3-4b under the V1 engine, vllm-project/vllm#21489:
40 B). With tensor parallelism the logits are gathered to full vocabulary width."""

NON_TORCH_GIB = 0.5
"""Memory outside PyTorch's allocator that grows during profiling (cuBLAS workspaces,
attention-backend buffers). Logged: 0.03 GiB (RTX 4060, #13882), 0.35 GiB (RTX 3090, #10517),
0.25 GiB (2x RTX 4090, #13061), 0.34-0.43 GiB (4x A100, #16570); rounded up."""

TENSOR_PARALLEL_GIB = 0.5
"""Extra non-torch memory per GPU with tensor parallelism: NCCL and custom all-reduce buffers.
The pinned vLLM initialises NCCL before its memory snapshot, so most of it is outside the
budget; it is kept anyway to err low (older versions counted it: a 2x H100 run logged 1.8 GiB
more non-torch memory than one GPU, vllm-project/vllm#10511)."""

CUDA_GRAPH_GIB = 0.5
"""CUDA graph pool charged to the budget since v0.21: logged estimates of 0.09-0.2 GiB per GPU
(noonghunna/club-3090#1087, #1139) and 0.17-0.49 GiB (#104, #127: the utilization-equivalent
lines); the largest, rounded up."""

DEFAULT_TYPICAL_REQUEST_TOKENS = 2048 + 512
"""A typical chat request for the concurrency estimate: 2k tokens in, 512 out."""


def default_batch_limits(cuda_memory_gib: float, gpu_model: str, usage: str = "serve") -> tuple[int, int]:
    """vLLM's ``max_num_batched_tokens`` and ``max_num_seqs`` when not set
    (vllm/engine/arg_utils.py ``EngineArgs.get_batch_defaults``): GPUs with at least 70 GiB
    other than A100 get 8192 tokens and 1024 sequences for ``vllm serve`` (16384 for the
    ``LLM`` class); the others 2048 (8192) tokens and 256 sequences."""
    big = cuda_memory_gib >= 70 and "a100" not in gpu_model.lower()
    if usage == "llm":
        return (16384, 1024) if big else (8192, 256)
    return (8192, 1024) if big else (2048, 256)


@dataclass(frozen=True)
class CapacityEstimate:
    gpus: int  # per replica: tensor x pipeline parallel
    usable_gib: float  # per GPU: total memory as CUDA reports it
    budget_per_gpu_gib: float  # usable x gpu-memory-utilization (vLLM's requested_memory)
    weights_gib: float  # whole model
    weights_per_gpu_gib: float
    activation_gib: float  # per GPU: peak of the profiling run
    non_torch_gib: float  # per GPU: workspaces, NCCL
    cuda_graph_gib: float  # per GPU: CUDA graph pool charged to the budget
    kv_per_gpu_gib: float  # what is left; negative: not even the weights fit
    kv_bytes_per_token: int  # over all GPUs of one replica
    kv_blocks: int
    kv_cache_tokens: int
    max_model_len: int
    profile_tokens: int  # tokens of the profiling forward pass
    max_num_seqs: int
    typical_request_tokens: int
    lora_gib: float = 0.0  # per GPU: preallocated LoRA slots (config/lora.py), 0 without adapters
    lora_slots: int = 0  # --max-loras
    lora_rank: int = 0  # --max-lora-rank
    pipeline_parallel_size: int = 1

    @property
    def kv_cache_gib(self) -> float:
        """KV cache over all GPUs of one replica."""
        return max(0.0, self.kv_per_gpu_gib) * self.gpus

    @property
    def fits(self) -> bool:
        """vLLM starts only if one max-model-len sequence fits (kv_cache_utils.py)."""
        return self.kv_blocks >= math.ceil(self.max_model_len / BLOCK_SIZE)

    @property
    def max_concurrent_sequences(self) -> float:
        """vLLM's "Maximum concurrency for max_model_len tokens per request"."""
        return self.kv_cache_tokens / self.max_model_len

    def whole_sequences(self, tokens: int) -> int:
        """Sequences of ``tokens`` that run at once: each takes whole blocks, and the scheduler
        runs at most max_num_seqs."""
        per_sequence = math.ceil(min(tokens, self.max_model_len) / BLOCK_SIZE)
        return min(self.kv_blocks // per_sequence, self.max_num_seqs)

    @property
    def sequences_at_max_len(self) -> int:
        return self.whole_sequences(self.max_model_len)

    @property
    def sequences_at_typical(self) -> int:
        return self.whole_sequences(self.typical_request_tokens)

    def budget_lines(self) -> dict[str, float]:
        """Per GPU, in GiB, in the order vLLM subtracts them."""
        return {
            "usable": round(self.usable_gib, 2),
            "budget": round(self.budget_per_gpu_gib, 2),
            "weights": round(self.weights_per_gpu_gib, 2),
            **({"loraSlots": round(self.lora_gib, 2)} if self.lora_gib else {}),
            "activationPeak": round(self.activation_gib, 2),
            "nonTorch": round(self.non_torch_gib, 2),
            "cudaGraphs": round(self.cuda_graph_gib, 2),
            "kvCache": round(self.kv_per_gpu_gib, 2),
        }

    def describe_budget(self) -> str:
        """One line for error messages: the budget per GPU, term by term."""
        return (
            f"per GPU {self.usable_gib:.2f} GiB x utilization = {self.budget_per_gpu_gib:.2f} GiB, minus weights "
            f"{self.weights_per_gpu_gib:.2f}, {f'LoRA slots {self.lora_gib:.2f}, ' if self.lora_gib else ''}activation peak {self.activation_gib:.2f}, other "
            f"{self.non_torch_gib + self.cuda_graph_gib:.2f} leaves {self.kv_per_gpu_gib:.2f} GiB of KV cache "
            f"= {self.kv_cache_tokens} tokens"
        )


def weights_bytes(arch: ModelArchitecture, dtype: str = "auto", quantization: str | None = None) -> float:
    """Quantizers compress only the linear layers: ``(N - E) * b_q + E * b_d`` bytes for ``N``
    parameters of which ``E`` are embedding/LM head (kept in the dtype, ``b_d`` bytes)."""
    dtype_bytes = DTYPE_BYTES[dtype]
    linear_bytes = LINEAR_BYTES.get(quantization or "") or dtype_bytes
    embedding = arch.embedding_params_billion * 1e9
    return (arch.params_billion * 1e9 - embedding) * linear_bytes + embedding * dtype_bytes


def stage_weights_bytes(
    arch: ModelArchitecture, pipeline_parallel_size: int, dtype: str = "auto", quantization: str | None = None
) -> float:
    """Weights of the largest pipeline stage (all of them without pipeline parallelism).

    vLLM splits the decoder layers evenly over the stages (vllm/distributed/utils.py
    ``get_pp_indices``: the remainder goes to the last stages, so the largest stage holds
    ``ceil(layers / pp)``); the input embedding lives on the first stage and the LM head on the
    last (``PPMissingLayer`` elsewhere), and a tied LM head is a second copy on the last stage.
    So the largest stage holds ``ceil(layers/pp)`` layers plus one vocabulary matrix.
    """
    pp = pipeline_parallel_size
    total = weights_bytes(arch, dtype, quantization)
    if pp == 1:
        return total
    one_matrix = arch.vocab_size * arch.hidden_size * DTYPE_BYTES[dtype]
    embeddings = arch.embedding_params_billion * 1e9 * DTYPE_BYTES[dtype]
    layers = total - embeddings
    return layers * math.ceil(arch.layers / pp) / arch.layers + one_matrix


def activation_peak_bytes(
    arch: ModelArchitecture, *, tensor_parallel_size: int, profile_tokens: int, max_num_seqs: int, dtype: str = "auto"
) -> float:
    """Peak of ``profile_run`` above the weights, per GPU: the larger of the forward pass over
    ``profile_tokens`` and the sampler pass over ``min(max_num_seqs, profile_tokens)`` requests
    (they run one after the other; the forward's temporaries are freed in between)."""
    act_bytes = DTYPE_BYTES[dtype]
    per_token = FORWARD_ACTIVATIONS_PER_TOKEN * (arch.intermediate_size / tensor_parallel_size + arch.hidden_size)
    forward = profile_tokens * per_token * act_bytes
    sampler = min(max_num_seqs, profile_tokens) * arch.vocab_size * SAMPLER_BYTES_PER_LOGIT
    return max(forward, sampler)


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
    max_num_batched_tokens: int | None = None,
    max_num_seqs: int | None = None,
    enable_chunked_prefill: bool = True,
    gpu_model: str = "",
    cuda_graphs: bool = True,
    typical_request_tokens: int = DEFAULT_TYPICAL_REQUEST_TOKENS,
    usage: str = "serve",
    lora_slots: int = 0,
    lora_rank: int = 0,
    pipeline_parallel_size: int = 1,
) -> CapacityEstimate:
    """KV-cache capacity of one replica (``tensor_parallel_size x pipeline_parallel_size`` GPUs)
    as vLLM computes it.

    ``gpu_memory_gib`` is the memory CUDA reports per GPU (catalog ``cuda_memory_gib``).
    ``max_num_batched_tokens``/``max_num_seqs`` default as in vLLM for that GPU; without chunked
    prefill the profiling batch is at least ``max_model_len`` tokens (a whole prompt must fit one
    batch). ``cuda_graphs``: the CUDA graph pool is charged to the budget (vLLM >= 0.21 unless
    ``--enforce-eager``). ``lora_slots``/``lora_rank``: ``--max-loras``/``--max-lora-rank``; vLLM
    allocates the slots while loading the model, so they count with the weights (config/lora.py).
    ``usage``: "serve" (``vllm serve``) or "llm" (engines built in-process,
    such as Ray Serve LLM's, whose usage context is not pinned down: the larger defaults err low).

    With pipeline parallelism every GPU holds ``ceil(layers/pp)`` layers (weights and KV cache)
    of its stage, so the
    largest stage, which also holds a vocabulary matrix, is the one estimated here (vLLM gives
    every worker the same number of KV blocks, so the tightest worker sets it).
    """
    tp = tensor_parallel_size
    pp = pipeline_parallel_size
    default_tokens, default_seqs = default_batch_limits(gpu_memory_gib, gpu_model, usage)
    batch_tokens = max_num_batched_tokens or default_tokens
    profile_tokens = batch_tokens if enable_chunked_prefill else max(batch_tokens, max_model_len)
    seqs = max_num_seqs or default_seqs

    weights = weights_bytes(arch, dtype, quantization)
    stage_weights = stage_weights_bytes(arch, pp, dtype, quantization)
    budget = gpu_memory_utilization * gpu_memory_gib * GIB
    activation = activation_peak_bytes(
        arch, tensor_parallel_size=tp, profile_tokens=profile_tokens, max_num_seqs=seqs, dtype=dtype
    )
    non_torch = (NON_TORCH_GIB + (TENSOR_PARALLEL_GIB if tp * pp > 1 else 0.0)) * GIB
    graphs = CUDA_GRAPH_GIB * GIB if cuda_graphs else 0.0
    lora = (
        lora_bytes_per_gpu(
            arch, max_loras=lora_slots, max_rank=lora_rank, tensor_parallel_size=tp, dtype_bytes=DTYPE_BYTES[dtype]
        )
        if lora_slots
        else 0.0
    )
    kv_per_gpu = budget - stage_weights / tp - lora - activation - non_torch - graphs

    # TP splits KV heads across GPUs, replicating them when tp > kv_heads; PP splits the layers
    kv_heads_per_gpu = math.ceil(arch.kv_heads / tp)
    kv_bytes = KV_CACHE_BYTES.get(kv_cache_dtype, DTYPE_BYTES[dtype])
    stage_layers = math.ceil(arch.layers / pp)
    per_token_per_gpu = 2 * stage_layers * kv_heads_per_gpu * arch.head_dim * kv_bytes
    blocks = int(max(0.0, kv_per_gpu) // (per_token_per_gpu * BLOCK_SIZE))
    return CapacityEstimate(
        gpus=tp * pp,
        usable_gib=gpu_memory_gib,
        budget_per_gpu_gib=budget / GIB,
        weights_gib=weights / GIB,
        weights_per_gpu_gib=stage_weights / tp / GIB,
        activation_gib=activation / GIB,
        non_torch_gib=non_torch / GIB,
        cuda_graph_gib=graphs / GIB,
        kv_per_gpu_gib=kv_per_gpu / GIB,
        kv_bytes_per_token=2 * arch.layers * kv_heads_per_gpu * arch.head_dim * kv_bytes * tp,
        kv_blocks=blocks,
        kv_cache_tokens=blocks * BLOCK_SIZE,
        max_model_len=max_model_len,
        profile_tokens=profile_tokens,
        max_num_seqs=seqs,
        typical_request_tokens=typical_request_tokens,
        lora_gib=lora / GIB,
        lora_slots=lora_slots,
        lora_rank=lora_rank if lora_slots else 0,
        pipeline_parallel_size=pp,
    )


def nodes_for(replicas: int, gpus_per_replica: int, gpus_per_node: int) -> int:
    """Nodes needed when each node packs ``gpus_per_node // gpus_per_replica`` replicas; a
    replica larger than a node (pipeline parallel across nodes) takes whole nodes of its own."""
    if gpus_per_replica > gpus_per_node:
        return replicas * math.ceil(gpus_per_replica / gpus_per_node)
    per_node = max(1, gpus_per_node // gpus_per_replica)
    return math.ceil(replicas / per_node)


def hourly_cost(replicas: int, gpus_per_replica: int, gpus_per_node: int, node_hourly_usd: float) -> float:
    return nodes_for(replicas, gpus_per_replica, gpus_per_node) * node_hourly_usd
