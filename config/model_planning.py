"""Plan one vLLM model on one GPU node pool, without a stack file.

``plan_model(spec, pool)`` runs exactly the checks a stack runs for a model (architecture,
quantization, tensor parallelism, capacity at maxModelLen, cache, vLLM limits, autoscaling,
the pool's room for the replicas and the rollout surge): it builds the one-model, one-pool
stack those checks read and hands it to ``load_stack_config``, so there is no second copy of
any rule. Problems come back as one ``ConfigError`` whose paths name the caller's arguments
(``spec.maxModelLen``, ``pool.gpu.memoryGib``), never the internal stack's
(``models[0]...``).
"""

from __future__ import annotations

from typing import Any, Literal

from .catalog import lookup
from .cluster import GpuFacts, NodePoolConfig
from .errors import ConfigError, Issue
from .load import load_stack_config
from .plan import ModelPlan
from .serving import VllmModelConfig

Autoscaler = Literal["keda", "hpa", "none"]

_PLACEHOLDER_PROMETHEUS = "http://prometheus.invalid:9090"
"""Only for the checks (autoscaling needs *a* Prometheus); never rendered anywhere."""

_PATHS = {
    "models[0]": "spec",
    "cluster.nodePools[0]": "pool",
    "cluster.existing.rwxStorageClass": "rwx_storage_class",
    "addons.keda": "autoscaler",
    "addons.prometheusAdapter": "autoscaler",
    "addons.monitoring": "prometheus",
}
"""Where the internal one-model stack's paths come from in the caller's arguments."""


def _caller_path(path: str) -> str:
    for internal, ours in _PATHS.items():
        if path == internal or path.startswith((f"{internal}.", f"{internal}[")):
            return ours + path[len(internal) :]
    return path


def gpu_from_catalog(cloud: str, instance_type: str, *, hourly_usd: float | None = None) -> GpuFacts:
    """The ``GpuFacts`` of a catalogued EKS instance type or GKE machine type (GPU model,
    count, nominal and CUDA-visible memory, product label), for a pool described by its type."""
    shape = lookup(cloud, instance_type)
    if shape is None:
        raise ConfigError(
            instance_type,
            [Issue("instance_type", f"'{instance_type}' is not in the {cloud} GPU catalog")],
            subject="instance type",
        )
    return GpuFacts(
        model=shape.gpu_model,
        count=shape.gpu_count,
        memory_gib=shape.gpu_memory_gib,
        cuda_memory_gib=shape.cuda_memory_gib,
        product_label=shape.product_label,
        mig_capable=shape.mig_capable,
        hourly_usd=hourly_usd if hourly_usd is not None else shape.hourly_usd,
    )


def plan_model(
    spec: VllmModelConfig,
    pool: NodePoolConfig,
    *,
    autoscaler: Autoscaler = "keda",
    prometheus: bool = True,
    rwx_storage_class: str | None = None,
    hf_token: bool = False,
) -> ModelPlan:
    """What ``spec`` implies on ``pool``: tensor-parallel size, max length, KV-cache capacity,
    replicas, cost and rollout; the plan ``VllmServiceArgs.plan`` takes.

    ``pool`` describes existing GPU nodes (``gpu`` facts, e.g. ``gpu_from_catalog(...)``,
    ``nodeSelector``, ``taint``, ``minNodes``/``maxNodes``), named as the spec's ``nodePool``.
    ``autoscaler`` and ``prometheus`` say what the cluster offers (an autoscaled model needs
    Prometheus and KEDA or prometheus-adapter); ``rwx_storage_class`` whether a shared cache is
    possible; ``hf_token`` whether a token is available (gated models need one).

    Raises ``ConfigError`` with every problem, each naming ``spec.<field>`` or ``pool.<field>``.
    """
    monitoring: dict[str, Any] = (
        {"mode": "existing", "prometheusUrl": _PLACEHOLDER_PROMETHEUS, "selectorLabels": {"planned": "true"}}
        if prometheus
        else {"mode": "none"}
    )
    existing: dict[str, Any] = {"kubeconfigPath": "-"}
    if rwx_storage_class:
        existing["rwxStorageClass"] = rwx_storage_class
    values = {
        "cluster": {
            "cloud": "existing",
            "name": "library",
            "existing": existing,
            "nodePools": [pool.model_dump(by_alias=True, exclude_unset=True)],
        },
        "addons": {
            "gpuOperator": {"enabled": False},
            "keda": {"enabled": False, "alreadyInstalled": autoscaler == "keda"},
            "prometheusAdapter": {"enabled": autoscaler == "hpa"},
            "monitoring": monitoring,
        },
        "models": [spec],
    }
    try:
        plan = load_stack_config(spec.name, values, {"hfToken": True} if hf_token else {})
    except ConfigError as err:
        issues = [Issue(_caller_path(i.path), i.message) for i in err.issues]
        raise ConfigError(err.stack, sorted(set(issues), key=issues.index), subject="model") from None
    return plan.models[spec.name]


__all__ = ["gpu_from_catalog", "plan_model"]
