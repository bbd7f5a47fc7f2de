"""Cross-field checks of a parsed stack config, one concern per module."""

from __future__ import annotations

from ..errors import Issue
from ..facts import all_node_pool_facts
from .addons import AddonChecks
from .cluster import ClusterChecks
from .credentials import CredentialChecks
from .edge import EdgeChecks
from .models import ModelChecks
from .ray import RayChecks


class StackChecker(ClusterChecks, ModelChecks, RayChecks, AddonChecks, CredentialChecks, EdgeChecks):
    """Runs every check; pools are derived only from a cluster that passed its own checks,
    so one bad pool does not cascade into an error per model."""

    def run(self) -> list[Issue]:
        self.check_cluster()
        if not any(i.path.startswith("cluster.nodePools") for i in self.issues):
            self.pools = all_node_pool_facts(self.config.cluster, self.config.addons.gpu_operator.enabled)
        self.check_models()
        self.check_ray_services()
        self.check_addons()
        self.check_credentials()
        self.check_edge()
        self.check_gpu_budget()
        return self.issues


__all__ = ["StackChecker"]
