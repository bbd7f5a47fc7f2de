"""The whole platform for one stack: cluster -> add-ons -> serving namespace -> models.

Each step is its own component; this one only wires their handles together, so every
fact (provider, node-pool taints, Prometheus address, CRD owners) flows one way.
"""

from __future__ import annotations

import pulumi

from llm_infra.config import StackPlan

from .addons import AddonsArgs, ClusterAddons
from .cluster import create_cluster
from .serving.context import ServingContext
from .serving.edge import VLLM_API_KEYS_SECRET, EdgePlan, PublicEdge, PublicEdgeArgs
from .serving.namespace import ServingNamespace, ServingNamespaceArgs
from .serving.rayservice import RayLlmService, RayLlmServiceArgs
from .serving.vllm import VllmService, VllmServiceArgs


class LlmPlatform(pulumi.ComponentResource):
    """Everything one stack deploys, from a validated ``StackPlan``.

    Credentials arrive as Pulumi secrets (never inside the plan); each child component gets
    the Kubernetes provider of the cluster component and the handles of the steps before it.
    """

    def __init__(
        self,
        name: str,
        plan: StackPlan,
        *,
        hf_token: pulumi.Output[str] | None = None,
        grafana_admin_password: pulumi.Output[str] | None = None,
        kubeconfig: pulumi.Output[str] | None = None,
        api_keys: pulumi.Output[dict[str, str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("llm-infra:index:LlmPlatform", name, None, opts)
        cfg = plan.config
        cluster = create_cluster(name, plan, kubeconfig, pulumi.ResourceOptions(parent=self))
        self.cluster = cluster.handle
        k8s_opts = pulumi.ResourceOptions(parent=self, providers={"kubernetes": self.cluster.provider})

        addons = ClusterAddons(
            f"{name}-addons",
            AddonsArgs(
                plan=plan,
                cluster=self.cluster,
                serving_namespaces=[cfg.namespace],
                grafana_admin_password=grafana_admin_password,
            ),
            opts=k8s_opts,
        )
        self.addons = addons.handle
        edge = EdgePlan.of(plan)
        # the models' NetworkPolicies admit the gateway's proxies (not an ingress-nginx namespace)
        security = edge.serving_security(cfg.security) if edge is not None else cfg.security
        serving_ns = ServingNamespace(
            f"{name}-serving",
            ServingNamespaceArgs(
                namespace=cfg.namespace,
                security=security,
                hf_token=hf_token,
                monitoring_namespaces=[] if cfg.addons.monitoring.mode == "none" else [cfg.addons.monitoring.namespace],
                protect=cfg.cluster.protect,
                hf_token_source=cfg.credentials.from_secret_manager().get("hfToken"),
                secret_sync=self.addons.secret_sync,
            ),
            opts=k8s_opts,
        )
        context = ServingContext(
            namespace=cfg.namespace,
            addons=self.addons,
            alerts=cfg.alerts,
            security=security,
            hf_token_secret=serving_ns.hf_token_secret,
            storage_class=self.cluster.storage_class,
            rwx_storage_class=self.cluster.rwx_storage_class,
            cloud=cfg.cluster.cloud,
            protect=cfg.cluster.protect,
            api_key_secret=VLLM_API_KEYS_SECRET if edge is not None and not edge.keys_at_gateway else None,
            api_key_clients=plan.api_key_clients,
            gateway_wake_up=edge is not None,
        )
        serving_opts = pulumi.ResourceOptions(
            parent=self,
            providers={"kubernetes": self.cluster.provider},
            # PVCs (model caches) bind only once the CSI add-on and StorageClasses exist
            depends_on=[serving_ns, *self.cluster.gpu_capacity, *self.cluster.platform_ready],
        )
        self.vllm = [
            VllmService(m.name, VllmServiceArgs(model=m, plan=plan.models[m.name], context=context), opts=serving_opts)
            for m in cfg.models
        ]
        self.edge = None
        if edge is not None:
            self.edge = PublicEdge(
                f"{name}-edge",
                PublicEdgeArgs(
                    plan=plan,
                    edge=edge,
                    monitoring=self.addons.monitoring,
                    security=security,
                    api_keys=api_keys,
                    monitoring_crds=self.addons.depends_for("monitoring.coreos.com"),
                    cluster_ready=list(self.cluster.platform_ready),
                    serving_ready=[serving_ns],
                ),
                opts=k8s_opts,
            )
        self.ray = [
            RayLlmService(
                svc.name,
                RayLlmServiceArgs(
                    service=svc,
                    plans=[plan.ray_models[f"{svc.name}/{m.model_id}"] for m in svc.models],
                    pool=plan.pools[svc.worker_pool],
                    context=context,
                ),
                opts=serving_opts,
            )
            for svc in cfg.ray_services
        ]
        self.register_outputs({"namespace": cfg.namespace})
