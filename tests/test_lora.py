"""LoRA adapters: vLLM flags, adapter pre-download, GPU memory of the LoRA slots, config errors.

Expectations are rebuilt from the stack files (raw YAML values) and from vLLM's source facts
written out here as literals:

* ``MaxLoRARanks = Literal[1, 8, 16, 32, 64, 128, 256, 320, 512]`` (vllm/config/lora.py);
* ``create_lora_weights`` (vllm/lora/layers/base_linear.py) allocates per slice
  ``lora_a_stacked`` (max_loras, 1, max_lora_rank, input_size) and ``lora_b_stacked``
  (max_loras, 1, output_size, max_lora_rank); column-parallel layers keep the whole input and
  their output shard, row-parallel ones their input shard and the whole output.
"""

from __future__ import annotations

import copy
import json

import pytest
from stackfiles import assert_rejected, stack_values
from test_vllm import STACKS_WITH_MODELS, container, flags, models, pod_spec, served

from llm_infra.components.serving.vllm import workload_kind
from llm_infra.config import load_stack_config, versions
from llm_infra.config.architectures import ARCHITECTURES
from llm_infra.config.capacity import GIB, estimate_capacity
from llm_infra.config.lora import lora_bytes_per_gpu

VLLM_MAX_LORA_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512]
LORA_FLAGS = ("--enable-lora", "--max-loras", "--max-lora-rank", "--max-cpu-loras", "--lora-modules")


def raw_models(stack: str) -> dict[str, dict]:
    return {m["name"]: m for m in stack_values(stack)[0].get("models", [])}


def expected_lora_flags(raw: dict) -> dict[str, list[str | None]]:
    lora = raw["lora"]
    adapters = lora["adapters"]
    slots = lora.get("maxLoras", min(len(adapters), 4))
    rank = min(r for r in VLLM_MAX_LORA_RANKS if r >= max(a["rank"] for a in adapters))
    return {
        "--enable-lora": [None],
        "--max-loras": [str(slots)],
        "--max-lora-rank": [str(rank)],
        "--max-cpu-loras": [str(lora.get("maxCpuLoras", len(adapters)))],
    }


def lora_modules(args: list[str]) -> list[str]:
    """The values after ``--lora-modules`` (nargs='+': up to the next flag)."""
    i = args.index("--lora-modules") + 1
    out = []
    while i < len(args) and not args[i].startswith("--"):
        out.append(args[i])
        i += 1
    return out


def test_prod_serves_a_lora_enabled_model():
    assert any("lora" in m for m in raw_models("prod").values())


@pytest.mark.parametrize("stack", STACKS_WITH_MODELS)
def test_every_adapter_is_a_flag_and_a_pinned_download(stack):
    """Every vLLM workload (canaries too: they serve the stable model's adapters)."""
    sv = served(stack)
    raw = raw_models(stack)
    for m, _ in models(sv):
        source = raw[m.name.removesuffix("-canary")] if m.name not in raw else raw[m.name]
        w = sv.get(workload_kind(m), m.name)
        args = container(w)["args"]
        f = flags(args[1:])
        inits = pod_spec(w).get("initContainers", [])
        # with the model store the base weights stream from it: no model-download, only adapters
        streamed = bool(stack_values(stack)[0].get("modelStore", {}).get("enabled"))
        base_downloads = [] if streamed else ["model-download"]
        if "lora" not in source:
            assert not set(LORA_FLAGS) & set(f), m.name
            assert [c["name"] for c in inits] == base_downloads
            continue
        for flag, value in expected_lora_flags(source).items():
            assert f[flag] == value, (m.name, flag)
        adapters = source["lora"]["adapters"]
        assert lora_modules(args) == [f"{a['name']}=/model-cache/lora/{a['name']}" for a in adapters]
        assert [c["name"] for c in inits] == [*base_downloads, *(f"lora-download-{i}" for i in range(len(adapters)))]
        downloads = inits[len(base_downloads) :]
        for a, c in zip(adapters, downloads, strict=True):
            cmd = ["hf", "download", a["repo"], "--local-dir", f"/model-cache/lora/{a['name']}"]
            if a.get("revision"):
                cmd += ["--revision", a["revision"]]
            assert c["command"] == cmd
            assert c["image"] == versions.VLLM_IMAGE
            assert {"name": "model-cache", "mountPath": "/model-cache"} in c["volumeMounts"], c["volumeMounts"]
            if not streamed:
                # same image, credentials, cache volume and limits as the base weights' download
                base = inits[0]
                for key in ("env", "volumeMounts", "resources", "securityContext", "imagePullPolicy"):
                    assert c[key] == base[key], key


# -- GPU memory of the LoRA slots ---------------------------------------------------------------
LLAMA_31_8B = {  # meta-llama/Llama-3.1-8B-Instruct config.json
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
}


def independent_lora_bytes(cfg: dict, max_loras: int, rank: int, tp: int, dtype_bytes: int = 2) -> int:
    """Sum of vLLM's stacked A/B tensors, module by module, for a Llama decoder."""
    h, heads, kv, d, inter = (
        cfg["hidden_size"],
        cfg["num_attention_heads"],
        cfg["num_key_value_heads"],
        cfg["head_dim"],
        cfg["intermediate_size"],
    )
    kv_shard = max(1, kv // tp) * d
    modules = {
        # name: [(A input, B output) per slice]
        "qkv_proj (column, 3 slices)": [(h, heads * d // tp), (h, kv_shard), (h, kv_shard)],
        "o_proj (row)": [(heads * d // tp, h)],
        "gate_up_proj (column, 2 slices)": [(h, inter // tp), (h, inter // tp)],
        "down_proj (row)": [(inter // tp, h)],
    }
    per_layer = sum(rank * a_in + b_out * rank for slices in modules.values() for a_in, b_out in slices)
    return max_loras * cfg["num_hidden_layers"] * per_layer * dtype_bytes


@pytest.mark.parametrize("max_loras,rank,tp", [(1, 8, 1), (4, 16, 1), (4, 64, 2), (2, 32, 4)])
def test_lora_slot_memory_matches_vllms_tensors(max_loras, rank, tp):
    arch = ARCHITECTURES["llama-3.1-8b"]
    assert (arch.hidden_size, arch.intermediate_size, arch.layers) == (4096, 14336, 32)
    got = lora_bytes_per_gpu(arch, max_loras=max_loras, max_rank=rank, tensor_parallel_size=tp, dtype_bytes=2)
    assert got == independent_lora_bytes(LLAMA_31_8B, max_loras, rank, tp)


def test_lora_slot_memory_real_numbers_for_llama_31_8b():
    """4 slots of rank 16 on one GPU: 16 x 81,920 values per layer and slot, x 32 layers x 4
    slots x 2 bytes = 335,544,320 bytes (320 MiB)."""
    arch = ARCHITECTURES["llama-3.1-8b"]
    assert lora_bytes_per_gpu(arch, max_loras=4, max_rank=16, tensor_parallel_size=1, dtype_bytes=2) == 335_544_320


def test_lora_slots_come_out_of_the_kv_cache():
    arch = ARCHITECTURES["llama-3.1-8b"]
    kw = {"gpu_memory_gib": 22.06, "tensor_parallel_size": 1, "gpu_memory_utilization": 0.9, "max_model_len": 8192}
    plain = estimate_capacity(arch, **kw)
    lora = estimate_capacity(arch, **kw, lora_slots=4, lora_rank=16)
    assert lora.lora_gib * GIB == pytest.approx(335_544_320)
    assert (plain.kv_per_gpu_gib - lora.kv_per_gpu_gib) * GIB == pytest.approx(335_544_320)
    assert lora.kv_cache_tokens < plain.kv_cache_tokens
    assert "loraSlots" in lora.budget_lines() and "loraSlots" not in plain.budget_lines()
    assert "LoRA slots 0.31" in lora.describe_budget()


def test_plan_json_and_summary_show_the_lora_slots(tmp_path):
    from conftest import PROJECT

    from llm_infra.components.render import run_program
    from llm_infra.components.render.output import write

    rec = run_program(PROJECT, "prod")
    write(rec, tmp_path)
    plan = json.loads((tmp_path / "plan.json").read_text())
    models_out = plan["outputs"]["models"]
    for name, raw in raw_models("prod").items():
        entry = models_out[name]
        if "lora" not in raw:
            assert "lora" not in entry and "loraSlots" not in entry["budgetPerGpuGib"]
            continue
        f = expected_lora_flags(raw)
        slots, rank = int(f["--max-loras"][0] or ""), int(f["--max-lora-rank"][0] or "")
        tp = entry["tensorParallelSize"]
        arch = {"meta-llama/Llama-3.1-8B-Instruct": LLAMA_31_8B}[raw["model"]]
        gib = independent_lora_bytes(arch, slots, rank, tp) / GIB
        assert entry["lora"] == {"maxLoras": slots, "maxLoraRank": rank, "gibPerGpu": round(gib, 3)}
        assert entry["budgetPerGpuGib"]["loraSlots"] == round(gib, 2)
    summary = (tmp_path / "summary.md").read_text()
    assert "| LoRA slots |" in summary


# -- config errors -------------------------------------------------------------------------------
def _prod_with(change) -> tuple[dict, dict]:
    values, secrets = stack_values("prod")
    values = copy.deepcopy(values)
    change(values["models"][0])
    return values, secrets


@pytest.mark.parametrize(
    "change,path,words",
    [
        (
            lambda m: m["lora"]["adapters"].append({**m["lora"]["adapters"][0]}),
            "models[0].lora",
            "adapter names must be unique",
        ),
        (lambda m: m["lora"]["adapters"][0].update(rank=1024), "models[0].lora.adapters[0].rank", "512"),
        (lambda m: m["lora"].update(maxLoras=3), "models[0].lora", "exceeds the 1 adapters"),
        (
            lambda m: (
                m["lora"]["adapters"].append({"name": "b", "repo": "x/y", "rank": 8})
                or m["lora"].update(maxLoras=2, maxCpuLoras=1)
            ),
            "models[0].lora",
            "maxCpuLoras (1) must be >= maxLoras (2)",
        ),
        (
            lambda m: m["lora"]["adapters"][0].update(name="llama31-70b-awq"),
            "models[0].lora.adapters[0].name",
            "already served",
        ),
        (lambda m: m.update(extraArgs=["--max-lora-rank", "64"]), "models[0].extraArgs", "typed field"),
        (lambda m: m["lora"]["adapters"][0].update(repo="not a repo"), "models[0].lora.adapters[0].repo", ""),
    ],
)
def test_bad_lora_config_is_rejected_at_its_path(change, path, words):
    values, secrets = _prod_with(change)
    assert_rejected("prod", values, secrets, path, words)


def test_bad_ray_lora_config_is_rejected():
    values, secrets = stack_values("prod")
    values = copy.deepcopy(values)
    model = values["rayServices"][0]["models"][0]
    model["lora"] = {"dynamicLoadingPath": "/local/adapters"}
    assert_rejected("prod", values, secrets, "rayServices[0].models[0].lora.dynamicLoadingPath", "")
    model["lora"] = {"dynamicLoadingPath": "s3://b/a", "maxLoraRank": 24}
    assert_rejected("prod", values, secrets, "rayServices[0].models[0].lora.maxLoraRank", "")


def test_lora_memory_can_make_a_model_not_fit():
    """Many high-rank slots eat the KV cache: the plan refuses what vLLM would refuse."""
    values, secrets = _prod_with(
        lambda m: m["lora"].update(
            adapters=[{"name": f"a{i}", "repo": "x/y", "rank": 512} for i in range(16)], maxLoras=16
        )
    )
    with pytest.raises(Exception) as info:
        load_stack_config("prod", values, secrets)
    assert "LoRA slots" in str(info.value)


def test_ray_lora_slots_are_counted_in_the_ray_models_plan():
    """The fixture stack's Ray model (onprem+ray in test_rayservice.py) preallocates its slots too."""
    from test_rayservice import ONPREM_RAY

    values, secrets = stack_values("onprem")
    values["rayServices"] = copy.deepcopy(ONPREM_RAY)
    plan = load_stack_config("onprem", values, secrets)
    found = 0
    for svc in ONPREM_RAY:
        for raw in svc["models"]:
            p = plan.ray_models[f"{svc['name']}/{raw['modelId']}"]
            if "lora" not in raw:
                assert p.capacity.lora_slots == 0 and p.capacity.lora_gib == 0
                continue
            found += 1
            slots, rank = raw["lora"]["maxLoras"], raw["lora"]["maxLoraRank"]
            assert (p.capacity.lora_slots, p.capacity.lora_rank) == (slots, rank)
            expected = independent_lora_bytes(LLAMA_31_8B, slots, rank, p.tensor_parallel_size)
            assert p.capacity.lora_gib * GIB == pytest.approx(expected)
    assert found
