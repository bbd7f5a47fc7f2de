"""Serve one model with vLLM on a Kubernetes cluster that already exists.

Uses llm-infra as a library and wires its components by hand instead of ``LlmPlatform``:
a typed ``VllmModelConfig`` in code, cluster facts from the stack file, one
``config.load_stack_config`` call that validates both and derives the plan (tensor
parallelism, capacity, cost), then ExistingCluster -> ClusterAddons -> ServingNamespace ->
VllmService. Works the same under ``pulumi up`` and the offline render:
``python -m llm_infra render --project-dir examples/existing-cluster --stack example``.
"""

from __future__ import annotations

from typing import Any

import pulumi

from llm_infra.components import (
    AddonsArgs,
    ClusterAddons,
    ExistingCluster,
    ExistingClusterArgs,
    ServingContext,
    ServingNamespace,
    ServingNamespaceArgs,
    VllmService,
    VllmServiceArgs,
    capacity_report,
)
from llm_infra.components.reports import node_pool_report, plan_warnings, system_pool_report
from llm_infra.config import ConfigError, Issue, StackPlan, load_stack_config
from llm_infra.config.serving import AutoscalingConfig, CacheConfig, VllmModelConfig

MODEL = VllmModelConfig(
    name="qwen25-7b",
    model="Qwen/Qwen2.5-7B-Instruct",
    node_pool="gpu",
    max_model_len=16384,
    autoscaling=AutoscalingConfig(min_replicas=1, max_replicas=4, queue_depth_target=5),
)
"""The one model. GPUs per replica, memory and capacity follow from the gpuPool facts."""


def with_cache_for(model: VllmModelConfig, cluster: dict[str, Any]) -> VllmModelConfig:
    """One shared ReadWriteMany weight cache where the cluster has such a class (a Deployment:
    new replicas start without downloading), else one ReadWriteOnce cache per replica (a
    StatefulSet)."""
    if cluster.get("rwxStorageClass"):
        return model.model_copy(update={"cache": CacheConfig(access_mode="ReadWriteMany")})
    return model


CREDENTIALS = ("kubeconfig", "hfToken")
"""Optional secrets: pulumi config set --secret kubeconfig < file / hfToken (gated models)."""

SCHEMA_TO_STACK_FILE = {
    "cluster.existing": "cluster",
    "cluster.nodePools[0]": "gpuPool",
    "addons.monitoring": "prometheus",
    "models[0]": "MODEL",
}
"""Where our stack-file keys (and MODEL) sit in the StackConfig schema, for error paths."""


def _user_path(path: str) -> str:
    for schema, ours in SCHEMA_TO_STACK_FILE.items():
        if path == schema or path.startswith((f"{schema}.", f"{schema}[")):
            return ours + path[len(schema) :]
    return path


def _stored_encrypted(key: str) -> bool:
    full = f"{pulumi.get_project()}:{key}"
    return pulumi.runtime.is_config_secret(full) or full in pulumi.runtime.get_config_secret_keys_env()


def plan_stack(cfg: pulumi.Config) -> StackPlan:
    """Validate the stack file + MODEL as one StackConfig; every problem at once, no traceback."""
    cluster: dict[str, Any] = dict(cfg.get_object("cluster") or {})
    values = {
        "cluster": {
            "cloud": "existing",
            "name": cluster.pop("name", "existing"),
            "existing": cluster,
            "nodePools": [{"name": MODEL.node_pool, **cfg.require_object("gpuPool")}],
        },
        "namespace": cfg.get("namespace") or "llm-example",
        "addons": {
            **(cfg.get_object("addons") or {}),
            "monitoring": {"mode": "existing", **cfg.require_object("prometheus")},
        },
        "models": [with_cache_for(MODEL, cluster)],  # typed objects and stack-file values validate together
    }
    secrets = {key: _stored_encrypted(key) for key in CREDENTIALS if cfg.get_secret(key) is not None}
    try:
        return load_stack_config(pulumi.get_stack(), values, secrets)
    except ConfigError as err:
        issues = [Issue(_user_path(i.path), i.message) for i in err.issues]
        raise pulumi.RunError(ConfigError(err.stack, issues).render()) from None


cfg = pulumi.Config()
plan = plan_stack(cfg)
stack = plan.config
[model] = stack.models

# 1. The cluster: a Kubernetes provider plus the GPU node-pool facts; creates nothing.
cluster = ExistingCluster(
    "cluster",
    ExistingClusterArgs(cluster=stack.cluster, pools=plan.pools, kubeconfig=cfg.get_secret("kubeconfig")),
).handle
k8s = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})

# 2. Add-ons as configured (here: KEDA; Prometheus exists). The handle tells the serving
#    components where Prometheus is, which labels it selects and which CRDs to wait for.
addons = ClusterAddons(
    "addons",
    AddonsArgs(plan=plan, cluster=cluster, serving_namespaces=[stack.namespace], grafana_admin_password=None),
    opts=k8s,
).handle

# 3. The serving namespace: Pod Security labels, guard rails, the Hugging Face token Secret.
namespace = ServingNamespace(
    "serving",
    ServingNamespaceArgs(
        namespace=stack.namespace,
        security=stack.security,
        hf_token=cfg.get_secret("hfToken"),
        monitoring_namespaces=[addons.monitoring.namespace] if addons.monitoring.namespace else [],
    ),
    opts=k8s,
)

# 4. The model: Deployment, Service, autoscaling, monitors, alert rules, dashboard.
service = VllmService(
    model.name,
    VllmServiceArgs(
        model=model,
        plan=plan.models[model.name],
        context=ServingContext(
            namespace=stack.namespace,
            addons=addons,
            alerts=stack.alerts,
            security=stack.security,
            hf_token_secret=namespace.hf_token_secret,
            storage_class=cluster.storage_class,
            rwx_storage_class=cluster.rwx_storage_class,
        ),
    ),
    opts=pulumi.ResourceOptions(
        providers={"kubernetes": cluster.provider},
        depends_on=[namespace, *cluster.gpu_capacity, *addons.gpu_ready],
    ),
)

pulumi.export("endpoint", service.endpoint)
pulumi.export("namespace", stack.namespace)
pulumi.export("capacity", capacity_report(plan)[model.name])
# the same report keys as the main program, so the offline render prints the same summary
pulumi.export("systemPool", system_pool_report(plan))
pulumi.export("nodePools", node_pool_report(plan))
pulumi.export("models", capacity_report(plan))
pulumi.export("endpoints", {model.name: service.endpoint})
pulumi.export("warnings", plan_warnings(plan))
