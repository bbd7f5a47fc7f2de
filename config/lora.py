"""LoRA adapters served on top of a base model (vLLM multi-LoRA), and the GPU memory they take.

vLLM side (pinned v0.31; the tag itself is not in the stored snapshots, so the sources were read at
vllm-project/vllm main: vllm/config/lora.py @01230b4, vllm/lora/layers/base_linear.py @01235a4,
vllm/lora/model_manager.py @01533aa):

* ``vllm/config/lora.py`` ``LoRAConfig``: ``max_lora_rank`` is one of ``MaxLoRARanks`` =
  1, 8, 16, 32, 64, 128, 256, 320, 512 (default 16); ``max_loras`` >= 1 (default 1: one adapter
  per batch); ``max_cpu_loras`` >= ``max_loras`` (default ``max_loras``); ``lora_dtype`` "auto" =
  the model dtype. The CLI spells them ``--enable-lora``, ``--max-loras``, ``--max-lora-rank``,
  ``--max-cpu-loras`` (``vllm/engine/arg_utils.py`` ``EngineArgs.add_cli_args``, LoRA group).
* ``vllm/entrypoints/openai/cli_args.py`` ``LoRAParserAction``: ``--lora-modules name=path``
  (or a JSON object); each name is served as a model of ``/v1/models``.
* ``VLLM_ALLOW_RUNTIME_LORA_UPDATING`` (``vllm/envs.py``) enables ``/v1/load_lora_adapter``
  at runtime. Not used here: adapters are pinned in config and pre-downloaded like the base
  weights, so what runs is what the stack says.

Memory (``vllm/lora/model_manager.py`` ``LoRAModelManager._create_lora_modules`` wraps every
supported linear module; ``vllm/lora/layers/base_linear.py`` ``create_lora_weights``): each
wrapped layer preallocates, per slice, ``lora_a_stacked`` = ``max_loras x max_lora_rank x
input_size`` and ``lora_b_stacked`` = ``max_loras x output_size x max_lora_rank`` in the LoRA
dtype, on every GPU, whatever rank the adapters really have. Without fully sharded LoRA, a
column-parallel layer keeps its whole input (A unsharded) and its output shard (B); a
row-parallel layer its input shard (A) and its whole output (B). For the dense decoders of the
catalog (Llama/Mistral/Qwen2 layout) the wrapped modules of one layer are:

==============  ================  ===========================  =================================
module          kind              A (rank x input)             B (output x rank)
==============  ================  ===========================  =================================
qkv_proj        column, 3 slices  3 x hidden                   (heads + 2 x kv_heads) x head_dim / tp
o_proj          row               heads x head_dim / tp        hidden
gate_up_proj    column, 2 slices  2 x hidden                   2 x intermediate / tp
down_proj       row               intermediate / tp            hidden
==============  ================  ===========================  =================================

so one slot of one layer holds ``rank x (7 hidden + (2 heads + 2 kv_heads) head_dim / tp +
3 intermediate / tp)`` values. The LM head and embeddings are not wrapped (the catalog's
models declare no ``embedding_modules`` since the extra-vocabulary support was removed), and
the punica wrapper's index buffers (a few int32 per batched token) are below 1 MiB.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from .architectures import ModelArchitecture
from .base import ConfigModel

MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""``MaxLoRARanks`` of vllm/config/lora.py: the only values ``--max-lora-rank`` accepts."""

DEFAULT_MAX_LORAS = 4
"""``maxLoras`` when not set: the number of adapters, at most 4. vLLM's own default (1) runs
one adapter per batch, so requests for different adapters wait for each other; every slot
costs GPU memory taken from the KV cache (shown in the plan), so more than 4 is a choice."""


class LoraAdapter(ConfigModel):
    """One adapter: served under ``name`` (clients send it as ``model``)."""

    name: str = Field(pattern=r"^[a-zA-Z0-9][\w.-]{0,62}$", description="model name clients request")
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="Hugging Face repository of the adapter")
    revision: str | None = Field(default=None, description="commit or tag of the repository (pin it in prod)")
    rank: int = Field(ge=1, le=MAX_LORA_RANKS[-1], description="r of the adapter's adapter_config.json")


class LoraConfig(ConfigModel):
    """``models[].lora``: multi-LoRA serving of pre-downloaded adapters."""

    adapters: list[LoraAdapter] = Field(min_length=1)
    max_loras: int | None = Field(
        default=None,
        ge=1,
        description=f"adapters in one batch (GPU slots); default: adapters, at most {DEFAULT_MAX_LORAS}",
    )
    max_cpu_loras: int | None = Field(
        default=None,
        ge=1,
        description="adapters kept in host memory; default: all adapters (none is reloaded from disk)",
    )

    @model_validator(mode="after")
    def _check(self) -> LoraConfig:
        names = [a.name for a in self.adapters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"adapter names must be unique (repeated: {', '.join(dupes)})")
        if self.max_loras is not None and self.max_loras > len(self.adapters):
            raise ValueError(f"maxLoras ({self.max_loras}) exceeds the {len(self.adapters)} adapters")
        if self.max_cpu_loras is not None and self.max_cpu_loras < self.slots:
            raise ValueError(f"maxCpuLoras ({self.max_cpu_loras}) must be >= maxLoras ({self.slots}), as vLLM requires")
        return self

    @property
    def slots(self) -> int:
        """``--max-loras``."""
        return self.max_loras if self.max_loras is not None else min(len(self.adapters), DEFAULT_MAX_LORAS)

    @property
    def cpu_slots(self) -> int:
        """``--max-cpu-loras``."""
        return self.max_cpu_loras if self.max_cpu_loras is not None else len(self.adapters)

    @property
    def max_rank(self) -> int:
        """``--max-lora-rank``: the smallest rank vLLM accepts that holds every adapter."""
        return max_lora_rank(max(a.rank for a in self.adapters))


MaxLoraRank = Literal[1, 8, 16, 32, 64, 128, 256, 320, 512]
"""``MAX_LORA_RANKS`` as a config type."""


class RayLoraConfig(ConfigModel):
    """``rayServices[].models[].lora``: Ray Serve LLM's multiplexed LoRA (``LLMConfig.lora_config``:
    ray python/ray/llm/_internal/serve/core/configs/llm_config.py ``LoraConfig``, read at a 2026 master
    snapshot, commit 1190ecb; the ray-2.58.0 tag itself could not be fetched here).

    Ray Serve LLM loads adapters on demand from ``dynamicLoadingPath/<adapter>`` (cloud storage
    only: its validator accepts s3://, gs://, abfss:// and azure://) when a request names
    ``<modelId>:<adapter>``; the engine gets ``enable_lora``, ``max_lora_rank`` and ``max_loras``.
    The workers need read access to that bucket (their node or workload identity).
    """

    dynamic_loading_path: str = Field(
        pattern=r"^(s3|gs|abfss|azure)://[^/\s]+(/\S*)?$", description="bucket prefix holding one folder per adapter"
    )
    max_adapters_per_replica: int = Field(
        default=16, ge=1, description="adapters a replica keeps loaded (Ray's default 16)"
    )
    max_loras: int = Field(default=DEFAULT_MAX_LORAS, ge=1, description="adapters in one batch (GPU slots)")
    max_lora_rank: MaxLoraRank = Field(default=16, description="largest adapter rank (vLLM's allowed values)")

    @model_validator(mode="after")
    def _check(self) -> RayLoraConfig:
        if self.max_loras > self.max_adapters_per_replica:
            raise ValueError(
                f"maxLoras ({self.max_loras}) exceeds maxAdaptersPerReplica ({self.max_adapters_per_replica})"
            )
        return self

    @property
    def slots(self) -> int:
        return self.max_loras

    @property
    def max_rank(self) -> int:
        return self.max_lora_rank


def max_lora_rank(rank: int) -> int:
    """The smallest of vLLM's ``MaxLoRARanks`` at least ``rank``."""
    for allowed in MAX_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ValueError(f"rank {rank} exceeds vLLM's largest max_lora_rank {MAX_LORA_RANKS[-1]}")


def lora_values_per_layer(arch: ModelArchitecture, rank: int, tensor_parallel_size: int) -> float:
    """Values one LoRA slot preallocates in one decoder layer on one GPU (table above): the A
    matrices' whole inputs (3 + 2 x hidden) and whole outputs of the row-parallel B (2 x hidden),
    plus the sharded q/k/v and MLP outputs and row-parallel inputs. Key/value heads are
    replicated, not split, when tp exceeds their number (``ceil(kv_heads / tp)`` per GPU)."""
    tp = tensor_parallel_size
    hidden = 7 * arch.hidden_size
    attention = (2 * arch.attention_heads / tp + 2 * math.ceil(arch.kv_heads / tp)) * arch.head_dim
    mlp = 3 * arch.intermediate_size / tp
    return rank * (hidden + attention + mlp)


def lora_bytes_per_gpu(
    arch: ModelArchitecture, *, max_loras: int, max_rank: int, tensor_parallel_size: int, dtype_bytes: int
) -> float:
    """GPU memory of the LoRA slots: ``max_loras x layers x values per layer x dtype bytes``."""
    return max_loras * arch.layers * lora_values_per_layer(arch, max_rank, tensor_parallel_size) * dtype_bytes
