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
    assert (
        abs(b["kvCache"] - (b["budget"] - b["weights"] - b["activationPeak"] - b["nonTorch"] - b["cudaGraphs"])) < 0.02
    )
    c = m["concurrentSequences"]
    assert c["typicalRequestTokens"] == 2048 + 512 and c["maxNumSeqs"] == 128
    blocks = m["kvCacheTokens"] // 16
    assert c["atMaxModelLen"] == blocks // 512 and c["atTypicalRequest"] == blocks // 160
    assert models["llama31-70b-awq"]["quantization"] == "awq"


def test_summary_explains_the_budget():
    text = summary(render("prod"))
    assert "## Models: GPU memory budget (per GPU, GiB)" in text
    assert "| llama31-8b | 22.06 x 0.90 = 19.85 | 14.96 | 0.61 | 1.00 |" in text
    assert "sequences are whole sequences that fit at once" in text
