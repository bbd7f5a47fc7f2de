"""Components for every Pulumi language, hosted by Pulumi's Python component provider.

``provider/__main__.py`` serves the classes in ``HOSTED`` with
``pulumi.provider.experimental.component_provider_host``; the SDK's analyzer infers the
package schema from the annotations below (no ``from __future__ import annotations`` here:
the analyzer reads the annotation objects, and every annotation of a component class is one
of its outputs). Its args are plain typed fields, because the analyzer does not understand
pydantic models: each component builds the typed spec from them, validates it with the same
checks as a stack (``plan_model``), names problems by the provider's own property names, and
delegates to the Python component, so both paths render the same objects.
"""

from typing import Any, Literal, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from pydantic import ValidationError

from llm_infra.config.cluster import GpuFacts, NodePoolConfig
from llm_infra.config.errors import ConfigError, Issue, issues_from_validation_error
from llm_infra.config.model_planning import gpu_from_catalog, plan_model
from llm_infra.config.serving import VllmModelConfig

from .addons.handles import AddonsHandle
from .serving.context import ServingContext
from .serving.namespace import ServingNamespace, ServingNamespaceArgs
from .serving.vllm import VllmService, VllmServiceArgs

POOL_NAME = "gpu"
"""The one node pool a ``VllmModel`` runs on (internal: the spec's ``nodePool``)."""


class GpuArgs(TypedDict):
    """The GPUs of each node in the pool (give these or ``instanceType``)."""

    model: str
    """GPU name, e.g. ``NVIDIA L4``."""
    count: int
    """GPUs per node."""
    memory_gib: int
    """Nominal memory per GPU, GiB."""
    product_label: str
    """``nvidia.com/gpu.product`` label value set by GPU Feature Discovery, e.g. ``NVIDIA-L4``."""
    cuda_memory_gib: NotRequired[float]
    """Memory per GPU as CUDA reports it (default: the catalog's figure for the product)."""
    hourly_usd: NotRequired[float]
    """Price of one node-hour, for the cost estimate."""


class TaintArgs(TypedDict):
    """The taint on the GPU nodes; the model's pods tolerate exactly this one."""

    key: str
    """Taint key, e.g. ``nvidia.com/gpu``."""
    value: NotRequired[str]
    """Taint value (default: none)."""
    effect: NotRequired[str]
    """``NoSchedule`` (default), ``NoExecute`` or ``PreferNoSchedule``."""


class VllmModelArgs(TypedDict):
    """One model served by vLLM on GPU nodes that already exist."""

    name: str
    """Name of the Service, workload and other objects (a DNS label)."""
    model: str
    """Hugging Face repository id, e.g. ``Qwen/Qwen2.5-7B-Instruct``."""
    namespace: str
    """Namespace of the model's objects."""
    node_selector: dict[str, str]
    """Labels that select the GPU nodes, e.g. ``{"nvidia.com/gpu.product": "NVIDIA-L4"}``."""
    gpu: NotRequired[GpuArgs]
    """The nodes' GPUs, when they are not a catalogued cloud instance type."""
    instance_type: NotRequired[str]
    """Catalogued EKS instance type or GKE machine type of the GPU nodes (instead of ``gpu``)."""
    cloud: NotRequired[str]
    """Cloud of ``instanceType``: ``eks`` (default) or ``gke``."""
    taint: NotRequired[TaintArgs]
    """The GPU nodes' taint (default: none)."""
    min_nodes: NotRequired[int]
    """GPU nodes that always exist (default 0)."""
    max_nodes: NotRequired[int]
    """GPU nodes the pool can grow to (default 1): replicas must fit on them."""
    revision: NotRequired[str]
    """Commit or tag of the repository (pin it in production)."""
    served_model_name: NotRequired[str]
    """The ``model`` value clients send (default: ``name``)."""
    max_model_len: NotRequired[int]
    """Longest sequence (prompt + output) in tokens (default: min(model context, 8192))."""
    tensor_parallel_size: NotRequired[int]
    """GPUs per replica (default: the fewest that hold the weights and one maxModelLen sequence)."""
    gpu_memory_utilization: NotRequired[float]
    """Fraction of each GPU's memory vLLM may use (default 0.9)."""
    quantization: NotRequired[str]
    """vLLM ``--quantization`` method (default: the checkpoint's own)."""
    requires_hf_token: NotRequired[bool]
    """Gated repository: needs ``hfToken`` or ``hfTokenSecretName``."""
    extra_args: NotRequired[list[str]]
    """More ``vllm serve`` arguments."""
    min_replicas: NotRequired[int]
    """Fewest replicas (default 1)."""
    max_replicas: NotRequired[int]
    """Most replicas (default 2; equal to minReplicas: no autoscaling)."""
    queue_depth_target: NotRequired[float]
    """Waiting requests per replica the autoscaler aims at (default 5)."""
    cache_access_mode: NotRequired[str]
    """``ReadWriteOnce`` (default: a StatefulSet, a cache per replica) or ``ReadWriteMany``
    (a Deployment sharing one cache; needs ``rwxStorageClass``)."""
    cache_size_gib: NotRequired[int]
    """Size of the model cache volume (default: weights x 1.25 + 10 GiB)."""
    storage_class: NotRequired[str]
    """StorageClass of ReadWriteOnce caches (default: the cluster default)."""
    rwx_storage_class: NotRequired[str]
    """A ReadWriteMany StorageClass, for a shared cache."""
    autoscaler: NotRequired[str]
    """What scales the model on the cluster: ``keda`` (default when a Prometheus is given),
    ``hpa`` (prometheus-adapter) or ``none``."""
    prometheus_url: NotRequired[str]
    """The cluster's Prometheus (with the prometheus-operator CRDs): autoscaling queries,
    ServiceMonitor and alert rules."""
    prometheus_namespace: NotRequired[str]
    """Namespace of that Prometheus: the NetworkPolicies let it scrape the model."""
    monitor_labels: NotRequired[dict[str, str]]
    """Labels the Prometheus selects ServiceMonitors and PrometheusRules by."""
    dashboard_labels: NotRequired[dict[str, str]]
    """Labels the Grafana dashboard sidecar loads ConfigMaps by (default: no dashboard)."""
    create_namespace: NotRequired[bool]
    """Create the namespace with its guard rails (default true); false: it exists."""
    hf_token: NotRequired[pulumi.Input[str]]
    """Secret: a Hugging Face token, stored in the Secret ``hf-token`` of the namespace."""
    hf_token_secret_name: NotRequired[pulumi.Input[str]]
    """An existing Secret (key ``token``) with the Hugging Face token, instead of ``hfToken``."""
    kubeconfig: NotRequired[pulumi.Input[str]]
    """Secret: kubeconfig of the cluster (default: the program's Kubernetes provider)."""


_SPEC_PATHS = {
    "spec.autoscaling.minReplicas": "minReplicas",
    "spec.autoscaling.maxReplicas": "maxReplicas",
    "spec.autoscaling.queueDepthTarget": "queueDepthTarget",
    "spec.autoscaling": "minReplicas",
    "spec.cache.accessMode": "cacheAccessMode",
    "spec.cache.sizeGib": "cacheSizeGib",
    "spec.nodePool": "nodeSelector",
    "spec": "",
    "pool.gpu": "gpu",
    "pool.nodeSelector": "nodeSelector",
    "pool.taint": "taint",
    "pool.minNodes": "minNodes",
    "pool.maxNodes": "maxNodes",
    "pool": "gpu",
    "rwx_storage_class": "rwxStorageClass",
    "prometheus": "prometheusUrl",
}
"""plan_model / pydantic paths -> this component's property names (longest prefix first)."""


def _property(path: str) -> str:
    for prefix in sorted(_SPEC_PATHS, key=len, reverse=True):
        if path == prefix or path.startswith((f"{prefix}.", f"{prefix}[")):
            ours = _SPEC_PATHS[prefix] + path[len(prefix) :]
            return ours.lstrip(".") or path
    return path


def _fail(name: str, issues: list[Issue]) -> ConfigError:
    return ConfigError(f"VllmModel {name}", [Issue(_property(i.path), i.message) for i in issues], subject="component")


def _spec_and_pool(args: VllmModelArgs) -> tuple[VllmModelConfig, NodePoolConfig]:
    """The typed model spec and pool from the plain args; errors name the args' properties."""
    name = str(args.get("name", ""))
    autoscaling = {
        k: args[a]  # type: ignore[literal-required]
        for k, a in (
            ("minReplicas", "min_replicas"),
            ("maxReplicas", "max_replicas"),
            ("queueDepthTarget", "queue_depth_target"),
        )
        if a in args
    }
    cache = {
        k: args[a]  # type: ignore[literal-required]
        for k, a in (("accessMode", "cache_access_mode"), ("sizeGib", "cache_size_gib"))
        if a in args
    }
    spec_values: dict[str, Any] = {
        "name": name,
        "model": args.get("model"),
        "nodePool": POOL_NAME,
        "autoscaling": autoscaling,
        "cache": cache,
    }
    for field in (
        "revision",
        "served_model_name",
        "max_model_len",
        "tensor_parallel_size",
        "gpu_memory_utilization",
        "quantization",
        "requires_hf_token",
        "extra_args",
    ):
        if field in args:
            alias = VllmModelConfig.model_fields[field].alias or field
            spec_values[alias] = args[field]  # type: ignore[literal-required]
    issues: list[Issue] = []
    spec = None
    try:
        spec = VllmModelConfig.model_validate(spec_values)
    except ValidationError as err:
        issues += [Issue(f"spec.{i.path}", i.message) for i in issues_from_validation_error(err, VllmModelConfig)]

    pool_values: dict[str, Any] = {"name": POOL_NAME, "nodeSelector": args.get("node_selector")}
    for key, field in (("minNodes", "min_nodes"), ("maxNodes", "max_nodes"), ("taint", "taint")):
        if field in args:
            pool_values[key] = args[field]  # type: ignore[literal-required]
    if "gpu" in args and "instance_type" in args:
        issues.append(Issue("instanceType", "give gpu or instanceType, not both"))
    elif "instance_type" in args:
        try:
            pool_values["gpu"] = gpu_from_catalog(args.get("cloud", "eks"), args["instance_type"]).model_dump(
                by_alias=True, exclude_none=True
            )
        except ConfigError as err:
            issues += [Issue("instanceType", i.message) for i in err.issues]
    elif "gpu" in args:
        pool_values["gpu"] = {GpuFacts.model_fields[k].alias or k: v for k, v in args["gpu"].items()}
    else:
        issues.append(Issue("gpu", "give the nodes' gpu facts or a catalogued instanceType"))
    pool = None
    try:
        pool = NodePoolConfig.model_validate(pool_values)
    except ValidationError as err:
        issues += [Issue(f"pool.{i.path}", i.message) for i in issues_from_validation_error(err, NodePoolConfig)]
    if issues or spec is None or pool is None:
        raise _fail(name, issues)
    return spec, pool


class VllmModel(pulumi.ComponentResource):
    """One model served by vLLM on existing GPU nodes: the workload with its model cache, a
    Service, a PodDisruptionBudget, autoscaling on queue depth (KEDA or an HPA), a
    ServiceMonitor, alert rules and a dashboard, and optionally the namespace with its guard
    rails. GPUs per replica and memory follow from the model and the nodes' GPUs; invalid
    settings fail before anything is declared, naming the property."""

    endpoint: pulumi.Output[str]
    """OpenAI-compatible base URL inside the cluster: ``http://<name>.<namespace>.svc.cluster.local:8000/v1``."""
    service_name: pulumi.Output[str]
    """Name of the ClusterIP Service in front of the model's pods."""
    namespace: pulumi.Output[str]
    """Namespace of the model's objects."""
    served_model_name: pulumi.Output[str]
    """The ``model`` value clients send."""
    workload_kind: pulumi.Output[str]
    """``Deployment`` (shared ReadWriteMany cache) or ``StatefulSet`` (a cache per replica)."""
    tensor_parallel_size: pulumi.Output[int]
    """GPUs per replica, as planned."""
    max_model_len: pulumi.Output[int]
    """Longest sequence in tokens, as planned."""
    kv_cache_tokens: pulumi.Output[int]
    """Tokens of KV cache per replica at maxModelLen (the capacity estimate)."""

    def __init__(self, name: str, args: VllmModelArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:index:VllmModel", name, None, opts)
        spec, pool = _spec_and_pool(args)
        autoscaler: Literal["keda", "hpa", "none"] = args.get(  # type: ignore[assignment]
            "autoscaler", "keda" if "prometheus_url" in args else "none"
        )
        if autoscaler not in ("keda", "hpa", "none"):
            raise _fail(spec.name, [Issue("autoscaler", f"'{autoscaler}' is not one of keda, hpa, none")])
        try:
            plan = plan_model(
                spec,
                pool,
                autoscaler=autoscaler,
                prometheus="prometheus_url" in args,
                rwx_storage_class=args.get("rwx_storage_class"),
                hf_token="hf_token" in args or "hf_token_secret_name" in args,
            )
        except ConfigError as err:
            raise _fail(spec.name, err.issues) from None

        child = pulumi.ResourceOptions(parent=self)
        if "kubeconfig" in args:
            provider = k8s.Provider(f"{name}-k8s", kubeconfig=args["kubeconfig"], opts=child)
            child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": provider})
        addons = AddonsHandle.existing(
            autoscaler=autoscaler,
            prometheus_url=args.get("prometheus_url"),
            monitor_labels=args.get("monitor_labels"),
            dashboard_labels=args.get("dashboard_labels"),
            prometheus_namespace=args.get("prometheus_namespace"),
        )
        namespace_args = ServingNamespaceArgs(
            namespace=args["namespace"],
            hf_token=args.get("hf_token"),
            monitoring_namespaces=[args["prometheus_namespace"]] if "prometheus_namespace" in args else [],
        )
        depends: list[pulumi.Resource] = []
        if args.get("create_namespace", True):
            serving_ns = ServingNamespace(f"{name}-namespace", namespace_args, opts=child)
            context = ServingContext.create(
                serving_ns,
                addons,
                storage_class=args.get("storage_class"),
                rwx_storage_class=args.get("rwx_storage_class"),
            )
            depends.append(serving_ns)
        else:
            context = ServingContext(
                namespace=args["namespace"],
                addons=addons,
                storage_class=args.get("storage_class"),
                rwx_storage_class=args.get("rwx_storage_class"),
            )
        if "hf_token_secret_name" in args:
            context = ServingContext(**{**vars(context), "hf_token_secret": args["hf_token_secret_name"]})
        service = VllmService(
            spec.name,
            VllmServiceArgs(model=spec, plan=plan, context=context),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends)),
        )
        self.endpoint = service.endpoint
        self.service_name = service.service_name
        self.namespace = service.namespace
        self.served_model_name = service.served_model_name
        self.workload_kind = service.workload_kind
        self.tensor_parallel_size = service.tensor_parallel_size
        self.max_model_len = pulumi.Output.from_input(plan.max_model_len)
        self.kv_cache_tokens = pulumi.Output.from_input(plan.capacity.kv_cache_tokens)
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "serviceName": self.service_name,
                "namespace": self.namespace,
                "servedModelName": self.served_model_name,
                "workloadKind": self.workload_kind,
                "tensorParallelSize": self.tensor_parallel_size,
                "maxModelLen": self.max_model_len,
                "kvCacheTokens": self.kv_cache_tokens,
            }
        )


HOSTED: list[type[pulumi.ComponentResource]] = [VllmModel]
"""The components ``provider/__main__.py`` hosts."""
