"""Typed stack configuration: the single source of truth for what a stack deploys.

No Pulumi resources live here, so everything can be validated (and unit-tested) before
any resource is declared.
"""

from .errors import ConfigError, Issue
from .facts import NodePoolFacts
from .load import load_stack_config
from .plan import ModelPlan, StackPlan
from .stack import SECRET_KEYS, StackConfig

__all__ = [
    "SECRET_KEYS",
    "ConfigError",
    "Issue",
    "ModelPlan",
    "NodePoolFacts",
    "StackConfig",
    "StackPlan",
    "load_stack_config",
]
