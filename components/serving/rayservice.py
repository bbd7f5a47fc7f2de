"""Ray Serve LLM on KubeRay: several models behind one OpenAI endpoint, on a shared GPU pool.

One ``RayService`` (ray.io/v1) per configured rayService. Its ``serveConfigV2`` runs
``ray.serve.llm:build_openai_app`` with one ``llm_configs`` entry per model; the RayCluster
has a CPU-only head (GCS, dashboard, Serve controller, autoscaler sidecar) and one GPU worker
group on the pool the models run on. Three autoscalers cooperate: Serve scales each model's
replicas on ongoing requests, the Ray autoscaler adds worker pods for pending replicas, and
the cluster autoscaler (Karpenter / node groups) adds GPU nodes for pending pods.

Everything is derived from the typed config, the model plans (tensor parallelism, context
length) and the pool facts (taint, selector, GPUs, vCPUs); the builders below are pure
functions so tests can compare them field by field without Pulumi.

Hardening: Ray runs as the image's ``ray`` user (non-root), without privilege escalation or
capabilities, RuntimeDefault seccomp, pinned images pulled ``IfNotPresent``, the Hugging Face
token as a file. The workers run under their own ServiceAccount without an API token. The
head keeps a token: KubeRay's autoscaler sidecar patches the RayCluster, and KubeRay creates
that account (named after the RayCluster) with a Role limited to pods and rayclusters when
``enableInTreeAutoscaling`` is on and the head names no account. The root filesystem stays
writable: Ray writes session files, logs and sockets under ``/tmp/ray`` (KubeRay mounts its
own volume there on the head only), spills objects, and the ray-llm image keeps its Python
environment under ``$HOME`` (/home/ray), so ``$HOME`` cannot become an emptyDir.
NetworkPolicies: the KubeRay operator may reach the dashboard and Serve ports; the head may
reach the API server (``security.networkPolicy.apiServerCidrs``/``Ports``).

Weights: with a ReadWriteMany class (``rayServices[].cache``, on by default when the cluster
has one) the workers share one PVC as ``HF_HOME``: an init container downloads the models
into it (a no-op check once they are there) and vLLM (``download_dir``) and Ray Serve LLM read
the same Hub cache, so a restarted or added worker loads weights instead of downloading them.
The head runs no model replica (``num-gpus``/``num-cpus`` 0) and gets no cache. Without a
shared class each worker downloads into its own container filesystem at every start (the
plan's warnings say so). With ``modelStore.enabled`` nothing downloads: every model's source is
its pinned revision's ``s3://`` / ``gs://`` URI, streamed by vLLM's Run:ai loader
(``engine_kwargs.load_format: runai_streamer``) under the workers' ServiceAccount (its own reader
identity), and the shared volume keeps vLLM's compile caches.
"""

# `pyright: ignore[reportArgumentType]` on a resource's metadata/spec: pulumi_kubernetes types them as its
# *Args TypedDicts; these manifests are plain dicts, validated against the Kubernetes OpenAPI schema of the
# pinned version by tests/test_rendered_schemas.py instead.
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from llm_infra.components import k8s as kube
from llm_infra.components.addons.handles import MONITORING_GROUP, RAY_GROUP
from llm_infra.config import ModelPlan, NodePoolFacts
from llm_infra.config.model_store import READER_LABEL as MODEL_STORE_READER_LABEL
from llm_infra.config.multinode import NCCL_ENV
from llm_infra.config.multinode_plan import ray_placement_group_config
from llm_infra.config.ray import RayModelConfig, RayServiceConfig
from llm_infra.config.versions import RAY_LLM_IMAGE

from . import ray_observability
from .context import ServingContext
from .namespace import hf_token_env, hf_token_mount, hf_token_volume
from .observability import custom_resource
from .ray_observability import COMPONENT_HEAD, COMPONENT_WORKER
from .vllm import CACHE_MOUNT, CACHE_VOLUME, DOWNLOAD_EXCLUDE, DOWNLOAD_RESOURCES, HF_HUB_CACHE

SERVE_PORT = 8000
METRICS_PORT = 8080
GCS_PORT = 6379
DASHBOARD_PORT = 8265
CLIENT_PORT = 10001
AUTOSCALER_METRICS_PORT = 44217
DASHBOARD_METRICS_PORT = 44227
"""Ray's defaults (KubeRay's Prometheus guide scrapes 8080, 44217 and 44227 on the head)."""

RAY_UID = 1000
RAY_GID = 100
"""The ``ray`` user and ``users`` group of the rayproject images (numeric, so the kubelet can
enforce runAsNonRoot)."""

HEAD_CONTAINER = "ray-head"
WORKER_CONTAINER = "ray-worker"
AUTOSCALER_CPU = "500m"
AUTOSCALER_MEMORY = "512Mi"
"""The autoscaler sidecar's size (KubeRay's default for it)."""

BUILD_OPENAI_APP = "ray.serve.llm:build_openai_app"
DOWNLOAD_CONTAINER = "model-download"
DOWNLOAD_SCRIPT = (
    "import sys\n"
    "from huggingface_hub import snapshot_download\n"
    "cache, exclude, *models = sys.argv[1:]\n"
    "for model in models:\n"
    "    repo, _, revision = model.partition('@')\n"
    "    snapshot_download(repo, revision=revision or None, cache_dir=cache, ignore_patterns=exclude.split(','))\n"
)
"""Pre-download of every model of the service (huggingface_hub's ``snapshot_download``, which
every vLLM and ray-llm image ships; files already in the cache are only checked)."""

# -- readiness probes ---------------------------------------------------------------------
# KubeRay 1.7.0 injects probes only where the Ray container has none
# (ray-operator/controllers/ray/common/pod.go, initLivenessAndReadinessProbe). Its defaults
# (ray-operator/controllers/ray/utils/constant.go): DefaultReadinessProbeTimeoutSeconds = 2,
# DefaultHeadReadinessProbeTimeoutSeconds = 5, DefaultReadinessProbePeriodSeconds = 5,
# DefaultReadinessProbeFailureThreshold = 10, and for RayService workers
# ServeReadinessProbeFailureThreshold = 1 with an exec probe chaining BaseWgetHealthCommand
# on the raylet (DefaultDashboardAgentListenPort 52365, RayAgentRayletHealthPath) and the
# Serve proxy (DefaultServingPort 8000, RayServeProxyHealthPath "-/healthz"). Under
# streaming load one proxy answer slower than 2 s drops the worker from the serve Service.
# Ours: the same checks (a worker must still run a healthy proxy), with room for a loaded
# proxy and three misses in a row before the worker stops taking new requests.
DASHBOARD_AGENT_PORT = 52365
RAYLET_HEALTH_PATH = "api/local_raylet_healthz"
SERVE_PROXY_HEALTH_PATH = "-/healthz"
NODE_HEALTH_PATH = "/api/healthz"
"""Ray >= 2.53's single node health endpoint on the dashboard agent (pod.go supportsUnifiedHealthCheck)."""
PROBE_WGET_TIMEOUT_SECONDS = 4
READINESS_TIMEOUT_SECONDS = 10
READINESS_PERIOD_SECONDS = 5
WORKER_READINESS_FAILURE_THRESHOLD = 3
HEAD_READINESS_FAILURE_THRESHOLD = 10
READINESS_INITIAL_DELAY_SECONDS = 10


def _wget(port: int, path: str) -> str:
    return f"wget --tries 1 -T {PROBE_WGET_TIMEOUT_SECONDS} -q -O- http://localhost:{port}/{path} | grep success"


def worker_readiness_probe() -> dict[str, Any]:
    """Raylet and Serve proxy healthy; tolerant of a proxy slowed by streaming load."""
    command = " && ".join([_wget(DASHBOARD_AGENT_PORT, RAYLET_HEALTH_PATH), _wget(SERVE_PORT, SERVE_PROXY_HEALTH_PATH)])
    return {
        "exec": {"command": ["bash", "-c", command]},
        "initialDelaySeconds": READINESS_INITIAL_DELAY_SECONDS,
        "timeoutSeconds": READINESS_TIMEOUT_SECONDS,
        "periodSeconds": READINESS_PERIOD_SECONDS,
        "successThreshold": 1,
        "failureThreshold": WORKER_READINESS_FAILURE_THRESHOLD,
    }


def head_readiness_probe() -> dict[str, Any]:
    """The head's node health (GCS + raylet) with a timeout for a busy head."""
    return {
        "httpGet": {"path": NODE_HEALTH_PATH, "port": DASHBOARD_AGENT_PORT},
        "initialDelaySeconds": READINESS_INITIAL_DELAY_SECONDS,
        "timeoutSeconds": READINESS_TIMEOUT_SECONDS,
        "periodSeconds": READINESS_PERIOD_SECONDS,
        "successThreshold": 1,
        "failureThreshold": HEAD_READINESS_FAILURE_THRESHOLD,
    }


def ray_version(image: str = RAY_LLM_IMAGE) -> str:
    """``rayproject/ray-llm:2.58.0-py312-cu130`` -> ``2.58.0`` (KubeRay's rayVersion)."""
    return image.rsplit(":", 1)[1].split("-", 1)[0]


def serve_service_name(name: str) -> str:
    """The Service KubeRay creates for a RayService's Serve proxies (stable across upgrades)."""
    return f"{name}-serve-svc"


def worker_group_name(pool: NodePoolFacts) -> str:
    return f"{pool.name}-workers"


def pod_labels(name: str, component: str) -> dict[str, str]:
    """Labels we add to Ray pods. ``app.kubernetes.io/name`` is left to KubeRay (it sets
    ``kuberay``); KubeRay adds ``ray.io/node-type``, ``ray.io/cluster`` and ``ray.io/group``."""
    return {"app.kubernetes.io/instance": name, "app.kubernetes.io/component": component, **kube.MANAGED_BY}


# -- serveConfigV2 -------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreSource:
    """Where a RayService's models stream from when the model store is on."""

    uris: dict[str, str]
    """model_id -> ``s3://`` / ``gs://`` URI of its pinned revision."""
    loader_extra_config: dict[str, int]
    """``model_loader_extra_config`` of the Run:ai streamer (concurrency, memory_limit)."""
    env: list[dict[str, str]]


def engine_kwargs(
    model: RayModelConfig, plan: ModelPlan, shared_cache: bool = False, store: StoreSource | None = None
) -> dict[str, Any]:
    """vLLM engine arguments; tensor parallelism also sizes Ray Serve's placement group. With
    the shared cache vLLM reads weights from its Hub layout (``download_dir``), as the vLLM
    Deployments do (``--download-dir``)."""
    kwargs: dict[str, Any] = {
        "tensor_parallel_size": plan.tensor_parallel_size,
        **({"pipeline_parallel_size": plan.pipeline_parallel_size} if plan.pipeline_parallel_size > 1 else {}),
        "max_model_len": plan.max_model_len,
        "gpu_memory_utilization": model.gpu_memory_utilization,
        "dtype": model.dtype,
        "kv_cache_dtype": model.kv_cache_dtype,
        "enable_prefix_caching": model.enable_prefix_caching,
    }
    if model.quantization:
        kwargs["quantization"] = model.quantization
    if model.revision and store is None:
        kwargs["revision"] = model.revision
    if model.max_num_seqs:
        kwargs["max_num_seqs"] = model.max_num_seqs
    if store is not None:
        # the same Run:ai streamer load as the vLLM Deployments (vllm.streamer_args): Ray Serve LLM
        # hands engine_kwargs to vLLM's AsyncEngineArgs (load_format, model_loader_extra_config)
        kwargs["load_format"] = "runai_streamer"
        kwargs["model_loader_extra_config"] = dict(store.loader_extra_config)
    elif shared_cache:
        kwargs["download_dir"] = HF_HUB_CACHE
    if model.lora is not None:
        # vLLM engine arguments of LoRA (config/lora.py): GPU slots and their rank
        kwargs |= {"enable_lora": True, "max_lora_rank": model.lora.max_lora_rank, "max_loras": model.lora.max_loras}
    return kwargs


def deployment_config(model: RayModelConfig, service: RayServiceConfig) -> dict[str, Any]:
    """Serve deployment options of the model's LLMServer (Serve autoscaling, drain time)."""
    return {
        "autoscaling_config": {
            "min_replicas": model.min_replicas,
            "max_replicas": model.max_replicas,
            "target_ongoing_requests": model.target_ongoing_requests,
        },
        "max_ongoing_requests": model.max_ongoing_requests,
        "graceful_shutdown_timeout_s": service.graceful_shutdown_timeout_seconds,
    }


def llm_config(
    model: RayModelConfig,
    plan: ModelPlan,
    service: RayServiceConfig,
    accelerator_type: str,
    shared_cache: bool = False,
    store: StoreSource | None = None,
) -> dict[str, Any]:
    """One ``LLMConfig`` (ray.serve.llm) as the Serve config schema takes it; with the model store
    the model source is the revision's ``s3://`` / ``gs://`` URI (vLLM's model path). A pipeline-parallel
    replica gets its placement group spelled out: one GPU bundle per rank, PACK (config/multinode.py
    ``ray_placement_group_config``). ``lora_config``
    (ray python/ray/llm/_internal/serve/core/configs/llm_config.py ``LoraConfig``, read at a
    2026 master snapshot, commit 1190ecb; the ray-2.58.0 tag could not be fetched here) when
    the model serves LoRA adapters, requested as ``<model_id>:<adapter>``."""
    source = store.uris[model.model_id] if store is not None else model.model
    config = {
        "model_loading_config": {"model_id": model.model_id, "model_source": source},
        "accelerator_type": accelerator_type,
        "engine_kwargs": engine_kwargs(model, plan, shared_cache, store),
        "deployment_config": deployment_config(model, service),
        "log_engine_metrics": True,
    }
    if model.lora is not None:
        config["lora_config"] = {
            "dynamic_lora_loading_path": model.lora.dynamic_loading_path,
            "max_num_adapters_per_replica": model.lora.max_adapters_per_replica,
        }
    if plan.pipeline_parallel_size > 1:
        config["placement_group_config"] = ray_placement_group_config(plan)
    return config


def serve_config(
    service: RayServiceConfig,
    plans: list[ModelPlan],
    pool: NodePoolFacts,
    shared_cache: bool = False,
    store: StoreSource | None = None,
) -> dict[str, Any]:
    """The Serve config (``serve deploy`` schema): one OpenAI app with every model.

    The application is named after the service, so ``application`` labels of Serve metrics
    say which RayService they come from.
    """
    accelerator = service.resolved_accelerator_type(pool)
    assert accelerator is not None, "validated by config: every Ray pool has an accelerator type"
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": SERVE_PORT},
        "applications": [
            {
                "name": service.name,
                "route_prefix": "/",
                "import_path": BUILD_OPENAI_APP,
                "args": {
                    "llm_configs": [
                        llm_config(model, plan, service, accelerator, shared_cache, store)
                        for model, plan in _pairs(service, plans)
                    ]
                },
            }
        ],
    }


def _pairs(service: RayServiceConfig, plans: list[ModelPlan]) -> list[tuple[RayModelConfig, ModelPlan]]:
    by_name = {p.name: p for p in plans}
    return [(m, by_name[m.model_id]) for m in service.models]


def cache_claim_name(name: str) -> str:
    return f"{name}-model-cache"


def cache_size_gib(service: RayServiceConfig, plans: list[ModelPlan]) -> int:
    """``cache.sizeGib``, or the models' weights x 1.25 + 10 GiB (as a vLLM model's cache)."""
    if service.cache.size_gib is not None:
        return service.cache.size_gib
    return math.ceil(sum(plan.capacity.weights_gib for _, plan in _pairs(service, plans)) * 1.25 + 10)


def download_command(service: RayServiceConfig) -> list[str]:
    models = [m.model + (f"@{m.revision}" if m.revision else "") for m in service.models]
    return ["python", "-c", DOWNLOAD_SCRIPT, HF_HUB_CACHE, ",".join(DOWNLOAD_EXCLUDE), *models]


def worker_service_account(name: str) -> str:
    """The GPU workers' own ServiceAccount (no API token)."""
    return f"{name}-ray-worker"


# -- RayCluster ------------------------------------------------------------------------
def _hf_token(hf_token_secret: pulumi.Input[str] | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(container fields, pod volumes) giving Ray the Hugging Face token of the namespace's
    Secret (gated models, rate limits) as a file. On the pod, not in ``runtime_env``: the
    token never appears in the RayService; raylet-spawned workers inherit ``HF_TOKEN_PATH``."""
    if hf_token_secret is None:
        return {}, []
    return {"env": [hf_token_env()], "volumeMounts": [hf_token_mount()]}, [hf_token_volume(hf_token_secret)]


def _pod_security_context() -> dict[str, Any]:
    return kube.pod_security_context(run_as_non_root=True, uid=RAY_UID, gid=RAY_GID)


def _port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


def _quantity_cpu(cpu: float) -> str:
    return str(int(cpu)) if float(cpu).is_integer() else f"{round(cpu * 1000)}m"


def head_group(service: RayServiceConfig, name: str, hf_token_secret: pulumi.Input[str] | None) -> dict[str, Any]:
    """CPU-only head: no GPUs, no replicas (num-cpus 0), no GPU-pool toleration."""
    res = {"cpu": _quantity_cpu(service.head.cpu), "memory": f"{service.head.memory_gib}Gi"}
    token, token_volumes = _hf_token(hf_token_secret)
    pod: dict[str, Any] = {
        # no serviceAccountName: KubeRay creates the head's account and the autoscaler's RBAC
        "securityContext": _pod_security_context(),
        "terminationGracePeriodSeconds": service.termination_grace_period_seconds,
        "containers": [
            {
                "name": HEAD_CONTAINER,
                "image": RAY_LLM_IMAGE,
                "imagePullPolicy": kube.IMAGE_PULL_POLICY,
                "ports": [
                    _port("gcs", GCS_PORT),
                    _port("dashboard", DASHBOARD_PORT),
                    _port("client", CLIENT_PORT),
                    _port("serve", SERVE_PORT),
                    _port("metrics", METRICS_PORT),
                    _port("as-metrics", AUTOSCALER_METRICS_PORT),
                    _port("dash-metrics", DASHBOARD_METRICS_PORT),
                ],
                **token,
                "resources": {"requests": dict(res), "limits": dict(res)},
                "securityContext": kube.container_security_context(),
                "readinessProbe": head_readiness_probe(),
            }
        ],
    }
    if token_volumes:
        pod["volumes"] = token_volumes
    return {
        "rayStartParams": {
            "dashboard-host": "0.0.0.0",
            "num-cpus": "0",
            "num-gpus": "0",
            "metrics-export-port": str(METRICS_PORT),
        },
        "template": {"metadata": {"labels": pod_labels(name, COMPONENT_HEAD)}, "spec": pod},
    }


def accelerator_resources(accelerator_type: str) -> str:
    """``rayStartParams.resources`` declaring the worker's accelerator type.

    Ray detects the GPU type only once a node runs, so without this the autoscaler cannot
    tell that this group satisfies replicas pinned to ``accelerator_type`` and never scales
    it up from its minimum (kuberay#863); the sized A100 names are never auto-detected.
    KubeRay passes the value to ``ray start --resources`` verbatim (quoted JSON).
    """
    return '"{\\"accelerator_type:' + accelerator_type + '\\": 1}"'


def worker_group(
    service: RayServiceConfig,
    name: str,
    pool: NodePoolFacts,
    hf_token_secret: pulumi.Input[str] | None,
    shared_cache: bool = False,
    store: StoreSource | None = None,
    compile_cache: bool = False,
    multi_node: bool = False,
) -> dict[str, Any]:
    """GPU workers on the pool: whole GPUs, the pool's toleration and selector, /dev/shm, and
    the shared model cache as ``HF_HOME`` when there is one. Workers that hold stages of a
    multi-node replica pin NCCL and Gloo to the pod interface (config/multinode.py ``NCCL_ENV``)."""
    gpus = service.worker_gpus(pool)
    sizing = service.worker_resources(pool)
    assert sizing is not None, "validated by config: worker CPU and memory are known"
    cpu, memory_gib = sizing
    accelerator = service.resolved_accelerator_type(pool)
    assert accelerator is not None
    res = {"cpu": _quantity_cpu(cpu), "memory": f"{memory_gib}Gi", "nvidia.com/gpu": str(gpus)}
    token, token_volumes = _hf_token(hf_token_secret)
    cache_env = [{"name": "HF_HOME", "value": CACHE_MOUNT}] if shared_cache else []
    if shared_cache and compile_cache:
        # vLLM's torch.compile cache on the shared volume, keyed by service and vLLM (Ray) version
        root = f"{CACHE_MOUNT}/compile/ray-{service.name}/{ray_version()}"
        cache_env += [
            {"name": "VLLM_CACHE_ROOT", "value": root},
            {"name": "TRITON_CACHE_DIR", "value": f"{root}/triton"},
        ]
    cache_mounts = [{"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT}] if shared_cache else []
    env = [*cache_env, *(store.env if store is not None else []), *token.get("env", [])]
    worker_env = [*env, *([dict(e) for e in NCCL_ENV] if multi_node else [])]
    spec: dict[str, Any] = {
        "serviceAccountName": worker_service_account(name),
        "automountServiceAccountToken": False,
        "securityContext": _pod_security_context(),
        "terminationGracePeriodSeconds": service.termination_grace_period_seconds,
        "nodeSelector": dict(pool.selector),
        "tolerations": pool.tolerations(),
        "containers": [
            {
                "name": WORKER_CONTAINER,
                "image": RAY_LLM_IMAGE,
                "imagePullPolicy": kube.IMAGE_PULL_POLICY,
                "ports": [_port("serve", SERVE_PORT), _port("metrics", METRICS_PORT)],
                **({"env": worker_env} if worker_env else {}),
                "resources": {"requests": dict(res), "limits": dict(res)},
                "securityContext": kube.container_security_context(),
                "readinessProbe": worker_readiness_probe(),
                # Leave the cluster cleanly (drains the raylet) before SIGTERM.
                "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "ray stop"]}}},
                "volumeMounts": [
                    {"name": "dshm", "mountPath": "/dev/shm"},
                    *cache_mounts,
                    *token.get("volumeMounts", []),
                ],
            }
        ],
        "volumes": [
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{service.shm_size_gib}Gi"}},
            *token_volumes,
        ],
    }
    if shared_cache:
        spec["volumes"].append({"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": cache_claim_name(name)}})
    if shared_cache and store is None:
        spec["initContainers"] = [
            {
                "name": DOWNLOAD_CONTAINER,
                "image": RAY_LLM_IMAGE,
                "imagePullPolicy": kube.IMAGE_PULL_POLICY,
                "command": download_command(service),
                "env": env,
                "resources": {"requests": dict(DOWNLOAD_RESOURCES), "limits": dict(DOWNLOAD_RESOURCES)},
                "securityContext": kube.container_security_context(),
                "volumeMounts": [*cache_mounts, *token.get("volumeMounts", [])],
            }
        ]
    return {
        "groupName": worker_group_name(pool),
        "replicas": service.min_workers,
        "minReplicas": service.min_workers,
        "maxReplicas": service.max_workers,
        "rayStartParams": {
            "num-gpus": str(gpus),
            "metrics-export-port": str(METRICS_PORT),
            "resources": accelerator_resources(accelerator),
        },
        # GPU workers hold model replicas: Karpenter must not consolidate or drift them away
        "template": {
            "metadata": {
                "labels": {
                    **pod_labels(name, COMPONENT_WORKER),
                    **({MODEL_STORE_READER_LABEL: "true"} if store is not None else {}),
                },
                "annotations": dict(kube.DO_NOT_DISRUPT),
            },
            "spec": spec,
        },
    }


def upgrade_strategy(service: RayServiceConfig) -> dict[str, Any]:
    strategy: dict[str, Any] = {"type": service.upgrade_strategy}
    inc = service.incremental_upgrade
    if inc is not None:
        strategy["clusterUpgradeOptions"] = {
            "gatewayClassName": inc.gateway_class_name,
            "maxSurgePercent": inc.max_surge_percent,
            "stepSizePercent": inc.step_size_percent,
            "intervalSeconds": inc.interval_seconds,
        }
    return strategy


def rayservice_spec(
    service: RayServiceConfig,
    plans: list[ModelPlan],
    pool: NodePoolFacts,
    hf_token_secret: pulumi.Input[str] | None,
    shared_cache: bool = False,
    store: StoreSource | None = None,
    compile_cache: bool = False,
) -> dict[str, Any]:
    name = service.name
    auto = service.autoscaler
    autoscaler_res = {"cpu": AUTOSCALER_CPU, "memory": AUTOSCALER_MEMORY}
    return {
        "serveConfigV2": yaml.safe_dump(serve_config(service, plans, pool, shared_cache, store), sort_keys=False),
        "upgradeStrategy": upgrade_strategy(service),
        # After a NewCluster upgrade, the old cluster keeps serving open streams this long.
        "rayClusterDeletionDelaySeconds": max(60, service.graceful_shutdown_timeout_seconds),
        # Serve traffic goes to the GPU workers' proxies only; the head stays control plane.
        "excludeHeadPodFromServeSvc": True,
        "rayClusterConfig": {
            "rayVersion": ray_version(),
            "enableInTreeAutoscaling": True,
            "autoscalerOptions": {
                "upscalingMode": auto.upscaling_mode,
                "idleTimeoutSeconds": auto.idle_timeout_seconds,
                "imagePullPolicy": kube.IMAGE_PULL_POLICY,
                "resources": {"requests": dict(autoscaler_res), "limits": dict(autoscaler_res)},
                "securityContext": kube.container_security_context(),
            },
            "headGroupSpec": head_group(service, name, hf_token_secret),
            "workerGroupSpecs": [
                worker_group(
                    service,
                    name,
                    pool,
                    hf_token_secret,
                    shared_cache,
                    store,
                    compile_cache,
                    multi_node=any(p.gpus_per_replica > service.worker_gpus(pool) for p in plans),
                )
            ],
        },
    }


def kuberay_network_policy(name: str, namespace: str, operator_namespace: str) -> dict[str, Any]:
    """Lets the KubeRay operator reach the Ray pods: it submits the Serve config to and reads
    application status from the head's dashboard, and checks Serve proxies on the serve port.
    The serving namespace denies ingress from other namespaces by default."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": kube.metadata(f"{name}-allow-kuberay", namespace, kube.labels(name, "ray-llm")),
        "spec": {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": name},
                "matchExpressions": [
                    {
                        "key": "app.kubernetes.io/component",
                        "operator": "In",
                        "values": [COMPONENT_HEAD, COMPONENT_WORKER],
                    }
                ],
            },
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": operator_namespace}}}
                    ],
                    "ports": [{"protocol": "TCP", "port": DASHBOARD_PORT}, {"protocol": "TCP", "port": SERVE_PORT}],
                }
            ],
        },
    }


def api_server_network_policy(name: str, namespace: str, cidrs: list[str], ports: list[int]) -> dict[str, Any]:
    """Lets the head (its autoscaler sidecar) reach the Kubernetes API server: it patches the
    RayCluster's worker replicas. Egress rules match after the ``kubernetes`` Service's DNAT,
    so the peers are the API server endpoints (``apiServerCidrs``) on their own ports."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": kube.metadata(f"{name}-allow-apiserver", namespace, kube.labels(name, "ray-llm")),
        "spec": {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": name, "app.kubernetes.io/component": COMPONENT_HEAD}
            },
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": c}} for c in cidrs],
                    "ports": [{"protocol": "TCP", "port": p} for p in ports],
                }
            ],
        },
    }


@dataclass(frozen=True)
class RayLlmServiceArgs:
    """One RayService: its spec, the plans of its models on the worker pool, and where it runs."""

    service: RayServiceConfig
    """The Ray Serve LLM spec: models, workers, autoscaling, cache, upgrades."""
    plans: Sequence[ModelPlan]
    """Plans of ``service.models`` (same model ids)."""
    pool: NodePoolFacts
    """Facts of the worker pool: GPUs per node, taint, selector, node size."""
    context: ServingContext
    """Namespace, add-ons (KubeRay CRDs, Prometheus), StorageClasses (``ServingContext.create``)."""


class RayLlmService(pulumi.ComponentResource):
    """A RayService serving every model of one rayService, plus its monitoring."""

    endpoint: pulumi.Output[str]
    """OpenAI-compatible base URL of Ray Serve inside the cluster (``.../v1``)."""
    service_name: pulumi.Output[str]
    """Name of the Serve Service KubeRay keeps pointed at the healthy RayCluster."""
    namespace: pulumi.Output[str]
    """Namespace of the RayService."""
    model_ids: pulumi.Output[list[str]]
    """The ``model`` values clients send, one per served model."""
    name: str
    serve_service: str
    models: list[str]

    def __init__(self, name: str, args: RayLlmServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:RayLlmService", name, None, opts)
        svc, ctx = args.service, args.context
        ns = ctx.namespace
        self.name = name
        self.serve_service = serve_service_name(svc.name)
        self.models = [m.model_id for m in svc.models]
        inherited = _depends_on(opts)

        def child(*deps: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=[*inherited, *deps])

        storage_class = svc.cache.storage_class or ctx.rwx_storage_class
        shared_cache = svc.cache.shared(ctx.rwx_storage_class is not None)
        store = None
        ms = ctx.model_store
        if ms is not None:
            extra = {"concurrency": ms.args.config.concurrency}
            if ms.args.config.memory_limit_gib is not None:
                extra["memory_limit"] = ms.args.config.memory_limit_gib * 1024**3
            store = StoreSource(
                uris={m.model_id: ms.uri(m.model, m.revision or "") for m in svc.models},
                loader_extra_config=extra,
                env=ms.env(),
            )
        spec = rayservice_spec(
            svc, list(args.plans), args.pool, ctx.hf_token_secret, shared_cache, store, ctx.compile_cache
        )
        self.cache_claim = None
        if shared_cache:
            claim_spec: dict[str, Any] = {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": f"{cache_size_gib(svc, list(args.plans))}Gi"}},
            }
            if storage_class:
                claim_spec["storageClassName"] = storage_class
            # protect: a destroy, a rename or a replacement leaves the weights in place
            self.cache_claim = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-model-cache",
                metadata=kube.metadata(cache_claim_name(svc.name), ns, kube.labels(svc.name, "ray-llm")),  # pyright: ignore[reportArgumentType]
                spec=claim_spec,  # pyright: ignore[reportArgumentType]
                opts=pulumi.ResourceOptions(parent=self, depends_on=inherited, retain_on_delete=ctx.protect),
            )
        workers_sa = worker_service_account(svc.name)
        sa = kube.service_account(workers_sa, ns, kube.labels(svc.name, "ray-llm"))
        if ms is not None:
            sa["metadata"]["annotations"] = ms.annotations[workers_sa]  # the model store's reader identity
        self.worker_service_account = k8s.core.v1.ServiceAccount(f"{name}-ray-worker", **sa, opts=child())
        self.rayservice = k8s.apiextensions.CustomResource(
            f"{name}-rayservice",
            api_version=f"{RAY_GROUP}/v1",
            kind="RayService",
            metadata=kube.metadata(svc.name, ns, kube.labels(svc.name, "ray-llm")),
            spec=spec,
            opts=child(
                *ctx.addons.depends_for(RAY_GROUP),
                *ctx.addons.gpu_ready,
                self.worker_service_account,
                *([self.cache_claim] if self.cache_claim else []),
                *(ms.jobs_for([(m.model, m.revision or "") for m in svc.models]) if ms is not None else []),
            ),
        )
        np = ctx.security.network_policy
        if np.enabled:
            from llm_infra.components.addons.kuberay import NAMESPACE as KUBERAY_NAMESPACE

            for suffix, policy in (
                ("allow-kuberay", kuberay_network_policy(svc.name, ns, KUBERAY_NAMESPACE)),
                ("allow-apiserver", api_server_network_policy(svc.name, ns, np.api_server_cidrs, np.api_server_ports)),
            ):
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-{suffix}", metadata=policy["metadata"], spec=policy["spec"], opts=child()
                )

        mon = ctx.addons.monitoring
        if mon.operator_crds:
            monitor_opts = child(*ctx.addons.depends_for(MONITORING_GROUP))
            for manifest in [
                *ray_observability.pod_monitors(svc.name, ns, mon.monitor_labels),
                ray_observability.prometheus_rule(svc.name, ns, ctx.alerts, mon.monitor_labels),
            ]:
                custom_resource(manifest["metadata"]["name"], manifest, monitor_opts)
        if mon.dashboard_labels:
            cm = ray_observability.dashboard_configmap(svc.name, ns, mon.dashboard_labels)
            k8s.core.v1.ConfigMap(cm["metadata"]["name"], metadata=cm["metadata"], data=cm["data"], opts=child())

        serve = self.serve_service
        # resolve once the RayService exists (KubeRay creates the Serve Service for it)
        self.service_name = self.rayservice.id.apply(lambda _: serve)
        self.namespace = self.rayservice.id.apply(lambda _: ns)
        self.endpoint = self.rayservice.id.apply(lambda _: f"http://{serve}.{ns}.svc.cluster.local:{SERVE_PORT}/v1")
        self.model_ids = pulumi.Output.from_input(list(self.models))
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "serviceName": self.service_name,
                "namespace": self.namespace,
                "modelIds": self.model_ids,
                "serveService": self.serve_service,
                "models": self.models,
            }
        )


def _depends_on(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """The component's own dependencies (namespace, GPU nodes): children do not inherit them."""
    deps = getattr(opts, "depends_on", None) if opts else None
    if deps is None:
        return []
    if isinstance(deps, pulumi.Resource):
        return [deps]
    return [d for d in deps if isinstance(d, pulumi.Resource)]
