"""Cross-field checks: multi-node replicas (LeaderWorkerSet models, pipeline-parallel Ray models)."""

from __future__ import annotations

from ..plan import ModelPlan
from .base import CheckerBase


def check_ray_stages(checker: CheckerBase, path: str, plan: ModelPlan, worker_gpus: int) -> bool:
    """A Ray model whose replica spans workers needs workers of exactly one stage each: the
    PACK placement group then puts one whole tensor-parallel group on every worker (a worker
    with room for more would let a stage straddle two workers and run its all-reduces over TCP)."""
    if plan.gpus_per_replica <= worker_gpus or plan.tensor_parallel_size == worker_gpus:
        return True
    checker.add(
        f"{path}.tensorParallelSize",
        f"a replica of {plan.tensor_parallel_size} x {plan.pipeline_parallel_size} GPUs spans workers: each stage "
        f"must fill one whole {worker_gpus}-GPU worker (set tensorParallelSize {worker_gpus}, or gpusPerWorker "
        f"{plan.tensor_parallel_size})",
    )
    return False


class MultiNodeChecks(CheckerBase):
    def check_multinode_models(self) -> None:
        cfg = self.config
        names = (
            [m.name for m in cfg.models] + [r.name for r in cfg.ray_services] + [m.name for m in cfg.multi_node_models]
        )
        served = [m.served_name for m in cfg.models]
        for i, m in enumerate(cfg.multi_node_models):
            path = f"multiNodeModels[{i}]"
            if names.count(m.name) > 1:
                self.add(
                    f"{path}.name",
                    f"duplicate serving name '{m.name}' (models, rayServices and multiNodeModels share a namespace)",
                )
            if m.served_name in served:
                self.add(f"{path}.servedModelName", f"'{m.served_name}' is already served by a vLLM model")
            served.append(m.served_name)
            pool = self.pools.get(m.node_pool)
            if pool is None:
                self.report_missing_pool(f"{path}.nodePool", m.node_pool)
                continue
            if pool.clients_per_gpu > 1:
                self.add(
                    f"{path}.nodePool",
                    f"pool '{pool.name}' shares its GPUs ({pool.sharing_strategy}); a pipeline stage needs whole GPUs",
                )
                continue
            a = m.autoscaling
            plan = self.plan_model(path, m.name, "lws", m, pool, pool.gpus_per_node, a.min_replicas, a.max_replicas)
            if plan is None:
                continue
            self.lws_plans[m.name] = plan
            if not (m.cache.storage_class or cfg.cluster.has_rwx_storage):
                self.add(
                    f"{path}.cache",
                    "the group's stages share one model cache: needs a ReadWriteMany class (cluster.eks.efsModelCache, "
                    "cluster.gke.filestoreModelCache, cluster.existing.rwxStorageClass or cache.storageClass)",
                )
            if m.cache.size_gib is not None and m.cache.size_gib < plan.capacity.weights_gib:
                self.add(
                    f"{path}.cache.sizeGib",
                    f"{m.cache.size_gib} GiB cannot hold the {plan.capacity.weights_gib:.0f} GiB of weights",
                )
            if m.pre_stop_sleep_seconds + 60 > m.termination_grace_period_seconds:
                self.add(
                    f"{path}.preStopSleepSeconds",
                    f"{m.pre_stop_sleep_seconds}s of the {m.termination_grace_period_seconds}s grace period leaves "
                    "in-flight generations less than 60s after SIGTERM (raise terminationGracePeriodSeconds)",
                )
            if m.resources.memory_gib is not None and m.resources.memory_gib <= m.shm_size_gib:
                self.add(
                    f"{path}.resources.memoryGib",
                    f"{m.resources.memory_gib} GiB leaves nothing beside the {m.shm_size_gib} GiB /dev/shm (shmSizeGib)",
                )
            self.check_multinode_addons(path, m)

    def check_multinode_addons(self, path: str, m) -> None:
        addons = self.config.addons
        a = m.autoscaling
        if a.min_replicas != a.max_replicas:
            if not addons.keda.available:
                self.add(
                    f"{path}.autoscaling",
                    "scales LeaderWorkerSet groups with KEDA (addons.keda.enabled or alreadyInstalled): prometheus-adapter "
                    "HPAs read per-pod metrics, which only the leader of each group exports",
                )
            if addons.monitoring.mode == "none":
                self.add(
                    f"{path}.autoscaling",
                    "scales on vLLM metrics, which need Prometheus (addons.monitoring.mode is 'none')",
                )
        if addons.lws.enabled is False and not addons.lws.already_installed:
            self.add(
                "addons.lws.enabled",
                f"{path} needs the LeaderWorkerSet controller: leave enabled unset or true, or set alreadyInstalled",
            )
