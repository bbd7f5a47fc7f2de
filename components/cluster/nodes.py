"""Pieces the EKS and GKE cluster components share: node labels, taints and kubeconfigs.

Labels and taints always come from ``NodePoolFacts`` (the same facts serving workloads
select and tolerate with), so a node pool and the pods aimed at it cannot drift apart.

GPU product label: no node pool sets ``nvidia.com/gpu.product``. GPU Feature Discovery
owns that label and rewrites it (to ``<product>-SHARED`` under time-slicing/MPS with the
device plugin's default renaming), so a value set at node registration would be replaced
and a selector on it would stop matching; on GKE without the GPU Operator nobody sets it.
Workloads select the pool label (``llm-infra.io/node-pool``) instead, which only we set.
"""

from __future__ import annotations

import json
from typing import Any

from llm_infra.config import NodePoolFacts
from llm_infra.config.cluster import POOL_LABEL, SYSTEM_POOL_NAME

TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}
"""Kubernetes taint effect -> the spelling of the EKS node group and GKE node pool APIs."""

SYSTEM_LABELS = {POOL_LABEL: SYSTEM_POOL_NAME}
"""Labels of the CPU system nodes (operators, KEDA, monitoring, Karpenter run there)."""


def cloud_taints(pool: NodePoolFacts) -> list[dict[str, str]]:
    """The pool's taint in cloud API form (``{"key", "value", "effect": "NO_SCHEDULE"}``)."""
    return [{"key": t["key"], "value": t["value"], "effect": TAINT_EFFECTS[t["effect"]]} for t in pool.tolerations()]


def exec_kubeconfig(
    cluster_name: str, server: str, ca_data: str, command: str, args: list[str], install_hint: str
) -> str:
    """A kubeconfig (JSON) whose user runs ``command`` for short-lived tokens: no static
    credential ever lands in the state file."""
    exec_spec: dict[str, Any] = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": command,
        "args": args,
        "interactiveMode": "Never",
        "installHint": install_hint,
        "provideClusterInfo": True,
    }
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [{"name": cluster_name, "user": {"exec": exec_spec}}],
        },
        sort_keys=True,
    )
