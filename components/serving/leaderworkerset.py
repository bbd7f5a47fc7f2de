"""A model whose replica spans nodes, served by vLLM on a LeaderWorkerSet (no Ray Serve).

The recipe vLLM documents for Kubernetes (vllm docs/deployment/frameworks/lws.md): one
LeaderWorkerSet (leaderworkerset.x-k8s.io/v1, LWS v0.10.0) whose every group is one replica of
``pipelineParallelSize`` pods (``leaderWorkerTemplate.size``), each holding
``tensorParallelSize`` GPUs of one node. The leader starts a Ray head and waits for the group
(``examples/online_serving/multi-node-serving.sh leader --ray_cluster_size=$(LWS_GROUP_SIZE)``,
shipped in the vllm-openai image under /vllm-workspace), then runs ``vllm serve`` with
``--pipeline-parallel-size`` and the Ray executor; the workers join the leader's Ray cluster
(``multi-node-serving.sh worker --ray_address=$(LWS_LEADER_ADDRESS)``; LWS injects both
variables). ``RecreateGroupOnPodRestart`` restarts the whole group when one member fails: a
pipeline with a stage missing cannot serve.

Around it: a Service on the leaders only (they run the API server), probes on the leader,
KEDA scaling the number of groups through the LWS scale subresource (``.spec.replicas``; the
HPA selects the leaders by ``.status.hpaPodSelector``), the shared model cache (one RWX PVC
the leader fills), monitoring: the vLLM alerts on the leaders' metrics, an alert when a group
is missing a running member, and per-rank GPU panels (DCGM series of every pod of the group).
"""

# `pyright: ignore[reportArgumentType]` on a resource's metadata/spec: pulumi_kubernetes types them as its
# *Args TypedDicts; these manifests are plain dicts, validated against the Kubernetes OpenAPI schema of the
# pinned version by tests/test_rendered_schemas.py instead.

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components import k8s as kube
from llm_infra.components.addons.handles import KEDA_GROUP, LWS_GROUP, MONITORING_GROUP
from llm_infra.config import ModelPlan, versions
from llm_infra.config.multinode import NCCL_ENV, MultiNodeModelConfig
from llm_infra.config.multinode_plan import RAY_OBJECT_STORE_GIB, stage_pod_resources
from llm_infra.config.stack import AlertThresholds

from . import autoscaling, dashboards, metrics, observability
from .context import ServingContext
from .namespace import hf_token_env, hf_token_mount, hf_token_volume
from .vllm import (
    CACHE_MOUNT,
    CACHE_VOLUME,
    DOWNLOAD_EXCLUDE,
    DOWNLOAD_RESOURCES,
    FIRST_DOWNLOAD_SECONDS,
    GPU_RESOURCE,
    HF_HUB_CACHE,
    HOME_MOUNT,
    HOME_VOLUME,
    MODEL_STORE_READER_LABEL,
    PORT,
    PORT_NAME,
    PROBE_PERIOD_SECONDS,
    SHM_VOLUME,
    TMP_MOUNT,
    TMP_VOLUME,
    VLLM_UID,
    VLLM_USER,
    compile_cache_env,
    server_probes,
    streamer_args,
    vllm_args,
)

LWS_API = f"{LWS_GROUP}/v1"
COMPONENT = "vllm-lws"
LEADER_CONTAINER = "vllm-leader"
WORKER_CONTAINER = "vllm-worker"
ROLE_LABEL = "llm-infra/role"
MULTI_NODE_SCRIPT = "/vllm-workspace/examples/online_serving/multi-node-serving.sh"
"""vLLM's helper that starts (leader) or joins (worker) the group's Ray cluster; the vllm-openai
image copies examples/ to /vllm-workspace (the path vLLM's LWS guide runs it from)."""
RAY_PORT = 6379
"""The helper's default ``--ray_port`` (the Ray head's GCS port)."""
RESTART_POLICY = "RecreateGroupOnPodRestart"
GROUP_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/group-index"
ALERT_GROUP_INCOMPLETE = "VllmMultiNodeGroupIncomplete"
RUNBOOK_FILE = "multi-node.md"
KSM_POD_PHASE = "kube_pod_status_phase"
KSM_POD_INFO = "kube_pod_info"


@dataclass(frozen=True)
class MultiNodeServiceArgs:
    """What a multi-node model needs: its spec, its plan and the serving context."""

    model: MultiNodeModelConfig
    """The model spec (``multiNodeModels``): repository, vLLM engine settings, pipeline stages."""
    plan: ModelPlan
    """What the spec implies on its node pool (``StackPlan.multinode_models[name]``)."""
    context: ServingContext
    """Namespace, add-ons (Prometheus, autoscaler), StorageClasses (``ServingContext.create``)."""


def pod_name_regex(name: str) -> str:
    """Every pod of every group: leaders ``<name>-<group>``, workers ``<name>-<group>-<index>``
    (LWS names the leader StatefulSet after the LWS and each group's workers ``<name>-<group>``)."""
    return f"{name}-[0-9]+(-[0-9]+)?"


def cache_size_gib(model: MultiNodeModelConfig, plan: ModelPlan) -> int:
    if model.cache.size_gib is not None:
        return model.cache.size_gib
    return math.ceil(plan.capacity.weights_gib * 1.25 + 10)


def startup_window_seconds(model: MultiNodeModelConfig, plan: ModelPlan) -> int:
    """``startupTimeoutSeconds``, or the plan's cold-start window of the group (engine start x
    margin plus the workers' node and image pull: config/cold_start_plan.py)."""
    if model.startup_timeout_seconds is not None:
        return model.startup_timeout_seconds
    assert plan.cold_start is not None, "every LeaderWorkerSet plan carries its cold-start estimate"
    return plan.cold_start.startup_window_seconds


def group_timeout_seconds(model: MultiNodeModelConfig, plan: ModelPlan) -> int:
    """How long a group may take to assemble: the leader's first download plus its start-up
    window. Workers retry joining this long (``--ray_init_timeout``) instead of the helper's
    300 s, after which a worker would exit and ``RecreateGroupOnPodRestart`` restart the group."""
    return startup_window_seconds(model, plan) + FIRST_DOWNLOAD_SECONDS


def vllm_serve_args(
    model: MultiNodeModelConfig, plan: ModelPlan, store_uri: str | None = None, streamer: list[str] | None = None
) -> list[str]:
    """``vllm serve`` on the leader with the same arguments as a single-node model (vllm.vllm_args):
    the stages run over the group's Ray cluster. With the model store every stage streams its own
    layers (the workers read the store with the same ServiceAccount's identity)."""
    return ["vllm", "serve", *vllm_args(model, plan, store_uri, streamer)]


def _ray_start_params() -> list[str]:
    return [f"--object-store-memory={RAY_OBJECT_STORE_GIB * 1024**3}", "--disable-usage-stats"]


def leader_command(
    model: MultiNodeModelConfig, plan: ModelPlan, store_uri: str | None = None, streamer: list[str] | None = None
) -> list[str]:
    """Ray head, wait for all ``LWS_GROUP_SIZE`` members, then ``exec vllm serve`` (PID 1 of
    the shell's place gets SIGTERM on shutdown)."""
    helper = [
        "bash",
        MULTI_NODE_SCRIPT,
        "leader",
        "--ray_cluster_size=$(LWS_GROUP_SIZE)",
        f"--ray_port={RAY_PORT}",
        f"--ray_init_timeout={group_timeout_seconds(model, plan)}",
        *_ray_start_params(),
    ]
    serve = vllm_serve_args(model, plan, store_uri, streamer)
    return ["sh", "-c", f"{' '.join(helper)} && exec {shlex.join(serve)}"]


def worker_command(model: MultiNodeModelConfig, plan: ModelPlan) -> list[str]:
    """Join the leader's Ray cluster and block (``ray start --block``): the container ends, and
    LWS recreates the group, when the raylet loses the head."""
    helper = [
        "bash",
        MULTI_NODE_SCRIPT,
        "worker",
        "--ray_address=$(LWS_LEADER_ADDRESS)",
        f"--ray_port={RAY_PORT}",
        f"--ray_init_timeout={group_timeout_seconds(model, plan)}",
        *_ray_start_params(),
    ]
    return ["sh", "-c", " ".join(helper)]


def download_command(model: MultiNodeModelConfig) -> list[str]:
    cmd = ["hf", "download", model.model, "--cache-dir", HF_HUB_CACHE]
    if model.revision is not None:
        cmd += ["--revision", model.revision]
    for pattern in DOWNLOAD_EXCLUDE:
        cmd += ["--exclude", pattern]
    return cmd


def startup_failure_threshold(model: MultiNodeModelConfig, plan: ModelPlan) -> int:
    return math.ceil(startup_window_seconds(model, plan) / PROBE_PERIOD_SECONDS)


def pod_labels(name: str, role: str) -> dict[str, str]:
    return {**kube.labels(name, COMPONENT), ROLE_LABEL: role}


def leader_selector(name: str) -> dict[str, str]:
    return {**kube.selector(name, COMPONENT), ROLE_LABEL: "leader"}


def _pod_spec(
    name: str,
    model: MultiNodeModelConfig,
    plan: ModelPlan,
    ctx: ServingContext,
    container: dict[str, Any],
    init: list[dict[str, Any]],
) -> dict[str, Any]:
    res = stage_pod_resources(model, plan)
    volumes: list[dict[str, Any]] = [
        {"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": f"{name}-model-cache"}},
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": f"{res.shm_gib}Gi"}},
        {"name": HOME_VOLUME, "emptyDir": {}},
        {"name": TMP_VOLUME, "emptyDir": {}},
    ]
    if ctx.hf_token_secret:
        volumes.append(hf_token_volume(ctx.hf_token_secret))
    as_root = ctx.security.vllm_run_as_root
    spec: dict[str, Any] = {
        "enableServiceLinks": False,
        "serviceAccountName": name,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": model.termination_grace_period_seconds,
        "securityContext": kube.pod_security_context(run_as_non_root=not as_root, uid=None if as_root else VLLM_UID),
        "tolerations": plan.pool.tolerations(),
        "containers": [container],
        "volumes": volumes,
    }
    if init:
        spec["initContainers"] = init
    if plan.pool.selector:
        spec["nodeSelector"] = dict(plan.pool.selector)
    return spec


def _env(ctx: ServingContext, model: MultiNodeModelConfig) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "HF_HOME", "value": CACHE_MOUNT},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
        {"name": "HOME", "value": HOME_MOUNT},
    ]
    if ctx.model_store is not None:
        env += ctx.model_store.env()
    if ctx.compile_cache:
        # every stage compiles its own layers: the group's shared volume keeps them for the next start
        env += compile_cache_env(model)
    if not ctx.security.vllm_run_as_root:
        env.append({"name": "USER", "value": VLLM_USER})
    if ctx.hf_token_secret:
        env.append(hf_token_env())
    return env


def _mounts(ctx: ServingContext) -> list[dict[str, Any]]:
    mounts = [
        {"name": CACHE_VOLUME, "mountPath": CACHE_MOUNT},
        {"name": SHM_VOLUME, "mountPath": "/dev/shm"},
        {"name": HOME_VOLUME, "mountPath": HOME_MOUNT},
        {"name": TMP_VOLUME, "mountPath": TMP_MOUNT},
    ]
    return mounts + ([hf_token_mount()] if ctx.hf_token_secret else [])


def leader_worker_set(
    name: str, model: MultiNodeModelConfig, plan: ModelPlan, ctx: ServingContext, replicas: int
) -> dict[str, Any]:
    """The LeaderWorkerSet manifest (``.spec`` and metadata)."""
    res = stage_pod_resources(model, plan)
    compute = {
        "cpu": autoscaling.quantity(res.cpu),
        "memory": f"{res.memory_gib}Gi",
        GPU_RESOURCE: str(plan.tensor_parallel_size),
    }
    env = _env(ctx, model)
    store = ctx.model_store
    store_uri = store.uri(model.model, model.revision or "") if store is not None else None
    streamer = (
        streamer_args(store.args.config.concurrency, store.args.config.memory_limit_gib) if store is not None else None
    )
    run_env = [*env, *[dict(e) for e in NCCL_ENV], {"name": "VLLM_NO_USAGE_STATS", "value": "1"}]
    run_env.append({"name": "DO_NOT_TRACK", "value": "1"})
    mounts = _mounts(ctx)
    security = kube.container_security_context(read_only_root=True)
    leader = {
        "name": LEADER_CONTAINER,
        "image": versions.VLLM_IMAGE,
        "imagePullPolicy": kube.IMAGE_PULL_POLICY,
        "command": leader_command(model, plan, store_uri, streamer),
        "ports": [
            {"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"},
            {"name": "ray-gcs", "containerPort": RAY_PORT, "protocol": "TCP"},
        ],
        "env": run_env,
        "resources": {"requests": compute, "limits": compute},
        **server_probes(startup_failure_threshold(model, plan)),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(model.pre_stop_sleep_seconds)]}}},
        "volumeMounts": mounts,
        "securityContext": security,
    }
    worker = {
        "name": WORKER_CONTAINER,
        "image": versions.VLLM_IMAGE,
        "imagePullPolicy": kube.IMAGE_PULL_POLICY,
        "command": worker_command(model, plan),
        "env": run_env,
        "resources": {"requests": compute, "limits": compute},
        "volumeMounts": mounts,
        "securityContext": security,
    }
    download = {
        "name": "model-download",
        "image": versions.VLLM_IMAGE,
        "imagePullPolicy": kube.IMAGE_PULL_POLICY,
        "command": download_command(model),
        "env": env,
        "resources": {"requests": DOWNLOAD_RESOURCES, "limits": DOWNLOAD_RESOURCES},
        "volumeMounts": [m for m in mounts if m["name"] != SHM_VOLUME],
        "securityContext": security,
    }
    annotations = {"kubectl.kubernetes.io/default-container": LEADER_CONTAINER, **kube.DO_NOT_DISRUPT}
    # weights streamed from the model store need no download into the group's cache
    leader_init = [] if store is not None else [download]
    # store readers may reach the GKE metadata server (Workload Identity; components/serving/model_store.py)
    reader = {MODEL_STORE_READER_LABEL: "true"} if store is not None else {}
    labels = kube.labels(name, COMPONENT)
    rollout = plan.rollout
    return {
        "apiVersion": LWS_API,
        "kind": "LeaderWorkerSet",
        "metadata": kube.metadata(
            name,
            ctx.namespace,
            labels,
            annotations={"pulumi.com/timeoutSeconds": str(group_timeout_seconds(model, plan))},
        ),
        "spec": {
            "replicas": replicas,
            "startupPolicy": "LeaderCreated",
            # whole groups roll: surge one where the pool holds it at maxReplicas (feasibility)
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {
                    "maxSurge": rollout.max_surge,
                    "maxUnavailable": rollout.max_unavailable,
                },
            },
            "networkConfig": {"subdomainPolicy": "Shared"},
            "leaderWorkerTemplate": {
                "size": plan.pipeline_parallel_size,
                "restartPolicy": RESTART_POLICY,
                "leaderTemplate": {
                    "metadata": {"labels": {**pod_labels(name, "leader"), **reader}, "annotations": annotations},
                    "spec": _pod_spec(name, model, plan, ctx, leader, leader_init),
                },
                "workerTemplate": {
                    "metadata": {
                        "labels": {**pod_labels(name, "worker"), **reader},
                        "annotations": {**annotations, "kubectl.kubernetes.io/default-container": WORKER_CONTAINER},
                    },
                    "spec": _pod_spec(name, model, plan, ctx, worker, []),
                },
            },
        },
    }


def scaled_object(
    name: str,
    namespace: str,
    labels: dict[str, str],
    scope: observability.ModelScope,
    model: MultiNodeModelConfig,
    url: str,
) -> dict[str, Any]:
    """KEDA scales groups: the LWS scale subresource (LWS CRD v0.10.0: specReplicasPath
    ``.spec.replicas``, labelSelectorPath ``.status.hpaPodSelector``, the leaders); the queue
    and KV-cache totals are divided by the groups (AverageValue)."""
    manifest = autoscaling.scaled_object(
        name,
        namespace,
        labels=labels,
        target_kind="LeaderWorkerSet",
        target_name=name,
        scope=scope,
        autoscaling=model.autoscaling,
        prometheus_url=url,
    )
    manifest["spec"]["scaleTargetRef"] = {"apiVersion": LWS_API, "kind": "LeaderWorkerSet", "name": name}
    return manifest


def _group_of(selector: str, metric: str, name: str) -> str:
    return f'label_replace({metric}{selector}, "group", "$1", "pod", "{name}-([0-9]+)(-[0-9]+)?")'


def running_members_query(namespace: str, name: str) -> str:
    """Running pods per group (``group`` label from the pod name)."""
    sel = observability.label_selector(namespace=namespace, pod__re=pod_name_regex(name), phase="Running")
    return f"count by (namespace, group) ({_group_of(sel, KSM_POD_PHASE, name)} == 1)"


def missing_members_query(namespace: str, name: str, size: int) -> str:
    """Members of each group that are not running: ``size`` minus the running ones, or all of
    them for a group whose leader exists but none of whose pods runs."""
    leaders = observability.label_selector(namespace=namespace, pod__re=f"{name}-[0-9]+")
    groups = f"count by (namespace, group) ({_group_of(leaders, KSM_POD_INFO, name)})"
    return f"({size} - {running_members_query(namespace, name)}) or on (namespace, group) ({size} * {groups})"


def group_alert_rule(name: str, namespace: str, model_name: str, size: int, alerts: AlertThresholds) -> dict[str, Any]:
    """A group missing a running member cannot serve (every stage holds layers)."""
    for_ = alerts.group_member_lost_for
    return {
        "alert": ALERT_GROUP_INCOMPLETE,
        "expr": f"({missing_members_query(namespace, name, size)}) > 0",
        "for": for_,
        "labels": {"severity": "critical", "model_name": model_name, "llm_service": name},
        "annotations": {
            "summary": f"{model_name}: group {{{{ $labels.group }}}} is missing members",
            "description": f'{{{{ $value | printf "%.0f" }}}} of the {size} pods of group {{{{ $labels.group }}}} of '
            f"{name} have not been running for {for_}: the replica cannot serve (a node lost, or a pod Pending "
            "for a GPU node or quota); LWS recreates the whole group once a member restarts.",
            "runbook_url": f"{alerts.runbook_base_url}/{RUNBOOK_FILE}#{ALERT_GROUP_INCOMPLETE.lower()}",
        },
    }


def rank_panels(scope: observability.ModelScope, namespace: str, name: str, gpu_metrics: bool) -> list:
    """Per-rank rows of the dashboard: members per group, and each pod's (stage's) GPUs."""
    panels = [
        dashboards._panel(
            "Running members per group",
            "short",
            "Pods of each LeaderWorkerSet group in phase Running; below the group size the replica cannot serve.",
            [(running_members_query(namespace, name), "group {{group}}")],
        )
    ]
    if gpu_metrics:
        gsel = scope.gpu()
        panels += [
            dashboards._panel(
                "GPU utilization by rank",
                "percent",
                "Mean DCGM duty cycle of each pod's GPUs: one line per pipeline stage (leader <name>-<group>, "
                "workers <name>-<group>-<index>); an idle stage means a pipeline bubble.",
                [(f"avg by (pod) ({metrics.DCGM_GPU_UTIL}{gsel})", "{{pod}}")],
            )
            .min(0)
            .max(100),
            dashboards._panel(
                "GPU memory used by rank",
                "mbytes",
                "Frame buffer in use per pod: every stage reserves gpuMemoryUtilization of its GPUs.",
                [(f"sum by (pod) ({metrics.DCGM_FB_USED}{gsel})", "{{pod}}")],
            ),
        ]
    return panels


class MultiNodeVllmService(pulumi.ComponentResource):
    """One multi-node model: LeaderWorkerSet, cache, leader Service, KEDA, monitoring."""

    def __init__(self, name: str, args: MultiNodeServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:MultiNodeVllmService", name, None, opts)
        model, plan, ctx = args.model, args.plan, args.context
        ns = ctx.namespace
        self.name = name
        self.endpoint = f"http://{name}.{ns}.svc.cluster.local:{PORT}/v1"
        deps = list(_depends(opts))

        def child(*extra: Any, **kw: Any) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=[*deps, *extra] or None, **kw)

        a = model.autoscaling
        scaled = a.min_replicas != a.max_replicas and ctx.addons.autoscaler == "keda"
        labels = kube.labels(name, COMPONENT, **{"app.kubernetes.io/version": versions.VLLM_IMAGE.rsplit(":", 1)[1]})
        mon = ctx.addons.monitoring
        self.scope = observability.ModelScope(
            namespace=ns,
            model_name=model.served_name,
            service=name,
            pod_regex=pod_name_regex(name),
            # LWS names the leaders' StatefulSet after itself: its ready replicas are ready groups
            workload_kind="StatefulSet",
            workload_name=name,
            hpa_name=autoscaling.keda_hpa_name(name) if scaled else None,
        )
        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": f"{cache_size_gib(model, plan)}Gi"}},
        }
        storage_class = model.cache.storage_class or ctx.rwx_storage_class
        if storage_class:
            claim_spec["storageClassName"] = storage_class
        self.cache_claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-model-cache",
            metadata=kube.metadata(f"{name}-model-cache", ns, labels),  # pyright: ignore[reportArgumentType]
            spec=claim_spec,  # pyright: ignore[reportArgumentType]
            opts=child(retain_on_delete=ctx.protect),
        )
        store = ctx.model_store
        sa = kube.service_account(name, ns, labels)
        if store is not None:
            # the model store's reader identity (IRSA role / Google service account): leader and workers
            sa["metadata"]["annotations"] = store.annotations[name]
        self.service_account = k8s.core.v1.ServiceAccount(name, **sa, opts=child())
        manifest = leader_worker_set(name, model, plan, ctx, a.min_replicas)
        self.workload = observability.custom_resource(
            f"{name}-lws",
            manifest,
            child(
                self.cache_claim,
                self.service_account,
                *ctx.addons.depends_for(LWS_GROUP),
                *ctx.addons.gpu_ready,
                *(store.jobs_for([(model.model, model.revision or "")]) if store is not None else []),
                ignore_changes=["spec.replicas"] if scaled else None,
            ),
        )
        self.service = k8s.core.v1.Service(
            name,
            metadata=kube.metadata(name, ns, labels),  # pyright: ignore[reportArgumentType]
            spec={  # pyright: ignore[reportArgumentType]
                "type": "ClusterIP",
                "selector": leader_selector(name),
                "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
            },
            opts=child(),
        )
        self.scaler = None
        if scaled:
            assert mon.prometheus_url is not None, "validated: autoscaling needs Prometheus"
            self.scaler = observability.custom_resource(
                f"{name}-scaledobject",
                scaled_object(name, ns, labels, self.scope, model, mon.prometheus_url),
                child(self.workload, *ctx.addons.depends_for(KEDA_GROUP)),
            )
        if mon.operator_crds:
            monitoring_deps = ctx.addons.depends_for(MONITORING_GROUP)
            observability.custom_resource(
                f"{name}-servicemonitor",
                observability.service_monitor(
                    name, ns, labels={**labels, **mon.monitor_labels}, selector=leader_selector(name), port=PORT_NAME
                ),
                child(self.service, *monitoring_deps),
            )
            rules = observability.alert_rules(self.scope, ctx.alerts, gpu_metrics=mon.gpu_metrics)
            rules.append(group_alert_rule(name, ns, model.served_name, plan.pipeline_parallel_size, ctx.alerts))
            observability.custom_resource(
                f"{name}-rules",
                observability.prometheus_rule(
                    name,
                    ns,
                    labels={**labels, **mon.monitor_labels},
                    groups=[{"name": f"vllm-lws.{ns}.{name}", "rules": rules}],
                ),
                child(*monitoring_deps),
            )
        if mon.dashboard_labels:
            board = dashboards.model_dashboard(
                self.scope,
                title=f"vLLM multi-node / {ns} / {name}",
                uid=dashboards.dashboard_uid(ns, name),
                gpu_metrics=mon.gpu_metrics,
                extra_rows=[("Groups and ranks", rank_panels(self.scope, ns, name, mon.gpu_metrics))],
            )
            cm = dashboards.dashboard_configmap(
                f"{name}-dashboard", ns, labels={**labels, **mon.dashboard_labels}, dashboard_json=board
            )
            k8s.core.v1.ConfigMap(f"{name}-dashboard", metadata=cm["metadata"], data=cm["data"], opts=child())
        self.register_outputs({"endpoint": self.endpoint, "groups": a.min_replicas})


def _depends(opts: pulumi.ResourceOptions | None) -> list[Any]:
    deps = opts.depends_on if opts is not None else None
    if deps is None:
        return []
    return list(deps) if isinstance(deps, (list, tuple)) else [deps]
