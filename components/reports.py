"""What a stack exports about itself: node pools, capacity and cost per model, warnings.

Computed from the validated plan (no resources), exported as stack outputs and printed by
the offline render.
"""

from __future__ import annotations

from typing import Any

from llm_infra.config import ModelPlan, StackPlan, cold_start_plan, k8s_support
from llm_infra.config.canary_model import serving_models
from llm_infra.config.cluster import EksConfig, karpenter_instance_types
from llm_infra.config.multinode_plan import group_plan, interconnect_plan
from llm_infra.config.serving import SPOT_NOTICE_SECONDS


def capacity_report(plan: StackPlan) -> dict[str, Any]:
    """The capacity and cost estimate per model (exported, and printed by the offline render)."""
    return {
        key: {**model_capacity(m), "autoscaling": _autoscaling(plan, key)}
        for key, m in [*plan.models.items(), *plan.ray_models.items(), *plan.multinode_models.items()]
    }


def model_capacity(m: ModelPlan) -> dict[str, Any]:
    """One model's capacity and cost estimate (an entry of ``capacity_report``; a plan from
    ``plan_model`` gives the same report without a stack)."""
    c = m.capacity
    report: dict[str, Any] = {
        "kind": m.kind,
        "pool": m.pool.name,
        "gpu": m.pool.gpu_model,
        "tensorParallelSize": m.tensor_parallel_size,
        # what one replica takes: a replica larger than a node spans whole nodes (config/multinode.py)
        **group_plan(m),
        "maxModelLen": m.max_model_len,
        "weightsGib": round(c.weights_gib, 2),
        "kvCacheGib": round(c.kv_cache_gib, 2),
        "kvCacheTokens": c.kv_cache_tokens,
        "maxConcurrentSequences": round(c.max_concurrent_sequences, 2),
        "quantization": m.quantization,
        # vLLM's KV-cache budget per GPU, term by term (config/capacity.py)
        "budgetPerGpuGib": c.budget_lines(),
        "concurrentSequences": {
            "atMaxModelLen": c.sequences_at_max_len,
            "atTypicalRequest": c.sequences_at_typical,
            "typicalRequestTokens": c.typical_request_tokens,
            "maxNumSeqs": c.max_num_seqs,
        },
        "minReplicas": m.min_replicas,
        "maxReplicas": m.max_replicas,
        "hourlyCostMin": None if m.hourly_cost_min is None else round(m.hourly_cost_min, 2),
        "hourlyCostMax": None if m.hourly_cost_max is None else round(m.hourly_cost_max, 2),
        # scale-up decision to serving, phase by phase (config/cold_start.py)
        "coldStart": None if m.cold_start is None else m.cold_start.report(),
    }
    if m.gpus_per_replica > m.pool.gpus_per_node:
        report["interconnect"] = interconnect_plan(m, m.pool.instance_type, m.pool.cloud)
    if c.lora_slots:
        # GPU slots vLLM preallocates for adapters (--max-loras x --max-lora-rank), per GPU
        report["lora"] = {
            "maxLoras": c.lora_slots,
            "maxLoraRank": c.lora_rank,
            "gibPerGpu": round(c.lora_gib, 3),
        }
    return report


def _autoscaling(plan: StackPlan, key: str) -> dict[str, Any]:
    """The settings the cold start is weighed against: replicas and the queue-depth target."""
    for _, m in [*serving_models(plan.config.models), *((None, m) for m in plan.config.multi_node_models)]:
        if m.name == key:
            a = m.autoscaling
            return {
                "minReplicas": a.min_replicas,
                "maxReplicas": a.max_replicas,
                "queueDepthTarget": a.queue_depth_target,
                "scaleUpPods": a.scale_up_pods,
                "scaleUpPeriodSeconds": a.scale_up_period_seconds,
            }
    svc, _, model_id = key.partition("/")
    r = next(r for r in plan.config.ray_services if r.name == svc)
    rm = next(m for m in r.models if m.model_id == model_id)
    return {
        "minReplicas": rm.min_replicas,
        "maxReplicas": rm.max_replicas,
        "targetOngoingRequests": rm.target_ongoing_requests,
        "minWorkers": r.min_workers,
        "maxWorkers": r.max_workers,
    }


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
            # nodes each scenario needs vs. the nodes the pool can reach (config/feasibility.py)
            "feasibility": plan.feasibility[name].report() if name in plan.feasibility else None,
        }
        for name, f in plan.pools.items()
    }


def system_pool_report(plan: StackPlan) -> dict[str, Any]:
    """The CPU node pool the project creates for operators and monitoring (an existing
    cluster's nodes are not ours: ``{"instanceType": None}``)."""
    cluster = plan.config.cluster
    if cluster.cloud == "existing":
        return {"instanceType": None}
    pool = cluster.system_pool
    return {"instanceType": pool.machine_type(cluster.cloud), "minNodes": pool.min_nodes, "maxNodes": pool.max_nodes}


def hosts_report(plan: StackPlan) -> dict[str, list[str]]:
    """Public host names per model (Ingress host, HTTPRoute hostnames); models without are left out."""
    hosts = {}
    for m in plan.config.models:
        names = [m.ingress.host] if m.ingress else []
        names += list(m.http_route.hostnames) if m.http_route else []
        if names:
            hosts[m.name] = names
    return hosts


def plan_warnings(plan: StackPlan) -> list[str]:
    warnings = list(plan.warnings)
    c = plan.config.cluster
    if c.cloud != "existing" and not c.existing_cluster_name and c.control_plane_version:
        found = k8s_support.check(c.cloud, c.control_plane_version)
        if found and found[0] == "warning":
            warnings.append(f"cluster.kubernetesVersion: {found[1]}")
    warnings += spot_warnings(plan)
    # cold starts longer than the scale-up window (config/cold_start.py)
    warnings += cold_start_plan.warnings(plan.config, plan.models)
    for m in plan.config.models:
        if m.autoscaling.scale_to_zero:
            est = plan.models[m.name].cold_start
            warnings.append(
                f"models/{m.name}: scales to zero; the first request after idle waits for a cold start "
                f"(image pull, weight load, CUDA graphs: about {est.total_seconds if est else '?'}s estimated)"
            )
    for svc in plan.config.ray_services:
        if not svc.cache.shared(plan.config.cluster.has_rwx_storage):
            warnings.append(
                f"rayServices/{svc.name}: no shared model cache (no ReadWriteMany class, or cache.enabled false): "
                "every Ray worker downloads its models' weights at each start"
            )
    return warnings + cluster_warnings(plan)


def cluster_warnings(plan: StackPlan) -> list[str]:
    """What the cluster config leaves open: unenforced NetworkPolicies, a drifting AMI, an open API endpoint."""
    c, out = plan.config.cluster, []
    enforced = c.network_policy_enforcement()
    if plan.config.security.network_policy.enabled and enforced is not True:
        how = (
            "does not enforce them"
            if enforced is False
            else "may not enforce them (cluster.networkPolicyEnforced: unknown)"
        )
        out.append(
            f"cluster: the serving namespaces' NetworkPolicies only isolate the model pods if the CNI enforces them; "
            f"this {c.cloud} cluster {how}"
        )
    karpenter = c.eks.karpenter if c.eks and c.eks.karpenter.enabled else None
    if karpenter:
        for alias in sorted({karpenter.ami_alias(p.ami_type) for p in c.node_pools}):
            if alias.endswith("@latest"):
                out.append(
                    f"cluster.eks.karpenter: AMI alias {alias}: every AMI release replaces all Karpenter GPU nodes (drift); pin a release"
                )
    eks = c.eks or EksConfig()
    if c.cloud == "eks" and c.created_here and eks.public_endpoint and "0.0.0.0/0" in eks.public_access_cidrs:
        out.append("cluster.eks.publicAccessCidrs: the API server endpoint is open to the whole internet (0.0.0.0/0)")
    if c.cloud == "gke" and c.created_here and c.gke and c.gke.public_endpoint and not c.gke.master_authorized_networks:
        out.append(
            "cluster.gke.masterAuthorizedNetworks: empty, the control plane's public endpoint accepts any source "
            "address (required on protected clusters)"
        )
    return out


def on_spot(plan: StackPlan, pool_name: str) -> bool:
    """A spot pool, or an EKS pool that Karpenter extends with spot-first NodePools."""
    c = plan.config.cluster
    facts = plan.pools[pool_name]
    if facts.capacity_type == "spot":
        return True
    k = c.eks.karpenter if c.eks and c.eks.karpenter.enabled else None
    pool = next(p for p in c.node_pools if p.name == pool_name)
    return k is not None and bool(karpenter_instance_types(k, pool))


def spot_warnings(plan: StackPlan) -> list[str]:
    """What a spot reclaim does to each model's in-flight requests."""
    c = plan.config.cluster
    notice = SPOT_NOTICE_SECONDS.get(c.cloud)
    if notice is None:
        return []
    out = []
    for _, m in serving_models(plan.config.models):  # a canary runs on its model's pool
        if on_spot(plan, m.node_pool):
            after = min(notice, m.termination_grace_period_seconds) - m.pre_stop_sleep_seconds
            cut = (
                f", not the {m.termination_grace_period_seconds}s grace period"
                if m.termination_grace_period_seconds > notice
                else ""
            )
            out.append(
                f"models/{m.name}: runs on spot capacity (pool {m.node_pool}); when {c.cloud.upper()} reclaims a node its "
                f"pods get {notice}s in all ({m.pre_stop_sleep_seconds}s preStop, then {after}s after SIGTERM{cut}): "
                f"generations still streaming then are cut and clients must retry them"
            )
    for mn in plan.config.multi_node_models:
        if on_spot(plan, mn.node_pool):
            out.append(
                f"multiNodeModels/{mn.name}: runs on spot capacity (pool {mn.node_pool}); one reclaimed node takes its "
                f"whole group ({mn.pipeline_parallel_size} pods) down until LWS recreates it, and streams on it are cut"
            )
    for r in plan.config.ray_services:
        if on_spot(plan, r.worker_pool):
            out.append(
                f"rayServices/{r.name}: workers run on spot capacity (pool {r.worker_pool}); when {c.cloud.upper()} reclaims "
                f"a node its worker gets {notice}s in all (not the {r.termination_grace_period_seconds}s grace period or "
                f"{r.graceful_shutdown_timeout_seconds}s graceful shutdown): requests on its replicas still running then "
                f"are cut and clients must retry them"
            )
    return out
