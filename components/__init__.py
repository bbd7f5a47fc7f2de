"""Pulumi components for LLM inference on Kubernetes GPUs.

Use them from any Pulumi program::

    from llm_infra.components import LlmPlatform, read_stack_plan
    platform = LlmPlatform("llm", read_stack_plan())

or compose the pieces (a cluster, ClusterAddons, ServingNamespace, VllmService,
RayLlmService) yourself: see examples/existing-cluster. The typed configuration they take
lives in the ``config`` package (``config.load_stack_config`` validates and plans a stack).
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

from .addons import AddonsArgs, ClusterAddons
from .addons.handles import AddonsHandle, MonitoringHandle
from .cluster import ClusterHandle, ExistingCluster, ExistingClusterArgs, create_cluster
from .platform import LlmPlatform
from .reports import capacity_report
from .runtime_config import read_stack_plan, secret, secret_map
from .serving.context import ServingContext
from .serving.namespace import ServingNamespace, ServingNamespaceArgs
from .serving.rayservice import RayLlmService, RayLlmServiceArgs
from .serving.vllm import VllmService, VllmServiceArgs

try:
    __version__: str = _distribution_version("llm-infra")
except PackageNotFoundError:  # a source checkout on sys.path, not installed
    __version__ = "0+unknown"

_CLOUD_CLUSTERS = {
    "EksGpuCluster": ".cluster.eks",
    "EksGpuClusterArgs": ".cluster.eks",
    "GkeGpuCluster": ".cluster.gke",
    "GkeGpuClusterArgs": ".cluster.gke",
}
"""Imported on first use (``from llm_infra.components import EksGpuCluster``) and left out of ``__all__``:
pulumi-eks / pulumi-gcp load slowly and a program needs one cloud at most."""


def __getattr__(name: str):
    module = _CLOUD_CLUSTERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)


__all__ = [
    "AddonsArgs",
    "AddonsHandle",
    "ClusterAddons",
    "ClusterHandle",
    "ExistingCluster",
    "ExistingClusterArgs",
    "LlmPlatform",
    "MonitoringHandle",
    "RayLlmService",
    "RayLlmServiceArgs",
    "ServingContext",
    "ServingNamespace",
    "ServingNamespaceArgs",
    "VllmService",
    "VllmServiceArgs",
    "capacity_report",
    "create_cluster",
    "read_stack_plan",
    "secret",
    "secret_map",
]
