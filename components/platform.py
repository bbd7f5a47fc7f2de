"""The whole platform for one stack: cluster -> add-ons -> serving namespace -> models.

Each step is its own component; this one only wires their handles together, so every
fact (provider, node-pool taints, Prometheus address, CRD owners) flows one way.
"""

from __future__ import annotations

from typing import Any

import pulumi

from config import StackPlan

from .addons import AddonsArgs, ClusterAddons
from .cluster import create_cluster
from .serving.context import ServingContext
from .serving.namespace import ServingNamespace, ServingNamespaceArgs
from .serving.rayservice import RayLlmService, RayLlmServiceArgs
from .serving.vllm import VllmService, VllmServiceArgs


class LlmPlatform(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        plan: StackPlan,
        *,
        hf_token: pulumi.Output[str] | None = None,
        grafana_admin_password: pulumi.Output[str] | None = None,
        kubeconfig: pulumi.Output[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("llm-infra:index:LlmPlatform", name, None, opts)
        cfg = plan.config
        cluster = create_cluster(name, plan, kubeconfig, pulumi.ResourceOptions(parent=self))
        self.cluster = cluster.handle
        k8s_opts = pulumi.ResourceOptions(parent=self, providers={"kubernetes": self.cluster.provider})

        serving_ns = ServingNamespace(
            f"{name}-serving",
            ServingNamespaceArgs(
                namespace=cfg.namespace,
                security=cfg.security,
                hf_token=hf_token,
                monitoring_namespaces=[] if cfg.addons.monitoring.mode == "none" else [cfg.addons.monitoring.namespace],
                protect=cfg.cluster.protect,
            ),
            opts=k8s_opts,
        )
        addons = ClusterAddons(
            f"{name}-addons",
            AddonsArgs(plan=plan, cluster=self.cluster, serving_namespaces=[cfg.namespace], grafana_admin_password=grafana_admin_password),
            opts=k8s_opts,
        )
        self.addons = addons.handle
        context = ServingContext(
            namespace=cfg.namespace,
            addons=self.addons,
            alerts=cfg.alerts,
            security=cfg.security,
            hf_token_secret=serving_ns.hf_token_secret,
            storage_class=self.cluster.storage_class,
            rwx_storage_class=self.cluster.rwx_storage_class,
            protect=cfg.cluster.protect,
        )
        serving_opts = pulumi.ResourceOptions(
            parent=self,
            providers={"kubernetes": self.cluster.provider},
            depends_on=[serving_ns, *self.cluster.gpu_capacity],
        )
        self.vllm = [
            VllmService(m.name, VllmServiceArgs(model=m, plan=plan.models[m.name], context=context), opts=serving_opts)
            for m in cfg.models
        ]
        self.ray = [
            RayLlmService(
                svc.name,
                RayLlmServiceArgs(
                    service=svc,
                    plans=[plan.ray_models[f"{svc.name}/{m.model_id}"] for m in svc.models],
                    pool=plan.pools[svc.worker_pool],
                    context=context,
                ),
                opts=serving_opts,
            )
            for svc in cfg.ray_services
        ]
        self.register_outputs({"namespace": cfg.namespace})


def capacity_report(plan: StackPlan) -> dict[str, Any]:
    """The capacity and cost estimate per model (exported, and printed by the offline render)."""
    report = {}
    for key, m in [*plan.models.items(), *plan.ray_models.items()]:
        c = m.capacity
        report[key] = {
            "kind": m.kind,
            "pool": m.pool.name,
            "gpu": m.pool.gpu_model,
            "tensorParallelSize": m.tensor_parallel_size,
            "maxModelLen": m.max_model_len,
            "weightsGib": round(c.weights_gib, 2),
            "kvCacheGib": round(c.kv_cache_gib, 2),
            "kvCacheTokens": c.kv_cache_tokens,
            "maxConcurrentSequences": round(c.max_concurrent_sequences, 2),
            "minReplicas": m.min_replicas,
            "maxReplicas": m.max_replicas,
            "hourlyCostMin": None if m.hourly_cost_min is None else round(m.hourly_cost_min, 2),
            "hourlyCostMax": None if m.hourly_cost_max is None else round(m.hourly_cost_max, 2),
        }
    return report


def node_pool_report(plan: StackPlan) -> dict[str, Any]:
    return {
        name: {
            "instanceType": f.instance_type,
            "gpuModel": f.gpu_model,
            "gpusPerNode": f.gpus_per_node,
            "gpuMemoryGib": f.gpu_memory_gib,
            "productLabel": f.product_label,
            "minNodes": f.min_nodes,
            "maxNodes": f.max_nodes,
            "capacityType": f.capacity_type,
            "taint": f"{f.taint_key}={f.taint_value}:{f.taint_effect}" if f.taint_key else None,
            "selector": f.selector,
            "sharing": f.sharing_strategy if f.clients_per_gpu == 1 else f"{f.sharing_strategy} x{f.clients_per_gpu}",
        }
        for name, f in plan.pools.items()
    }


def plan_warnings(plan: StackPlan) -> list[str]:
    warnings = []
    for m in plan.config.models:
        if m.autoscaling.scale_to_zero:
            warnings.append(
                f"models/{m.name}: scales to zero; the first request after idle waits for a cold start "
                f"(image pull, weight load, CUDA graphs: minutes, up to {m.startup_timeout_seconds}s allowed)"
            )
    return warnings
