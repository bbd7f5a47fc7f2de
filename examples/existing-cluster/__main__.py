"""Serve one model with vLLM on a Kubernetes cluster that already exists.

llm-infra as a library, with no stack file to describe anything: the model is a typed
``VllmModelConfig``, the GPU nodes a ``NodePoolConfig``, and ``plan_model`` derives what the
model needs on them (GPUs per replica, max length, KV-cache capacity, cost) with the same
checks a stack runs; errors name this program's own fields (``spec.maxModelLen``,
``pool.gpu.memoryGib``). Then a ``ServingNamespace`` and one ``VllmService``, on the
Prometheus and KEDA the cluster already runs (``AddonsHandle.existing``).
Works the same under ``pulumi up`` and the offline render:
``python -m llm_infra render --project-dir examples/existing-cluster --stack example``.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from llm_infra import (
    AddonsHandle,
    AutoscalingConfig,
    CacheConfig,
    ConfigError,
    GpuFacts,
    NodePoolConfig,
    ServingContext,
    ServingNamespace,
    ServingNamespaceArgs,
    Taint,
    VllmModelConfig,
    VllmService,
    VllmServiceArgs,
    model_capacity,
    plan_model,
)

NAMESPACE = "llm-example"
RWX_STORAGE_CLASS: str | None = "nfs-client"
"""A ReadWriteMany class makes the weight cache shared (one Deployment, one download); None:
a ReadWriteOnce cache per replica (a StatefulSet)."""
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
PROMETHEUS_NAMESPACE = "monitoring"
"""NetworkPolicies let Prometheus in this namespace scrape the model."""
PROMETHEUS_SELECTOR = {"release": "prometheus"}
"""Labels your Prometheus selects ServiceMonitors and PrometheusRules by."""

MODEL = VllmModelConfig(
    name="qwen25-7b",
    model="Qwen/Qwen2.5-7B-Instruct",
    node_pool="gpu",
    max_model_len=16384,
    autoscaling=AutoscalingConfig(min_replicas=1, max_replicas=4, queue_depth_target=5),
    cache=CacheConfig(access_mode="ReadWriteMany" if RWX_STORAGE_CLASS else "ReadWriteOnce"),
)
"""The one model. GPUs per replica, memory and capacity follow from the pool's GPUs."""

POOL = NodePoolConfig(
    name="gpu",
    gpu=GpuFacts(model="NVIDIA L4", count=4, memory_gib=24, product_label="NVIDIA-L4", hourly_usd=3.4),
    node_selector={"nvidia.com/gpu.product": "NVIDIA-L4"},
    taint=Taint(key="nvidia.com/gpu", value="true"),
    min_nodes=1,
    max_nodes=2,
)
"""The GPU nodes the model runs on (nothing is created for them): four 24 GiB L4s per node,
selected by GPU Feature Discovery's product label, tainted for GPU workloads only."""

try:
    plan = plan_model(MODEL, POOL, autoscaler="keda", rwx_storage_class=RWX_STORAGE_CLASS)
except ConfigError as err:  # every problem at once, no traceback
    raise pulumi.RunError(err.render()) from None

# The cluster: kubeconfig as a secret (pulumi config set --secret kubeconfig < file), else
# the ambient one (KUBECONFIG / ~/.kube/config).
cfg = pulumi.Config()
provider = k8s.Provider("cluster", kubeconfig=cfg.get_secret("kubeconfig"))
in_cluster = pulumi.ResourceOptions(providers={"kubernetes": provider})

# The serving namespace: Pod Security labels, guard rails, the Hugging Face token Secret.
namespace = ServingNamespace(
    "serving",
    ServingNamespaceArgs(
        namespace=NAMESPACE,
        hf_token=cfg.get_secret("hfToken"),  # only for gated models
        monitoring_namespaces=[PROMETHEUS_NAMESPACE],
    ),
    opts=in_cluster,
)

# The model: workload, cache, Service, PDB, KEDA ScaledObject, monitors, alert rules.
service = VllmService(
    MODEL.name,
    VllmServiceArgs(
        model=MODEL,
        plan=plan,
        context=ServingContext.create(
            namespace,
            AddonsHandle.existing(
                autoscaler="keda",
                prometheus_url=PROMETHEUS_URL,
                monitor_labels=PROMETHEUS_SELECTOR,
                prometheus_namespace=PROMETHEUS_NAMESPACE,
            ),
            rwx_storage_class=RWX_STORAGE_CLASS,
        ),
    ),
    opts=pulumi.ResourceOptions(providers={"kubernetes": provider}, depends_on=[namespace]),
)

pulumi.export("endpoint", service.endpoint)
pulumi.export("namespace", service.namespace)
pulumi.export("capacity", model_capacity(plan))
# the report keys of the main program, so the offline render prints the same summary
pulumi.export("models", {MODEL.name: model_capacity(plan)})
pulumi.export("endpoints", {MODEL.name: service.endpoint})
