"""State shared by the cross-field checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Issue
from ..facts import NodePoolFacts
from ..plan import ModelPlan

if TYPE_CHECKING:
    from ..stack import StackConfig


class CheckerBase:
    """Each check appends Issues (path + message); derived plans are kept for the caller."""

    def __init__(self, config: StackConfig, secrets: frozenset[str]):
        self.config = config
        self.secrets = secrets
        self.issues: list[Issue] = []
        self.pools: dict[str, NodePoolFacts] = {}
        self.model_plans: dict[str, ModelPlan] = {}
        self.ray_plans: dict[str, ModelPlan] = {}

    def add(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))
