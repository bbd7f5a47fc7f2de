"""Cross-field checks: multi-node replicas (LeaderWorkerSet models, pipeline-parallel Ray models)."""

from __future__ import annotations

from ..facts import NodePoolFacts
from ..multinode import MultiNodeModelConfig
from ..plan import ModelPlan
from .base import Issues, Stack, missing_pool
from .models import plan_model


def check_ray_stages(path: str, plan: ModelPlan, worker_gpus: int) -> Issues:
    """A Ray model whose replica spans workers needs workers of exactly one stage each: the
    PACK placement group then puts one whole tensor-parallel group on every worker (a worker
    with room for more would let a stage straddle two workers and run its all-reduces over TCP)."""
    out = Issues()
    if plan.gpus_per_replica <= worker_gpus or plan.tensor_parallel_size == worker_gpus:
        return out
    out.add(
        f"{path}.tensorParallelSize",
        f"a replica of {plan.tensor_parallel_size} x {plan.pipeline_parallel_size} GPUs spans workers: each stage "
        f"must fill one whole {worker_gpus}-GPU worker (set tensorParallelSize {worker_gpus}, or gpusPerWorker "
        f"{plan.tensor_parallel_size})",
    )
    return out


def check_multinode_models(stack: Stack, pools: dict[str, NodePoolFacts]) -> tuple[Issues, dict[str, ModelPlan]]:
    """LeaderWorkerSet models: names, pool, plan across TP x PP GPUs, shared cache, autoscaling and
    the controller; returns the issues and a plan per model."""
    out = Issues()
    plans: dict[str, ModelPlan] = {}
    cfg = stack.config
    names = [m.name for m in cfg.models] + [r.name for r in cfg.ray_services] + [m.name for m in cfg.multi_node_models]
    served = [m.served_name for m in cfg.models]
    for i, m in enumerate(cfg.multi_node_models):
        path = f"multiNodeModels[{i}]"
        if names.count(m.name) > 1:
            out.add(
                f"{path}.name",
                f"duplicate serving name '{m.name}' (models, rayServices and multiNodeModels share a namespace)",
            )
        if m.served_name in served:
            out.add(f"{path}.servedModelName", f"'{m.served_name}' is already served by a vLLM model")
        served.append(m.served_name)
        pool = pools.get(m.node_pool)
        if pool is None:
            out += missing_pool(stack, f"{path}.nodePool", m.node_pool)
            continue
        if pool.clients_per_gpu > 1:
            out.add(
                f"{path}.nodePool",
                f"pool '{pool.name}' shares its GPUs ({pool.sharing_strategy}); a pipeline stage needs whole GPUs",
            )
            continue
        a = m.autoscaling
        plan = plan_model(stack, out, path, m.name, "lws", m, pool, pool.gpus_per_node, a.min_replicas, a.max_replicas)
        if plan is None:
            continue
        plans[m.name] = plan
        if not (m.cache.storage_class or cfg.cluster.has_rwx_storage):
            out.add(
                f"{path}.cache",
                "the group's stages share one model cache: needs a ReadWriteMany class (cluster.eks.efsModelCache, "
                "cluster.gke.filestoreModelCache, cluster.existing.rwxStorageClass or cache.storageClass)",
            )
        if m.cache.size_gib is not None and m.cache.size_gib < plan.capacity.weights_gib:
            out.add(
                f"{path}.cache.sizeGib",
                f"{m.cache.size_gib} GiB cannot hold the {plan.capacity.weights_gib:.0f} GiB of weights",
            )
        if m.pre_stop_sleep_seconds + 60 > m.termination_grace_period_seconds:
            out.add(
                f"{path}.preStopSleepSeconds",
                f"{m.pre_stop_sleep_seconds}s of the {m.termination_grace_period_seconds}s grace period leaves "
                "in-flight generations less than 60s after SIGTERM (raise terminationGracePeriodSeconds)",
            )
        if m.resources.memory_gib is not None and m.resources.memory_gib <= m.shm_size_gib:
            out.add(
                f"{path}.resources.memoryGib",
                f"{m.resources.memory_gib} GiB leaves nothing beside the {m.shm_size_gib} GiB /dev/shm (shmSizeGib)",
            )
        out += check_multinode_addons(stack, path, m)
    return out, plans


def check_multinode_addons(stack: Stack, path: str, m: MultiNodeModelConfig) -> Issues:
    """Scaling groups needs KEDA and Prometheus; the groups need the LWS controller."""
    out = Issues()
    addons = stack.config.addons
    a = m.autoscaling
    if a.min_replicas != a.max_replicas:
        if not addons.keda.available:
            out.add(
                f"{path}.autoscaling",
                "scales LeaderWorkerSet groups with KEDA (addons.keda.enabled or alreadyInstalled): prometheus-adapter "
                "HPAs read per-pod metrics, which only the leader of each group exports",
            )
        if addons.monitoring.mode == "none":
            out.add(
                f"{path}.autoscaling",
                "scales on vLLM metrics, which need Prometheus (addons.monitoring.mode is 'none')",
            )
    if addons.lws.enabled is False and not addons.lws.already_installed:
        out.add(
            "addons.lws.enabled",
            f"{path} needs the LeaderWorkerSet controller: leave enabled unset or true, or set alreadyInstalled",
        )
    return out
