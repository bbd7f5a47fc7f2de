"""Loading a stack: parse the raw values, run the cross-field checks, derive the serving plan.

``load_stack_config`` is the single entry point: it parses the raw stack values, checks
everything that involves more than one field (pools vs. models, add-ons vs. serving,
secrets vs. features), derives what the components need (node-pool facts, tensor
parallelism, capacity), and reports every problem at once as ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from .checks import Stack, check_stack
from .cold_start_plan import apply_cold_starts
from .errors import ConfigError, Issue, issues_from_validation_error
from .feasibility import apply_rollouts, plan_feasibility
from .plan import StackPlan
from .stack import SECRET_KEYS, StackConfig

LISTS_CHECKED_PER_ENTRY = ("models", "rayServices", "multiNodeModels")


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

    return [original(i) for i in check_stack(Stack(config, secrets, partial=True)).issues]


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
    checked = check_stack(Stack(config, present, dict(providers or {}), api_key_clients=api_key_clients))
    issues += checked.issues
    feasibility = plan_feasibility(config, checked.pools, checked.model_plans, checked.ray_plans, checked.lws_plans)
    reported = {i.path for i in issues}
    # a problem the GPU-count checks already reported at the same path is not repeated
    issues += [i for i in feasibility.issues if i.path not in reported]
    if issues:
        raise ConfigError(stack, sorted(set(issues), key=issues.index))
    models, ray_models, lws_models = apply_cold_starts(
        config,
        apply_rollouts(checked.model_plans, feasibility.rollouts),
        checked.ray_plans,
        feasibility.pools,
        apply_rollouts(checked.lws_plans, feasibility.rollouts),
    )
    return StackPlan(
        stack=stack,
        config=config,
        pools=checked.pools,
        models=models,
        ray_models=ray_models,
        multinode_models=lws_models,
        api_key_clients=tuple(api_key_clients or ()),
        secrets=present,
        feasibility=feasibility.pools,
        warnings=feasibility.warnings,
    )
