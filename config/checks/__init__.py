"""Cross-field checks of a parsed stack config, one concern per module.

Every check is a function of what it reads (the ``Stack`` and what earlier checks derived)
that returns the issues it found; nothing is shared or mutated between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Issue
from ..facts import NodePoolFacts, all_node_pool_facts
from ..plan import ModelPlan
from .addons import check_addons
from .base import Stack
from .cluster import check_cluster
from .credentials import check_credentials
from .edge import check_edge
from .model_store import check_model_store
from .models import check_gpu_budget, check_models
from .multinode import check_multinode_models
from .ray import check_ray_services


@dataclass(frozen=True)
class CheckResult:
    """Every issue, in the order the checks report them, and what the checks derived."""

    issues: list[Issue]
    pools: dict[str, NodePoolFacts] = field(default_factory=dict)
    model_plans: dict[str, ModelPlan] = field(default_factory=dict)
    ray_plans: dict[str, ModelPlan] = field(default_factory=dict)
    lws_plans: dict[str, ModelPlan] = field(default_factory=dict)
    """multiNodeModels (LeaderWorkerSet) by name."""


def check_stack(stack: Stack) -> CheckResult:
    """Runs every check; pools are derived only from a cluster that passed its own checks,
    so one bad pool does not cascade into an error per model."""
    issues = check_cluster(stack)
    pools: dict[str, NodePoolFacts] = {}
    if not any(i.path.startswith("cluster.nodePools") for i in issues):
        pools = all_node_pool_facts(stack.config.cluster, stack.config.addons.gpu_operator.enabled)
    model_issues, model_plans = check_models(stack, pools)
    lws_issues, lws_plans = check_multinode_models(stack, pools)
    ray_issues, ray_plans = check_ray_services(stack, pools, model_plans, lws_plans)
    issues += model_issues
    issues += lws_issues
    issues += ray_issues
    issues += check_addons(stack, pools)
    issues += check_credentials(stack)
    issues += check_edge(stack)
    issues += check_model_store(stack)
    issues += check_gpu_budget(stack, pools, model_plans, lws_plans)
    return CheckResult(list(issues), pools, model_plans, ray_plans, lws_plans)


__all__ = ["CheckResult", "Stack", "check_stack"]
