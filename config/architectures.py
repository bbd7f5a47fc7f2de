"""Architecture facts of well-known open models, for the capacity check.

Values come from each model's ``config.json`` on the Hugging Face Hub (num_hidden_layers,
num_attention_heads, num_key_value_heads, hidden_size / num_attention_heads, intermediate_size,
vocab_size, max_position_embeddings, tie_word_embeddings) and the parameter counts in its model
card. Models not listed here are described in the stack config with ``modelSpec`` instead
(its fields, or the path of a local ``config.json``).

A checkpoint that is already quantized carries ``quantization_config.quant_method`` in its
config.json; vLLM reads it and loads the weights quantized even when ``--quantization`` is not
given (vllm/config/model.py ``_verify_quantization``). ``KNOWN_REPOSITORIES`` records that method
per repository, so such a checkpoint is sized as vLLM loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelArchitecture:
    params_billion: float  # total parameters
    layers: int  # num_hidden_layers
    attention_heads: int  # num_attention_heads (tensor parallelism must divide it)
    kv_heads: int  # num_key_value_heads (grouped-query attention)
    head_dim: int  # hidden_size / num_attention_heads
    hidden_size: int
    vocab_size: int
    max_context: int  # max_position_embeddings
    intermediate_size: int  # MLP width: drives the activation peak of vLLM's profiling run
    tied_embeddings: bool = False

    @property
    def embedding_params_billion(self) -> float:
        """Input embedding plus LM head; quantizers such as AWQ/GPTQ leave these in 16 bit."""
        copies = 1 if self.tied_embeddings else 2
        return copies * self.vocab_size * self.hidden_size / 1e9


def dense_params_billion(
    *,
    layers: int,
    hidden_size: int,
    attention_heads: int,
    kv_heads: int,
    head_dim: int,
    intermediate_size: int,
    vocab_size: int,
    tied_embeddings: bool,
) -> float:
    """Parameters of a dense decoder (Llama/Mistral/Qwen2 layout) from its config.json shapes:
    q/o projections (heads x head_dim), k/v projections (kv_heads x head_dim), a gated MLP
    (gate, up, down) and the embeddings; norms and biases are below 0.1 % and left out."""
    attn = hidden_size * head_dim * (2 * attention_heads + 2 * kv_heads)
    mlp = 3 * hidden_size * intermediate_size
    embeddings = (1 if tied_embeddings else 2) * vocab_size * hidden_size
    return (layers * (attn + mlp) + embeddings) / 1e9


def _arch(
    params: float,
    layers: int,
    heads: int,
    kv: int,
    head_dim: int,
    hidden: int,
    intermediate: int,
    vocab: int,
    context: int,
) -> ModelArchitecture:
    return ModelArchitecture(
        params_billion=params,
        layers=layers,
        attention_heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        hidden_size=hidden,
        vocab_size=vocab,
        max_context=context,
        intermediate_size=intermediate,
    )


ARCHITECTURES: dict[str, ModelArchitecture] = {
    # meta-llama/Meta-Llama-3-8B(-Instruct), Llama-3.1-8B: same shape, 3.1 has 128k context
    "llama-3-8b": _arch(8.03, 32, 32, 8, 128, 4096, 14336, 128256, 8192),
    "llama-3.1-8b": _arch(8.03, 32, 32, 8, 128, 4096, 14336, 128256, 131072),
    "llama-3-70b": _arch(70.6, 80, 64, 8, 128, 8192, 28672, 128256, 8192),
    "llama-3.1-70b": _arch(70.6, 80, 64, 8, 128, 8192, 28672, 128256, 131072),
    "mistral-7b": _arch(7.25, 32, 32, 8, 128, 4096, 14336, 32768, 32768),
    "qwen2.5-7b": _arch(7.62, 28, 28, 4, 128, 3584, 18944, 152064, 32768),
    "qwen2.5-14b": _arch(14.77, 48, 40, 8, 128, 5120, 13824, 152064, 131072),
    "qwen2.5-72b": _arch(72.7, 80, 64, 8, 128, 8192, 29568, 152064, 32768),
}


@dataclass(frozen=True)
class Checkpoint:
    """A Hugging Face repository: its architecture and the quantization its weights are stored in
    (``quantization_config.quant_method`` of its config.json; None for 16-bit weights)."""

    architecture: str
    quantization: str | None = None


# Hugging Face repositories (lower case) known to carry one of the architectures above, so a
# stack file only needs ``model:``. Quantized repos record the method of their config.json.
KNOWN_REPOSITORIES: dict[str, Checkpoint] = {
    "meta-llama/meta-llama-3-8b": Checkpoint("llama-3-8b"),
    "meta-llama/meta-llama-3-8b-instruct": Checkpoint("llama-3-8b"),
    "nousresearch/meta-llama-3-8b-instruct": Checkpoint("llama-3-8b"),
    "meta-llama/llama-3.1-8b-instruct": Checkpoint("llama-3.1-8b"),
    "meta-llama/meta-llama-3.1-8b-instruct": Checkpoint("llama-3.1-8b"),
    "meta-llama/meta-llama-3-70b-instruct": Checkpoint("llama-3-70b"),
    "meta-llama/llama-3.1-70b-instruct": Checkpoint("llama-3.1-70b"),
    "meta-llama/meta-llama-3.1-70b-instruct": Checkpoint("llama-3.1-70b"),
    "hugging-quants/meta-llama-3.1-70b-instruct-awq-int4": Checkpoint("llama-3.1-70b", "awq"),
    "hugging-quants/meta-llama-3.1-8b-instruct-awq-int4": Checkpoint("llama-3.1-8b", "awq"),
    "mistralai/mistral-7b-instruct-v0.3": Checkpoint("mistral-7b"),
    "teknium/openhermes-2.5-mistral-7b": Checkpoint("mistral-7b"),
    "qwen/qwen2.5-7b-instruct": Checkpoint("qwen2.5-7b"),
    "qwen/qwen2.5-7b-instruct-awq": Checkpoint("qwen2.5-7b", "awq"),
    "qwen/qwen2.5-7b-instruct-gptq-int4": Checkpoint("qwen2.5-7b", "gptq"),
    "qwen/qwen2.5-14b-instruct": Checkpoint("qwen2.5-14b"),
    "deepseek-ai/deepseek-r1-distill-qwen-14b": Checkpoint("qwen2.5-14b"),
    "qwen/qwen2.5-72b-instruct": Checkpoint("qwen2.5-72b"),
    "qwen/qwen2.5-72b-instruct-awq": Checkpoint("qwen2.5-72b", "awq"),
    "qwen/qwen2.5-72b-instruct-gptq-int4": Checkpoint("qwen2.5-72b", "gptq"),
}


def checkpoint_for_repository(repo: str) -> Checkpoint | None:
    return KNOWN_REPOSITORIES.get(repo.lower())


def architecture_for_repository(repo: str) -> str | None:
    c = checkpoint_for_repository(repo)
    return None if c is None else c.architecture


CONFIG_JSON_FIELDS = {
    "layers": "num_hidden_layers",
    "attention_heads": "num_attention_heads",
    "kv_heads": "num_key_value_heads",
    "hidden_size": "hidden_size",
    "intermediate_size": "intermediate_size",
    "vocab_size": "vocab_size",
    "max_context": "max_position_embeddings",
}
"""ModelSpec field -> Hugging Face config.json key (transformers' PretrainedConfig names)."""


def read_config_json(path: str | Path) -> dict[str, Any]:
    """ModelSpec fields from a local Hugging Face ``config.json``.

    Multimodal wrappers keep the language model under ``text_config``; that part is used.
    ``num_key_value_heads`` defaults to ``num_attention_heads`` and ``head_dim`` to
    ``hidden_size / num_attention_heads`` as in transformers; the checkpoint's quantization is
    ``quantization_config.quant_method``.
    """
    raw = json.loads(Path(path).read_text())
    cfg = raw.get("text_config") or raw
    missing = [key for field, key in CONFIG_JSON_FIELDS.items() if field != "kv_heads" and key not in cfg]
    if missing:
        raise ValueError(f"{path} has no {', '.join(missing)} (a decoder-only model's config.json is needed)")
    spec: dict[str, Any] = {field: int(cfg[key]) for field, key in CONFIG_JSON_FIELDS.items() if key in cfg}
    spec.setdefault("kv_heads", spec["attention_heads"])
    spec["head_dim"] = int(cfg.get("head_dim") or spec["hidden_size"] // spec["attention_heads"])
    spec["tied_embeddings"] = bool(raw.get("tie_word_embeddings", cfg.get("tie_word_embeddings", False)))
    quant = (raw.get("quantization_config") or {}).get("quant_method")
    if quant:
        spec["quantization"] = str(quant)
    return spec
