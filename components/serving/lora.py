"""LoRA adapters of a vLLM model: the ``vllm serve`` flags and the init containers that
pre-download each adapter at its pinned revision into the model cache.

Flags (vLLM 0.31, config/lora.py has the sources): ``--enable-lora``, ``--max-loras``,
``--max-lora-rank`` (the smallest allowed rank that holds every adapter), ``--max-cpu-loras``
and ``--lora-modules name=path ...`` (``LoRAParserAction``, vllm/entrypoints/openai/cli_args.py).
Each adapter is served as a model named after it (``/v1/models``), and with LoRA enabled vLLM
exports ``vllm:lora_requests_info`` (running/waiting adapters), which the Gateway API
inference extension's endpoint picker reads for adapter affinity.

The adapters land in ``<cache>/lora/<name>`` (``hf download --local-dir``: a fixed path that
``--lora-modules`` can name before the revision's commit is known), on the same volume as the
base weights, so restarts only verify them.
"""

from __future__ import annotations

from typing import Any

from llm_infra.config.lora import LoraAdapter, LoraConfig

LORA_DIR = "lora"


def adapter_path(cache_mount: str, adapter: LoraAdapter) -> str:
    return f"{cache_mount}/{LORA_DIR}/{adapter.name}"


def vllm_flags(lora: LoraConfig | None, cache_mount: str) -> list[str]:
    """The LoRA flags of ``vllm serve`` (none without adapters)."""
    if lora is None:
        return []
    return [
        "--enable-lora",
        "--max-loras",
        str(lora.slots),
        "--max-lora-rank",
        str(lora.max_rank),
        "--max-cpu-loras",
        str(lora.cpu_slots),
        "--lora-modules",
        *[f"{a.name}={adapter_path(cache_mount, a)}" for a in lora.adapters],
    ]


def download_command(adapter: LoraAdapter, cache_mount: str) -> list[str]:
    cmd = ["hf", "download", adapter.repo, "--local-dir", adapter_path(cache_mount, adapter)]
    if adapter.revision is not None:
        cmd += ["--revision", adapter.revision]
    return cmd


def download_containers(lora: LoraConfig | None, base: dict[str, Any], cache_mount: str) -> list[dict[str, Any]]:
    """One init container per adapter, a copy of the base weights' download container
    (same image, env, token, mounts, limits) with the adapter's command."""
    if lora is None:
        return []
    return [
        {**base, "name": f"lora-download-{i}", "command": download_command(a, cache_mount)}
        for i, a in enumerate(lora.adapters)
    ]
