"""Cluster add-ons. PLACEHOLDER while the add-ons issue is in progress (replaced in this session)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.cluster.base import ClusterHandle
from config import StackPlan

from .handles import AddonsHandle, MonitoringHandle


@dataclass(frozen=True)
class AddonsArgs:
    plan: StackPlan
    cluster: ClusterHandle
    serving_namespaces: list[str]
    grafana_admin_password: pulumi.Output[str] | None


class ClusterAddons(pulumi.ComponentResource):
    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:ClusterAddons", name, None, opts)
        self.handle = AddonsHandle(monitoring=MonitoringHandle(prometheus_url=None), autoscaler="none")
        self.register_outputs({})


__all__ = ["AddonsArgs", "AddonsHandle", "ClusterAddons", "MonitoringHandle"]
