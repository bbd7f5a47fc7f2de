"""The whole stack: typed config, cross-field checks, and the derived serving plan.

``load_stack_config`` is the single entry point: it parses the raw stack values, checks
everything that involves more than one field (pools vs. models, add-ons vs. serving,
secrets vs. features), derives what the components need (node-pool facts, tensor
parallelism, capacity), and reports every problem at once as ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError

from .addons import AddonsConfig
from .base import ConfigModel, DnsLabel
from .checks import StackChecker
from .cluster import (
    ClusterConfig,
)
from .credentials import CredentialsConfig
from .edge import EdgeConfig
from .errors import ConfigError, Issue, issues_from_validation_error
from .feasibility import apply_rollouts, plan_feasibility
from .plan import StackPlan
from .ray import RayServiceConfig
from .security import SecurityConfig
from .serving import VllmModelConfig

SECRET_KEYS = ("hfToken", "grafanaAdminPassword", "kubeconfig", "apiKeys")
"""Config keys that hold credentials. They are read with ``require_secret`` and must be set
with ``pulumi config set --secret``; they never enter the typed config below."""


class AlertThresholds(ConfigModel):
    """Alert thresholds (seed guides: KV cache 90 %, queue 10, TTFT p99 5 s, GPU 85 °C)."""

    kv_cache_usage: float = Field(0.90, gt=0, le=1)
    kv_cache_for: str = Field("5m", pattern=r"^\d+[smh]$")
    queue_depth: float = Field(10, gt=0)
    queue_depth_for: str = Field("2m", pattern=r"^\d+[smh]$")
    ttft_p99_seconds: float = Field(5, gt=0)
    ttft_for: str = Field("5m", pattern=r"^\d+[smh]$")
    gpu_temperature_celsius: float = Field(85, gt=0)
    gpu_temperature_for: str = Field("5m", pattern=r"^\d+[smh]$")
    error_ratio: float = Field(0.05, gt=0, le=1)
    error_ratio_for: str = Field("5m", pattern=r"^\d+[smh]$")
    max_replicas_for: str = Field("15m", pattern=r"^\d+[smh]$")
    no_healthy_replica_for: str = Field("5m", pattern=r"^\d+[smh]$")
    runbook_base_url: str = Field(
        "https://github.com/llm-infra/llm-infra/blob/main/docs/runbooks",
        pattern=r"^https?://\S+[^/]$",
        description="where docs/runbooks/*.md are served; each alert links <base>/<file>.md#<alert>",
    )


LISTS_CHECKED_PER_ENTRY = ("models", "rayServices")


def _cross_checks_of_valid_entries(
    raw: Mapping[str, Any], err: ValidationError, secrets: frozenset[str]
) -> list[Issue]:
    """Cross-field issues of the entries that did parse, when only list entries failed.

    A typo in one model should not hide that another model does not fit its GPUs: the
    broken entries are left out, the rest is checked, and paths keep the original indexes.
    When anything else failed (cluster, add-ons, ...), cross-field checks would only guess.
    """
    broken: dict[str, set[int]] = {key: set() for key in LISTS_CHECKED_PER_ENTRY}
    for e in err.errors():
        loc = e["loc"]
        if len(loc) < 2 or loc[0] not in broken or not isinstance(loc[1], int):
            return []
        broken[str(loc[0])].add(loc[1])
    partial = dict(raw)
    kept: dict[str, list[int]] = {}
    for key, indexes in broken.items():
        entries = raw.get(key)
        if isinstance(entries, list):
            kept[key] = [i for i in range(len(entries)) if i not in indexes]
            partial[key] = [entries[i] for i in kept[key]]
    try:
        config = StackConfig.model_validate(partial)
    except ValidationError:
        return []

    def original(issue: Issue) -> Issue:
        for key, indexes in kept.items():
            prefix = f"{key}["
            if issue.path.startswith(prefix):
                index, rest = issue.path[len(prefix) :].split("]", 1)
                return Issue(f"{key}[{indexes[int(index)]}]{rest}", issue.message)
        return issue

    return [original(i) for i in StackChecker(config, secrets, partial=True).run()]


class StackConfig(ConfigModel):
    cluster: ClusterConfig
    addons: AddonsConfig = AddonsConfig()
    namespace: DnsLabel = Field("llm-inference", description="namespace of the serving workloads")
    models: list[VllmModelConfig] = Field(default_factory=list)
    ray_services: list[RayServiceConfig] = Field(default_factory=list)
    alerts: AlertThresholds = AlertThresholds()
    security: SecurityConfig = SecurityConfig()
    credentials: CredentialsConfig = CredentialsConfig()
    edge: EdgeConfig = EdgeConfig()


def load_stack_config(
    stack: str,
    values: Mapping[str, Any],
    secrets: Mapping[str, bool],
    providers: Mapping[str, str] | None = None,
    api_key_clients: tuple[str, ...] | None = None,
) -> StackPlan:
    """Validate a stack's config (project-namespace keys without the ``project:`` prefix).

    ``secrets`` maps each credential key that is set to whether it is stored as a secret;
    ``providers`` holds provider settings (``gcp:project``, ``gcp:region``, ``aws:region``)
    that must agree with the cluster config; ``api_key_clients`` the client names of the
    ``apiKeys`` secret (never its values; empty: the secret is not a map of names to keys; None:
    not known here, e.g. a config check without the stack's secrets).
    Raises ``ConfigError`` listing every problem, each with its config path.
    """
    issues: list[Issue] = []
    for key, is_secret in sorted(secrets.items()):
        if not is_secret:
            issues.append(Issue(key, f"must be stored encrypted: pulumi config set --secret {key} <value>"))
    raw = {k: v for k, v in values.items() if k not in SECRET_KEYS}
    present = frozenset(k for k in secrets if k in SECRET_KEYS)
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as err:
        issues += issues_from_validation_error(err, StackConfig)
        issues += _cross_checks_of_valid_entries(raw, err, present)
        raise ConfigError(stack, sorted(set(issues), key=issues.index)) from None
    checker = StackChecker(config, present, dict(providers or {}), api_key_clients=api_key_clients)
    issues += checker.run()
    feasibility = plan_feasibility(config, checker.pools, checker.model_plans, checker.ray_plans)
    reported = {i.path for i in issues}
    # a problem the GPU-count checks already reported at the same path is not repeated
    issues += [i for i in feasibility.issues if i.path not in reported]
    if issues:
        raise ConfigError(stack, sorted(set(issues), key=issues.index))
    return StackPlan(
        stack=stack,
        config=config,
        pools=checker.pools,
        models=apply_rollouts(checker.model_plans, feasibility.rollouts),
        ray_models=checker.ray_plans,
        secrets=checker.secrets,
        api_key_clients=tuple(api_key_clients or ()),
        feasibility=feasibility.pools,
        warnings=feasibility.warnings,
    )
