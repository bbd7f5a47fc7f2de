"""llm_infra: Pulumi components for LLM inference on Kubernetes GPUs.

The public API, importable from here (``from llm_infra import VllmService, plan_model``):

- components: ``LlmPlatform`` (a whole stack), the cluster components, ``ClusterAddons``,
  ``ServingNamespace``, ``VllmService``, ``RayLlmService``, and ``VllmModel`` (the component
  the provider in ``provider/`` hosts for other Pulumi languages);
- planning without a stack file: ``plan_model(spec, pool)`` -> ``ModelPlan``;
- the typed specs they take: ``VllmModelConfig``, ``NodePoolConfig``, ``GpuFacts``, ...

Its two halves live at the repository's top level, where the Pulumi program (``__main__.py``)
uses them too: ``llm_infra.components`` (the ComponentResources) and ``llm_infra.config``
(typed configuration, GPU catalog, capacity arithmetic; no Pulumi resources).
``python -m llm_infra render --stack dev`` renders a stack offline.

Names are imported on first use, so ``python -m llm_infra`` and ``import llm_infra.config``
do not load Pulumi's SDKs they do not need.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # components
    "LlmPlatform": "llm_infra.components",
    "read_stack_plan": "llm_infra.components",
    "secret": "llm_infra.components",
    "secret_map": "llm_infra.components",
    "create_cluster": "llm_infra.components",
    "ClusterHandle": "llm_infra.components",
    "ExistingCluster": "llm_infra.components",
    "ExistingClusterArgs": "llm_infra.components",
    "EksGpuCluster": "llm_infra.components",
    "EksGpuClusterArgs": "llm_infra.components",
    "GkeGpuCluster": "llm_infra.components",
    "GkeGpuClusterArgs": "llm_infra.components",
    "ClusterAddons": "llm_infra.components",
    "AddonsArgs": "llm_infra.components",
    "AddonsHandle": "llm_infra.components",
    "MonitoringHandle": "llm_infra.components",
    "ServingNamespace": "llm_infra.components",
    "ServingNamespaceArgs": "llm_infra.components",
    "ServingContext": "llm_infra.components",
    "VllmService": "llm_infra.components",
    "VllmServiceArgs": "llm_infra.components",
    "RayLlmService": "llm_infra.components",
    "RayLlmServiceArgs": "llm_infra.components",
    "VllmModel": "llm_infra.components.hosted",
    "VllmModelArgs": "llm_infra.components.hosted",
    "capacity_report": "llm_infra.components.reports",
    "model_capacity": "llm_infra.components.reports",
    # planning and typed specs
    "plan_model": "llm_infra.config.model_planning",
    "gpu_from_catalog": "llm_infra.config.model_planning",
    "ModelPlan": "llm_infra.config",
    "NodePoolFacts": "llm_infra.config",
    "StackPlan": "llm_infra.config",
    "StackConfig": "llm_infra.config",
    "load_stack_config": "llm_infra.config",
    "ConfigError": "llm_infra.config",
    "VllmModelConfig": "llm_infra.config.serving",
    "AutoscalingConfig": "llm_infra.config.serving",
    "CacheConfig": "llm_infra.config.serving",
    "IngressConfig": "llm_infra.config.serving",
    "HttpRouteConfig": "llm_infra.config.serving",
    "NodePoolConfig": "llm_infra.config.cluster",
    "GpuFacts": "llm_infra.config.cluster",
    "Taint": "llm_infra.config.cluster",
    "RayServiceConfig": "llm_infra.config.ray",
    "SecurityConfig": "llm_infra.config.security",
    "AlertThresholds": "llm_infra.config.stack",
}
"""Public name -> the module that defines it."""

if TYPE_CHECKING:  # what type checkers and IDEs see; at runtime __getattr__ imports on first use
    from llm_infra.components import (
        AddonsArgs,
        AddonsHandle,
        ClusterAddons,
        ClusterHandle,
        EksGpuCluster,
        EksGpuClusterArgs,
        ExistingCluster,
        ExistingClusterArgs,
        GkeGpuCluster,
        GkeGpuClusterArgs,
        LlmPlatform,
        MonitoringHandle,
        RayLlmService,
        RayLlmServiceArgs,
        ServingContext,
        ServingNamespace,
        ServingNamespaceArgs,
        VllmService,
        VllmServiceArgs,
        create_cluster,
        read_stack_plan,
        secret,
        secret_map,
    )
    from llm_infra.components.hosted import VllmModel, VllmModelArgs
    from llm_infra.components.reports import capacity_report, model_capacity
    from llm_infra.config import ConfigError, ModelPlan, NodePoolFacts, StackConfig, StackPlan, load_stack_config
    from llm_infra.config.cluster import GpuFacts, NodePoolConfig, Taint
    from llm_infra.config.model_planning import gpu_from_catalog, plan_model
    from llm_infra.config.ray import RayServiceConfig
    from llm_infra.config.security import SecurityConfig
    from llm_infra.config.serving import AutoscalingConfig, CacheConfig, HttpRouteConfig, IngressConfig, VllmModelConfig
    from llm_infra.config.stack import AlertThresholds

__all__ = [
    "AddonsArgs",
    "AddonsHandle",
    "AlertThresholds",
    "AutoscalingConfig",
    "CacheConfig",
    "ClusterAddons",
    "ClusterHandle",
    "ConfigError",
    "EksGpuCluster",
    "EksGpuClusterArgs",
    "ExistingCluster",
    "ExistingClusterArgs",
    "GkeGpuCluster",
    "GkeGpuClusterArgs",
    "GpuFacts",
    "HttpRouteConfig",
    "IngressConfig",
    "LlmPlatform",
    "ModelPlan",
    "MonitoringHandle",
    "NodePoolConfig",
    "NodePoolFacts",
    "RayLlmService",
    "RayLlmServiceArgs",
    "RayServiceConfig",
    "SecurityConfig",
    "ServingContext",
    "ServingNamespace",
    "ServingNamespaceArgs",
    "StackConfig",
    "StackPlan",
    "Taint",
    "VllmModel",
    "VllmModelArgs",
    "VllmModelConfig",
    "VllmService",
    "VllmServiceArgs",
    "capacity_report",
    "create_cluster",
    "gpu_from_catalog",
    "load_stack_config",
    "model_capacity",
    "plan_model",
    "read_stack_plan",
    "secret",
    "secret_map",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if name == "__version__":
            return import_module("llm_infra.components").__version__
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
