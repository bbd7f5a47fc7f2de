"""State shared by the cross-field checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Issue, did_you_mean
from ..facts import NodePoolFacts
from ..plan import ModelPlan

if TYPE_CHECKING:
    from ..stack import StackConfig


class CheckerBase:
    """Each check appends Issues (path + message); derived plans are kept for the caller."""

    def __init__(
        self,
        config: StackConfig,
        secrets: frozenset[str],
        providers: dict[str, str] | None = None,
        *,
        api_key_clients: tuple[str, ...] | None = None,
        partial: bool = False,
    ):
        self.config = config
        self.partial = partial
        """Some list entries failed to parse and were left out: references to them are not errors."""
        self.api_key_clients = api_key_clients
        self.secrets = secrets
        self.providers = providers or {}
        self.issues: list[Issue] = []
        self.pools: dict[str, NodePoolFacts] = {}
        self.model_plans: dict[str, ModelPlan] = {}
        self.ray_plans: dict[str, ModelPlan] = {}

    def has_credential(self, key: str) -> bool:
        """A credential is available from Pulumi (set as a secret) or from the secret manager."""
        return key in self.secrets or self.config.credentials.source(key).source == "secretManager"

    def add(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def report_missing_pool(self, path: str, name: str) -> None:
        """A reference to a pool without facts: a pool that is configured but failed its own
        checks was reported there already (no follow-on error); any other name is unknown."""
        configured = [p.name for p in self.config.cluster.node_pools]
        if name in configured:
            return
        self.add(
            path,
            f"no node pool '{name}'{did_you_mean(name, configured)} (pools: {', '.join(sorted(configured)) or 'none'})",
        )
