"""Read stack files the way the program sees them (for config-level tests)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "llm-infra"


def stack_values(stack: str) -> tuple[dict[str, Any], dict[str, bool]]:
    """(project-namespace values, {secret key: is_secret}) of Pulumi.<stack>.yaml."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    values: dict[str, Any] = {}
    secrets: dict[str, bool] = {}
    for key, value in data.items():
        ns, _, short = key.partition(":")
        if ns != PROJECT:
            continue
        if _contains_secure(value):  # a secret, or a map of secrets (apiKeys: client -> key)
            secrets[short] = True
        else:
            values[short] = copy.deepcopy(value)
    return values, secrets


def _contains_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_contains_secure(v) for v in value.values())
    return False


def api_key_clients(stack: str) -> tuple[str, ...]:
    """Client names of the stack's ``apiKeys`` secret map (sorted, as the program reads them)."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return tuple(sorted(data.get(f"{PROJECT}:apiKeys") or {}))


def provider_values(stack: str) -> dict[str, str]:
    """Provider settings of Pulumi.<stack>.yaml (gcp:project, gcp:region, aws:region)."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k: str(v) for k, v in data.items() if k in ("gcp:project", "gcp:region", "aws:region")}


def assert_rejected(
    stack: str,
    values: dict[str, Any],
    secrets: dict[str, bool],
    path: str,
    words: str,
    providers: dict[str, str] | None = None,
) -> list[str]:
    """The stack config fails validation with a one-line error at ``path`` containing ``words``."""
    import pytest

    from llm_infra.config import ConfigError, load_stack_config

    with pytest.raises(ConfigError) as info:
        load_stack_config(stack, values, secrets, providers)
    lines = info.value.lines()
    matching = [line for line in lines if line.startswith(f"{stack}: {path}: ")]
    assert matching, f"no error at {path}; got: {lines}"
    assert any(words in line for line in matching), f"'{words}' not in {matching}"
    assert all("\n" not in line for line in lines)
    return lines
