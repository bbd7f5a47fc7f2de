"""The whole stack: typed config, cross-field checks, and the derived serving plan.

``load_stack_config`` is the single entry point: it parses the raw stack values, checks
everything that involves more than one field (pools vs. models, add-ons vs. serving,
secrets vs. features), derives what the components need (node-pool facts, tensor
parallelism, capacity), and reports every problem at once as ``ConfigError``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator

from . import catalog
from .addons import ADDON_NAMESPACES, AddonsConfig
from .architectures import ARCHITECTURES, ModelArchitecture, architecture_for_repository
from .base import DNS_LABEL, ConfigModel
from .capacity import CapacityEstimate, estimate_capacity, hourly_cost
from .cluster import POOL_LABEL, SYSTEM_POOL_NAME, ClusterConfig, karpenter_instance_types
from .errors import ConfigError, Issue, issues_from_validation_error
from .facts import DEVICE_PLUGIN_CONFIG_LABEL, NodePoolFacts, all_node_pool_facts
from .ray import RAY_NVIDIA_ACCELERATOR_TYPES, RayServiceConfig, ray_accelerator_type
from .security import SecurityConfig
from .serving import ModelSource, VllmModelConfig, node_share

SECRET_KEYS = ("hfToken", "grafanaAdminPassword", "kubeconfig")
"""Config keys that hold credentials. They are read with ``require_secret`` and must be set
with ``pulumi config set --secret``; they never enter the typed config below."""

DEFAULT_MAX_MODEL_LEN = 8192


class AlertThresholds(ConfigModel):
    """Alert thresholds (seed guides: KV cache 90 %, queue 10, TTFT p99 5 s, GPU 85 °C)."""

    kv_cache_usage: float = Field(0.90, gt=0, le=1)
    kv_cache_for: str = Field("5m", pattern=r"^\d+[smh]$")
    queue_depth: float = Field(10, gt=0)
    queue_depth_for: str = Field("2m", pattern=r"^\d+[smh]$")
    ttft_p99_seconds: float = Field(5, gt=0)
    ttft_for: str = Field("5m", pattern=r"^\d+[smh]$")
    gpu_temperature_celsius: float = Field(85, gt=0)
    gpu_temperature_for: str = Field("5m", pattern=r"^\d+[smh]$")
    error_ratio: float = Field(0.05, gt=0, le=1)
    error_ratio_for: str = Field("5m", pattern=r"^\d+[smh]$")
    max_replicas_for: str = Field("15m", pattern=r"^\d+[smh]$")
    no_healthy_replica_for: str = Field("5m", pattern=r"^\d+[smh]$")
    runbook_base_url: str = Field(
        "https://github.com/llm-infra/llm-infra/blob/main/docs/runbooks",
        pattern=r"^https?://\S+[^/]$",
        description="where docs/runbooks/*.md are served; each alert links <base>/<file>.md#<alert>",
    )


class StackConfig(ConfigModel):
    cluster: ClusterConfig
    addons: AddonsConfig = AddonsConfig()
    namespace: str = Field("llm-inference", description="namespace of the serving workloads")
    models: list[VllmModelConfig] = Field(default_factory=list)
    ray_services: list[RayServiceConfig] = Field(default_factory=list)
    alerts: AlertThresholds = AlertThresholds()
    security: SecurityConfig = SecurityConfig()

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not DNS_LABEL.match(v):
            raise ValueError(f"'{v}' is not a lowercase DNS label of at most 40 characters")
        return v


@dataclass(frozen=True)
class ModelPlan:
    """What the config implies for one model: architecture, GPUs, capacity and cost."""

    name: str
    path: str                       # config path, e.g. "models[0]"
    kind: str                       # "vllm" | "ray"
    architecture: ModelArchitecture
    pool: NodePoolFacts
    tensor_parallel_size: int
    max_model_len: int
    capacity: CapacityEstimate
    min_replicas: int
    max_replicas: int
    hourly_cost_min: float | None
    hourly_cost_max: float | None


@dataclass(frozen=True)
class StackPlan:
    """A validated stack: the typed config plus everything derived from it."""

    stack: str
    config: StackConfig
    pools: dict[str, NodePoolFacts]
    models: dict[str, ModelPlan]        # vLLM models by name
    ray_models: dict[str, ModelPlan]    # "<service>/<model_id>"
    secrets: frozenset[str]             # which SECRET_KEYS are set (never their values)

    @property
    def needs_kuberay(self) -> bool:
        kr = self.config.addons.kuberay
        return bool(self.config.ray_services) if kr.enabled is None else kr.enabled


def load_stack_config(stack: str, values: Mapping[str, Any], secrets: Mapping[str, bool]) -> StackPlan:
    """Validate a stack's config (project-namespace keys without the ``project:`` prefix).

    ``secrets`` maps each credential key that is set to whether it is stored as a secret.
    Raises ``ConfigError`` listing every problem, each with its config path.
    """
    issues: list[Issue] = []
    for key, is_secret in sorted(secrets.items()):
        if not is_secret:
            issues.append(
                Issue(key, f"must be stored encrypted: pulumi config set --secret {key} <value>")
            )
    raw = {k: v for k, v in values.items() if k not in SECRET_KEYS}
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(stack, issues + issues_from_validation_error(err)) from None
    checker = _Checker(config, frozenset(k for k in secrets if k in SECRET_KEYS))
    issues += checker.run()
    if issues:
        raise ConfigError(stack, sorted(set(issues), key=issues.index))
    return StackPlan(
        stack=stack,
        config=config,
        pools=checker.pools,
        models=checker.model_plans,
        ray_models=checker.ray_plans,
        secrets=checker.secrets,
    )


class _Checker:
    """Cross-field checks. Each method appends Issues; derived plans are kept for the caller."""

    def __init__(self, config: StackConfig, secrets: frozenset[str]):
        self.config = config
        self.secrets = secrets
        self.issues: list[Issue] = []
        self.pools: dict[str, NodePoolFacts] = {}
        self.model_plans: dict[str, ModelPlan] = {}
        self.ray_plans: dict[str, ModelPlan] = {}

    def add(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def run(self) -> list[Issue]:
        self.check_cluster()
        if not any(i.path.startswith("cluster.nodePools") for i in self.issues):
            self.pools = all_node_pool_facts(self.config.cluster, self.config.addons.gpu_operator.enabled)
        self.check_models()
        self.check_ray_services()
        self.check_addons()
        self.check_gpu_budget()
        return self.issues

    # -- cluster ---------------------------------------------------------------------
    def check_cluster(self) -> None:
        c = self.config.cluster
        for section in ("eks", "gke", "existing"):
            if getattr(c, section) is not None and c.cloud != section:
                self.add(f"cluster.{section}", f"only valid with cloud '{section}' (cloud is '{c.cloud}')")
        if c.cloud in ("eks", "gke") and not c.region:
            self.add("cluster.region", f"required for cloud '{c.cloud}'")
        if c.cloud == "gke" and c.gke is None:
            self.add("cluster.gke", "required for cloud 'gke' (at least gke.project)")
        if c.cloud == "existing":
            if c.existing_cluster_name:
                self.add("cluster.existingClusterName", "only for eks/gke; an existing cluster is reached by kubeconfig")
            has_path = c.existing is not None and c.existing.kubeconfig_path
            if not has_path and "kubeconfig" not in self.secrets:
                self.add(
                    "cluster.existing.kubeconfigPath",
                    "an existing cluster needs kubeconfigPath or the secret 'kubeconfig' "
                    "(pulumi config set --secret kubeconfig < file)",
                )
        karpenter = c.eks.karpenter if c.eks and c.eks.karpenter.enabled else None
        if karpenter:
            for j, name in enumerate(karpenter.instance_types):
                if catalog.lookup("eks", name) is None:
                    self.add(f"cluster.eks.karpenter.instanceTypes[{j}]", f"'{name}' is not in the EKS GPU catalog")
                elif not any(name in karpenter_instance_types(karpenter, p) for p in c.node_pools):
                    self.add(
                        f"cluster.eks.karpenter.instanceTypes[{j}]",
                        f"{name} fits no node pool (same GPUs as the pool's instance type and at least its vCPUs and "
                        f"memory): no workload selects the nodes it would launch",
                    )
        if c.cloud in ("eks", "gke"):
            system = c.system_pool.machine_type(c.cloud)
            shaped = r"^[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+$" if c.cloud == "eks" else r"^[a-z][a-z0-9]*-[a-z0-9-]+$"
            if not re.match(shaped, system):
                self.add("cluster.systemPool.instanceType", f"'{system}' is not an {'EC2 instance' if c.cloud == 'eks' else 'GCE machine'} type")
            elif catalog.lookup(c.cloud, system) is not None or (c.cloud == "eks" and re.match(r"^(g|p|inf|trn|dl|f|vt)\d", system)):
                self.add("cluster.systemPool.instanceType", f"{system} has accelerators; the system pool runs operators and monitoring on CPU nodes")
            elif c.cloud == "eks" and re.match(r"^[a-z]+\d+[a-z]*g[a-z]*\.", system):
                self.add("cluster.systemPool.instanceType", f"{system} is a Graviton (arm64) type; the system node group uses the x86_64 AL2023 AMI")
            zones = sorted({z for p in c.node_pools for z in p.zones})
            for i, pool in enumerate(c.node_pools):
                for j, zone in enumerate(pool.zones):
                    if c.region and not re.match(rf"^{re.escape(c.region)}-?[a-z]$", zone):
                        self.add(f"cluster.nodePools[{i}].zones[{j}]", f"'{zone}' is not a zone of region {c.region}")
            if c.cloud == "eks" and not c.existing_cluster_name and len(zones) > 3:
                self.add("cluster.nodePools", f"the new VPC spans 3 availability zones, the pools name {len(zones)}: {', '.join(zones)}")
        if c.eks:
            try:
                net = ipaddress.IPv4Network(c.eks.vpc_cidr)
            except ValueError as err:
                self.add("cluster.eks.vpcCidr", f"not an IPv4 network: {err}")
            else:
                if not 16 <= net.prefixlen <= 20:
                    self.add("cluster.eks.vpcCidr", f"/{net.prefixlen}: use /16../20 (3 private subnets of a quarter each hold the pods' VPC CNI addresses)")
            if c.existing_cluster_name and "vpc_cidr" in c.eks.model_fields_set:
                self.add("cluster.eks.vpcCidr", "not used with existingClusterName (the cluster's VPC is used)")
        names = [p.name for p in c.node_pools]
        for i, pool in enumerate(c.node_pools):
            path = f"cluster.nodePools[{i}]"
            if names.count(pool.name) > 1:
                self.add(f"{path}.name", f"duplicate node pool name '{pool.name}'")
            if pool.name == SYSTEM_POOL_NAME and c.cloud != "existing":
                self.add(f"{path}.name", f"'{SYSTEM_POOL_NAME}' is reserved for the CPU system pool")
            self.check_pool(path, pool)

    def check_pool(self, path: str, pool) -> None:
        cloud = self.config.cluster.cloud
        explicit = pool.model_fields_set
        if cloud == "existing":
            if pool.gpu is None:
                self.add(f"{path}.gpu", "required on an existing cluster (model, count, memoryGib, productLabel)")
            if not pool.node_selector:
                self.add(f"{path}.nodeSelector", "required on an existing cluster: labels that select this pool's nodes")
            for field, alias in (("accelerator", "accelerator"), ("ami_type", "amiType"),
                                 ("spot_instance_types", "spotInstanceTypes"), ("disk_size_gib", "diskSizeGib"),
                                 ("zones", "zones"), ("labels", "labels")):
                if field in explicit:
                    self.add(f"{path}.{alias}", "not used on an existing cluster (its nodes already exist)")
            return
        for field, alias in (("gpu", "gpu"), ("node_selector", "nodeSelector")):
            if field in explicit:
                self.add(f"{path}.{alias}", f"only for existing clusters; on {cloud} the GPU catalog provides it")
        if not pool.instance_type:
            self.add(f"{path}.instanceType", f"required on {cloud}")
            return
        shape = catalog.lookup(cloud, pool.instance_type)
        if shape is None:
            known = ", ".join(sorted({s.name.split(".")[0].split("-standard")[0] for s in catalog.shapes_for(cloud)}))
            self.add(f"{path}.instanceType", f"'{pool.instance_type}' is not a {cloud} GPU type in the catalog (families: {known})")
            return
        for key in pool.labels:
            domain = key.split("/", 1)[0] if "/" in key else ""
            if key in (POOL_LABEL, "nvidia.com/gpu.present", "nvidia.com/gpu.product", DEVICE_PLUGIN_CONFIG_LABEL):
                self.add(f"{path}.labels", f"'{key}' is set by this project or by GPU Feature Discovery; choose another key")
            elif any(domain == d or domain.endswith("." + d) for d in ("kubernetes.io", "k8s.io", "karpenter.sh", "cloud.google.com", "eks.amazonaws.com")):
                self.add(f"{path}.labels", f"'{key}': the {domain} prefix is reserved (kubelet, EKS, GKE or Karpenter own it)")
        if cloud == "gke":
            if pool.accelerator and pool.accelerator != shape.accelerator:
                self.add(
                    f"{path}.accelerator",
                    f"{shape.name} carries {shape.accelerator}, not {pool.accelerator}",
                )
            for field, alias in (("ami_type", "amiType"), ("spot_instance_types", "spotInstanceTypes")):
                if field in explicit:
                    self.add(f"{path}.{alias}", "EKS only")
            if pool.taint and pool.taint.key == "nvidia.com/gpu" and (pool.taint.value, pool.taint.effect) != ("present", "NoSchedule"):
                self.add(f"{path}.taint", "GKE taints GPU nodes nvidia.com/gpu=present:NoSchedule itself; another value or effect for that key conflicts")
        if cloud == "eks":
            if pool.accelerator:
                self.add(f"{path}.accelerator", "GKE only (EKS instance types imply their GPUs)")
            if pool.spot_instance_types and pool.capacity_type != "spot":
                self.add(f"{path}.spotInstanceTypes", "only used with capacityType: spot")
            for j, name in enumerate(pool.spot_instance_types):
                other = catalog.lookup("eks", name)
                if other is None:
                    self.add(f"{path}.spotInstanceTypes[{j}]", f"'{name}' is not an EKS GPU type in the catalog")
                elif (other.gpu_count, other.gpu_memory_gib) != (shape.gpu_count, shape.gpu_memory_gib):
                    self.add(
                        f"{path}.spotInstanceTypes[{j}]",
                        f"{name} has {other.gpu_count}x{other.gpu_memory_gib} GiB GPUs, "
                        f"{shape.name} has {shape.gpu_count}x{shape.gpu_memory_gib} GiB: pods sized for one would not fit the other",
                    )
                elif other.vcpus < shape.vcpus or other.memory_gib < shape.memory_gib:
                    self.add(
                        f"{path}.spotInstanceTypes[{j}]",
                        f"{name} has {other.vcpus} vCPUs / {other.memory_gib} GiB, less than the {shape.vcpus} / "
                        f"{shape.memory_gib} GiB of {shape.name} that pods on this pool are sized for",
                    )
            op = self.config.addons.gpu_operator
            if pool.ami_type.startswith("BOTTLEROCKET"):
                if op.enabled:
                    self.add(
                        f"{path}.amiType",
                        "Bottlerocket NVIDIA variants run their own driver, toolkit and device plugin and are not a "
                        "GPU Operator platform; use AL2023_x86_64_NVIDIA or set addons.gpuOperator.enabled false",
                    )
                if pool.gpu_sharing.strategy != "none":
                    self.add(f"{path}.gpuSharing", "sharing is configured through the GPU Operator's device plugin, which Bottlerocket nodes do not run")
            c = self.config.cluster
            karpenter = c.eks.karpenter if c.eks and c.eks.karpenter.enabled else None
            extended = karpenter is not None and bool(karpenter_instance_types(karpenter, pool))
            desired = pool.desired_nodes if pool.desired_nodes is not None else pool.min_nodes
            users = [f"models[{k}]" for k, m in enumerate(self.config.models) if m.node_pool == pool.name and m.autoscaling.min_replicas > 0]
            users += [f"rayServices[{k}]" for k, r in enumerate(self.config.ray_services) if r.worker_pool == pool.name and r.min_workers > 0]
            if desired == 0 and users and not extended:
                self.add(
                    f"{path}.desiredNodes",
                    f"the node group starts with 0 nodes and nothing adds any (no Cluster Autoscaler is installed and no "
                    f"Karpenter NodePool extends pool '{pool.name}'), but {', '.join(users)} need GPUs there: set "
                    f"minNodes/desiredNodes or enable cluster.eks.karpenter with a fitting instance type",
                )

    # -- models ----------------------------------------------------------------------
    def resolve_architecture(self, path: str, src: ModelSource) -> ModelArchitecture | None:
        if src.model_spec is not None:
            if src.architecture:
                self.add(f"{path}.architecture", "set architecture or modelSpec, not both")
            s = src.model_spec
            return ModelArchitecture(
                s.params_billion, s.layers, s.attention_heads, s.kv_heads, s.head_dim,
                s.hidden_size, s.vocab_size, s.max_context, s.tied_embeddings,
            )
        key = src.architecture or architecture_for_repository(src.model)
        if key is None:
            self.add(
                f"{path}.architecture",
                f"unknown model '{src.model}': set architecture ({', '.join(sorted(ARCHITECTURES))}) or modelSpec",
            )
            return None
        if key not in ARCHITECTURES:
            self.add(f"{path}.architecture", f"'{key}' is not one of {', '.join(sorted(ARCHITECTURES))}")
            return None
        return ARCHITECTURES[key]

    def plan_model(
        self, path: str, name: str, kind: str, src: ModelSource, pool: NodePoolFacts,
        gpus_available: int, min_replicas: int, max_replicas: int,
    ) -> ModelPlan | None:
        arch = self.resolve_architecture(path, src)
        if arch is None:
            return None
        if src.requires_hf_token and "hfToken" not in self.secrets:
            self.add(f"{path}.requiresHfToken", "gated model: set the secret hfToken (pulumi config set --secret hfToken)")
        max_len = src.max_model_len or min(arch.max_context, DEFAULT_MAX_MODEL_LEN)
        if max_len > arch.max_context:
            self.add(f"{path}.maxModelLen", f"{max_len} exceeds the model's context of {arch.max_context} tokens")
            return None
        util = src.gpu_memory_utilization
        memory = pool.gpu_memory_gib
        if pool.clients_per_gpu > 1:
            # vLLM's fraction is of the whole GPU; capacity is computed on this pod's share
            memory = pool.gpu_memory_gib
        where = f"{pool.instance_type or pool.name}"

        def estimate(tp: int) -> CapacityEstimate:
            return estimate_capacity(
                arch, gpu_memory_gib=memory, tensor_parallel_size=tp, gpu_memory_utilization=util,
                max_model_len=max_len, dtype=src.dtype, quantization=src.quantization,
                kv_cache_dtype=src.kv_cache_dtype,
            )

        candidates = [d for d in range(1, gpus_available + 1) if gpus_available % d == 0 and arch.attention_heads % d == 0]
        tp = src.tensor_parallel_size
        if pool.clients_per_gpu > 1 and (tp or 1) > 1:
            self.add(f"{path}.tensorParallelSize", f"pool '{pool.name}' shares its GPUs ({pool.sharing_strategy}); tensor parallelism needs whole GPUs")
            return None
        if tp is None:
            fitting = [d for d in candidates if estimate(d).fits]
            if not fitting:
                cap = estimate(max(candidates))
                self.add(
                    f"{path}.maxModelLen" if cap.weights_per_gpu_gib < cap.budget_per_gpu_gib else f"{path}.model",
                    f"does not fit {where} even on all {max(candidates)} GPUs: weights {cap.weights_gib:.1f} GiB, "
                    f"KV cache holds {cap.kv_cache_tokens} tokens < maxModelLen {max_len} "
                    f"(quantize, lower maxModelLen, or use a larger pool)",
                )
                return None
            tp = fitting[0]
        else:
            if tp > gpus_available:
                self.add(f"{path}.tensorParallelSize", f"{tp} exceeds the {gpus_available} GPUs of one {where} node")
                return None
            if gpus_available % tp:
                self.add(
                    f"{path}.tensorParallelSize",
                    f"must divide the {gpus_available} GPUs of {where} so replicas pack whole nodes (got {tp})",
                )
                return None
            if arch.attention_heads % tp:
                self.add(f"{path}.tensorParallelSize", f"must divide the model's {arch.attention_heads} attention heads (got {tp})")
                return None
            cap = estimate(tp)
            if not cap.fits:
                self.add(
                    f"{path}.tensorParallelSize",
                    f"{tp} x {memory:g} GiB at gpuMemoryUtilization {util} cannot hold one {max_len}-token "
                    f"sequence: weights {cap.weights_gib:.1f} GiB leave KV cache for {cap.kv_cache_tokens} tokens",
                )
                return None
        cap = estimate(tp)
        price = pool.hourly_usd
        gpus_per_replica = tp
        return ModelPlan(
            name=name, path=path, kind=kind, architecture=arch, pool=pool, tensor_parallel_size=tp,
            max_model_len=max_len, capacity=cap, min_replicas=min_replicas, max_replicas=max_replicas,
            hourly_cost_min=None if price is None else hourly_cost(min_replicas, gpus_per_replica, pool.gpus_per_node, price),
            hourly_cost_max=None if price is None else hourly_cost(max_replicas, gpus_per_replica, pool.gpus_per_node, price),
        )

    def check_models(self) -> None:
        names = [m.name for m in self.config.models] + [r.name for r in self.config.ray_services]
        for i, m in enumerate(self.config.models):
            path = f"models[{i}]"
            if names.count(m.name) > 1:
                self.add(f"{path}.name", f"duplicate serving name '{m.name}' (vLLM models and rayServices share a namespace)")
            pool = self.pools.get(m.node_pool)
            if pool is None:
                if self.pools or not any(x.path.startswith("cluster.nodePools") for x in self.issues):
                    self.add(f"{path}.nodePool", f"no node pool '{m.node_pool}' (pools: {', '.join(sorted(self.pools)) or 'none'})")
                continue
            if pool.clients_per_gpu > 1 and m.gpu_memory_utilization * pool.clients_per_gpu > 1.0:
                self.add(
                    f"{path}.gpuMemoryUtilization",
                    f"pool '{pool.name}' shares each GPU between {pool.clients_per_gpu} pods: "
                    f"{m.gpu_memory_utilization} x {pool.clients_per_gpu} exceeds the GPU "
                    f"(vLLM's fraction is of the whole GPU; use at most {1 / pool.clients_per_gpu:.2f})",
                )
                continue
            a = m.autoscaling
            plan = self.plan_model(path, m.name, "vllm", m, pool, pool.gpus_per_node, a.min_replicas, a.max_replicas)
            if plan:
                self.model_plans[m.name] = plan
                self.check_cache(path, m, plan)
                self.check_vllm(path, m, plan)
            self.check_autoscaling(path, m)
        served = [m.served_name for m in self.config.models]
        for i, m in enumerate(self.config.models):
            if served.count(m.served_name) > 1 and served.index(m.served_name) != i:
                self.add(
                    f"models[{i}].servedModelName",
                    f"'{m.served_name}' is already served by another model: clients, metrics (model_name) and alerts could not tell them apart",
                )

    def check_vllm(self, path: str, m: VllmModelConfig, plan: ModelPlan) -> None:
        """What the pinned vLLM would refuse at startup, or what could never schedule."""
        if m.max_num_batched_tokens is not None:
            if not m.enable_chunked_prefill and m.max_num_batched_tokens < plan.max_model_len:
                self.add(
                    f"{path}.maxNumBatchedTokens",
                    f"{m.max_num_batched_tokens} is below maxModelLen {plan.max_model_len}: without chunked prefill "
                    f"vLLM must fit a whole prompt in one batch (enable chunked prefill or raise it)",
                )
            if m.max_num_seqs is not None and m.max_num_batched_tokens < m.max_num_seqs:
                self.add(
                    f"{path}.maxNumBatchedTokens",
                    f"{m.max_num_batched_tokens} is below maxNumSeqs {m.max_num_seqs}: vLLM needs at least one token per running sequence",
                )
        if m.pre_stop_sleep_seconds + 60 > m.termination_grace_period_seconds:
            self.add(
                f"{path}.preStopSleepSeconds",
                f"{m.pre_stop_sleep_seconds}s of the {m.termination_grace_period_seconds}s grace period leaves in-flight "
                f"generations less than 60s after SIGTERM (raise terminationGracePeriodSeconds)",
            )
        cpu_share, mem_share = node_share(plan.pool, plan.tensor_parallel_size)
        where = plan.pool.instance_type or plan.pool.name
        if m.resources.cpu is not None and cpu_share is not None and m.resources.cpu > cpu_share:
            self.add(
                f"{path}.resources.cpu",
                f"{m.resources.cpu:g} exceeds the {cpu_share:.1f} vCPUs that {plan.tensor_parallel_size} of the "
                f"{plan.pool.gpus_per_node * plan.pool.clients_per_gpu} GPU slots of a {where} node leave a replica",
            )
        if (
            plan.tensor_parallel_size > 1
            and m.resources.memory_gib is not None
            and m.resources.memory_gib <= m.shm_size_gib
        ):
            self.add(
                f"{path}.resources.memoryGib",
                f"{m.resources.memory_gib} GiB leaves nothing beside the {m.shm_size_gib} GiB /dev/shm "
                f"(shmSizeGib), which is memory charged to the same container",
            )
        if m.resources.memory_gib is not None and mem_share is not None and m.resources.memory_gib > mem_share:
            self.add(
                f"{path}.resources.memoryGib",
                f"{m.resources.memory_gib} GiB exceeds the {mem_share:.1f} GiB that {plan.tensor_parallel_size} of the "
                f"{plan.pool.gpus_per_node * plan.pool.clients_per_gpu} GPU slots of a {where} node leave a replica",
            )

    def check_cache(self, path: str, m: VllmModelConfig, plan: ModelPlan) -> None:
        c = self.config.cluster
        if m.cache.size_gib is not None and m.cache.size_gib < plan.capacity.weights_gib:
            self.add(f"{path}.cache.sizeGib", f"{m.cache.size_gib} GiB cannot hold the {plan.capacity.weights_gib:.0f} GiB of weights")
        if m.cache.access_mode == "ReadWriteMany" and not m.cache.storage_class:
            rwx = (
                (c.eks is not None and c.eks.efs_model_cache)
                or (c.gke is not None and c.gke.filestore_model_cache)
                or (c.existing is not None and c.existing.rwx_storage_class)
            )
            if not rwx:
                self.add(
                    f"{path}.cache.accessMode",
                    "ReadWriteMany needs a shared file system: cluster.eks.efsModelCache, "
                    "cluster.gke.filestoreModelCache, cluster.existing.rwxStorageClass or cache.storageClass",
                )

    def check_autoscaling(self, path: str, m: VllmModelConfig) -> None:
        addons = self.config.addons
        a = m.autoscaling
        if a.min_replicas == a.max_replicas:
            return  # fixed size: nothing scales, no autoscaler needed
        if addons.monitoring.mode == "none":
            self.add(f"{path}.autoscaling", "scales on vLLM metrics, which need Prometheus (addons.monitoring.mode is 'none')")
        if a.scale_to_zero and m.ingress is None:
            self.add(
                f"{path}.autoscaling.scaleToZero",
                "needs ingress: with no pod running, vLLM exports no queue metric, so the wake-up signal is the "
                "ingress controller's request count",
            )
        if not addons.keda.available:
            if a.ttft_p95_target_seconds is not None:
                self.add(
                    f"{path}.autoscaling.ttftP95TargetSeconds",
                    "needs KEDA (addons.keda.enabled or alreadyInstalled): the HPA through prometheus-adapter scales on queue depth and KV cache only",
                )
            if a.scale_to_zero:
                self.add(f"{path}.autoscaling.scaleToZero", "needs KEDA (addons.keda.enabled or alreadyInstalled); an HPA cannot scale to zero")
            if not addons.prometheus_adapter.enabled:
                self.add(
                    f"{path}.autoscaling",
                    "needs KEDA (addons.keda.enabled / alreadyInstalled) or addons.prometheusAdapter.enabled for an HPA",
                )

    # -- ray ---------------------------------------------------------------------------
    def check_ray_services(self) -> None:
        names = [m.name for m in self.config.models] + [r.name for r in self.config.ray_services]
        for i, svc in enumerate(self.config.ray_services):
            path = f"rayServices[{i}]"
            if names.count(svc.name) > 1 and svc.name not in {m.name for m in self.config.models}:
                self.add(f"{path}.name", f"duplicate serving name '{svc.name}'")
            pool = self.pools.get(svc.worker_pool)
            if pool is None:
                self.add(f"{path}.workerPool", f"no node pool '{svc.worker_pool}' (pools: {', '.join(sorted(self.pools)) or 'none'})")
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
                self.add(f"{path}.gpusPerWorker", f"{gpus} exceeds the {pool.gpus_per_node} GPUs of one {pool.instance_type or pool.name} node")
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
                plan = self.plan_model(mpath, model.model_id, "ray", model, pool, gpus, model.min_replicas, model.max_replicas)
                if plan is None:
                    continue
                self.ray_plans[f"{svc.name}/{model.model_id}"] = plan
                min_gpus += plan.tensor_parallel_size * model.min_replicas
                if plan.tensor_parallel_size * model.max_replicas > capacity:
                    self.add(
                        f"{mpath}.maxReplicas",
                        f"{model.max_replicas} replicas x {plan.tensor_parallel_size} GPUs can never be placed on "
                        f"{svc.max_workers} workers x {gpus} GPUs (raise maxWorkers or lower maxReplicas)",
                    )
            if min_gpus > capacity:
                self.add(
                    f"{path}.maxWorkers",
                    f"the models' minimum replicas need {min_gpus} GPUs, but {svc.max_workers} workers x {gpus} GPUs give {capacity}",
                )
            elif svc.upgrade_strategy == "NewCluster":
                # a NewCluster upgrade runs a second, equal cluster until it is ready: without
                # room for it the upgrade stalls (the old cluster keeps serving the old config)
                own = max(svc.min_workers, -(-min_gpus // gpus)) * gpus
                others = sum(p.tensor_parallel_size * p.min_replicas for p in self.model_plans.values() if p.pool.name == pool.name)
                pool_gpus = pool.max_nodes * pool.gpus_per_node
                if 2 * own + others > pool_gpus:
                    self.add(
                        f"{path}.upgradeStrategy",
                        f"NewCluster upgrades start a second cluster beside the running one: 2 x {own} GPUs"
                        + (f" + {others} for other models" if others else "")
                        + f" exceed the {pool_gpus} GPUs of pool '{pool.name}' (maxNodes {pool.max_nodes}); "
                        "raise maxNodes or use NewClusterWithIncrementalUpgrade",
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
            self.add(f"{path}.acceleratorType", f"'{svc.accelerator_type}' does not match the {pool.gpu_model} GPUs of pool '{pool.name}' ({derived})")

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
                self.add(f"{path}.{alias}", f"required: the {what} of pool '{pool.name}' nodes are not known (existing cluster)")
            elif value is None and share is not None and share < (1 if field == "worker_cpu" else 8):
                self.add(f"{path}.{alias}", f"a {gpus}-GPU worker's share of a {where} node is only {share} {what}: set it explicitly")
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

    # -- add-ons -------------------------------------------------------------------------
    def check_addons(self) -> None:
        addons = self.config.addons
        kr = addons.kuberay
        if kr.enabled and kr.already_installed:
            self.add("addons.kuberay", "set either enabled (we install KubeRay) or alreadyInstalled (use the cluster's)")
        if self.config.ray_services:
            if kr.enabled is False and not kr.already_installed:
                self.add("addons.kuberay.enabled", "rayServices need the KubeRay operator (enable it or set alreadyInstalled)")
        self.check_gpu_operator()
        if self.config.namespace in ADDON_NAMESPACES:
            self.add("namespace", f"'{self.config.namespace}' is an add-on's namespace; serve the models from their own")
        mon = addons.monitoring
        if mon.mode == "existing" and not mon.selector_labels:
            self.add(
                "addons.monitoring.selectorLabels",
                "required with mode 'existing': the labels your Prometheus selects ServiceMonitors, PodMonitors "
                "and PrometheusRules by (e.g. {release: prometheus}); without them our monitors are silently ignored",
            )
        if mon.mode == "install" and mon.namespace in {self.config.namespace, *ADDON_NAMESPACES}:
            self.add("addons.monitoring.namespace", f"'{mon.namespace}' is already used by {'the models' if mon.namespace == self.config.namespace else 'another add-on'}; kube-prometheus-stack needs its own")
        if mon.mode == "existing" and mon.prometheus_url:
            host = (urlsplit(mon.prometheus_url).hostname or "").split(".")
            if len(host) >= 3 and host[2] == "svc" and host[1] != mon.namespace:
                self.add(
                    "addons.monitoring.namespace",
                    f"prometheusUrl points into namespace '{host[1]}', not '{mon.namespace}': the models' NetworkPolicy would block its scrapes",
                )
        for key, alias in (("selector_labels", "selectorLabels"), ("dashboard_labels", "dashboardLabels")):
            if mon.mode != "existing" and getattr(mon, key):
                self.add(f"addons.monitoring.{alias}", f"only used with mode 'existing' (mode is '{mon.mode}')")
        if mon.mode == "install" and mon.grafana.enabled and "grafanaAdminPassword" not in self.secrets:
            self.add(
                "grafanaAdminPassword",
                "monitoring installs Grafana: set its admin password with pulumi config set --secret grafanaAdminPassword",
            )
        if addons.prometheus_adapter.enabled and mon.mode == "none":
            self.add("addons.prometheusAdapter.enabled", "reads metrics from Prometheus, but addons.monitoring.mode is 'none'")
        if addons.gpu_operator.mig_strategy != "none":
            for name, pool in self.pools.items():
                if pool.mig_capable:
                    break
            else:
                self.add("addons.gpuOperator.migStrategy", "no node pool has MIG-capable GPUs (A100/H100)")

    def check_gpu_operator(self) -> None:
        """Driver/toolkit settings against what the node image or GKE already installs."""
        op = self.config.addons.gpu_operator
        c = self.config.cluster
        gke_driver = c.gke.gpu_driver if c.gke else None
        if c.cloud == "gke" and gke_driver == "operator":
            if not op.enabled:
                self.add("cluster.gke.gpuDriver", "'operator' leaves the nodes without a driver for the GPU Operator to install, but addons.gpuOperator.enabled is false")
            elif op.driver == "disabled":
                self.add("addons.gpuOperator.driver", "cluster.gke.gpuDriver 'operator' turns GKE's driver installation off; the GPU Operator must install it (auto or enabled)")
        if not op.enabled:
            return
        if op.driver == "enabled" and c.cloud == "eks":
            self.add("addons.gpuOperator.driver", "the EKS NVIDIA AMIs (AL2023/Bottlerocket) ship the driver; a second, containerized driver conflicts (use auto or disabled)")
        if op.driver == "enabled" and c.cloud == "gke" and gke_driver == "gke":
            self.add("addons.gpuOperator.driver", "GKE installs the driver (cluster.gke.gpuDriver 'gke'); set cluster.gke.gpuDriver 'operator' to let the GPU Operator install it")
        if c.cloud == "existing":
            for i, p in enumerate(c.node_pools):
                facts = self.pools.get(p.name)
                if facts is not None and facts.sharing_strategy != "none" and not facts.device_plugin_config:
                    self.add(
                        f"cluster.nodePools[{i}].nodeSelector",
                        f"gpuSharing needs the nodes labelled {DEVICE_PLUGIN_CONFIG_LABEL}=<name> (the device plugin picks "
                        f"its sharing config by it); label them and add the label here",
                    )

    # -- capacity of pools ---------------------------------------------------------------
    def check_gpu_budget(self) -> None:
        """Models at their minimum replicas must fit the GPUs their pool can ever have."""
        need: dict[str, int] = {}
        for plan in [*self.model_plans.values()]:
            need[plan.pool.name] = need.get(plan.pool.name, 0) + plan.tensor_parallel_size * plan.min_replicas
        for svc in self.config.ray_services:
            pool = self.pools.get(svc.worker_pool)
            if pool:
                need[pool.name] = need.get(pool.name, 0) + (svc.gpus_per_worker or pool.gpus_per_node) * svc.min_workers
        for i, p in enumerate(self.config.cluster.node_pools):
            facts = self.pools.get(p.name)
            if facts is None or p.name not in need:
                continue
            have = facts.max_nodes * facts.gpus_per_node * facts.clients_per_gpu
            if need[p.name] > have:
                self.add(
                    f"cluster.nodePools[{i}].maxNodes",
                    f"pool '{p.name}' offers {have} GPUs at maxNodes {facts.max_nodes}, but the minimum replicas scheduled on it need {need[p.name]}",
                )
        quota = self.config.security.gpu_quota
        if quota is not None:
            total = sum(need.values())
            if total > quota:
                self.add("security.gpuQuota", f"{quota} GPUs is less than the {total} the minimum replicas need")
