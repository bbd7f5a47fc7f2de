"""Cross-field checks: vLLM models: architecture, tensor parallelism, capacity, cache, autoscaling, GPU budget."""

from __future__ import annotations

from typing import Literal

from .. import versions
from ..architectures import ARCHITECTURES, KNOWN_REPOSITORIES, ModelArchitecture, checkpoint_for_repository
from ..canary_model import MAX_STABLE_NAME, canary_model, canary_name, canary_replicas
from ..capacity import CapacityEstimate, estimate_capacity, hourly_cost
from ..errors import did_you_mean
from ..facts import NodePoolFacts
from ..plan import ModelPlan
from ..serving import (
    DEFAULT_MAX_MODEL_LEN,
    SPOT_NOTICE_SECONDS,
    SPOT_PRE_STOP_SECONDS,
    ModelSource,
    VllmModelConfig,
    check_extra_args,
    node_share,
    pool_zone_count,
)
from .base import Issues, Stack, missing_pool

CHECKPOINT_ONLY = frozenset(
    {
        "awq",
        "awq_marlin",
        "cpu_awq",
        "gptq",
        "gptq_marlin",
        "moe_wna16",
        "compressed-tensors",
        "gguf",
        "modelopt",
        "modelopt_fp4",
        "modelopt_mxfp8",
        "modelopt_mixed",
    }
)
"""Methods that load weights already stored quantized (their configs are built from the
checkpoint's quantization_config); fp8, bitsandbytes and the online shorthands quantize 16-bit
weights while loading instead."""

COMPATIBLE_OVERRIDES = {"awq": ("awq_marlin",), "gptq": ("gptq_marlin",)}
"""``--quantization`` values vLLM accepts for a checkpoint stored in the key's format (the
Marlin kernels read the same AWQ/GPTQ tensors; vLLM picks them itself on Ampere and newer)."""


def resolve_architecture(out: Issues, path: str, src: ModelSource) -> tuple[ModelArchitecture, str | None] | None:
    """The model's shapes and the quantization its checkpoint is stored in."""
    if src.model_spec is not None:
        if src.architecture:
            out.add(f"{path}.architecture", "set architecture or modelSpec, not both")
        s = src.model_spec
        arch = ModelArchitecture(
            params_billion=s.params,
            layers=s.layers,
            attention_heads=s.attention_heads,
            kv_heads=s.kv_heads,
            head_dim=s.head_dim,
            hidden_size=s.hidden_size,
            vocab_size=s.vocab_size,
            max_context=s.max_context,
            intermediate_size=s.intermediate_size,
            tied_embeddings=s.tied_embeddings,
        )
        return arch, s.quantization
    checkpoint = checkpoint_for_repository(src.model)
    key = src.architecture or (checkpoint.architecture if checkpoint else None)
    if key is None:
        out.add(
            f"{path}.architecture",
            f"unknown model '{src.model}'{did_you_mean(src.model.lower(), KNOWN_REPOSITORIES)}: not in the model catalog "
            f"(config/architectures.py), so its memory cannot be sized: "
            f"set architecture to a catalogued shape ({', '.join(sorted(ARCHITECTURES))}) or modelSpec with its "
            f"config.json fields (layers, attentionHeads, kvHeads, headDim, hiddenSize, intermediateSize, vocabSize, "
            f"maxContext) or modelSpec.configJson: <path of its config.json>",
        )
        return None
    if key not in ARCHITECTURES:
        out.add(f"{path}.architecture", f"'{key}' is not one of {', '.join(sorted(ARCHITECTURES))}")
        return None
    return ARCHITECTURES[key], checkpoint.quantization if checkpoint else None


def effective_quantization(out: Issues, path: str, src: ModelSource, stored: str | None) -> str | None:
    """The method vLLM loads with: ``--quantization`` if given, else the checkpoint's own
    (vllm/config/model.py ``_verify_quantization`` reads quantization_config). An explicit
    method must agree with a quantized checkpoint (the Marlin kernels of the same format
    are accepted overrides)."""
    if stored is None and src.quantization in CHECKPOINT_ONLY and checkpoint_for_repository(src.model):
        out.add(
            f"{path}.quantization",
            f"'{src.quantization}' reads weights stored in that format, but {src.model} holds 16-bit weights "
            f"(use a quantized repository, or a method vLLM applies while loading, such as fp8)",
        )
    if src.quantization is None or stored is None:
        return src.quantization or stored
    compatible = {stored, *COMPATIBLE_OVERRIDES.get(stored, ())}
    if src.quantization not in compatible:
        out.add(
            f"{path}.quantization",
            f"'{src.quantization}' does not match the checkpoint's own '{stored}' (vLLM refuses to start; "
            f"leave quantization unset or use {' or '.join(sorted(compatible))})",
        )
    return src.quantization


def plan_model(
    stack: Stack,
    out: Issues,
    path: str,
    name: str,
    kind: Literal["vllm", "ray", "lws"],
    src: ModelSource,
    pool: NodePoolFacts,
    gpus_available: int,
    min_replicas: int,
    max_replicas: int,
) -> ModelPlan | None:
    resolved = resolve_architecture(out, path, src)
    if resolved is None:
        return None
    arch, stored_quantization = resolved
    quantization = effective_quantization(out, path, src, stored_quantization)
    if src.requires_hf_token and not stack.has_credential("hfToken"):
        out.add(
            f"{path}.requiresHfToken",
            "gated model: set the secret hfToken (pulumi config set --secret hfToken) or credentials.hfToken.source secretManager",
        )
    max_len = src.max_model_len or min(arch.max_context, DEFAULT_MAX_MODEL_LEN)
    if max_len > arch.max_context:
        out.add(f"{path}.maxModelLen", f"{max_len} exceeds the model's context of {arch.max_context} tokens")
        return None
    util = src.gpu_memory_utilization
    # vLLM budgets from the memory CUDA reports; its fraction is of the whole GPU even when
    # the GPU is shared (the sharing check keeps the sum of fractions within one GPU)
    memory = pool.cuda_memory_gib
    where = f"{pool.instance_type or pool.name}"
    typical = src.typical_request.input_tokens + src.typical_request.output_tokens
    lora = getattr(src, "lora", None)
    # stages of one replica: each holds ceil(layers/pp) layers on tp GPUs of one node
    pp = getattr(src, "pipeline_parallel_size", 1)

    def estimate(tp: int) -> CapacityEstimate:
        return estimate_capacity(
            arch,
            gpu_memory_gib=memory,
            tensor_parallel_size=tp,
            gpu_memory_utilization=util,
            max_model_len=max_len,
            dtype=src.dtype,
            quantization=quantization,
            kv_cache_dtype=src.kv_cache_dtype,
            gpu_model=pool.gpu_model,
            max_num_batched_tokens=getattr(src, "max_num_batched_tokens", None),
            max_num_seqs=getattr(src, "max_num_seqs", None),
            enable_chunked_prefill=getattr(src, "enable_chunked_prefill", True),
            typical_request_tokens=typical,
            usage="serve" if kind in ("vllm", "lws") else "llm",
            pipeline_parallel_size=pp,
            lora_slots=lora.slots if lora is not None else 0,
            lora_rank=lora.max_rank if lora is not None else 0,
        )

    candidates = [d for d in range(1, gpus_available + 1) if gpus_available % d == 0 and arch.attention_heads % d == 0]
    tp = src.tensor_parallel_size
    if pool.clients_per_gpu > 1 and (tp or 1) > 1:
        out.add(
            f"{path}.tensorParallelSize",
            f"pool '{pool.name}' shares its GPUs ({pool.sharing_strategy}); tensor parallelism needs whole GPUs",
        )
        return None
    if tp is None:
        fitting = [d for d in candidates if estimate(d).fits]
        if not fitting:
            cap = estimate(max(candidates))
            stages = f" x {pp} pipeline stages" if pp > 1 else ""
            out.add(
                f"{path}.maxModelLen" if cap.weights_per_gpu_gib < cap.budget_per_gpu_gib else f"{path}.model",
                f"does not fit {where} even on all {max(candidates)} GPUs{stages}: weights {cap.weights_gib:.1f} GiB; "
                f"{cap.describe_budget()} < maxModelLen {max_len} (quantize, lower maxModelLen, or use a larger pool)",
            )
            return None
        tp = fitting[0]
    else:
        if tp > gpus_available:
            out.add(f"{path}.tensorParallelSize", f"{tp} exceeds the {gpus_available} GPUs of one {where} node")
            return None
        if gpus_available % tp:
            out.add(
                f"{path}.tensorParallelSize",
                f"must divide the {gpus_available} GPUs of {where} so replicas pack whole nodes (got {tp})",
            )
            return None
        if arch.attention_heads % tp:
            out.add(
                f"{path}.tensorParallelSize",
                f"must divide the model's {arch.attention_heads} attention heads (got {tp})",
            )
            return None
        cap = estimate(tp)
        if not cap.fits:
            out.add(
                f"{path}.tensorParallelSize",
                (f"{tp * pp} x {where} GPUs ({tp} x {pp} stages)" if pp > 1 else f"{tp} x {where} GPUs")
                + f" at gpuMemoryUtilization {util} cannot hold one {max_len}-token sequence, "
                f"so vLLM would refuse to start: {cap.describe_budget()} (lower maxModelLen, raise "
                f"tensorParallelSize or quantize)",
            )
            return None
    cap = estimate(tp)
    price = pool.hourly_usd
    gpus_per_replica = tp * pp
    return ModelPlan(
        name=name,
        path=path,
        kind=kind,
        architecture=arch,
        pool=pool,
        tensor_parallel_size=tp,
        max_model_len=max_len,
        capacity=cap,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        hourly_cost_min=None
        if price is None
        else hourly_cost(min_replicas, gpus_per_replica, pool.gpus_per_node, price),
        hourly_cost_max=None
        if price is None
        else hourly_cost(max_replicas, gpus_per_replica, pool.gpus_per_node, price),
        quantization=quantization,
        pipeline_parallel_size=pp,
    )


def check_spot_shutdown(stack: Stack, path: str, m: VllmModelConfig, plan: ModelPlan) -> Issues:
    """On GKE spot capacity the whole shutdown must fit the 15 s notice."""
    out = Issues()
    c = stack.config.cluster
    if (
        c.cloud == "gke"
        and plan.pool.capacity_type == "spot"
        and m.pre_stop_sleep_seconds >= SPOT_NOTICE_SECONDS["gke"]
    ):
        out.add(
            f"{path}.preStopSleepSeconds",
            f"{m.pre_stop_sleep_seconds}s uses all of the {SPOT_NOTICE_SECONDS['gke']}s GKE gives pods when a spot VM "
            f"is reclaimed (terminationGracePeriodSeconds does not extend it): vLLM would be killed without "
            f"SIGTERM; use at most {SPOT_PRE_STOP_SECONDS}",
        )
    return out


def check_models(stack: Stack, pools: dict[str, NodePoolFacts]) -> tuple[Issues, dict[str, ModelPlan]]:
    """The vLLM models against their pools; returns the issues and a plan per model that could be sized."""
    out = Issues()
    plans: dict[str, ModelPlan] = {}
    names = [m.name for m in stack.config.models] + [r.name for r in stack.config.ray_services]
    for i, m in enumerate(stack.config.models):
        path = f"models[{i}]"
        if names.count(m.name) > 1:
            out.add(
                f"{path}.name", f"duplicate serving name '{m.name}' (vLLM models and rayServices share a namespace)"
            )
        pool = pools.get(m.node_pool)
        if pool is None:
            out += missing_pool(stack, f"{path}.nodePool", m.node_pool)
            continue
        if pool.clients_per_gpu > 1 and m.gpu_memory_utilization * pool.clients_per_gpu > 1.0:
            out.add(
                f"{path}.gpuMemoryUtilization",
                f"pool '{pool.name}' shares each GPU between {pool.clients_per_gpu} pods: "
                f"{m.gpu_memory_utilization} x {pool.clients_per_gpu} exceeds the GPU "
                f"(vLLM's fraction is of the whole GPU; use at most {1 / pool.clients_per_gpu:.2f})",
            )
            continue
        a = m.autoscaling
        plan = plan_model(stack, out, path, m.name, "vllm", m, pool, pool.gpus_per_node, a.min_replicas, a.max_replicas)
        if plan:
            plans[m.name] = plan
            out += check_cache(stack, path, m, plan)
            out += check_vllm(path, m, plan)
        out += check_autoscaling(stack, path, m)
        if m.canary is not None:
            out += check_canary(stack, plans, path, m, pool, names)
    out += check_lora_names(stack)
    served = [m.served_name for m in stack.config.models]
    for i, m in enumerate(stack.config.models):
        if served.count(m.served_name) > 1 and served.index(m.served_name) != i:
            out.add(
                f"models[{i}].servedModelName",
                f"'{m.served_name}' is already served by another model: clients, metrics (model_name) and alerts could not tell them apart",
            )
    return out, plans


def check_canary(
    stack: Stack, plans: dict[str, ModelPlan], path: str, m: VllmModelConfig, pool: NodePoolFacts, names: list[str]
) -> Issues:
    """A canary must change something, run a pinned image, take valid flags and have a name
    left for its Deployment; its replicas are planned (GPUs, feasibility) like a model's,
    into ``plans``."""
    out = Issues()
    c = m.canary
    assert c is not None
    where = f"{path}.canary"
    if len(m.name) > MAX_STABLE_NAME:
        out.add(
            f"{path}.name",
            f"'{m.name}' leaves no room for the canary's '{canary_name(m.name)}' (at most {MAX_STABLE_NAME} characters)",
        )
        return out
    if canary_name(m.name) in names:
        out.add(f"{path}.name", f"the canary's name '{canary_name(m.name)}' is already a serving name")
    if c.image is not None and c.image not in versions.VLLM_IMAGES:
        out.add(
            f"{where}.image",
            f"'{c.image}' is not pinned in config/versions.py VLLM_IMAGES ({', '.join(versions.VLLM_IMAGES)}): "
            f"add the release there (with its CUDA major) first",
        )
    try:
        check_extra_args(c.extra_args)
    except ValueError as e:
        out.add(f"{where}.extraArgs", str(e))
    same_revision = c.revision is None or c.revision == m.revision
    same_image = c.image is None or c.image == versions.VLLM_IMAGE
    if same_revision and same_image and not c.extra_args:
        out.add(where, "changes nothing: set a revision, an image or extraArgs that differ from the stable model's")
    if m.autoscaling.scale_to_zero:
        out.add(
            where,
            "cannot accompany autoscaling.scaleToZero: the canary keeps a replica serving its share while the "
            "stable model may have none, so the comparison alerts have nothing to compare",
        )
    canary = canary_model(m)
    plan = plan_model(stack, out, where, canary.name, "vllm", canary, pool, pool.gpus_per_node, 1, canary_replicas(m))
    if plan:
        plans[canary.name] = plan
    return out


def check_lora_names(stack: Stack) -> Issues:
    """Adapter names are model names on the same API: unique among every served name."""
    out = Issues()
    taken = {m.served_name: f"models[{i}]" for i, m in enumerate(stack.config.models)}
    for i, m in enumerate(stack.config.models):
        if m.lora is None:
            continue
        for j, a in enumerate(m.lora.adapters):
            if a.name in taken:
                out.add(
                    f"models[{i}].lora.adapters[{j}].name",
                    f"'{a.name}' is already served by {taken[a.name]}: clients could not tell them apart",
                )
            else:
                taken[a.name] = f"models[{i}].lora.adapters[{j}]"
    return out


def check_vllm(path: str, m: VllmModelConfig, plan: ModelPlan) -> Issues:
    """What the pinned vLLM would refuse at startup, or what could never schedule."""
    out = Issues()
    if m.max_num_batched_tokens is not None:
        if not m.enable_chunked_prefill and m.max_num_batched_tokens < plan.max_model_len:
            out.add(
                f"{path}.maxNumBatchedTokens",
                f"{m.max_num_batched_tokens} is below maxModelLen {plan.max_model_len}: without chunked prefill "
                f"vLLM must fit a whole prompt in one batch (enable chunked prefill or raise it)",
            )
        if m.max_num_seqs is not None and m.max_num_batched_tokens < m.max_num_seqs:
            out.add(
                f"{path}.maxNumBatchedTokens",
                f"{m.max_num_batched_tokens} is below maxNumSeqs {m.max_num_seqs}: vLLM needs at least one token per running sequence",
            )
    if m.pre_stop_sleep_seconds + 60 > m.termination_grace_period_seconds:
        out.add(
            f"{path}.preStopSleepSeconds",
            f"{m.pre_stop_sleep_seconds}s of the {m.termination_grace_period_seconds}s grace period leaves in-flight "
            f"generations less than 60s after SIGTERM (raise terminationGracePeriodSeconds)",
        )
    cpu_share, mem_share = node_share(plan.pool, plan.tensor_parallel_size)
    where = plan.pool.instance_type or plan.pool.name
    if m.resources.cpu is not None and cpu_share is not None and m.resources.cpu > cpu_share:
        out.add(
            f"{path}.resources.cpu",
            f"{m.resources.cpu:g} exceeds the {cpu_share:.1f} vCPUs that {plan.tensor_parallel_size} of the "
            f"{plan.pool.gpus_per_node * plan.pool.clients_per_gpu} GPU slots of a {where} node leave a replica",
        )
    if (
        plan.tensor_parallel_size > 1
        and m.resources.memory_gib is not None
        and m.resources.memory_gib <= m.shm_size_gib
    ):
        out.add(
            f"{path}.resources.memoryGib",
            f"{m.resources.memory_gib} GiB leaves nothing beside the {m.shm_size_gib} GiB /dev/shm "
            f"(shmSizeGib), which is memory charged to the same container",
        )
    if m.resources.memory_gib is not None and mem_share is not None and m.resources.memory_gib > mem_share:
        out.add(
            f"{path}.resources.memoryGib",
            f"{m.resources.memory_gib} GiB exceeds the {mem_share:.1f} GiB that {plan.tensor_parallel_size} of the "
            f"{plan.pool.gpus_per_node * plan.pool.clients_per_gpu} GPU slots of a {where} node leave a replica",
        )
    return out


def check_cache(stack: Stack, path: str, m: VllmModelConfig, plan: ModelPlan) -> Issues:
    out = Issues()
    c = stack.config.cluster
    zones = pool_zone_count(c, m.node_pool)
    if m.cache.access_mode == "ReadWriteOnce" and zones != 1 and c.cloud in ("eks", "gke"):
        # a StatefulSet replica is bound to the zone of its first volume (zonal disk): a
        # stockout/preemption there, or a retained volume of a scaled-down replica, leaves
        # it Pending with a volume node affinity conflict while other zones have capacity
        out.add(
            f"{path}.cache.accessMode",
            f"ReadWriteOnce gives each replica a zonal disk, but pool '{m.node_pool}' spans "
            f"{'the region' if zones is None else f'{zones} zones'}: a replica would stay Pending when its disk's zone "
            f"has no capacity; pin the pool to one zone (cluster.nodePools[].zones) or use a shared cache "
            f"(cache.accessMode ReadWriteMany with {'filestoreModelCache' if c.cloud == 'gke' else 'efsModelCache'})",
        )
    out += check_spot_shutdown(stack, path, m, plan)
    if m.cache.size_gib is not None and m.cache.size_gib < plan.capacity.weights_gib:
        out.add(
            f"{path}.cache.sizeGib",
            f"{m.cache.size_gib} GiB cannot hold the {plan.capacity.weights_gib:.0f} GiB of weights",
        )
    if m.cache.access_mode == "ReadWriteMany" and not m.cache.storage_class and not c.has_rwx_storage:
        out.add(
            f"{path}.cache.accessMode",
            "ReadWriteMany needs a shared file system: cluster.eks.efsModelCache, "
            "cluster.gke.filestoreModelCache, cluster.existing.rwxStorageClass or cache.storageClass",
        )
    return out


def check_autoscaling(stack: Stack, path: str, m: VllmModelConfig) -> Issues:
    out = Issues()
    addons = stack.config.addons
    a = m.autoscaling
    if a.min_replicas == a.max_replicas:
        return out  # fixed size: nothing scales, no autoscaler needed
    if addons.monitoring.mode == "none":
        out.add(
            f"{path}.autoscaling",
            "scales on vLLM metrics, which need Prometheus (addons.monitoring.mode is 'none')",
        )
    if a.scale_to_zero and m.ingress is None and stack.config.edge.gateway is None:
        out.add(
            f"{path}.autoscaling.scaleToZero",
            "needs edge.gateway (or the opt-in ingress): with no pod running, vLLM exports no queue metric, so "
            "the wake-up signal is the endpoint picker's (or ingress controller's) request count",
        )
    if not addons.keda.available:
        if "fallback" in a.model_fields_set:
            out.add(
                f"{path}.autoscaling.fallback",
                "is a KEDA setting (addons.keda.enabled or alreadyInstalled); a plain HPA keeps its replicas when metrics fail",
            )
        if a.ttft_p95_target_seconds is not None:
            out.add(
                f"{path}.autoscaling.ttftP95TargetSeconds",
                "needs KEDA (addons.keda.enabled or alreadyInstalled): the HPA through prometheus-adapter scales on queue depth and KV cache only",
            )
        if a.scale_to_zero:
            out.add(
                f"{path}.autoscaling.scaleToZero",
                "needs KEDA (addons.keda.enabled or alreadyInstalled); an HPA cannot scale to zero",
            )
        if not addons.prometheus_adapter.enabled:
            out.add(
                f"{path}.autoscaling",
                "needs KEDA (addons.keda.enabled / alreadyInstalled) or addons.prometheusAdapter.enabled for an HPA",
            )
    return out


def check_gpu_budget(
    stack: Stack,
    pools: dict[str, NodePoolFacts],
    model_plans: dict[str, ModelPlan],
    lws_plans: dict[str, ModelPlan] | None = None,
) -> Issues:
    """Models at their minimum replicas must fit the GPUs their pool can ever have (a
    multi-node replica counts all its GPUs: tensor x pipeline parallel)."""
    out = Issues()
    need: dict[str, int] = {}
    for plan in [*model_plans.values(), *(lws_plans or {}).values()]:
        need[plan.pool.name] = need.get(plan.pool.name, 0) + plan.gpus_per_replica * plan.min_replicas
    for svc in stack.config.ray_services:
        pool = pools.get(svc.worker_pool)
        if pool:
            need[pool.name] = need.get(pool.name, 0) + (svc.gpus_per_worker or pool.gpus_per_node) * svc.min_workers
    for i, p in enumerate(stack.config.cluster.node_pools):
        facts = pools.get(p.name)
        if facts is None or p.name not in need:
            continue
        have = facts.max_nodes * facts.gpus_per_node * facts.clients_per_gpu
        if need[p.name] > have:
            out.add(
                f"cluster.nodePools[{i}].maxNodes",
                f"pool '{p.name}' offers {have} GPUs at maxNodes {facts.max_nodes}, but the minimum replicas scheduled on it need {need[p.name]}",
            )
    quota = stack.config.security.gpu_quota
    if quota is not None:
        total = sum(need.values())
        if total > quota:
            out.add("security.gpuQuota", f"{quota} GPUs is less than the {total} the minimum replicas need")
    return out
