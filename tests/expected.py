"""Expected scheduling facts of the committed stacks, written out by hand from their stack files.

Tests compare rendered objects with these literals instead of asking the code under test
(``NodePoolFacts.tolerations()``, ``system_affinity()``) what they should be: a bug in such
a helper would otherwise be copied into the expectation and pass.
"""

from __future__ import annotations

from typing import Any

# Taints: EKS pools get nvidia.com/gpu=true:NoSchedule (the EKS GPU AMI convention); GKE GPU
# pools nvidia.com/gpu=present:NoSchedule (the taint GKE itself puts on GPU nodes); onprem
# states its taint in Pulumi.onprem.yaml (value "true").
EKS_GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
GKE_GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}

POOLS: dict[tuple[str, str], dict[str, Any]] = {
    # (stack, pool): what a pod of that pool must select and tolerate
    ("dev", "l4"): {"selector": {"llm-infra.io/node-pool": "l4"}, "tolerations": [GKE_GPU_TOLERATION]},
    ("prod", "a10g"): {"selector": {"llm-infra.io/node-pool": "a10g"}, "tolerations": [EKS_GPU_TOLERATION]},
    ("prod", "a10g-x4"): {"selector": {"llm-infra.io/node-pool": "a10g-x4"}, "tolerations": [EKS_GPU_TOLERATION]},
    ("prod", "l40s"): {"selector": {"llm-infra.io/node-pool": "l40s"}, "tolerations": [EKS_GPU_TOLERATION]},
    ("prod", "l40s-pp"): {"selector": {"llm-infra.io/node-pool": "l40s-pp"}, "tolerations": [EKS_GPU_TOLERATION]},
    ("prod", "a10g-x4-pp"): {"selector": {"llm-infra.io/node-pool": "a10g-x4-pp"}, "tolerations": [EKS_GPU_TOLERATION]},
    # an existing cluster: the selector and taint written in the stack file
    ("onprem", "a100"): {
        "selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
        "tolerations": [EKS_GPU_TOLERATION],
    },
}


def pool(stack: str, name: str) -> dict[str, Any]:
    """Expected selector/tolerations of a committed stack's pool (variants may add pools the
    table does not know: the caller then has nothing independent to compare with)."""
    return POOLS[(stack, name)]


SYSTEM_AFFINITY = {
    # add-ons prefer (not require) nodes without GPUs, then the system pool: GPU nodes are for models
    "nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "preference": {
                    "matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "NotIn", "values": ["true"]}]
                },
            },
            {
                "weight": 50,
                "preference": {
                    "matchExpressions": [{"key": "llm-infra.io/node-pool", "operator": "In", "values": ["system"]}]
                },
            },
        ]
    }
}
