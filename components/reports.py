"""What a stack exports about itself: node pools, capacity and cost per model, warnings.

Computed from the validated plan (no resources), exported as stack outputs and printed by
the offline render.
"""

from __future__ import annotations

from typing import Any

from config import StackPlan


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
