"""Architecture facts of well-known open models, for the capacity check.

Values come from each model's ``config.json`` on the Hugging Face Hub (num_hidden_layers,
num_attention_heads, num_key_value_heads, hidden_size / num_attention_heads, vocab_size,
max_position_embeddings) and the parameter counts in its model card. Models not listed
here are described in the stack config with ``modelSpec`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelArchitecture:
    params_billion: float      # total parameters
    layers: int                # num_hidden_layers
    attention_heads: int       # num_attention_heads (tensor parallelism must divide it)
    kv_heads: int              # num_key_value_heads (grouped-query attention)
    head_dim: int              # hidden_size / num_attention_heads
    hidden_size: int
    vocab_size: int
    max_context: int           # max_position_embeddings
    tied_embeddings: bool = False

    @property
    def embedding_params_billion(self) -> float:
        """Input embedding plus LM head; quantizers such as AWQ/GPTQ leave these in 16 bit."""
        copies = 1 if self.tied_embeddings else 2
        return copies * self.vocab_size * self.hidden_size / 1e9


ARCHITECTURES: dict[str, ModelArchitecture] = {
    # meta-llama/Meta-Llama-3-8B(-Instruct), Llama-3.1-8B: same shape, 3.1 has 128k context
    "llama-3-8b": ModelArchitecture(8.03, 32, 32, 8, 128, 4096, 128256, 8192),
    "llama-3.1-8b": ModelArchitecture(8.03, 32, 32, 8, 128, 4096, 128256, 131072),
    "llama-3-70b": ModelArchitecture(70.6, 80, 64, 8, 128, 8192, 128256, 8192),
    "llama-3.1-70b": ModelArchitecture(70.6, 80, 64, 8, 128, 8192, 128256, 131072),
    "mistral-7b": ModelArchitecture(7.25, 32, 32, 8, 128, 4096, 32768, 32768),
    "qwen2.5-7b": ModelArchitecture(7.62, 28, 28, 4, 128, 3584, 152064, 32768),
    "qwen2.5-72b": ModelArchitecture(72.7, 80, 64, 8, 128, 8192, 152064, 32768),
}

# Hugging Face repositories (lower case) known to carry one of the architectures above, so
# a stack file only needs ``model:``. Quantized repos map to their base architecture.
KNOWN_REPOSITORIES: dict[str, str] = {
    "meta-llama/meta-llama-3-8b": "llama-3-8b",
    "meta-llama/meta-llama-3-8b-instruct": "llama-3-8b",
    "nousresearch/meta-llama-3-8b-instruct": "llama-3-8b",
    "meta-llama/llama-3.1-8b-instruct": "llama-3.1-8b",
    "meta-llama/meta-llama-3.1-8b-instruct": "llama-3.1-8b",
    "meta-llama/meta-llama-3-70b-instruct": "llama-3-70b",
    "meta-llama/llama-3.1-70b-instruct": "llama-3.1-70b",
    "meta-llama/meta-llama-3.1-70b-instruct": "llama-3.1-70b",
    "hugging-quants/meta-llama-3.1-70b-instruct-awq-int4": "llama-3.1-70b",
    "hugging-quants/meta-llama-3.1-8b-instruct-awq-int4": "llama-3.1-8b",
    "mistralai/mistral-7b-instruct-v0.3": "mistral-7b",
    "qwen/qwen2.5-7b-instruct": "qwen2.5-7b",
    "qwen/qwen2.5-7b-instruct-awq": "qwen2.5-7b",
    "qwen/qwen2.5-72b-instruct": "qwen2.5-72b",
    "qwen/qwen2.5-72b-instruct-awq": "qwen2.5-72b",
}


def architecture_for_repository(repo: str) -> str | None:
    return KNOWN_REPOSITORIES.get(repo.lower())
