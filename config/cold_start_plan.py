"""Cold-start estimates applied to the serving plan: every vLLM, canary, Ray Serve LLM and
LeaderWorkerSet model gets its ``ColdStartEstimate`` (config/cold_start.py has the rates and
the arithmetic), and the plan warns where one outlasts its scale-up window.

Apart from config/cold_start.py so that config.plan, which types ``ModelPlan.cold_start``, does
not import the module that imports it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import versions
from .canary_model import canary_image, canary_name, serving_models
from .cold_start import (
    PROBE_PERIOD_SECONDS,
    RAY_PROBE_PERIOD_SECONDS,
    ColdStartEstimate,
    estimate,
    needs_new_node,
    provisioner,
    scale_up_window,
)
from .plan import ModelPlan

if TYPE_CHECKING:
    from .stack import StackConfig


def apply_cold_starts(
    config: StackConfig,
    models: dict[str, ModelPlan],
    ray_models: dict[str, ModelPlan],
    feasibility: dict[str, Any],
    lws_models: dict[str, ModelPlan] | None = None,
) -> tuple[dict[str, ModelPlan], dict[str, ModelPlan], dict[str, ModelPlan]]:
    """Every plan with its cold-start estimate (vLLM models, Ray Serve LLM models and the
    LeaderWorkerSet models of multiNodeModels)."""
    cs = config.cold_start
    store = config.model_store.enabled
    out_models = {}
    images = {canary_name(m.name): canary_image(m) for m in config.models if m.canary is not None}
    for _, m in serving_models(config.models):  # canaries included: each is a workload of its own
        plan = models[m.name]
        shared = m.cache.access_mode == "ReadWriteMany"
        weights = "objectStore" if store else ("sharedCache" if shared else "replicaCache")
        est = estimate(
            provisioner=provisioner(config, m.node_pool),
            new_node=needs_new_node(config, feasibility, m.node_pool, f"models/{m.name}", m.autoscaling.min_replicas),
            image=images.get(m.name, versions.VLLM_IMAGE),
            prepulled=cs.prepull_images,
            weights_gib=plan.capacity.weights_gib,
            weights=weights,
            # a new replica finds the compile cache only on a shared volume
            compile_cached=cs.compile_cache and shared,
            margin=cs.startup_margin,
            scale_up_window=scale_up_window(config, m),
        )
        if est.exceeds_window:
            est = replace(est, suggestions=_suggestions(m, est, config.cluster.cloud))
        if m.startup_timeout_seconds is not None:
            # the probe follows the configured window (components/serving/vllm.py startup_window_seconds)
            est = replace(est, startup_window_seconds=m.startup_timeout_seconds)
        out_models[m.name] = replace(plan, cold_start=est)
    out_ray = {}
    for svc in config.ray_services:
        shared = svc.cache.shared(config.cluster.has_rwx_storage)
        weights = "objectStore" if store else ("sharedCache" if shared else "huggingFace")
        for rm in svc.models:
            key = f"{svc.name}/{rm.model_id}"
            plan = ray_models[key]
            est = estimate(
                provisioner=provisioner(config, svc.worker_pool),
                new_node=needs_new_node(
                    config, feasibility, svc.worker_pool, f"rayServices/{svc.name}", svc.min_workers
                ),
                image=versions.RAY_LLM_IMAGE,
                prepulled=cs.prepull_images,
                weights_gib=plan.capacity.weights_gib,
                weights=weights,
                compile_cached=cs.compile_cache and shared,
                margin=cs.startup_margin,
                probe_period=RAY_PROBE_PERIOD_SECONDS,
            )
            out_ray[key] = replace(plan, cold_start=est)
    out_lws = {}
    for m in config.multi_node_models:
        plan = (lws_models or {})[m.name]
        pp = plan.pipeline_parallel_size
        est = estimate(
            provisioner=provisioner(config, m.node_pool),
            # a new replica is a whole group: pipelineParallelSize pods, each on a node of its own
            new_node=needs_new_node(
                config, feasibility, m.node_pool, f"multiNodeModels/{m.name}", m.autoscaling.min_replicas * pp
            ),
            image=versions.VLLM_IMAGE,
            prepulled=cs.prepull_images,
            # the stages load in parallel, each its own layers: streamed from the store, or read from
            # the group's shared cache (the leader downloads the weights from the Hub into it once)
            weights_gib=plan.capacity.weights_per_gpu_gib * plan.tensor_parallel_size,
            weights="objectStore" if store else "sharedCache",
            # the group's compile caches live on its shared volume (components/serving/leaderworkerset.py)
            compile_cached=cs.compile_cache,
            margin=cs.startup_margin,
            scale_up_window=scale_up_window(config, m),
        )
        # the leader's startup probe runs while the group assembles: LWS creates the workers once the
        # leader exists (startupPolicy LeaderCreated), and they may wait for a node and the image first
        assembly = sum(p.seconds for p in est.phases if p.name in ("nodeProvisioning", "imagePull"))
        window = m.startup_timeout_seconds or est.startup_window_seconds + probe_periods(assembly)
        out_lws[m.name] = replace(plan, cold_start=replace(est, startup_window_seconds=window))
    return out_models, out_ray, out_lws


def probe_periods(seconds: int, period: int = PROBE_PERIOD_SECONDS) -> int:
    """``seconds`` rounded up to whole startup-probe periods."""
    return -(-seconds // period) * period


def _suggestions(model, est: ColdStartEstimate, cloud: str) -> list[str]:
    a = model.autoscaling
    spare = min(a.max_replicas, a.min_replicas + 1)
    out = [f"autoscaling.minReplicas {spare} (a warm spare serves the burst while the next replica starts)"]
    if est.weights_source != "objectStore" and cloud in ("eks", "gke"):
        out.append("modelStore.enabled (stream weights from S3/GCS instead of the Hub or a cache volume)")
    if not est.images_prepulled:
        out.append("coldStart.prepullImages")
    return out


def warnings(config: StackConfig, models: dict[str, ModelPlan]) -> list[str]:
    """A warning per autoscaled vLLM model whose cold start outlasts its scale-up window."""
    out = []
    for m in config.models:
        est = models[m.name].cold_start
        if est is None or not est.exceeds_window:
            continue
        out.append(
            f"models/{m.name}: an estimated {est.total_seconds}s cold start (summary: Models: cold start) exceeds "
            f"the {est.scale_up_window_seconds}s scale-up window (alerts.queueDepthFor "
            f"{config.alerts.queue_depth_for} while minReplicas {m.autoscaling.min_replicas} queue past "
            f"queueDepthTarget {m.autoscaling.queue_depth_target:g}): consider " + "; ".join(est.suggestions)
        )
    return out
