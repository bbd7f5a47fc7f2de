"""The capacity model against what vLLM itself reported in published start-up logs.

Every row is a real run: model, GPU (total memory as that log's CUDA reported it), tensor
parallelism, gpu-memory-utilization, max-model-len, weights format, vLLM version and settings,
and what vLLM found. The model must land within 10 % of vLLM's KV-cache token count and may be
at most 10 % optimistic; a set-up vLLM refused to start must be refused here too.

The logs predate v0.21, so the CUDA graph pool is not charged (``cuda_graphs=False``: those
versions captured graphs after sizing the cache); V0 engines without chunked prefill profiled a
whole ``max_model_len`` batch (``enable_chunked_prefill=False``), as their settings did.
Rows marked ``verified=False`` are quoted from issue 11's text; their threads could not be
opened from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llm_infra.config.architectures import ARCHITECTURES, ModelArchitecture
from llm_infra.config.capacity import GIB, activation_peak_bytes, estimate_capacity

# Qwen/Qwen1.5-7B-Chat config.json: no grouped-query attention (32 KV heads)
QWEN15_7B = ModelArchitecture(
    params_billion=7.72,
    layers=32,
    attention_heads=32,
    kv_heads=32,
    head_dim=128,
    hidden_size=4096,
    vocab_size=151936,
    max_context=32768,
    intermediate_size=11008,
)
# google/gemma-3-4b-it text_config: 262,208-entry vocabulary
GEMMA3_4B = ModelArchitecture(
    params_billion=3.88,
    layers=34,
    attention_heads=8,
    kv_heads=4,
    head_dim=256,
    hidden_size=2560,
    vocab_size=262208,
    max_context=131072,
    intermediate_size=10240,
    tied_embeddings=True,
)


@dataclass(frozen=True)
class Run:
    name: str
    source: str
    arch: ModelArchitecture
    gpu: str
    cuda_gib: float  # total_gpu_memory as logged (or the card's CUDA total)
    tp: int
    utilization: float
    max_model_len: int
    quantization: str | None
    vllm: str
    chunked_prefill: bool
    batched_tokens: int | None  # None: the version's default
    reported_tokens: int | None  # vLLM's "GPU KV cache size" (blocks x 16); None: no cache at all
    refused: bool
    verified: bool = True


RUNS = [
    Run(
        "llama-3.1-8b rtx3090 20k",
        "https://github.com/vllm-project/vllm/issues/10517",
        ARCHITECTURES["llama-3.1-8b"],
        "RTX 3090",
        23.58,
        1,
        0.90,
        20000,
        None,
        "0.6.4 (V0)",
        False,
        None,
        1952 * 16,
        refused=False,
    ),
    Run(
        "llama-3.1-8b rtx3090 29k",
        "https://github.com/vllm-project/vllm/issues/10517",
        ARCHITECTURES["llama-3.1-8b"],
        "RTX 3090",
        23.58,
        1,
        0.90,
        29000,
        None,
        "0.6.4 (V0)",
        False,
        None,
        23648,
        refused=True,
    ),
    Run(
        "llama-3-8b h100",
        "https://github.com/vllm-project/vllm/pull/10511",
        ARCHITECTURES["llama-3-8b"],
        "H100 80GB",
        79.22,
        1,
        0.90,
        8192,
        None,
        "0.6.5.dev (V0)",
        False,
        None,
        436_551,
        refused=False,
    ),  # available_kv_cache_memory 53.29 GiB / 128 KiB per token
    Run(
        "qwen2.5-7b-awq rtx4060",
        "https://github.com/vllm-project/vllm/issues/13882",
        ARCHITECTURES["qwen2.5-7b"],
        "RTX 4060 8GB",
        8.00,
        1,
        0.70,
        4096,
        "awq",
        "0.7.3 (V0)",
        False,
        None,
        None,
        refused=True,
    ),  # "the rest of the memory reserved for KV Cache is -1.05GiB"
    Run(
        "r1-distill-qwen-14b 2x rtx4090",
        "https://github.com/vllm-project/vllm/issues/13061",
        ARCHITECTURES["qwen2.5-14b"],
        "RTX 4090",
        23.55,
        2,
        0.98,
        131072,
        None,
        "0.7.2 (V0)",
        True,
        2048,
        81536,
        refused=True,
    ),  # 23.08 GiB = 23.55 x 0.98 in the log
    Run(
        "qwen1.5-7b-gptq rtx3090",
        "https://github.com/QwenLM/Qwen3/issues/16",
        QWEN15_7B,
        "RTX 3090",
        23.58,
        1,
        0.90,
        32768,
        "gptq",
        "0.3.0",
        False,
        None,
        24320,
        refused=True,
    ),
    Run(
        "llama-3-8b rtx-a6000",
        "https://github.com/vllm-project/vllm/issues/4454",
        ARCHITECTURES["llama-3-8b"],
        "RTX A6000",
        47.54,
        1,
        0.90,
        8192,
        None,
        "0.4.x",
        False,
        None,
        13248 * 16,
        refused=False,
        verified=False,
    ),
    Run(
        "openhermes-2.5-mistral-7b rtx-a6000",
        "https://github.com/vllm-project/vllm/issues/4454",
        ARCHITECTURES["mistral-7b"],
        "RTX A6000",
        47.54,
        1,
        0.90,
        32768,
        None,
        "0.4.x",
        False,
        None,
        12735 * 16,
        refused=False,
        verified=False,
    ),
    Run(
        "qwen2.5-72b-awq 2x a40",
        "a 2025 post quoted in issue 11 (no link)",
        ARCHITECTURES["qwen2.5-72b"],
        "A40 (46068 MiB)",
        44.3,
        2,
        0.90,
        32768,
        "awq",
        "0.7.2 (V0)",
        False,
        None,
        95_900,
        refused=False,
        verified=False,
    ),  # ~14.6 GiB of KV cache per GPU
]


def predict(run: Run):
    return estimate_capacity(
        run.arch,
        gpu_memory_gib=run.cuda_gib,
        tensor_parallel_size=run.tp,
        gpu_memory_utilization=run.utilization,
        max_model_len=run.max_model_len,
        quantization=run.quantization,
        enable_chunked_prefill=run.chunked_prefill,
        max_num_batched_tokens=run.batched_tokens,
        max_num_seqs=256,
        gpu_model=run.gpu,
        cuda_graphs=False,
    )


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_kv_cache_matches_vllm_within_ten_percent(run: Run):
    est = predict(run)
    if run.reported_tokens is None:
        assert est.kv_per_gpu_gib <= 0 and est.kv_cache_tokens == 0
    else:
        error = est.kv_cache_tokens / run.reported_tokens - 1
        assert -0.10 <= error <= 0.10, f"{run.name}: {est.kv_cache_tokens} vs vLLM {run.reported_tokens} ({error:+.1%})"
    assert est.fits is not run.refused, f"{run.name}: vLLM {'refused' if run.refused else 'started'}"


def test_the_table_has_at_least_ten_published_points():
    assert len(RUNS) + len([a for a in ACTIVATIONS if a[0] not in {r.name for r in RUNS}]) >= 10
    assert sum(r.verified for r in RUNS) >= 6


# Activation peaks vLLM logged ("PyTorch activation peak memory", peak_torch_memory minus weights,
# or "GiB for peak activation"): (run, source, arch, tp, profile tokens, dummy requests, GiB)
ACTIVATIONS = [
    (
        "llama-3.1-8b rtx3090 20k",
        "https://github.com/vllm-project/vllm/issues/10517",
        ARCHITECTURES["llama-3.1-8b"],
        1,
        20000,
        256,
        17.06 - 14.99,
    ),
    (
        "llama-3.1-8b rtx3090 29k",
        "https://github.com/vllm-project/vllm/issues/10517",
        ARCHITECTURES["llama-3.1-8b"],
        1,
        29000,
        256,
        17.98 - 14.99,
    ),
    (
        "llama-3-8b h100",
        "https://github.com/vllm-project/vllm/pull/10511",
        ARCHITECTURES["llama-3-8b"],
        1,
        8192,
        256,
        1.26,
    ),
    (
        "qwen2.5-7b-awq rtx4060",
        "https://github.com/vllm-project/vllm/issues/13882",
        ARCHITECTURES["qwen2.5-7b"],
        1,
        4096,
        256,
        1.42,
    ),
    # V1 engine, `vllm bench latency` (LLM class) on a 178 GiB GPU: 16384 tokens, 1024 requests
    ("gemma-3-4b 178gib v1", "https://github.com/vllm-project/vllm/pull/21489", GEMMA3_4B, 1, 16384, 1024, 9.96),
]


@pytest.mark.parametrize("row", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_peak_matches_vllm_within_ten_percent(row):
    name, _, arch, tp, tokens, seqs, logged = row
    modelled = activation_peak_bytes(arch, tensor_parallel_size=tp, profile_tokens=tokens, max_num_seqs=seqs) / GIB
    assert -0.10 <= modelled / logged - 1 <= 0.10, f"{name}: {modelled:.2f} GiB vs vLLM {logged:.2f} GiB"
