"""vLLM serving: one ``VllmService`` per model, several per stack for multi-model serving.

What a model gets (all derived from its ``VllmModelConfig``, its ``ModelPlan`` and the pool's
``NodePoolFacts``; nothing hard-coded per model):

* the workload: the pinned ``vllm/vllm-openai`` image running ``vllm serve`` with flags from
  typed config; ``nvidia.com/gpu`` request = limit = tensor-parallel size; CPU and memory
  sized from the weights and capped at the pod's share of a node; the pool's toleration and
  nodeSelector; ``/dev/shm`` in memory when tensor parallel (NCCL); startup/readiness/liveness
  probes on ``/health``; a preStop sleep so endpoints drain before SIGTERM.
* a model cache that survives restarts, filled by an init container (``hf download`` from the
  same image) so a restart never downloads again:

  - ``ReadWriteMany`` (EFS, Filestore, an RWX class): a **Deployment** and ONE shared PVC;
    every replica, on any node, reads the same copy and new replicas start without
    downloading.
  - ``ReadWriteOnce`` (block storage): one RWO volume cannot be mounted by pods on
    different nodes, so a Deployment sharing one PVC would leave every replica but the first
    Pending (and deadlock rolling updates across nodes). It becomes a **StatefulSet** with a
    ``volumeClaimTemplate``: each replica owns its cache, kept across restarts, rollouts,
    node replacement and scale-down/up (``whenScaled: Retain``); only a replica's first start
    downloads. ``podManagementPolicy: Parallel`` lets the autoscaler add replicas at once.

* with ``modelStore.enabled`` no download: the model argument is the pinned revision's
  ``s3://`` / ``gs://`` URI, loaded by the Run:ai streamer (``streamer_args``) under the model's
  ServiceAccount, which alone holds that revision's read access (model_store.py); the cache
  volume then keeps vLLM's compile caches (``coldStart.compileCache``, ``compile_cache_root``).
* the startup probe's window: ``startupTimeoutSeconds``, or the plan's cold-start estimate of
  the engine start x ``coldStart.startupMargin`` (config/cold_start.py).
* a ClusterIP Service on 8000 (``http``), a PodDisruptionBudget, topology spread across
  nodes and zones when it can have more than one replica, and an optional Ingress (nginx,
  long timeouts, no buffering, for streamed tokens) or Gateway API HTTPRoute (plus a
  NetworkPolicy letting the Gateway's namespace in, when it is not an ingress namespace).
* hardening: its own ServiceAccount without an API token; non-root (uid 10001, unless
  ``security.vllmRunAsRoot``), no privilege escalation, no capabilities, RuntimeDefault
  seccomp and a read-only root filesystem, with emptyDirs for what vLLM writes outside the
  cache (``$HOME``: torch.compile, Triton, FlashInfer and vLLM caches; ``/tmp``: Inductor,
  Prometheus multiprocess files, ZMQ sockets); the Hugging Face token as a file; pinned
  images pulled ``IfNotPresent``. The pods meet Pod Security "restricted" (not as root).
* state: with ``cluster.protect`` the shared cache PVC is kept on delete and a StatefulSet's
  per-replica caches are kept when it is deleted or replaced (``whenDeleted: Retain``).
* autoscaling on inference signals (``autoscaling.py``): a KEDA ScaledObject or a plain HPA
  through prometheus-adapter, never CPU; none when min == max replicas.
* monitoring (``observability.py``, ``dashboards.py``): a ServiceMonitor, a PrometheusRule with
  the model's alerts, and a Grafana dashboard ConfigMap.
"""

# pulumi_kubernetes types metadata/spec as its *Args TypedDicts; VllmService builds plain-dict manifests
# (validated against the pinned Kubernetes OpenAPI schema by tests/test_rendered_schemas.py). File-wide
# here because VllmService.__init__ is being rewritten by the args redesign of issue 16 (follow-up:
# per-line ignores, or typed Args, once it lands).
# pyright: reportArgumentType=false
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components import k8s as kube
from llm_infra.config import ModelPlan, versions
from llm_infra.config.cold_start import PROBE_PERIOD_SECONDS
from llm_infra.config.model_store import READER_LABEL as MODEL_STORE_READER_LABEL
from llm_infra.config.multinode import MultiNodeModelConfig
from llm_infra.config.pods import host_resources
from llm_infra.config.serving import ModelSource, VllmModelConfig

from . import autoscaling, dashboards, gke_gateway, lora, observability
from .context import ServingContext
from .namespace import hf_token_env, hf_token_mount, hf_token_volume

COMPONENT = "vllm"
CONTAINER = "vllm"
PORT = 8000
PORT_NAME = "http"
HEALTH_PATH = "/health"
CACHE_VOLUME = "model-cache"
CACHE_MOUNT = "/model-cache"
HF_HUB_CACHE = f"{CACHE_MOUNT}/hub"
"""``hf download --cache-dir`` and ``vllm serve --download-dir``: the same Hub cache layout."""
SHM_VOLUME = "dshm"
HOME_VOLUME = "home"
HOME_MOUNT = "/home/vllm"
TMP_VOLUME = "tmp"
TMP_MOUNT = "/tmp"
VLLM_UID = 10001
"""Non-root user (and group, fsGroup) of the vLLM containers: above the host's usual uid range.
It needs no /etc/passwd entry: ``USER`` and ``HOME`` are set, so ``getpass.getuser()``
(torch.compile's cache setup) and ``~`` resolve without one."""
VLLM_USER = "vllm"
GPU_RESOURCE = "nvidia.com/gpu"

DOWNLOAD_EXCLUDE = ("original/*",)
"""Meta's reference checkpoints (``original/consolidated.*.pth``) double a Llama download;
vLLM loads the Hugging Face safetensors and never reads them."""
DOWNLOAD_RESOURCES = {"cpu": "2", "memory": "4Gi"}
FIRST_DOWNLOAD_SECONDS = 1800
"""Allowance for a replica's first weight download (140 GB at ~100 MB/s) on top of the startup
window: the rollout's progress deadline and Pulumi's wait for readiness."""

READINESS_FAILURES = 3
LIVENESS_PERIOD_SECONDS = 15
LIVENESS_FAILURES = 4
"""/health answers as long as the engine process lives; a minute of failures is a dead engine."""


@dataclass(frozen=True)
class VllmServiceArgs:
    """One model: its spec, its plan on a node pool, and where it runs."""

    model: VllmModelConfig
    """The model spec: repository, vLLM engine settings, cache, autoscaling, routing."""
    plan: ModelPlan
    """What the spec implies on its node pool (``llm_infra.plan_model(model, pool)``, or
    ``StackPlan.models[name]``): tensor parallelism, max length, capacity, the pool's facts."""
    context: ServingContext
    """Namespace, add-ons (Prometheus, autoscaler), StorageClasses (``ServingContext.create``)."""
    image: str = versions.VLLM_IMAGE
    """vLLM image (a canary may run another one of ``versions.VLLM_IMAGES``)."""
    split_metrics: bool = False
    """Another workload serves the same model name (its canary, or the stable model of this
    canary): queries select this one's series by Service too."""


def cache_size_gib(model: VllmModelConfig, plan: ModelPlan) -> int:
    """``cache.sizeGib``, or the weights x 1.25 + 10 GiB (tokenizer, configs, a revision bump)."""
    if model.cache.size_gib is not None:
        return model.cache.size_gib
    return math.ceil(plan.capacity.weights_gib * 1.25 + 10)


def workload_kind(model: VllmModelConfig) -> str:
    """Deployment with a shared RWX cache, StatefulSet with a per-replica RWO cache."""
    return "Deployment" if model.cache.access_mode == "ReadWriteMany" else "StatefulSet"


def pod_name_regex(name: str, kind: str) -> str:
    """Names of the workload's pods (anchored by Prometheus): ``<name>-<rs hash>-<suffix>`` for
    a Deployment, ``<name>-<ordinal>`` for a StatefulSet; never another model's pods."""
    if kind == "Deployment":
        return f"{name}-[a-z0-9]{{1,10}}-[a-z0-9]{{5}}"
    return f"{name}-[0-9]+"


def streamer_args(concurrency: int, memory_limit_gib: int | None) -> list[str]:
    """Load from the model store with the Run:ai Model Streamer. vLLM's RunaiModelStreamerLoader
    (vllm/model_executor/model_loader/runai_streamer_loader.py) takes ``concurrency`` and
    ``memory_limit`` (bytes) from ``--model-loader-extra-config`` into RUNAI_STREAMER_CONCURRENCY /
    RUNAI_STREAMER_MEMORY_LIMIT; an ``s3://`` / ``gs://`` model is listed and streamed directly
    (runai_utils.is_runai_obj_uri), config and tokenizer files are pulled to VLLM_ASSETS_CACHE
    ($HOME). The vllm-openai image installs runai-model-streamer[s3,gcs,azure] (docker/Dockerfile,
    vllm-base stage, openai_server_extras); credentials: the AWS SDK default chain (IRSA web
    identity) and google.auth.default() (Workload Identity), run-ai/runai-model-streamer
    py/runai_model_streamer_{s3,gcs}/.../credentials.py."""
    extra: dict[str, int] = {"concurrency": concurrency}
    if memory_limit_gib is not None:
        extra["memory_limit"] = memory_limit_gib * 1024**3
    return ["--load-format", "runai_streamer", "--model-loader-extra-config", json.dumps(extra, sort_keys=True)]


def compile_cache_root(model: ModelSource) -> str:
    """VLLM_CACHE_ROOT on the model cache volume, keyed by model, revision and vLLM version: vLLM
    keeps torch.compile artifacts under it (torch_compile_cache/<hash of config, code, torch>), so a
    restart and every replica sharing the volume load compiled graphs instead of compiling."""
    version = versions.VLLM_IMAGE.rsplit(":", 1)[1]
    return f"{CACHE_MOUNT}/compile/{model.model.replace('/', '--')}/{model.revision or 'unpinned'}/{version}"


def compile_cache_env(model: ModelSource) -> list[dict[str, str]]:
    root = compile_cache_root(model)
    # Triton's kernel cache defaults to ~/.triton (an emptyDir here): keep it next to vLLM's
    return [{"name": "VLLM_CACHE_ROOT", "value": root}, {"name": "TRITON_CACHE_DIR", "value": f"{root}/triton"}]


def vllm_args(
    model: VllmModelConfig | MultiNodeModelConfig,
    plan: ModelPlan,
    store_uri: str | None = None,
    streamer: list[str] | None = None,
) -> list[str]:
    """``vllm serve`` arguments (vLLM 0.31 spellings): the model (or its model-store URI, which
    pins the revision), then one flag per typed field. A replica in pipeline stages (a
    LeaderWorkerSet group) runs them on vLLM's Ray executor across the group's nodes."""
    args = [
        store_uri or model.model,
        "--served-model-name",
        model.served_name,
        "--port",
        str(PORT),
        "--tensor-parallel-size",
        str(plan.tensor_parallel_size),
        *(
            ("--pipeline-parallel-size", str(plan.pipeline_parallel_size), "--distributed-executor-backend", "ray")
            if plan.pipeline_parallel_size > 1
            else ()
        ),
        "--max-model-len",
        str(plan.max_model_len),
        "--gpu-memory-utilization",
        f"{model.gpu_memory_utilization:g}",
        "--dtype",
        model.dtype,
        "--kv-cache-dtype",
        model.kv_cache_dtype,
        *(streamer or ["--download-dir", HF_HUB_CACHE]),
        "--enable-prefix-caching" if model.enable_prefix_caching else "--no-enable-prefix-caching",
        "--enable-chunked-prefill" if model.enable_chunked_prefill else "--no-enable-chunked-prefill",
    ]
    if model.max_num_seqs is not None:
        args += ["--max-num-seqs", str(model.max_num_seqs)]
    if model.max_num_batched_tokens is not None:
        args += ["--max-num-batched-tokens", str(model.max_num_batched_tokens)]
    if model.quantization is not None:
        args += ["--quantization", model.quantization]
    if model.revision is not None and store_uri is None:
        args += ["--revision", model.revision]
    if isinstance(model, VllmModelConfig):
        args += lora.vllm_flags(model.lora, CACHE_MOUNT)
    return args + list(model.extra_args)


def download_command(model: VllmModelConfig) -> list[str]:
    """Pre-download into the cache (huggingface_hub >= 0.34 ``hf`` CLI). Files already in the
    cache are only checked, so a restart costs seconds."""
    cmd = ["hf", "download", model.model, "--cache-dir", HF_HUB_CACHE]
    if model.revision is not None:
        cmd += ["--revision", model.revision]
    for pattern in DOWNLOAD_EXCLUDE:
        cmd += ["--exclude", pattern]
    return cmd


def startup_window_seconds(model: VllmModelConfig, plan: ModelPlan) -> int:
    """``startupTimeoutSeconds``, or the plan's cold-start estimate of the engine start x margin."""
    if model.startup_timeout_seconds is not None:
        return model.startup_timeout_seconds
    assert plan.cold_start is not None, "every vLLM plan carries its cold-start estimate"
    return plan.cold_start.startup_window_seconds


def startup_failure_threshold(model: VllmModelConfig, plan: ModelPlan) -> int:
    return math.ceil(startup_window_seconds(model, plan) / PROBE_PERIOD_SECONDS)


def server_probes(startup_failures: int) -> dict[str, Any]:
    """Startup, readiness and liveness probes of a vLLM API server on /health: the startup probe
    allows ``startup_failures`` periods (the model's start window), readiness takes a replica out of
    its Service quickly, liveness restarts a hung engine only after a longer silence."""
    http_get = {"path": HEALTH_PATH, "port": PORT_NAME}
    return {
        "startupProbe": {
            "httpGet": http_get,
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": startup_failures,
        },
        "readinessProbe": {
            "httpGet": http_get,
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": READINESS_FAILURES,
        },
        "livenessProbe": {
            "httpGet": http_get,
            "periodSeconds": LIVENESS_PERIOD_SECONDS,
            "timeoutSeconds": 10,
            "failureThreshold": LIVENESS_FAILURES,
        },
    }


def _quantity_gib(gib: int) -> str:
    return f"{gib}Gi"


def _depends(opts: pulumi.ResourceOptions | None) -> list[Any]:
    deps = opts.depends_on if opts is not None else None
    if deps is None:
        return []
    return list(deps) if isinstance(deps, (list, tuple)) else [deps]


def gateway_network_policy(
    name: str,
    namespace: str,
    labels: dict[str, str],
    selector: dict[str, str],
    model: VllmModelConfig,
    ctx: ServingContext,
) -> dict[str, Any] | None:
    """Lets the namespace of the model's Gateway reach its pods on the serving port (gateway
    proxies deployed next to the Gateway, e.g. Istio's); None when NetworkPolicies are off or
    the namespace is already one of ``security.networkPolicy.ingressNamespaces``."""
    np = ctx.security.network_policy
    route = model.http_route
    if not np.enabled or route is None or route.gateway_namespace in np.ingress_namespaces:
        return None
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": kube.metadata(f"{name}-allow-gateway", namespace, labels),
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": route.gateway_namespace}}}
                    ],
                    "ports": [{"protocol": "TCP", "port": PORT}],
                }
            ],
        },
    }


API_KEY_ENV = "LLM_API_KEY_{}"
"""Environment variables holding the clients' keys (not ``VLLM_*``: vLLM warns about unknown ones)."""


def api_key_env_and_args(ctx: ServingContext) -> tuple[list[dict[str, Any]], list[str]]:
    """``--api-key`` with every client's key when vLLM checks the keys (GKE's Gateway cannot).

    vLLM 0.31 takes several keys (``FrontendArgs.api_key: list[str] | None``, "the server will
    require one of these keys"; ``VLLM_API_KEY`` holds only one), checks them on ``/v1`` only
    (probes and ``/metrics`` stay open). Each key comes from the Secret into the environment and
    into the arguments by Kubernetes' ``$(VAR)`` expansion: it never appears in the pod spec.
    """
    if ctx.api_key_secret is None or not ctx.api_key_clients:
        return [], []
    env = [
        {
            "name": API_KEY_ENV.format(i),
            "valueFrom": {"secretKeyRef": {"name": ctx.api_key_secret, "key": client}},
        }
        for i, client in enumerate(ctx.api_key_clients)
    ]
    return env, ["--api-key", *[f"$({API_KEY_ENV.format(i)})" for i in range(len(ctx.api_key_clients))]]


class VllmService(pulumi.ComponentResource):
    """One served model: workload, cache, Service, PDB, routing, autoscaling, monitoring."""

    endpoint: pulumi.Output[str]
    """OpenAI-compatible base URL inside the cluster: ``http://<service>.<namespace>.svc.cluster.local:8000/v1``."""
    service_name: pulumi.Output[str]
    """Name of the ClusterIP Service in front of the model's pods."""
    namespace: pulumi.Output[str]
    """Namespace of the model's objects."""
    served_model_name: pulumi.Output[str]
    """The ``model`` value clients send (``servedModelName``)."""
    workload_kind: pulumi.Output[str]
    """``Deployment`` (shared ReadWriteMany cache) or ``StatefulSet`` (a cache per replica)."""
    tensor_parallel_size: pulumi.Output[int]
    """GPUs per replica."""
    autoscaler: str
    """``keda``, ``hpa`` or ``none`` (fixed replicas)."""
    name: str
    kind: str

    def __init__(self, name: str, args: VllmServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:VllmService", name, None, opts)
        model, plan, ctx = args.model, args.plan, args.context
        ns = ctx.namespace
        self.name = name
        self.kind = workload_kind(model)
        inherited = _depends(opts)

        def child(*extra: Any, **kw: Any) -> pulumi.ResourceOptions:
            deps = [*inherited, *[d for d in extra if d is not None]]
            return pulumi.ResourceOptions(parent=self, depends_on=deps or None, **kw)

        a = model.autoscaling
        autoscaler = ctx.addons.autoscaler if a.min_replicas != a.max_replicas else "none"
        if a.min_replicas != a.max_replicas and autoscaler == "none":
            pulumi.log.warn(
                f"models/{name}: no autoscaler available (neither KEDA nor prometheus-adapter); "
                f"running a fixed {a.min_replicas} replicas",
                self,
            )
        self.autoscaler = autoscaler
        hpa_name = {"keda": autoscaling.keda_hpa_name(name), "hpa": name}.get(autoscaler)
        labels = kube.labels(name, COMPONENT, **{"app.kubernetes.io/version": args.image.rsplit(":", 1)[1]})
        selector = kube.selector(name, COMPONENT)
        mon = ctx.addons.monitoring
        self.scope = observability.ModelScope(
            namespace=ns,
            model_name=model.served_name,
            service=name,
            pod_regex=pod_name_regex(name, self.kind),
            workload_kind=self.kind,
            workload_name=name,
            hpa_name=hpa_name,
            extra_labels={"service": name} if args.split_metrics or model.canary is not None else {},
        )

        # -- model cache ------------------------------------------------------------------------
        size = cache_size_gib(model, plan)
        shared_cache = self.kind == "Deployment"
        storage_class = model.cache.storage_class or (ctx.rwx_storage_class if shared_cache else ctx.storage_class)
        claim_spec: dict[str, Any] = {
            "accessModes": [model.cache.access_mode],
            "resources": {"requests": {"storage": _quantity_gib(size)}},
        }
        if storage_class:
            claim_spec["storageClassName"] = storage_class
        self.cache_claim = None
        if shared_cache:
            # protect: a destroy, a rename or a replacement leaves the weights in place
            self.cache_claim = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-model-cache",
                metadata=kube.metadata(f"{name}-model-cache", ns, labels),
                spec=claim_spec,
                opts=child(retain_on_delete=ctx.protect),
            )
        store = ctx.model_store
        sa = kube.service_account(name, ns, labels)
        if store is not None:
            # the model store's reader identity (IRSA role / Google service account) for this account only
            sa["metadata"]["annotations"] = store.annotations[name]
        self.service_account = k8s.core.v1.ServiceAccount(name, **sa, opts=child())

        # -- pod --------------------------------------------------------------------------------
        template = self._pod_template(name, model, plan, ctx, labels, selector, shared_cache, args.image)
        initial = a.min_replicas
        autoscaled = autoscaler != "none"
        window = startup_window_seconds(model, plan)
        timeout = str(window + FIRST_DOWNLOAD_SECONDS)
        meta = kube.metadata(name, ns, labels, annotations={"pulumi.com/timeoutSeconds": timeout})
        workload_opts = child(
            self.cache_claim,
            self.service_account,
            *ctx.addons.gpu_ready,
            *(store.jobs_for([(model.model, model.revision or "")]) if store is not None else []),
            ignore_changes=["spec.replicas"] if autoscaled else None,
        )
        if shared_cache:
            self.workload = k8s.apps.v1.Deployment(
                name,
                metadata=meta,
                spec={
                    "replicas": initial,
                    "revisionHistoryLimit": 5,
                    "progressDeadlineSeconds": window + FIRST_DOWNLOAD_SECONDS,
                    # surge one replica (Ready before an old one goes) where the pool holds it at
                    # maxReplicas, else replace one at a time (config/feasibility.py decides)
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": plan.rollout.rolling_update()},
                    "selector": {"matchLabels": selector},
                    "template": template,
                },
                opts=workload_opts,
            )
        else:
            self.workload = k8s.apps.v1.StatefulSet(
                name,
                metadata=meta,
                spec={
                    "replicas": initial,
                    "revisionHistoryLimit": 5,
                    "serviceName": name,
                    "podManagementPolicy": "Parallel",
                    "updateStrategy": {"type": "RollingUpdate"},
                    # protect: caches outlive the StatefulSet (destroy, or a replacement because
                    # volumeClaimTemplates changed); the next one with this name adopts them
                    "persistentVolumeClaimRetentionPolicy": {
                        "whenDeleted": "Retain" if ctx.protect else "Delete",
                        "whenScaled": "Retain",
                    },
                    "selector": {"matchLabels": selector},
                    "template": template,
                    # immutable: no version label here, or an image bump would replace the
                    # StatefulSet (and delete the caches); a new size or class does replace it
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": CACHE_VOLUME, "labels": {**selector, **kube.MANAGED_BY}},
                            "spec": claim_spec,
                        }
                    ],
                },
                opts=workload_opts,
            )

        # -- Service, PDB, routing -----------------------------------------------------------
        self.service = k8s.core.v1.Service(
            name,
            metadata=kube.metadata(name, ns, labels),
            spec={
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
            },
            opts=child(),
        )
        k8s.policy.v1.PodDisruptionBudget(
            name,
            metadata=kube.metadata(name, ns, labels),
            spec={
                # one voluntary disruption at a time; a single replica can still be drained
                "maxUnavailable": 1,
                "selector": {"matchLabels": selector},
                # a replica that never became Ready (stuck loading) must not block a node drain
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
            opts=child(),
        )
        self.ingress = None
        if model.ingress is not None:
            self.ingress = k8s.networking.v1.Ingress(
                name, **self._ingress(name, ns, labels, model), opts=child(self.service)
            )
        self.http_route = None
        if model.http_route is not None:
            self.http_route = observability.custom_resource(
                f"{name}-route", self._http_route(name, ns, labels, model), child(self.service)
            )
            policy = gateway_network_policy(name, ns, labels, selector, model, ctx)
            if policy is not None:
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-allow-gateway", metadata=policy["metadata"], spec=policy["spec"], opts=child()
                )
            if ctx.cloud == "gke":
                self._gke_gateway_backend(name, ns, labels, selector, model, ctx, child)

        # -- autoscaling ------------------------------------------------------------------------
        self.scaler = None
        if autoscaler == "keda":
            assert mon.prometheus_url is not None, "validated: autoscaling needs Prometheus"
            wake_up = None
            if a.scale_to_zero and ctx.gateway_wake_up:
                # the endpoint picker of the model's InferencePool (inference_pool.py: ``<model>-epp``)
                wake_up = autoscaling.gateway_wake_up_query(ns, f"{name}-epp")
            elif a.scale_to_zero and model.ingress is not None:
                wake_up = autoscaling.ingress_wake_up_query(name, model.ingress.host)
            self.scaler = observability.custom_resource(
                f"{name}-scaledobject",
                autoscaling.scaled_object(
                    name,
                    ns,
                    labels=labels,
                    target_kind=self.kind,
                    target_name=name,
                    scope=self.scope,
                    autoscaling=a,
                    prometheus_url=mon.prometheus_url,
                    wake_up_query=wake_up,
                ),
                child(self.workload, *ctx.addons.depends_for("keda.sh")),
            )
        elif autoscaler == "hpa":
            manifest = autoscaling.horizontal_pod_autoscaler(
                name, ns, labels=labels, target_kind=self.kind, target_name=name, autoscaling=a
            )
            self.scaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=manifest["metadata"], spec=manifest["spec"], opts=child(self.workload)
            )

        # -- monitoring ---------------------------------------------------------------------------
        if mon.operator_crds:
            monitoring_deps = ctx.addons.depends_for("monitoring.coreos.com")
            observability.custom_resource(
                f"{name}-servicemonitor",
                observability.service_monitor(
                    name, ns, labels={**labels, **mon.monitor_labels}, selector=selector, port=PORT_NAME
                ),
                child(self.service, *monitoring_deps),
            )
            observability.custom_resource(
                f"{name}-rules",
                observability.prometheus_rule(
                    name,
                    ns,
                    labels={**labels, **mon.monitor_labels},
                    groups=[
                        {
                            "name": f"vllm.{ns}.{name}",
                            "rules": observability.alert_rules(self.scope, ctx.alerts, gpu_metrics=mon.gpu_metrics),
                        }
                    ],
                ),
                child(*monitoring_deps),
            )
        if mon.dashboard_labels:
            board = dashboards.model_dashboard(
                self.scope,
                title=f"vLLM / {ns} / {name}",
                uid=dashboards.dashboard_uid(ns, name),
                gpu_metrics=mon.gpu_metrics,
            )
            cm = dashboards.dashboard_configmap(
                f"{name}-dashboard", ns, labels={**labels, **mon.dashboard_labels}, dashboard_json=board
            )
            k8s.core.v1.ConfigMap(f"{name}-dashboard", metadata=cm["metadata"], data=cm["data"], opts=child())

        # resolve once the Service exists: a caller depending on the endpoint waits for it
        self.service_name = self.service.id.apply(lambda _: name)
        self.namespace = self.service.id.apply(lambda _: ns)
        self.endpoint = self.service.id.apply(lambda _: f"http://{name}.{ns}.svc.cluster.local:{PORT}/v1")
        self.served_model_name = pulumi.Output.from_input(model.served_name)
        self.workload_kind = pulumi.Output.from_input(self.kind)
        self.tensor_parallel_size = pulumi.Output.from_input(plan.tensor_parallel_size)
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "serviceName": self.service_name,
                "namespace": self.namespace,
                "servedModelName": self.served_model_name,
                "workloadKind": self.workload_kind,
                "tensorParallelSize": self.tensor_parallel_size,
                "kind": self.kind,
                "autoscaler": autoscaler,
            }
        )

    # -- pieces ------------------------------------------------------------------------------------
    @staticmethod
    def _pod_template(
        name: str,
        model: VllmModelConfig,
        plan: ModelPlan,
        ctx: ServingContext,
        labels: dict[str, str],
        selector: dict[str, str],
        shared_cache: bool,
        image: str,
    ) -> dict[str, Any]:
        res = host_resources(model, plan)
        tp = plan.tensor_parallel_size
        as_root = ctx.security.vllm_run_as_root
        mon = ctx.addons.monitoring

        store = ctx.model_store
        env: list[dict[str, Any]] = [
            {"name": "HF_HOME", "value": CACHE_MOUNT},
            {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
            {"name": "HOME", "value": HOME_MOUNT},
        ]
        if store is not None:
            env += store.env()
        if not as_root:
            env.append({"name": "USER", "value": VLLM_USER})
        if ctx.hf_token_secret:
            env.append(hf_token_env())
        serve_env, key_args = api_key_env_and_args(ctx)
        cache_mount = {"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT}
        # the root filesystem is read-only: everything vLLM, torch and the hf CLI write
        # outside the model cache goes to $HOME or /tmp
        scratch = [{"name": HOME_VOLUME, "mountPath": HOME_MOUNT}, {"name": TMP_VOLUME, "mountPath": TMP_MOUNT}]
        token = [hf_token_mount()] if ctx.hf_token_secret else []
        mounts = [cache_mount]
        volumes: list[dict[str, Any]] = []
        if shared_cache:
            volumes.append({"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": f"{name}-model-cache"}})
        if res.shm_gib is not None:
            # NCCL between tensor-parallel workers goes through shared memory; the runtime's
            # default 64 MiB /dev/shm hangs it (seed 002)
            volumes.append(
                {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": _quantity_gib(res.shm_gib)}}
            )
            mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
        volumes += [{"name": HOME_VOLUME, "emptyDir": {}}, {"name": TMP_VOLUME, "emptyDir": {}}]
        mounts += [*scratch, *token]
        if ctx.hf_token_secret:
            volumes.append(hf_token_volume(ctx.hf_token_secret))

        compute = {
            "cpu": autoscaling.quantity(res.cpu),
            "memory": _quantity_gib(res.memory_gib),
            GPU_RESOURCE: str(tp),
        }
        server = {
            "name": CONTAINER,
            "image": image,
            "imagePullPolicy": kube.IMAGE_PULL_POLICY,
            "command": ["vllm", "serve"],
            "args": vllm_args(
                model,
                plan,
                store.uri(model.model, model.revision or "") if store is not None else None,
                streamer_args(store.args.config.concurrency, store.args.config.memory_limit_gib)
                if store is not None
                else None,
            )
            + key_args,
            "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
            "env": [
                *env,
                *serve_env,
                *(compile_cache_env(model) if ctx.compile_cache else []),
                {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
                {"name": "DO_NOT_TRACK", "value": "1"},
            ],
            # requests = limits: Guaranteed QoS, the last pods evicted under node pressure
            "resources": {"requests": compute, "limits": compute},
            **server_probes(startup_failure_threshold(model, plan)),
            # keep serving while endpoints, kube-proxy and the ingress forget this pod; the
            # rest of the grace period lets in-flight generations finish after SIGTERM
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(model.pre_stop_sleep_seconds)]}}},
            "volumeMounts": mounts,
            "securityContext": kube.container_security_context(read_only_root=True),
        }
        download = {
            "name": "model-download",
            "image": image,
            "imagePullPolicy": kube.IMAGE_PULL_POLICY,
            "command": download_command(model),
            "env": env,
            "resources": {"requests": DOWNLOAD_RESOURCES, "limits": DOWNLOAD_RESOURCES},
            "volumeMounts": [cache_mount, *scratch, *token],
            "securityContext": kube.container_security_context(read_only_root=True),
        }
        pod: dict[str, Any] = {
            # a Service named "vllm" would inject VLLM_PORT=tcp://..., which vLLM reads as its own setting
            "enableServiceLinks": False,
            "serviceAccountName": name,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": model.termination_grace_period_seconds,
            "securityContext": kube.pod_security_context(
                run_as_non_root=not as_root, uid=None if as_root else VLLM_UID
            ),
            "tolerations": plan.pool.tolerations(),
            # weights streamed from the model store need no download into the cache; LoRA
            # adapters still come from the Hub into it
            **(
                {"initContainers": init}
                if (
                    init := [
                        *([] if store is not None else [download]),
                        *lora.download_containers(model.lora, download, CACHE_MOUNT),
                    ]
                )
                else {}
            ),
            "containers": [server],
            "volumes": volumes,
        }
        if plan.pool.selector:
            pod["nodeSelector"] = dict(plan.pool.selector)
        if model.autoscaling.max_replicas > 1:
            pod["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": key,
                    # a preference: replicas that share a node's GPUs still pack (capacity plan)
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": selector},
                }
                for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
            ]
        annotations = {"kubectl.kubernetes.io/default-container": CONTAINER, **kube.DO_NOT_DISRUPT}
        if store is not None:
            labels = {**labels, MODEL_STORE_READER_LABEL: "true"}
        if not mon.operator_crds and mon.prometheus_url:
            # a Prometheus without the operator discovers pods by annotation
            annotations.update(
                {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORT), "prometheus.io/path": "/metrics"}
            )
        return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod}

    @staticmethod
    def _ingress(name: str, ns: str, labels: dict[str, str], model: VllmModelConfig) -> dict[str, Any]:
        ing = model.ingress
        assert ing is not None
        timeout = str(ing.timeout_seconds)
        annotations = {
            "nginx.ingress.kubernetes.io/proxy-read-timeout": timeout,
            "nginx.ingress.kubernetes.io/proxy-send-timeout": timeout,
            # stream tokens as they are generated instead of buffering whole responses
            "nginx.ingress.kubernetes.io/proxy-buffering": "off",
            "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
            # long prompts exceed nginx's 1m default body size
            "nginx.ingress.kubernetes.io/proxy-body-size": "32m",
        }
        spec: dict[str, Any] = {
            "ingressClassName": ing.class_name,
            "rules": [
                {
                    "host": ing.host,
                    "http": {
                        "paths": [
                            {
                                "path": ing.path,
                                "pathType": "Prefix",
                                "backend": {"service": {"name": name, "port": {"name": PORT_NAME}}},
                            }
                        ]
                    },
                }
            ],
        }
        if ing.tls_secret_name:
            spec["tls"] = [{"hosts": [ing.host], "secretName": ing.tls_secret_name}]
        return {"metadata": kube.metadata(name, ns, labels, annotations=annotations), "spec": spec}

    @staticmethod
    def _gke_gateway_backend(name, ns, labels, selector, model: VllmModelConfig, ctx: ServingContext, child) -> None:
        """GKE Gateway: /health checks, a streaming-length backend timeout, LB ranges let in."""
        assert model.http_route is not None
        for manifest in (
            gke_gateway.health_check_policy(name, ns, labels, PORT, HEALTH_PATH),
            gke_gateway.backend_policy(name, ns, labels, model.http_route.timeout_seconds),
        ):
            observability.custom_resource(f"{name}-{manifest['kind'].lower()}", manifest, child())
        if ctx.security.network_policy.enabled:
            lb = gke_gateway.load_balancer_network_policy(name, ns, labels, selector, PORT)
            k8s.networking.v1.NetworkPolicy(
                f"{name}-allow-gke-lb", metadata=lb["metadata"], spec=lb["spec"], opts=child()
            )

    @staticmethod
    def _http_route(name: str, ns: str, labels: dict[str, str], model: VllmModelConfig) -> dict[str, Any]:
        route = model.http_route
        assert route is not None
        timeout = f"{route.timeout_seconds}s"
        spec: dict[str, Any] = {
            "parentRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": route.gateway_name,
                    "namespace": route.gateway_namespace,
                }
            ],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": route.path}}],
                    "backendRefs": [{"group": "", "kind": "Service", "name": name, "port": PORT}],
                    "timeouts": {"request": timeout, "backendRequest": timeout},
                }
            ],
        }
        if route.hostnames:
            spec["hostnames"] = list(route.hostnames)
        return {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": kube.metadata(name, ns, labels),
            "spec": spec,
        }
