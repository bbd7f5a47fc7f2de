"""The plan shows vLLM's memory budget line by line and the concurrency it buys."""

from __future__ import annotations

from conftest import render

from llm_infra.components.render.output import plan, summary


def test_plan_json_carries_the_budget_per_model():
    models = plan(render("prod"))["outputs"]["models"]
    m = models["llama31-8b"]
    b = m["budgetPerGpuGib"]
    # A10G as CUDA reports it, x 0.90; 8.03B bf16 weights; sampler over 128 requests x 128,256 x 40 B
    assert (b["usable"], b["budget"], b["weights"], b["activationPeak"]) == (22.06, 19.85, 14.96, 0.61)
    assert (b["nonTorch"], b["cudaGraphs"]) == (0.5, 0.5)
    # one LoRA slot of rank 8 (its food-review adapter): 8 x 81,920 values x 32 layers x 2 B = 40 MiB
    assert b["loraSlots"] == 0.04
    assert (
        abs(
            b["kvCache"]
            - (b["budget"] - b["weights"] - b["loraSlots"] - b["activationPeak"] - b["nonTorch"] - b["cudaGraphs"])
        )
        < 0.02
    )
    c = m["concurrentSequences"]
    assert c["typicalRequestTokens"] == 2048 + 512 and c["maxNumSeqs"] == 128
    blocks = m["kvCacheTokens"] // 16
    assert c["atMaxModelLen"] == blocks // 512 and c["atTypicalRequest"] == blocks // 160
    assert models["llama31-70b-awq"]["quantization"] == "awq"


def test_summary_explains_the_budget():
    text = summary(render("prod"))
    assert "## Models: GPU memory budget (per GPU, GiB)" in text
    # the LoRA slots column (prod's llama31-8b serves an adapter): 0.04 GiB, 0 for the others
    assert "| llama31-8b | 22.06 x 0.90 = 19.85 | 14.96 | 0.04 | 0.61 | 1.00 |" in text
    assert "| llama31-70b-awq | 22.06 x 0.90 = 19.85 | 9.26 | 0.00 | 1.22 |" in text
    assert "sequences are whole sequences that fit at once" in text
