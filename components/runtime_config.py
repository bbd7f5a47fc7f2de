"""Read the stack's configuration from the Pulumi runtime and validate it once.

This is the only place that touches raw config. It runs before any resource is declared;
on bad config it stops the program with ``pulumi.RunError``, which Pulumi prints as plain
lines (no traceback) and which the offline render turns into a non-zero exit.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from llm_infra.config import SECRET_KEYS, ConfigError, StackPlan, load_stack_config

PROVIDER_KEYS = ("gcp:project", "gcp:region", "aws:region")
"""Provider settings the checks compare with the cluster config (set twice, must agree)."""


def _client_names(value: Any) -> tuple[str, ...]:
    """The client names of the ``apiKeys`` secret (a map client -> key); empty when it is not such
    a map. Only the names leave this function, never a key."""
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return ()
    if not isinstance(parsed, dict) or not all(isinstance(v, str) and v for v in parsed.values()):
        return ()
    return tuple(sorted(str(k) for k in parsed))


def _project_values() -> tuple[dict[str, Any], dict[str, bool], dict[str, str]]:
    project = pulumi.get_project()
    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config._SECRET_KEYS.get()) | set(runtime_config.get_config_secret_keys_env())
    values: dict[str, Any] = {}
    secrets: dict[str, bool] = {}
    providers = {k: str(v) for k, v in raw.items() if k in PROVIDER_KEYS}
    for full_key, value in raw.items():
        namespace, _, key = full_key.partition(":")
        if namespace != project:
            continue  # provider settings (aws:region, gcp:project, ...) belong to the providers
        if key in SECRET_KEYS:
            secrets[key] = full_key in secret_keys
            continue
        try:
            values[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            values[key] = value
    return values, secrets, providers


def read_stack_plan() -> StackPlan:
    values, secrets, providers = _project_values()
    clients = _client_names(pulumi.Config().get("apiKeys")) if "apiKeys" in secrets else None
    try:
        return load_stack_config(pulumi.get_stack(), values, secrets, providers, api_key_clients=clients)
    except ConfigError as err:
        raise pulumi.RunError(err.render()) from None


def secret(key: str) -> pulumi.Output[str] | None:
    """A credential from config, kept secret end to end (never ``require_object``)."""
    return pulumi.Config().get_secret(key)


def secret_map(key: str) -> pulumi.Output[dict[str, str]] | None:
    """A map of credentials from config (``apiKeys``: client -> key), secret end to end."""
    return pulumi.Config().get_secret_object(key)  # type: ignore[return-value]
