"""Pulumi components for LLM inference on Kubernetes GPUs.

Use them from any Pulumi program::

    from components import LlmPlatform, read_stack_plan
    platform = LlmPlatform("llm", read_stack_plan())

or compose the pieces (a cluster, ClusterAddons, VllmService, RayLlmService) yourself.
"""

from .addons import AddonsArgs, ClusterAddons
from .cluster import ClusterHandle, create_cluster
from .platform import LlmPlatform
from .runtime_config import read_stack_plan, secret
from .serving.context import ServingContext
from .serving.rayservice import RayLlmService, RayLlmServiceArgs
from .serving.vllm import VllmService, VllmServiceArgs

__all__ = [
    "AddonsArgs",
    "ClusterAddons",
    "ClusterHandle",
    "LlmPlatform",
    "RayLlmService",
    "RayLlmServiceArgs",
    "ServingContext",
    "VllmService",
    "VllmServiceArgs",
    "create_cluster",
    "read_stack_plan",
    "secret",
]
