"""Cross-field checks: RayServices: worker groups, accelerator types, models on the shared workers."""

from __future__ import annotations

from ..facts import NodePoolFacts
from ..ray import RAY_NVIDIA_ACCELERATOR_TYPES, RayServiceConfig, ray_accelerator_type
from .base import CheckerBase
from .multinode import check_ray_stages


class RayChecks(CheckerBase):
    # -- ray ---------------------------------------------------------------------------
    def check_ray_services(self) -> None:
        names = [m.name for m in self.config.models] + [r.name for r in self.config.ray_services]
        for i, svc in enumerate(self.config.ray_services):
            path = f"rayServices[{i}]"
            if names.count(svc.name) > 1 and svc.name not in {m.name for m in self.config.models}:
                self.add(f"{path}.name", f"duplicate serving name '{svc.name}'")
            if svc.incremental_upgrade is not None and self.config.cluster.cloud == "gke":
                # KubeRay 1.7.0 (rayservice_controller.go) routes to each RayCluster's own
                # "<cluster>-serve-svc", names generated per cluster: no HealthCheckPolicy can
                # name them, so a GKE Gateway would health-check GET / (404) and drop them
                self.add(
                    f"{path}.upgradeStrategy",
                    "NewClusterWithIncrementalUpgrade routes through a GKE Gateway to per-RayCluster Services with "
                    "generated names that no HealthCheckPolicy can target (GKE's default GET / check fails on Ray "
                    "Serve); use upgradeStrategy NewCluster on GKE",
                )
            pool = self.pools.get(svc.worker_pool)
            if pool is None:
                self.report_missing_pool(f"{path}.workerPool", svc.worker_pool)
                continue
            if pool.clients_per_gpu > 1:
                self.add(
                    f"{path}.workerPool",
                    f"pool '{pool.name}' shares its GPUs ({pool.sharing_strategy} x{pool.clients_per_gpu}); "
                    "Ray workers and vLLM's memory fraction need whole GPUs",
                )
                continue
            gpus = svc.worker_gpus(pool)
            if gpus > pool.gpus_per_node:
                self.add(
                    f"{path}.gpusPerWorker",
                    f"{gpus} exceeds the {pool.gpus_per_node} GPUs of one {pool.instance_type or pool.name} node",
                )
                continue
            if pool.gpus_per_node % gpus:
                self.add(f"{path}.gpusPerWorker", f"must divide the {pool.gpus_per_node} GPUs per node (got {gpus})")
                continue
            self.check_ray_accelerator(path, svc, pool)
            self.check_ray_worker_size(path, svc, pool, gpus)
            capacity = svc.max_workers * gpus
            min_gpus = 0
            for j, model in enumerate(svc.models):
                mpath = f"{path}.models[{j}]"
                plan = self.plan_model(
                    mpath, model.model_id, "ray", model, pool, gpus, model.min_replicas, model.max_replicas
                )
                if plan is None:
                    continue
                if not check_ray_stages(self, mpath, plan, gpus):
                    continue
                self.ray_plans[f"{svc.name}/{model.model_id}"] = plan
                min_gpus += plan.gpus_per_replica * model.min_replicas
                if plan.gpus_per_replica * model.max_replicas > capacity:
                    self.add(
                        f"{mpath}.maxReplicas",
                        f"{model.max_replicas} replicas x {plan.gpus_per_replica} GPUs can never be placed on "
                        f"{svc.max_workers} workers x {gpus} GPUs (raise maxWorkers or lower maxReplicas)",
                    )
            self.check_ray_cache(path, svc)
            if min_gpus > capacity:
                self.add(
                    f"{path}.maxWorkers",
                    f"the models' minimum replicas need {min_gpus} GPUs, but {svc.max_workers} workers x {gpus} GPUs give {capacity}",
                )
            elif svc.upgrade_strategy == "NewCluster":
                # a NewCluster upgrade runs a second, equal cluster until it is ready: without
                # room for it the upgrade stalls (the old cluster keeps serving the old config)
                own = max(svc.min_workers, -(-min_gpus // gpus)) * gpus
                others = sum(
                    p.gpus_per_replica * p.min_replicas
                    for p in [*self.model_plans.values(), *self.lws_plans.values()]
                    if p.pool.name == pool.name
                )
                pool_gpus = pool.max_nodes * pool.gpus_per_node
                if 2 * own + others > pool_gpus:
                    self.add(
                        f"{path}.upgradeStrategy",
                        f"NewCluster upgrades start a second cluster beside the running one: 2 x {own} GPUs"
                        + (f" + {others} for other models" if others else "")
                        + f" exceed the {pool_gpus} GPUs of pool '{pool.name}' (maxNodes {pool.max_nodes}); "
                        "raise maxNodes or use NewClusterWithIncrementalUpgrade",
                    )

    def check_ray_cache(self, path: str, svc: RayServiceConfig) -> None:
        cache = svc.cache
        if cache.enabled and not cache.storage_class and not self.config.cluster.has_rwx_storage:
            self.add(
                f"{path}.cache.enabled",
                "a shared cache needs a ReadWriteMany class: cluster.eks.efsModelCache, "
                "cluster.gke.filestoreModelCache, cluster.existing.rwxStorageClass or cache.storageClass",
            )
        weights = sum(p.capacity.weights_gib for k, p in self.ray_plans.items() if k.startswith(f"{svc.name}/"))
        if cache.size_gib is not None and cache.size_gib < weights:
            self.add(
                f"{path}.cache.sizeGib",
                f"{cache.size_gib} GiB cannot hold the {weights:.0f} GiB of the models' weights",
            )

    def check_ray_accelerator(self, path: str, svc: RayServiceConfig, pool: NodePoolFacts) -> None:
        derived = ray_accelerator_type(pool)
        if svc.accelerator_type is None:
            if derived is None:
                self.add(
                    f"{path}.acceleratorType",
                    f"Ray has no accelerator type for '{pool.gpu_model}' (product label {pool.product_label}) of pool "
                    f"'{pool.name}': set acceleratorType ({', '.join(RAY_NVIDIA_ACCELERATOR_TYPES)})",
                )
        elif derived is not None and svc.accelerator_type not in (derived, derived.split("-")[0]):
            self.add(
                f"{path}.acceleratorType",
                f"'{svc.accelerator_type}' does not match the {pool.gpu_model} GPUs of pool '{pool.name}' ({derived})",
            )

    def check_ray_worker_size(self, path: str, svc: RayServiceConfig, pool: NodePoolFacts, gpus: int) -> None:
        """Workers must fit their node (a pod that fits nowhere waits forever for a GPU node)."""
        share_cpu, share_memory = svc.worker_share(pool)
        where = pool.instance_type or pool.name
        for field, alias, share, what in (
            ("worker_cpu", "workerCpu", share_cpu, "vCPUs"),
            ("worker_memory_gib", "workerMemoryGib", share_memory, "GiB of memory"),
        ):
            value = getattr(svc, field)
            if share is None and value is None:
                self.add(
                    f"{path}.{alias}",
                    f"required: the {what} of pool '{pool.name}' nodes are not known (existing cluster)",
                )
            elif value is None and share is not None and share < (1 if field == "worker_cpu" else 8):
                self.add(
                    f"{path}.{alias}",
                    f"a {gpus}-GPU worker's share of a {where} node is only {share} {what}: set it explicitly",
                )
            elif share is not None and value is not None and value > share:
                self.add(
                    f"{path}.{alias}",
                    f"{value:g} exceeds what one {gpus}-GPU worker may take of a {where} node after system "
                    f"reservations ({share} {what})",
                )
        resources = svc.worker_resources(pool)
        if resources is not None and svc.shm_size_gib * 2 > resources[1]:
            self.add(
                f"{path}.shmSizeGib",
                f"{svc.shm_size_gib} GiB of /dev/shm (memory-backed, counted in the pod's memory limit) leave too little "
                f"of the worker's {resources[1]} GiB (keep it at most half)",
            )
