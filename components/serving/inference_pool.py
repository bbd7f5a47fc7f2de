"""Model-aware routing of one vLLM model: InferencePool(s), endpoint picker(s), HTTPRoute.

Per pool, one release of llm-d-router's ``llm-d-router-gateway`` chart (v0.10.0, the successor
of the Inference Extension's ``inferencepool`` chart): an ``InferencePool``
(inference.networking.k8s.io/v1) named like the release over the pods its ``matchLabels``
select, on the vLLM port, and its endpoint picker (EPP) ``<pool>-epp``, which picks the
replica for each request by queue depth, KV-cache use and prefix-cache affinity (the chart's
default-plugins.yaml: queue-scorer, kv-cache-utilization-scorer, prefix-cache-scorer). The
Gateway calls the EPP over ext_proc (port 9002) for every request routed to the pool.

A model has a stable pool ``<model>`` and, with ``canary``, a second pool ``<model>-canary``.
Pools select vLLM pods by the labels vllm.py gives them (``kube.selector(<workload>, "vllm")``:
``app.kubernetes.io/name: vllm``, ``app.kubernetes.io/instance: <workload>``), so the stable
pool never selects the canary's pods (instance ``<model>-canary``) and the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components import k8s as kube
from llm_infra.components.addons.base import RELEASE_HISTORY, chart_source, system_affinity
from llm_infra.components.addons.handles import MonitoringHandle
from llm_infra.config import versions
from llm_infra.config.edge import GatewayConfig
from llm_infra.config.security import SecurityConfig
from llm_infra.config.serving import VllmModelConfig

from . import observability, routes
from .vllm import COMPONENT, PORT

EXT_PROC_PORT = 9002
"""EPP ext_proc port (routerlib values ``epp.extProcPort``)."""
GRPC_HEALTH_PORT = 9003
"""EPP gRPC health port (routerlib ``epp.grpcHealthPort``, 9003 if unset): GKE's health checks."""
METRICS_PORT = 9090
"""EPP metrics port (routerlib _service.yaml ``router.metricsPort | default 9090``)."""
EPP_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
"""The chart asks for 8 CPUs and 8 GiB, sized for clusters with hundreds of model servers; a
stack's pools have a handful of replicas (the EPP scrapes each every 50 ms), and the EPP
runs on the system pool next to the other controllers. Like the chart, no CPU limit (bursts of
scheduling must not be throttled); memory capped."""


def canary_suffix() -> str:
    return "-canary"


def pools_of(model: VllmModelConfig) -> list[tuple[str, int | None]]:
    """The model's pools and their weights: one pool without a weight, or the stable pool with
    ``100 - canary.weight`` and ``<model>-canary`` with ``canary.weight``."""
    if model.canary is None:
        return [(model.name, None)]
    w = model.canary.weight
    return [(model.name, 100 - w), (f"{model.name}{canary_suffix()}", w)]


def pool_selector(pool: str) -> dict[str, str]:
    """Labels of the pods a pool selects: those vllm.py puts on the workload named like the pool."""
    return kube.selector(pool, COMPONENT)


def epp_name(pool: str) -> str:
    """The EPP Deployment/Service of a pool (routerlib _helpers.tpl ``llm-d-router.name``)."""
    return f"{pool}-epp"


def epp_pod_labels(pool: str) -> dict[str, str]:
    """The EPP pods' selector labels in gateway mode (routerlib ``llm-d-router.selectorLabels``)."""
    return {"llm-d-router-gateway": epp_name(pool)}


def epp_values(
    pool: str,
    provider: str,
    monitoring: MonitoringHandle,
    objectives: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Values of the ``llm-d-router-gateway`` chart for one pool."""
    router: dict[str, Any] = {
        "modelServers": {
            "type": "vllm",
            "protocol": "http",
            "targetPorts": [{"number": PORT}],
            "matchLabels": pool_selector(pool),
        },
        "epp": {
            "image": {"tag": versions.EPP_IMAGE_TAG, "pullPolicy": "IfNotPresent"},
            "resources": EPP_RESOURCES,
            "affinity": system_affinity(),
        },
        "inferenceObjectives": [dict(o) for o in objectives],
    }
    if monitoring.prometheus_url is not None:
        if monitoring.operator_crds:
            router["monitoring"] = {
                "provider": {"name": "prometheusoperator"},
                # the ServiceMonitor scrapes without a token: --metrics-endpoint-auth=false
                "prometheus": {
                    "enabled": True,
                    "auth": {"enabled": False},
                    "extraLabels": dict(monitoring.monitor_labels),
                },
            }
        else:
            router["monitoring"] = {"prometheus": {"auth": {"enabled": False}}}
            router["epp"]["podAnnotations"] = {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(METRICS_PORT),
                "prometheus.io/path": "/metrics",
            }
    return {
        "router": router,
        # gke: the chart adds the HealthCheckPolicy/GCPBackendPolicy of the pool's backend
        "provider": {"name": "gke" if provider == "gke" else "none"},
        "httpRoute": {"create": False},  # routes.py declares one route per model, with the canary split
    }


def epp_network_policy(
    pool: str,
    namespace: str,
    labels: dict[str, str],
    security: SecurityConfig,
    gateway_peers: list[dict[str, Any]],
    monitoring_namespaces: list[str],
) -> dict[str, Any]:
    """The EPP is called by the gateway's proxies (ext_proc, gRPC health) and scraped by
    Prometheus, and it watches pods and its InferencePool through the API server; the
    namespace's default deny blocks all three."""
    np = security.network_policy
    ingress: list[dict[str, Any]] = [
        {
            "from": gateway_peers,
            "ports": [{"protocol": "TCP", "port": p} for p in (EXT_PROC_PORT, GRPC_HEALTH_PORT)],
        }
    ]
    if monitoring_namespaces:
        ingress.append(
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}}}
                    for n in monitoring_namespaces
                ],
                "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
            }
        )
    return {
        "metadata": kube.metadata(epp_name(pool), namespace, labels),
        "spec": {
            "podSelector": {"matchLabels": epp_pod_labels(pool)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": c}} for c in np.api_server_cidrs],
                    "ports": [{"protocol": "TCP", "port": p} for p in np.api_server_ports],
                }
            ],
        },
    }


@dataclass(frozen=True)
class ModelRoutingArgs:
    """What a model's routing needs: the model, its namespace, the Gateway, monitoring and security."""

    model: VllmModelConfig
    """The vLLM model: its pools (its own, and its canary's) and the route naming it and its LoRA adapters."""
    namespace: str
    """Namespace of the model's workloads: its pools, endpoint pickers and route."""
    gateway: GatewayConfig
    """``edge.gateway``: the Gateway the route attaches to, and the models' objectives."""
    provider: str
    """``envoy`` or ``gke`` (``EdgePlan.provider``): the endpoint pickers' provider settings."""
    monitoring: MonitoringHandle
    """Prometheus facts: whether the endpoint pickers get monitors, and their labels."""
    security: SecurityConfig
    """The serving namespace's effective security (NetworkPolicies of the endpoint pickers)."""
    gateway_peers: list[dict[str, Any]]
    """NetworkPolicy peers of the gateway's proxies (their namespace, or Google's LB ranges)."""
    monitoring_namespaces: list[str] = field(default_factory=list)
    """Namespaces allowed to scrape the endpoint pickers (Prometheus's)."""
    catch_all: bool = False
    """Also route requests naming no known model (Envoy runs the body-based router only on a matched route)."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    """InferencePool CRDs, the Gateway and its controller."""


class ModelRouting(pulumi.ComponentResource):
    """A model behind the public Gateway: its pools with their EPPs, and its HTTPRoute."""

    def __init__(self, name: str, args: ModelRoutingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:ModelRouting", name, None, opts)
        m, ns = args.model, args.namespace
        labels = kube.labels(m.name, "inference-pool")
        objectives = [{"name": o.name, "priority": o.priority} for o in args.gateway.objectives.get(m.name, [])]
        self.pools = pools_of(m)
        self.releases: dict[str, k8s.helm.v3.Release] = {}
        for pool, _ in self.pools:
            values = epp_values(pool, args.provider, args.monitoring, objectives if pool == m.name else ())
            # the Helm release name is the pool's name: the chart names the InferencePool after it
            self.releases[pool] = k8s.helm.v3.Release(
                f"{pool}-router",
                name=pool,
                **chart_source(versions.LLM_D_ROUTER_GATEWAY),
                version=versions.LLM_D_ROUTER_GATEWAY.version,
                namespace=ns,
                values=values,
                max_history=RELEASE_HISTORY,
                timeout=300,
                cleanup_on_fail=True,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            )
            if args.security.network_policy.enabled:
                policy = epp_network_policy(
                    pool, ns, labels, args.security, args.gateway_peers, args.monitoring_namespaces
                )
                k8s.networking.v1.NetworkPolicy(
                    f"{pool}-epp",
                    metadata=policy["metadata"],
                    spec=policy["spec"],
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.route = observability.custom_resource(
            f"{m.name}-model-route",
            routes.model_route(
                m.name,
                ns,
                labels,
                args.gateway,
                m.served_name,
                self.pools,
                catch_all=args.catch_all,
                adapters=[a.name for a in m.lora.adapters] if m.lora is not None else [],
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *self.releases.values()]),
        )
        self.register_outputs({"pools": [p for p, _ in self.pools]})
