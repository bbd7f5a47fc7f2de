"""vLLM model deployments: one entry per served model (like the vLLM production-stack's modelSpec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .architectures import dense_params_billion, read_config_json
from .base import ConfigModel, DnsLabel
from .canary import CanaryConfig
from .facts import NodePoolFacts
from .lora import LoraConfig

DEFAULT_MAX_MODEL_LEN = 8192
"""maxModelLen when not set (capped at the model's context): longer contexts reserve KV cache
that fewer concurrent requests can use (seeds 001, 004)."""

Quantization = Literal[
    "awq",
    "fp8",
    "fbgemm_fp8",
    "fp_quant",
    "modelopt",
    "modelopt_fp4",
    "modelopt_mxfp8",
    "modelopt_mixed",
    "gguf",
    "gptq_marlin",
    "awq_marlin",
    "gptq",
    "humming",
    "compressed-tensors",
    "bitsandbytes",
    "experts_int8",
    "quark",
    "moe_wna16",
    "torchao",
    "inc",
    "mxfp4",
    "gpt_oss_mxfp4",
    "deepseek_v4_fp8",
    "cpu_awq",
    "online",
    "fp8_per_tensor",
    "fp8_per_block",
    "int8_per_channel_weight_only",
    "mxfp8",
]
"""Every ``--quantization`` the pinned vLLM accepts: ``QuantizationMethods`` in
vllm/model_executor/layers/quantization/__init__.py (registry-era main; the v0.31.0 tag itself was
not in the stored snapshots). A checkpoint's own method is detected from the architectures table."""
Dtype = Literal["auto", "bfloat16", "float16"]

MANAGED_VLLM_FLAGS = frozenset(
    {
        "--model",
        "--served-model-name",
        "--tensor-parallel-size",
        "--max-model-len",
        "--gpu-memory-utilization",
        "--max-num-seqs",
        "--max-num-batched-tokens",
        "--quantization",
        "--dtype",
        "--kv-cache-dtype",
        "--enable-prefix-caching",
        "--no-enable-prefix-caching",
        "--enable-chunked-prefill",
        "--no-enable-chunked-prefill",
        "--port",
        "--host",
        "--download-dir",
        "--revision",
        "--api-key",
        "--enable-lora",
        "--max-loras",
        "--max-lora-rank",
        "--max-cpu-loras",
        "--lora-modules",
    }
)
"""Flags derived from typed fields; ``extraArgs`` may not set them a second time."""

FORBIDDEN_EXTRA_ARGS = {
    "-tp": "is --tensor-parallel-size, set from tensorParallelSize",
    "-q": "is --quantization, set from quantization",
    "--pipeline-parallel-size": "changes the GPUs per replica; the pod requests exactly tensorParallelSize GPUs",
    "-pp": "is --pipeline-parallel-size: changes the GPUs per replica; the pod requests exactly tensorParallelSize GPUs",
    "--data-parallel-size": "changes the GPUs per replica; scale with autoscaling.maxReplicas instead",
    "-dp": "is --data-parallel-size: changes the GPUs per replica; scale with autoscaling.maxReplicas instead",
    "--disable-log-stats": "turns off the Prometheus metrics that autoscaling and alerts read",
    "--ssl-keyfile": "probes, scraping and the Service speak plain HTTP; terminate TLS at the ingress or gateway",
    "--ssl-certfile": "probes, scraping and the Service speak plain HTTP; terminate TLS at the ingress or gateway",
}
"""Flags ``extraArgs`` may not carry (vLLM 0.31 spellings and short aliases), with the reason."""

NODE_SHARE_FRACTION = 0.8
"""Part of a GPU node's vCPUs and memory that serving pods may request: kubelet/system
reservations and the per-node daemons (device plugin, DCGM exporter, CNI, CSI, node
exporter) take the rest (10-20 % on the EKS/GKE GPU shapes of the catalog)."""


def node_share(pool: NodePoolFacts, gpus: int) -> tuple[float | None, float | None]:
    """vCPUs and GiB of memory a pod holding ``gpus`` GPUs of ``pool`` may request so that
    replicas still pack whole nodes (``None`` where the pool's node size is unknown)."""
    slots = pool.gpus_per_node * max(1, pool.clients_per_gpu)
    cpu = None if pool.vcpus is None else pool.vcpus * NODE_SHARE_FRACTION * gpus / slots
    mem = None if pool.memory_gib is None else pool.memory_gib * NODE_SHARE_FRACTION * gpus / slots
    return cpu, mem


SPOT_NOTICE_SECONDS = {"gke": 15, "eks": 120}
"""Time a pod has once its spot node is reclaimed. GKE: graceful node shutdown gives
non-system pods at most 15 s of the 30 s preemption notice; "a terminationGracePeriodSeconds
above 15 seconds has no effect" (GKE docs, https://cloud.google.com/kubernetes-engine/docs/concepts/spot-vms
and how-to/preemptible-vms, "Termination and graceful shutdown"). EKS: the EC2 Spot two-minute interruption notice, which Karpenter's
interruption queue turns into a node drain (EC2 docs "Spot Instance interruption notices";
Karpenter docs "Interruption")."""
SPOT_PRE_STOP_SECONDS = 5
"""preStop sleep that still leaves vLLM most of GKE's 15 s to finish after SIGTERM."""


def pool_zone_count(cluster, pool_name: str) -> int | None:
    """Zones a cloud pool's nodes (and so its zonal disks) may land in; None: the whole region
    (a GKE regional pool / an EKS node group over every VPC subnet) or unknown."""
    for pool in cluster.node_pools:
        if pool.name == pool_name:
            return len(pool.zones) or None
    return None


class ModelSpec(ConfigModel):
    """Architecture of a model that is not in config/architectures.py: the fields of its
    config.json, or ``configJson``, the path of a local copy of that file (fields given beside
    it override what it says)."""

    config_json: str | None = Field(
        default=None, description="path of the model's Hugging Face config.json (relative: to the project directory)"
    )
    params_billion: float | None = Field(
        default=None, gt=0, description="default: counted from the shapes (dense decoder)"
    )
    layers: int = Field(ge=1, description="num_hidden_layers")
    attention_heads: int = Field(ge=1, description="num_attention_heads")
    kv_heads: int = Field(ge=1, description="num_key_value_heads")
    head_dim: int = Field(ge=1, description="head_dim (hidden_size / num_attention_heads)")
    hidden_size: int = Field(ge=1)
    intermediate_size: int = Field(ge=1, description="MLP width; sizes vLLM's activation peak")
    vocab_size: int = Field(ge=1)
    max_context: int = Field(ge=1, description="max_position_embeddings")
    tied_embeddings: bool = Field(default=False, description="tie_word_embeddings")
    quantization: str | None = Field(default=None, description="quantization_config.quant_method of the checkpoint")

    @model_validator(mode="before")
    @classmethod
    def _from_config_json(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("configJson", data.get("config_json")):
            path = data.get("configJson", data.get("config_json"))
            try:
                found = read_config_json(str(path))
            except (OSError, ValueError) as e:
                raise ValueError(f"configJson: cannot read {path}: {e}") from None
            aliases = {
                "kv_heads": "kvHeads",
                "attention_heads": "attentionHeads",
                "head_dim": "headDim",
                "hidden_size": "hiddenSize",
                "intermediate_size": "intermediateSize",
                "vocab_size": "vocabSize",
                "max_context": "maxContext",
                "tied_embeddings": "tiedEmbeddings",
            }
            return {**{aliases.get(k, k): v for k, v in found.items()}, **data}
        return data

    @property
    def params(self) -> float:
        if self.params_billion is not None:
            return self.params_billion
        return dense_params_billion(
            layers=self.layers,
            hidden_size=self.hidden_size,
            attention_heads=self.attention_heads,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
            intermediate_size=self.intermediate_size,
            vocab_size=self.vocab_size,
            tied_embeddings=self.tied_embeddings,
        )


class TypicalRequest(ConfigModel):
    """The request the plan counts concurrent sequences for (besides one at full maxModelLen)."""

    input_tokens: int = Field(default=2048, ge=1)
    output_tokens: int = Field(default=512, ge=1)


class ModelSource(ConfigModel):
    """What to load: shared by vLLM Deployments and Ray Serve LLM models."""

    model: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="Hugging Face repository id")
    revision: str | None = Field(default=None, description="commit or tag of the repository (pin it in prod)")
    architecture: str | None = Field(default=None, description="key of config/architectures.py; inferred from model")
    model_spec: ModelSpec | None = None
    requires_hf_token: bool = Field(default=False, description="gated repository: the hfToken secret must be set")
    tensor_parallel_size: int | None = Field(
        default=None, ge=1, le=16, description="default: the fewest GPUs of one node that hold the model"
    )
    max_model_len: int | None = Field(default=None, ge=256, description="default: min(model context, 8192)")
    gpu_memory_utilization: float = Field(
        default=0.90, ge=0.5, le=0.95, description="0.85-0.90 leaves headroom for bursts; 0.95 risks OOM"
    )
    dtype: Dtype = "auto"
    quantization: Quantization | None = None
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"
    typical_request: TypicalRequest = TypicalRequest()


FallbackBehavior = Literal["static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"]
"""KEDA v2.20 ``spec.fallback.behavior`` (keda.sh ScaledObject CRD enum, less ``scalingModifiers``,
which needs a scaling formula we do not use)."""


class AutoscalingFallbackConfig(ConfigModel):
    """Replicas KEDA holds when Prometheus is unreachable (ScaledObject ``spec.fallback``).

    After ``failureThreshold`` failed polls in a row KEDA reports the metric that yields
    ``replicas`` (``static``) or the current replica count compared with it
    (``currentReplicas*``; KEDA pkg/fallback doFallback). The default,
    ``currentReplicasIfHigher`` with ``replicas`` = ``minReplicas``, never scales a serving model
    down during an outage and brings it back to its minimum if it was below.
    """

    failure_threshold: int = Field(
        default=3, ge=1, description="failed polls in a row before falling back (3 x pollingInterval)"
    )
    behavior: FallbackBehavior = "currentReplicasIfHigher"
    replicas: int | None = Field(default=None, ge=0, le=100, description="default: minReplicas")


class AutoscalingConfig(ConfigModel):
    """Replica autoscaling on inference signals, never CPU."""

    min_replicas: int = Field(default=1, ge=0, le=100)
    max_replicas: int = Field(default=2, ge=1, le=100)
    queue_depth_target: float = Field(
        default=5, gt=0, description="waiting requests per replica (vllm:num_requests_waiting); seeds: 3-5"
    )
    kv_cache_usage_target: float | None = Field(
        default=None, gt=0, le=1, description="average KV-cache usage per replica, e.g. 0.85"
    )
    ttft_p95_target_seconds: float | None = Field(default=None, gt=0, description="p95 time to first token")
    scale_to_zero: bool = Field(default=False, description="allow 0 replicas (cold starts take minutes)")
    activation_queue_depth: float = Field(default=0, ge=0, description="queue depth that wakes a scaled-to-zero model")
    scale_up_pods: int = Field(default=2, ge=1, description="pods added per scale-up period")
    scale_up_period_seconds: int = Field(default=60, ge=15)
    scale_down_stabilization_seconds: int = Field(
        default=300, ge=0, description="GKE guidance: 300 s so a new replica is warm before scale-down"
    )
    polling_interval_seconds: int = Field(default=15, ge=5)
    fallback: AutoscalingFallbackConfig = Field(default_factory=AutoscalingFallbackConfig)

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) is greater than maxReplicas ({self.max_replicas})")
        if self.fallback.replicas is not None and not self.min_replicas <= self.fallback.replicas <= self.max_replicas:
            raise ValueError(
                f"fallback.replicas ({self.fallback.replicas}) is outside minReplicas..maxReplicas "
                f"({self.min_replicas}..{self.max_replicas})"
            )
        if self.min_replicas == 0 and not self.scale_to_zero:
            raise ValueError("minReplicas 0 needs scaleToZero: true (cold starts take minutes)")
        if self.scale_to_zero and self.min_replicas != 0:
            raise ValueError("scaleToZero needs minReplicas: 0")
        return self


class ResourcesConfig(ConfigModel):
    """Overrides for the CPU and memory sized from the model."""

    cpu: float | None = Field(default=None, gt=0)
    memory_gib: int | None = Field(default=None, ge=8)


class CacheConfig(ConfigModel):
    size_gib: int | None = Field(default=None, ge=10, description="default: weights x 1.25 + 10 GiB")
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"
    storage_class: str | None = None


class IngressConfig(ConfigModel):
    """Opt-in Ingress (ingress-nginx annotations) instead of ``edge.gateway``; the controller is not
    installed by the stack and its class must be named."""

    host: str
    class_name: str = Field(description="IngressClass of an ingress-nginx controller the cluster already runs")
    path: str = "/v1"
    tls_secret_name: str | None = None
    timeout_seconds: int = Field(default=600, ge=30, description="proxy read/send timeout for long generations")


class HttpRouteConfig(ConfigModel):
    gateway_name: str
    gateway_namespace: str
    hostnames: list[str] = Field(default_factory=list)
    path: str = "/v1"
    timeout_seconds: int = Field(default=600, ge=30)


def check_extra_args(args: list[str]) -> list[str]:
    """``extraArgs`` (and a canary's): flags only, none that a typed field sets or that breaks the pod."""
    for arg in args:
        flag = arg.split("=", 1)[0]
        if arg.startswith("--") and flag in MANAGED_VLLM_FLAGS:
            raise ValueError(f"'{flag}' is set from a typed field; use that field instead")
        if arg.startswith("-") and flag in FORBIDDEN_EXTRA_ARGS:
            raise ValueError(f"'{flag}' {FORBIDDEN_EXTRA_ARGS[flag]}")
    if args and not args[0].startswith("--"):
        raise ValueError(f"'{args[0]}' is not a flag (extra args start with '--')")
    return args


class VllmModelConfig(ModelSource):
    name: DnsLabel
    node_pool: str
    served_model_name: str | None = Field(default=None, description="default: name")
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=256)
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    extra_args: list[str] = Field(default_factory=list)
    autoscaling: AutoscalingConfig = AutoscalingConfig()
    resources: ResourcesConfig = ResourcesConfig()
    shm_size_gib: int = Field(default=8, ge=1, le=256, description="/dev/shm for NCCL when tensor parallel")
    termination_grace_period_seconds: int = Field(
        default=120, ge=120, le=600, description="lets in-flight generations finish; 600 for long streams"
    )
    pre_stop_sleep_seconds: int = Field(
        default=15, ge=5, le=120, description="endpoints drain before vLLM gets SIGTERM"
    )
    startup_timeout_seconds: int | None = Field(
        default=None,
        ge=300,
        le=3600,
        description="startup probe window; default: the plan's cold-start estimate of the engine start x "
        "coldStart.startupMargin (config/cold_start.py)",
    )
    cache: CacheConfig = CacheConfig()
    ingress: IngressConfig | None = None
    http_route: HttpRouteConfig | None = None
    lora: LoraConfig | None = Field(
        default=None, description="LoRA adapters served on top of the model (vLLM multi-LoRA)"
    )
    canary: CanaryConfig | None = None

    @field_validator("extra_args")
    @classmethod
    def _extra_args(cls, args: list[str]) -> list[str]:
        return check_extra_args(args)

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.name
