"""The whole platform for one stack: cluster -> add-ons -> serving namespace -> models.

Each step is its own component; this one only wires their handles together, so every
fact (provider, node-pool taints, Prometheus address, CRD owners) flows one way.
"""

from __future__ import annotations

import pulumi

from llm_infra.config import StackPlan
from llm_infra.config.canary_model import canary_name, serving_models

from .addons import AddonsArgs, AddonsHandle, ClusterAddons
from .addons.image_prepull import ImagePrepull, ImagePrepullArgs
from .cluster import ClusterHandle, create_cluster
from .cluster.base import AwsIrsa
from .serving.canary import VllmCanary, VllmCanaryArgs
from .serving.context import ServingContext
from .serving.edge import VLLM_API_KEYS_SECRET, EdgePlan, PublicEdge, PublicEdgeArgs
from .serving.leaderworkerset import MultiNodeServiceArgs, MultiNodeVllmService
from .serving.namespace import ServingNamespace, ServingNamespaceArgs
from .serving.rayservice import RayLlmService, RayLlmServiceArgs, worker_service_account
from .serving.vllm import VllmService, VllmServiceArgs


class LlmPlatform(pulumi.ComponentResource):
    """Everything one stack deploys, from a validated ``StackPlan``.

    Credentials arrive as Pulumi secrets (never inside the plan); each child component gets
    the Kubernetes provider of the cluster component and the handles of the steps before it.
    """

    namespace: pulumi.Output[str]
    """Namespace of the serving workloads."""
    endpoints: pulumi.Output[dict[str, str]]
    """In-cluster OpenAI-compatible base URL of every vLLM model and RayService, by name."""
    kubeconfig: pulumi.Output[str]
    """Secret: the cluster's kubeconfig."""
    prometheus_url: pulumi.Output[str | None]
    """Where Prometheus answers queries (None without monitoring)."""
    cluster: ClusterHandle
    """The cluster component's handle (frozen)."""
    addons: AddonsHandle
    """The add-ons' handle (frozen)."""
    vllm: list[VllmService]
    ray: list[RayLlmService]

    def __init__(
        self,
        name: str,
        plan: StackPlan,
        *,
        hf_token: pulumi.Input[str] | None = None,
        grafana_admin_password: pulumi.Input[str] | None = None,
        kubeconfig: pulumi.Input[str] | None = None,
        api_keys: pulumi.Input[dict[str, str]] | None = None,
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
                addons=cfg.addons,
                cluster=self.cluster,
                cluster_config=cfg.cluster,
                serving_namespaces=[cfg.namespace],
                grafana_admin_password=grafana_admin_password,
                credentials=cfg.credentials,
                ray_services=bool(cfg.ray_services),
                multi_node_models=bool(cfg.multi_node_models),
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
        store = None
        if cfg.model_store.enabled:
            # imported here: the store's cloud SDKs (pulumi_aws / pulumi_gcp) load only when used
            from .serving.model_store import ModelStore

            store = ModelStore(
                f"{name}-model-store",
                model_store_args(plan, serving_ns.hf_token_secret, self.cluster.aws_irsa),
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[serving_ns])),
            )
        if cfg.cold_start.prepull_images:
            used = {m.node_pool for m in cfg.models} | {r.worker_pool for r in cfg.ray_services}
            ImagePrepull(
                f"{name}-image-prepull",
                ImagePrepullArgs(namespace=cfg.namespace, pools=[plan.pools[p] for p in sorted(used)]),
                opts=pulumi.ResourceOptions.merge(
                    k8s_opts, pulumi.ResourceOptions(depends_on=[serving_ns, *self.cluster.gpu_capacity])
                ),
            )
        context = ServingContext.create(
            serving_ns,
            self.addons,
            cluster=self.cluster,
            alerts=cfg.alerts,
            cloud=cfg.cluster.cloud,
            model_store=store,
            compile_cache=cfg.cold_start.compile_cache,
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
        self.canaries = [
            VllmCanary(
                canary_name(m.name),
                VllmCanaryArgs(model=m, plan=plan.models[canary_name(m.name)], stable=svc, context=context),
                opts=serving_opts,
            )
            for m, svc in zip(cfg.models, self.vllm, strict=True)
            if m.canary is not None
        ]
        self.edge = None
        if edge is not None:
            self.edge = PublicEdge(
                f"{name}-edge",
                PublicEdgeArgs(
                    namespace=cfg.namespace,
                    models=cfg.models,
                    alerts=cfg.alerts,
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
        self.multi_node = [
            MultiNodeVllmService(
                m.name,
                MultiNodeServiceArgs(model=m, plan=plan.multinode_models[m.name], context=context),
                opts=serving_opts,
            )
            for m in cfg.multi_node_models
        ]
        self.namespace = serving_ns.namespace_name
        services = [*self.vllm, *(c.service for c in self.canaries), *self.ray, *self.multi_node]
        endpoints = {s.name: s.endpoint for s in services}
        self.endpoints = pulumi.Output.all(**endpoints) if endpoints else pulumi.Output.from_input({})
        self.kubeconfig = pulumi.Output.secret(self.cluster.kubeconfig)
        self.prometheus_url = addons.prometheus_url
        self.register_outputs(
            {
                "namespace": self.namespace,
                "endpoints": self.endpoints,
                "kubeconfig": self.kubeconfig,
                "prometheusUrl": self.prometheus_url,
                "url": self.edge.url if self.edge is not None else None,
            }
        )


def model_store_args(plan: StackPlan, hf_token_secret: str | None, aws_irsa: AwsIrsa | None):
    """The stack's model store (``ModelStoreArgs``): bucket, readers (every serving ServiceAccount), fill Jobs."""
    from .serving.model_store import ModelStoreArgs

    cfg = plan.config
    return ModelStoreArgs(
        config=cfg.model_store,
        cloud=cfg.cluster.cloud,
        bucket=cfg.model_store.bucket_name(cfg.cluster.name, plan.stack),
        cluster_name=cfg.cluster.name,
        namespace=cfg.namespace,
        readers=_store_readers(plan),
        protect=cfg.cluster.protect,
        hf_token_secret=hf_token_secret,
        network_policies=cfg.security.network_policy.enabled,
        aws_irsa=aws_irsa,
        gcp_project=cfg.cluster.gke.project if cfg.cluster.gke else None,
        gcp_region=cfg.cluster.region,
    )


def _store_readers(plan: StackPlan) -> list:
    """Every serving ServiceAccount with the model revisions it reads (a vLLM model's and a
    canary's own account; a LeaderWorkerSet model's group account; a RayService's workers'
    account for all of its models)."""
    from .serving.model_store import Reader, StoredModel

    cfg = plan.config
    readers = [
        Reader(
            m.name,
            (StoredModel(m.model, m.revision or "", plan.models[m.name].capacity.weights_gib, m.requires_hf_token),),
        )
        for _, m in serving_models(cfg.models)  # canaries included: they stream their own revision
    ]
    readers += [
        # a LeaderWorkerSet group: leader and workers share one account, every stage streams its layers
        Reader(
            m.name,
            (
                StoredModel(
                    m.model, m.revision or "", plan.multinode_models[m.name].capacity.weights_gib, m.requires_hf_token
                ),
            ),
        )
        for m in cfg.multi_node_models
    ]
    for svc in cfg.ray_services:
        models = tuple(
            StoredModel(
                rm.model,
                rm.revision or "",
                plan.ray_models[f"{svc.name}/{rm.model_id}"].capacity.weights_gib,
                rm.requires_hf_token,
            )
            for rm in svc.models
        )
        readers.append(Reader(worker_service_account(svc.name), models))
    return readers
