"""Cross-field checks: RayServices: worker groups, accelerator types, models on the shared workers."""

from __future__ import annotations

from ..facts import NodePoolFacts
from ..plan import ModelPlan
from ..ray import RAY_NVIDIA_ACCELERATOR_TYPES, RayServiceConfig, ray_accelerator_type
from .base import Issues, Stack, missing_pool
from .models import plan_model
from .multinode import check_ray_stages


def check_ray_services(
    stack: Stack,
    pools: dict[str, NodePoolFacts],
    model_plans: dict[str, ModelPlan],
    lws_plans: dict[str, ModelPlan] | None = None,
) -> tuple[Issues, dict[str, ModelPlan]]:
    """The RayServices against their worker pool (beside the vLLM models' plans on the same pools);
    returns the issues and a plan per served model, keyed "<service>/<model_id>"."""
    out = Issues()
    plans: dict[str, ModelPlan] = {}
    names = [m.name for m in stack.config.models] + [r.name for r in stack.config.ray_services]
    for i, svc in enumerate(stack.config.ray_services):
        path = f"rayServices[{i}]"
        if names.count(svc.name) > 1 and svc.name not in {m.name for m in stack.config.models}:
            out.add(f"{path}.name", f"duplicate serving name '{svc.name}'")
        if svc.incremental_upgrade is not None and stack.config.cluster.cloud == "gke":
            # KubeRay 1.7.0 (rayservice_controller.go) routes to each RayCluster's own
            # "<cluster>-serve-svc", names generated per cluster: no HealthCheckPolicy can
            # name them, so a GKE Gateway would health-check GET / (404) and drop them
            out.add(
                f"{path}.upgradeStrategy",
                "NewClusterWithIncrementalUpgrade routes through a GKE Gateway to per-RayCluster Services with "
                "generated names that no HealthCheckPolicy can target (GKE's default GET / check fails on Ray "
                "Serve); use upgradeStrategy NewCluster on GKE",
            )
        pool = pools.get(svc.worker_pool)
        if pool is None:
            out += missing_pool(stack, f"{path}.workerPool", svc.worker_pool)
            continue
        if pool.clients_per_gpu > 1:
            out.add(
                f"{path}.workerPool",
                f"pool '{pool.name}' shares its GPUs ({pool.sharing_strategy} x{pool.clients_per_gpu}); "
                "Ray workers and vLLM's memory fraction need whole GPUs",
            )
            continue
        gpus = svc.worker_gpus(pool)
        if gpus > pool.gpus_per_node:
            out.add(
                f"{path}.gpusPerWorker",
                f"{gpus} exceeds the {pool.gpus_per_node} GPUs of one {pool.instance_type or pool.name} node",
            )
            continue
        if pool.gpus_per_node % gpus:
            out.add(f"{path}.gpusPerWorker", f"must divide the {pool.gpus_per_node} GPUs per node (got {gpus})")
            continue
        out += check_ray_accelerator(path, svc, pool)
        out += check_ray_worker_size(path, svc, pool, gpus)
        capacity = svc.max_workers * gpus
        min_gpus = _plan_ray_models(stack, out, path, svc, pool, gpus, plans)
        out += check_ray_cache(stack, path, svc, plans)
        if min_gpus > capacity:
            out.add(
                f"{path}.maxWorkers",
                f"the models' minimum replicas need {min_gpus} GPUs, but {svc.max_workers} workers x {gpus} GPUs give {capacity}",
            )
        elif svc.upgrade_strategy == "NewCluster":
            # a NewCluster upgrade runs a second, equal cluster until it is ready: without
            # room for it the upgrade stalls (the old cluster keeps serving the old config)
            own = max(svc.min_workers, -(-min_gpus // gpus)) * gpus
            others = sum(
                p.gpus_per_replica * p.min_replicas
                for p in [*model_plans.values(), *(lws_plans or {}).values()]
                if p.pool.name == pool.name
            )
            pool_gpus = pool.max_nodes * pool.gpus_per_node
            if 2 * own + others > pool_gpus:
                out.add(
                    f"{path}.upgradeStrategy",
                    f"NewCluster upgrades start a second cluster beside the running one: 2 x {own} GPUs"
                    + (f" + {others} for other models" if others else "")
                    + f" exceed the {pool_gpus} GPUs of pool '{pool.name}' (maxNodes {pool.max_nodes}); "
                    "raise maxNodes or use NewClusterWithIncrementalUpgrade",
                )
    return out, plans


def _plan_ray_models(
    stack: Stack,
    out: Issues,
    path: str,
    svc: RayServiceConfig,
    pool: NodePoolFacts,
    gpus: int,
    plans: dict[str, ModelPlan],
) -> int:
    """Plans every model of one RayService on its workers (into ``plans``); returns the GPUs their
    minimum replicas need. A replica may span workers (pipeline stages), never exceed the group."""
    capacity = svc.max_workers * gpus
    min_gpus = 0
    for j, model in enumerate(svc.models):
        mpath = f"{path}.models[{j}]"
        plan = plan_model(
            stack, out, mpath, model.model_id, "ray", model, pool, gpus, model.min_replicas, model.max_replicas
        )
        if plan is None:
            continue
        stages = check_ray_stages(mpath, plan, gpus)
        if stages:
            out += stages
            continue
        plans[f"{svc.name}/{model.model_id}"] = plan
        min_gpus += plan.gpus_per_replica * model.min_replicas
        if plan.gpus_per_replica * model.max_replicas > capacity:
            out.add(
                f"{mpath}.maxReplicas",
                f"{model.max_replicas} replicas x {plan.gpus_per_replica} GPUs can never be placed on "
                f"{svc.max_workers} workers x {gpus} GPUs (raise maxWorkers or lower maxReplicas)",
            )
    return min_gpus


def check_ray_cache(stack: Stack, path: str, svc: RayServiceConfig, plans: dict[str, ModelPlan]) -> Issues:
    out = Issues()
    cache = svc.cache
    if cache.enabled and not cache.storage_class and not stack.config.cluster.has_rwx_storage:
        out.add(
            f"{path}.cache.enabled",
            "a shared cache needs a ReadWriteMany class: cluster.eks.efsModelCache, "
            "cluster.gke.filestoreModelCache, cluster.existing.rwxStorageClass or cache.storageClass",
        )
    weights = sum(p.capacity.weights_gib for k, p in plans.items() if k.startswith(f"{svc.name}/"))
    if cache.size_gib is not None and cache.size_gib < weights:
        out.add(
            f"{path}.cache.sizeGib",
            f"{cache.size_gib} GiB cannot hold the {weights:.0f} GiB of the models' weights",
        )
    return out


def check_ray_accelerator(path: str, svc: RayServiceConfig, pool: NodePoolFacts) -> Issues:
    out = Issues()
    derived = ray_accelerator_type(pool)
    if svc.accelerator_type is None:
        if derived is None:
            out.add(
                f"{path}.acceleratorType",
                f"Ray has no accelerator type for '{pool.gpu_model}' (product label {pool.product_label}) of pool "
                f"'{pool.name}': set acceleratorType ({', '.join(RAY_NVIDIA_ACCELERATOR_TYPES)})",
            )
    elif derived is not None and svc.accelerator_type not in (derived, derived.split("-")[0]):
        out.add(
            f"{path}.acceleratorType",
            f"'{svc.accelerator_type}' does not match the {pool.gpu_model} GPUs of pool '{pool.name}' ({derived})",
        )
    return out


def check_ray_worker_size(path: str, svc: RayServiceConfig, pool: NodePoolFacts, gpus: int) -> Issues:
    """Workers must fit their node (a pod that fits nowhere waits forever for a GPU node)."""
    out = Issues()
    share_cpu, share_memory = svc.worker_share(pool)
    where = pool.instance_type or pool.name
    for field, alias, share, what in (
        ("worker_cpu", "workerCpu", share_cpu, "vCPUs"),
        ("worker_memory_gib", "workerMemoryGib", share_memory, "GiB of memory"),
    ):
        value = getattr(svc, field)
        if share is None and value is None:
            out.add(
                f"{path}.{alias}",
                f"required: the {what} of pool '{pool.name}' nodes are not known (existing cluster)",
            )
        elif value is None and share is not None and share < (1 if field == "worker_cpu" else 8):
            out.add(
                f"{path}.{alias}",
                f"a {gpus}-GPU worker's share of a {where} node is only {share} {what}: set it explicitly",
            )
        elif share is not None and value is not None and value > share:
            out.add(
                f"{path}.{alias}",
                f"{value:g} exceeds what one {gpus}-GPU worker may take of a {where} node after system "
                f"reservations ({share} {what})",
            )
    resources = svc.worker_resources(pool)
    if resources is not None and svc.shm_size_gib * 2 > resources[1]:
        out.add(
            f"{path}.shmSizeGib",
            f"{svc.shm_size_gib} GiB of /dev/shm (memory-backed, counted in the pod's memory limit) leave too little "
            f"of the worker's {resources[1]} GiB (keep it at most half)",
        )
    return out
