"""The capacity arithmetic, checked against numbers worked out by hand (published behaviour of
vLLM in tests/test_capacity_calibration.py)."""

from __future__ import annotations

import json

import pytest
from stackfiles import assert_rejected, stack_values

from llm_infra.config import load_stack_config
from llm_infra.config.architectures import ARCHITECTURES
from llm_infra.config.capacity import GIB, default_batch_limits, estimate_capacity, hourly_cost, nodes_for

L3_8B = ARCHITECTURES["llama-3-8b"]
L3_70B = ARCHITECTURES["llama-3.1-70b"]


def test_llama3_8b_on_one_l4_by_hand():
    # L4: 21.95 GiB as CUDA reports it; vllm serve defaults on a <70 GiB GPU: 2048 tokens, 256 seqs
    est = estimate_capacity(
        L3_8B,
        gpu_memory_gib=21.95,
        tensor_parallel_size=1,
        gpu_memory_utilization=0.90,
        max_model_len=8192,
        gpu_model="NVIDIA L4",
    )
    weights = 8.03e9 * 2  # bf16, embeddings included
    assert est.weights_gib == pytest.approx(weights / GIB, rel=1e-9)
    per_token = 2 * 32 * 8 * 128 * 2  # K and V, layers, KV heads, head dim, bf16
    assert est.kv_bytes_per_token == per_token == 131072
    forward = 2048 * 3 * (14336 + 4096) * 2  # 0.21 GiB
    sampler = 256 * 128256 * 40  # 1.22 GiB: the larger of the two
    assert est.activation_gib * GIB == pytest.approx(max(forward, sampler)) == sampler
    kv = 0.90 * 21.95 * GIB - weights - sampler - 0.5 * GIB - 0.5 * GIB
    assert est.kv_blocks == int(kv // (per_token * 16))
    assert est.kv_cache_tokens == est.kv_blocks * 16
    assert est.kv_cache_tokens == 21_088  # 2.6 GiB; the old fixed 1.5 GiB reserve promised 42,131
    assert est.fits and est.max_concurrent_sequences == pytest.approx(est.kv_cache_tokens / 8192)
    assert est.sequences_at_max_len == est.kv_blocks // 512 == 2
    assert est.sequences_at_typical == est.kv_blocks // 160 == 8  # 2048 + 512 tokens = 160 blocks


def test_the_activation_peak_follows_the_batch_settings():
    def act(**kw):
        return (
            estimate_capacity(
                L3_8B,
                gpu_memory_gib=21.95,
                tensor_parallel_size=1,
                gpu_memory_utilization=0.9,
                max_model_len=8192,
                **kw,
            ).activation_gib
            * GIB
        )

    assert act(max_num_seqs=64) == 64 * 128256 * 40 > 2048 * 3 * (14336 + 4096) * 2
    assert act(max_num_batched_tokens=16384, max_num_seqs=64) == 16384 * 3 * (14336 + 4096) * 2  # 1.69 GiB
    # without chunked prefill a whole prompt is one batch: the profiling pass covers maxModelLen
    assert act(enable_chunked_prefill=False, max_num_seqs=64) == 8192 * 3 * (14336 + 4096) * 2
    # tensor parallelism splits the MLP, not the hidden states
    tp2 = estimate_capacity(
        L3_8B,
        gpu_memory_gib=21.95,
        tensor_parallel_size=2,
        gpu_memory_utilization=0.9,
        max_model_len=8192,
        max_num_batched_tokens=16384,
        max_num_seqs=64,
    )
    assert tp2.activation_gib * GIB == 16384 * 3 * (14336 / 2 + 4096) * 2
    assert tp2.non_torch_gib == 1.0 and tp2.cuda_graph_gib == 0.5


def test_vllm_batch_defaults_depend_on_the_gpu():
    # vllm/engine/arg_utils.py get_batch_defaults: >= 70 GiB and not an A100 -> larger defaults
    assert default_batch_limits(79.1, "NVIDIA H100 80GB") == (8192, 1024)
    assert default_batch_limits(79.15, "NVIDIA A100 80GB") == (2048, 256)
    assert default_batch_limits(22.06, "NVIDIA A10G") == (2048, 256)
    assert default_batch_limits(79.1, "NVIDIA H100 80GB", "llm") == (16384, 1024)
    h100 = estimate_capacity(
        L3_8B,
        gpu_memory_gib=79.1,
        tensor_parallel_size=1,
        gpu_memory_utilization=0.9,
        max_model_len=8192,
        gpu_model="NVIDIA H100 80GB",
    )
    assert h100.activation_gib * GIB == 1024 * 128256 * 40  # 4.9 GiB: the sampler over 1024 requests


def test_awq_keeps_embeddings_in_16_bit():
    fp16 = estimate_capacity(
        L3_70B, gpu_memory_gib=79.1, tensor_parallel_size=4, gpu_memory_utilization=0.9, max_model_len=8192
    )
    awq = estimate_capacity(
        L3_70B,
        gpu_memory_gib=79.1,
        tensor_parallel_size=4,
        gpu_memory_utilization=0.9,
        max_model_len=8192,
        quantization="awq",
    )
    embedding = 2 * 128256 * 8192
    linear = 70.6e9 - embedding
    assert awq.weights_gib * GIB == pytest.approx(linear * (0.5 + 2.5 / 128) + embedding * 2, rel=1e-9)
    assert 36 < awq.weights_gib < 40  # seed 002: "~40 GB" for Llama-3-70B AWQ
    assert 130 < fp16.weights_gib < 133
    assert awq.kv_cache_tokens > fp16.kv_cache_tokens
    # a method whose storage depends on the checkpoint is sized as 16 bit: never under-counted
    gguf = estimate_capacity(
        L3_70B,
        gpu_memory_gib=79.1,
        tensor_parallel_size=4,
        gpu_memory_utilization=0.9,
        max_model_len=8192,
        quantization="gguf",
    )
    assert gguf.weights_gib == fp16.weights_gib


def test_tensor_parallelism_splits_weights_and_kv_heads():
    tp1 = estimate_capacity(
        L3_8B, gpu_memory_gib=22.06, tensor_parallel_size=1, gpu_memory_utilization=0.9, max_model_len=8192
    )
    tp2 = estimate_capacity(
        L3_8B, gpu_memory_gib=22.06, tensor_parallel_size=2, gpu_memory_utilization=0.9, max_model_len=8192
    )
    assert tp2.weights_per_gpu_gib == pytest.approx(tp1.weights_per_gpu_gib / 2)
    assert tp2.kv_bytes_per_token == tp1.kv_bytes_per_token  # 4 heads on each of 2 GPUs
    qwen = ARCHITECTURES["qwen2.5-7b"]  # 4 KV heads: TP 8 replicates them
    tp8 = estimate_capacity(
        qwen, gpu_memory_gib=79.1, tensor_parallel_size=8, gpu_memory_utilization=0.9, max_model_len=8192
    )
    assert tp8.kv_bytes_per_token == 8 * 2 * 28 * 1 * 128 * 2


def test_a_model_that_cannot_hold_one_sequence_does_not_fit():
    est = estimate_capacity(
        L3_70B, gpu_memory_gib=22.06, tensor_parallel_size=4, gpu_memory_utilization=0.9, max_model_len=8192
    )
    assert est.kv_cache_tokens < 8192 and not est.fits
    assert est.kv_per_gpu_gib < 0 and est.kv_cache_gib == 0  # 32.9 GiB of weights per 22 GiB GPU
    # vLLM needs whole blocks: 8193 tokens take 513 blocks
    edge = estimate_capacity(
        L3_8B, gpu_memory_gib=22.06, tensor_parallel_size=1, gpu_memory_utilization=0.9, max_model_len=8192
    )
    assert (edge.kv_blocks >= 512) == edge.fits


def test_fp8_kv_cache_doubles_tokens():
    auto = estimate_capacity(
        L3_8B, gpu_memory_gib=22.06, tensor_parallel_size=1, gpu_memory_utilization=0.9, max_model_len=8192
    )
    fp8 = estimate_capacity(
        L3_8B,
        gpu_memory_gib=22.06,
        tensor_parallel_size=1,
        gpu_memory_utilization=0.9,
        max_model_len=8192,
        kv_cache_dtype="fp8",
    )
    assert fp8.kv_cache_tokens == pytest.approx(2 * auto.kv_cache_tokens, abs=16)


@pytest.mark.parametrize(
    "replicas,tp,per_node,nodes", [(0, 1, 1, 0), (3, 1, 4, 1), (5, 1, 4, 2), (3, 4, 8, 2), (2, 8, 8, 2)]
)
def test_replicas_pack_onto_nodes(replicas, tp, per_node, nodes):
    assert nodes_for(replicas, tp, per_node) == nodes
    assert hourly_cost(replicas, tp, per_node, 10.0) == nodes * 10.0


def test_tensor_parallel_size_is_derived_as_the_fewest_gpus_that_fit():
    values, secrets = stack_values("onprem")
    model = values["models"][0]
    model.pop("tensorParallelSize")
    plan = load_stack_config("onprem", values, secrets)
    m = plan.models[model["name"]]
    assert m.pool.cuda_memory_gib == 79.15  # the catalog's A100 80GB figure, found by product label
    for tp in (1, 2, 4, 8):
        fits = estimate_capacity(
            m.architecture,
            gpu_memory_gib=79.15,
            tensor_parallel_size=tp,
            gpu_memory_utilization=0.9,
            max_model_len=m.max_model_len,
            gpu_model=m.pool.gpu_model,
        ).fits
        if tp < m.tensor_parallel_size:
            assert not fits
        if tp == m.tensor_parallel_size:
            assert fits
            break


def test_capacity_and_cost_are_reported_per_model():
    plan = load_stack_config("prod", *stack_values("prod"))
    m = plan.models["llama31-70b-awq"]
    assert m.pool.hourly_usd is not None
    assert m.tensor_parallel_size == 4 and m.pool.instance_type == "g5.12xlarge"
    assert m.hourly_cost_min == pytest.approx(1 * m.pool.hourly_usd)
    assert m.hourly_cost_max == pytest.approx(3 * m.pool.hourly_usd)
    small = plan.models["llama31-8b"]
    assert small.pool.hourly_usd is not None
    assert small.hourly_cost_max == pytest.approx(6 * small.pool.hourly_usd)
    assert small.capacity.usable_gib == 22.06  # A10G as CUDA reports it, not the nominal 24


def test_a_quantized_checkpoint_is_sized_quantized_without_the_quantization_field():
    # vLLM reads quantization_config from the checkpoint: Qwen2.5-72B-Instruct-AWQ loads ~39 GiB
    values, secrets = stack_values("onprem")
    model = values["models"][0]
    model["model"] = "Qwen/Qwen2.5-72B-Instruct-AWQ"
    model.pop("tensorParallelSize")
    m = load_stack_config("onprem", values, secrets).models[model["name"]]
    assert m.quantization == "awq"
    assert 38 < m.capacity.weights_gib < 40 and m.tensor_parallel_size == 1
    values["models"][0]["quantization"] = "awq_marlin"  # the Marlin kernel of the same format is accepted
    assert load_stack_config("onprem", values, secrets).models[model["name"]].quantization == "awq_marlin"


def test_a_quantization_that_contradicts_the_checkpoint_is_rejected():
    values, secrets = stack_values("prod")
    values["models"][1]["quantization"] = "fp8"  # the repository holds AWQ weights
    assert_rejected("prod", values, secrets, "models[1].quantization", "does not match the checkpoint's own 'awq'")


def test_a_checkpoint_format_on_16_bit_weights_is_rejected():
    values, secrets = stack_values("prod")
    values["models"][0]["quantization"] = "awq"  # meta-llama/Llama-3.1-8B-Instruct holds bf16 weights
    assert_rejected("prod", values, secrets, "models[0].quantization", "holds 16-bit weights")


def test_every_vllm_quantization_name_is_accepted():
    values, secrets = stack_values("prod")
    values["models"][0]["quantization"] = "fp8_per_block"
    m = load_stack_config("prod", values, secrets).models[values["models"][0]["name"]]
    assert m.quantization == "fp8_per_block" and 8.4 < m.capacity.weights_gib < 8.5  # 1 byte linear + 16-bit embeddings


def test_an_unknown_model_names_both_ways_out():
    values, secrets = stack_values("dev")
    values["models"][0]["model"] = "acme/secret-model-13b"
    lines = assert_rejected("dev", values, secrets, "models[0].architecture", "not in the model catalog")
    assert any("set architecture" in line and "modelSpec" in line and "configJson" in line for line in lines)


LLAMA3_8B_CONFIG = {  # meta-llama/Meta-Llama-3-8B-Instruct config.json (relevant keys)
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 8192,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "tie_word_embeddings": False,
    "vocab_size": 128256,
}


def test_model_spec_from_a_local_config_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**LLAMA3_8B_CONFIG, "quantization_config": {"quant_method": "awq", "bits": 4}}))
    values, secrets = stack_values("dev")
    values["models"][0].update(model="acme/llama-fork", modelSpec={"configJson": str(path)})
    m = load_stack_config("dev", values, secrets).models[values["models"][0]["name"]]
    a = m.architecture
    assert (a.layers, a.kv_heads, a.head_dim, a.intermediate_size, a.max_context) == (32, 8, 128, 14336, 8192)
    assert a.params_billion == pytest.approx(8.03, abs=0.01)  # counted from the shapes
    assert m.quantization == "awq"
    values["models"][0]["modelSpec"] = {"configJson": str(tmp_path / "missing.json")}
    assert_rejected("dev", values, secrets, "models[0].modelSpec", "cannot read")


def test_an_existing_pool_can_state_its_cuda_memory():
    values, secrets = stack_values("onprem")
    values["cluster"]["nodePools"][0]["gpu"]["cudaMemoryGib"] = 76.5
    m = load_stack_config("onprem", values, secrets).models[values["models"][0]["name"]]
    assert m.capacity.usable_gib == 76.5
    values["cluster"]["nodePools"][0]["gpu"]["cudaMemoryGib"] = 81
    assert_rejected("onprem", values, secrets, "cluster.nodePools[0].gpu.cudaMemoryGib", "more than the GPU's 80 GiB")


def test_a_model_that_no_longer_fits_is_rejected_with_numbers():
    values, secrets = stack_values("prod")
    values["models"][0]["maxModelLen"] = 32768  # Llama-3.1-8B on one A10G: ~27k tokens of KV cache
    lines = assert_rejected("prod", values, secrets, "models[0].maxModelLen", "does not fit g5.2xlarge")
    assert any("22.06 GiB x utilization" in line and "tokens" in line for line in lines)
