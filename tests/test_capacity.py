"""The capacity arithmetic, checked against numbers worked out by hand."""

from __future__ import annotations

import pytest

from config.architectures import ARCHITECTURES
from config.capacity import GIB, estimate_capacity, hourly_cost, nodes_for
from config import load_stack_config
from stackfiles import stack_values

L3_8B = ARCHITECTURES["llama-3-8b"]
L3_70B = ARCHITECTURES["llama-3.1-70b"]


def test_llama3_8b_on_one_l4_by_hand():
    est = estimate_capacity(L3_8B, gpu_memory_gib=24, tensor_parallel_size=1, gpu_memory_utilization=0.90, max_model_len=8192)
    weights = 8.03e9 * 2  # fp16, embeddings included
    assert est.weights_gib == pytest.approx(weights / GIB, rel=1e-9)
    per_token = 2 * 32 * 8 * 128 * 2  # K and V, layers, KV heads, head dim, fp16
    assert est.kv_bytes_per_token == per_token == 131072
    kv = 0.90 * 24 * GIB - weights - 1.5 * GIB
    assert est.kv_cache_tokens == int(kv // per_token)
    assert 40_000 < est.kv_cache_tokens < 45_000  # seed 002: "roughly 5-6 GB for KV cache"
    assert est.fits and est.max_concurrent_sequences == pytest.approx(est.kv_cache_tokens / 8192)


def test_awq_keeps_embeddings_in_16_bit():
    fp16 = estimate_capacity(L3_70B, gpu_memory_gib=80, tensor_parallel_size=4, gpu_memory_utilization=0.9, max_model_len=8192)
    awq = estimate_capacity(L3_70B, gpu_memory_gib=80, tensor_parallel_size=4, gpu_memory_utilization=0.9, max_model_len=8192, quantization="awq")
    embedding = 2 * 128256 * 8192
    linear = 70.6e9 - embedding
    assert awq.weights_gib * GIB == pytest.approx(linear * (0.5 + 2.5 / 128) + embedding * 2, rel=1e-9)
    assert 36 < awq.weights_gib < 40  # seed 002: "~40 GB" for Llama-3-70B AWQ
    assert 130 < fp16.weights_gib < 133
    assert awq.kv_cache_tokens > fp16.kv_cache_tokens


def test_tensor_parallelism_splits_weights_and_kv_heads():
    tp1 = estimate_capacity(L3_8B, gpu_memory_gib=24, tensor_parallel_size=1, gpu_memory_utilization=0.9, max_model_len=8192)
    tp2 = estimate_capacity(L3_8B, gpu_memory_gib=24, tensor_parallel_size=2, gpu_memory_utilization=0.9, max_model_len=8192)
    assert tp2.weights_per_gpu_gib == pytest.approx(tp1.weights_per_gpu_gib / 2)
    assert tp2.kv_bytes_per_token == tp1.kv_bytes_per_token  # 4 heads on each of 2 GPUs
    qwen = ARCHITECTURES["qwen2.5-7b"]  # 4 KV heads: TP 8 replicates them
    tp8 = estimate_capacity(qwen, gpu_memory_gib=80, tensor_parallel_size=8, gpu_memory_utilization=0.9, max_model_len=8192)
    assert tp8.kv_bytes_per_token == 8 * 2 * 28 * 1 * 128 * 2


def test_a_model_that_cannot_hold_one_sequence_does_not_fit():
    est = estimate_capacity(L3_70B, gpu_memory_gib=24, tensor_parallel_size=4, gpu_memory_utilization=0.9, max_model_len=8192)
    assert est.kv_cache_tokens < 8192 and not est.fits


def test_fp8_kv_cache_doubles_tokens():
    auto = estimate_capacity(L3_8B, gpu_memory_gib=24, tensor_parallel_size=1, gpu_memory_utilization=0.9, max_model_len=8192)
    fp8 = estimate_capacity(L3_8B, gpu_memory_gib=24, tensor_parallel_size=1, gpu_memory_utilization=0.9, max_model_len=8192, kv_cache_dtype="fp8")
    assert fp8.kv_cache_tokens == pytest.approx(2 * auto.kv_cache_tokens, abs=1)


@pytest.mark.parametrize("replicas,tp,per_node,nodes", [(0, 1, 1, 0), (3, 1, 4, 1), (5, 1, 4, 2), (3, 4, 8, 2), (2, 8, 8, 2)])
def test_replicas_pack_onto_nodes(replicas, tp, per_node, nodes):
    assert nodes_for(replicas, tp, per_node) == nodes
    assert hourly_cost(replicas, tp, per_node, 10.0) == nodes * 10.0


def test_tensor_parallel_size_is_derived_as_the_fewest_gpus_that_fit():
    values, secrets = stack_values("onprem")
    model = values["models"][0]
    model.pop("tensorParallelSize")
    plan = load_stack_config("onprem", values, secrets)
    m = plan.models[model["name"]]
    for tp in (1, 2, 4, 8):
        fits = estimate_capacity(m.architecture, gpu_memory_gib=80, tensor_parallel_size=tp, gpu_memory_utilization=0.9,
                                 max_model_len=m.max_model_len).fits
        if tp < m.tensor_parallel_size:
            assert not fits
        if tp == m.tensor_parallel_size:
            assert fits
            break


def test_capacity_and_cost_are_reported_per_model():
    plan = load_stack_config("prod", *stack_values("prod"))
    m = plan.models["llama31-70b-awq"]
    assert m.tensor_parallel_size == 4 and m.pool.instance_type == "g5.12xlarge"
    assert m.hourly_cost_min == pytest.approx(1 * m.pool.hourly_usd)
    assert m.hourly_cost_max == pytest.approx(3 * m.pool.hourly_usd)
    small = plan.models["llama31-8b"]
    assert small.hourly_cost_max == pytest.approx(6 * small.pool.hourly_usd)
