"""The canary of a vLLM model as a model of its own: what the capacity plan, the feasibility
check and the serving components deploy for ``models[].canary``.

The canary is the stable model's config with the canary's revision, image and extra flags
and its own name (``<name>-canary``), so it goes through exactly the same code path (pod
template, cache, Service, PDB, ServiceMonitor, alerts, dashboard) as the stable one. It
serves the same ``servedModelName`` and the same LoRA adapters: requests the Gateway sends
to it must find every model name the stable pool serves.

Replicas: the canary takes ``weight`` percent of the model's traffic, so it scales between 1
and ``ceil(maxReplicas x weight / 100)`` replicas (at least 1) on the stable model's targets;
with a bound of 1 it is one fixed replica (no autoscaler). It never scales to zero: the
Gateway keeps sending it its share. It is not exposed on its own (no Ingress or HTTPRoute of
its own; the weighted routing sends it its share), and its cache is its own PVC, so a
different revision never touches the stable model's weights.
"""

from __future__ import annotations

import math

from . import versions
from .serving import AutoscalingConfig, VllmModelConfig

CANARY_SUFFIX = "-canary"
MAX_STABLE_NAME = 40 - len(CANARY_SUFFIX)
"""Longest model name that still leaves room for ``-canary`` in a DNS label (config/base.py)."""


def canary_name(name: str) -> str:
    return f"{name}{CANARY_SUFFIX}"


def canary_replicas(model: VllmModelConfig) -> int:
    """Upper replica bound of the canary: its share of the stable model's maximum."""
    assert model.canary is not None
    return max(1, math.ceil(model.autoscaling.max_replicas * model.canary.weight / 100))


def canary_model(model: VllmModelConfig) -> VllmModelConfig:
    """The stable model's config turned into its canary's (see the module docstring)."""
    c = model.canary
    assert c is not None
    a = model.autoscaling
    top = canary_replicas(model)
    autoscaling = AutoscalingConfig.model_validate(
        {
            **a.model_dump(),
            "min_replicas": 1,
            "max_replicas": top,
            "scale_to_zero": False,
            "activation_queue_depth": 0,
            "fallback": {**a.fallback.model_dump(), "replicas": None},
        }
    )
    return model.model_copy(
        update={
            "name": canary_name(model.name),
            "served_model_name": model.served_name,
            "revision": c.revision if c.revision is not None else model.revision,
            "extra_args": [*model.extra_args, *c.extra_args],
            "autoscaling": autoscaling,
            "ingress": None,
            "http_route": None,
            "canary": None,
        }
    )


def serving_models(models: list[VllmModelConfig]) -> list[tuple[str, VllmModelConfig]]:
    """(config path, model) of every vLLM workload: each model, then its canary if any."""
    out: list[tuple[str, VllmModelConfig]] = []
    for i, m in enumerate(models):
        out.append((f"models[{i}]", m))
        if m.canary is not None:
            out.append((f"models[{i}].canary", canary_model(m)))
    return out


def canary_image(model: VllmModelConfig) -> str:
    """The image the canary runs: its own (one of ``versions.VLLM_IMAGES``) or the stable one."""
    assert model.canary is not None
    return model.canary.image or versions.VLLM_IMAGE
