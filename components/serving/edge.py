"""The stack's public front door (``edge.gateway``, config/edge.py): one HTTPS Gateway with API keys
and model-aware routing to every vLLM model.

``EdgePlan`` derives everything other components need from config (which implementation, which
GatewayClass, who the models' NetworkPolicies must admit, whether vLLM checks the keys);
``PublicEdge`` declares it: the implementation (Envoy Gateway + AI Gateway, or GKE's own), the
InferencePool CRDs, cert-manager with an ACME ClusterIssuer and the Gateway's Certificate, the
Gateway (HTTPS listener; HTTP only redirects), the API keys, the body-based router, and per
model its pools, endpoint pickers and HTTPRoute (inference_pool.py, routes.py), plus the alerts
on the endpoint pickers.
"""

# `pyright: ignore[reportArgumentType]` on a resource's metadata/spec: pulumi_kubernetes types them as its
# *Args TypedDicts; these manifests are plain dicts, validated against the Kubernetes OpenAPI schema of the
# pinned version by tests/test_rendered_schemas.py instead.

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components import k8s as kube
from llm_infra.components.addons import cert_manager
from llm_infra.components.addons import gateway as envoy
from llm_infra.components.addons.base import addon_namespace
from llm_infra.components.addons.handles import MonitoringHandle
from llm_infra.config import StackPlan
from llm_infra.config.edge import GatewayConfig
from llm_infra.config.security import SecurityConfig
from llm_infra.config.serving import VllmModelConfig
from llm_infra.config.stack import AlertThresholds

from . import body_router, dashboards, gateway_alerts, gateway_dashboard, observability, routes
from .gke_gateway import GOOGLE_LB_RANGES
from .inference_pool import ModelRouting, ModelRoutingArgs

GKE_DEFAULT_CLASS = "gke-l7-regional-external-managed"
"""GKE's regional external Application Load Balancer: a GatewayClass that routes to InferencePools
(GKE Inference Gateway). Regional load balancers need a proxy-only subnet in the region; its range
must be in ``security.networkPolicy.ingressCidrs`` where NetworkPolicies are enforced."""
API_KEY_HEADER = "Authorization"
"""OpenAI clients send ``Authorization: Bearer <key>``; Envoy Gateway's apiKeyAuth compares the
key without the scheme (Envoy Gateway v1.9.0 docs, tasks/security/apikey-auth.md)."""
CLIENT_ID_HEADER = "x-llm-client"
VLLM_API_KEYS_SECRET = "vllm-api-keys"


@dataclass(frozen=True)
class EdgePlan:
    """What ``edge.gateway`` means for this stack (derived once, used by several components)."""

    gateway: GatewayConfig
    provider: str  # "envoy" | "gke"
    install: bool  # install Envoy Gateway + AI Gateway
    class_name: str
    proxy_namespace: str | None  # where the Envoy proxies run (None on GKE: Google's proxies)
    clients: tuple[str, ...]

    @staticmethod
    def of(plan: StackPlan) -> EdgePlan | None:
        gw = plan.config.edge.gateway
        if gw is None:
            return None
        cloud = plan.config.cluster.cloud
        provider = gw.provider or ("gke" if cloud == "gke" else "envoy")
        install = provider == "envoy" and (gw.install if gw.install is not None else cloud == "eks")
        if provider == "gke":
            class_name, proxies = gw.class_name or GKE_DEFAULT_CLASS, None
        else:
            class_name = gw.class_name or envoy.GATEWAY_CLASS
            proxies = envoy.NAMESPACE if install else gw.proxy_namespace
        return EdgePlan(gw, provider, install, class_name, proxies, plan.api_key_clients)

    @property
    def keys_at_gateway(self) -> bool:
        """Envoy Gateway checks the keys (SecurityPolicy); GKE's load balancer cannot, vLLM does."""
        return self.provider == "envoy"

    @property
    def url(self) -> str:
        return f"https://{self.gateway.hostname}{self.gateway.path}"

    def gateway_peers(self, security: SecurityConfig) -> list[dict[str, Any]]:
        """NetworkPolicy peers of the gateway's data plane."""
        if self.proxy_namespace is not None:
            return [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.proxy_namespace}}}]
        cidrs = [*GOOGLE_LB_RANGES, *security.network_policy.ingress_cidrs]
        return [{"ipBlock": {"cidr": c}} for c in dict.fromkeys(cidrs)]

    def serving_security(self, security: SecurityConfig) -> SecurityConfig:
        """The serving namespace's policies admit the gateway's proxies on the serving port (their
        namespace, or on GKE Google's front-end and health-check ranges) in place of ingress-nginx."""
        np = security.network_policy
        if self.proxy_namespace is not None:
            update = {"ingress_namespaces": list(dict.fromkeys([*np.ingress_namespaces, self.proxy_namespace]))}
        else:
            update = {"ingress_cidrs": list(dict.fromkeys([*np.ingress_cidrs, *GOOGLE_LB_RANGES]))}
        return security.model_copy(update={"network_policy": np.model_copy(update=update)})


def gateway_manifest(edge: EdgePlan, serving_namespace: str, tls_secret: str, labels: dict[str, str]) -> dict[str, Any]:
    gw = edge.gateway
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": kube.metadata(gw.name, gw.namespace, labels),
        "spec": {
            "gatewayClassName": edge.class_name,
            "listeners": [
                {
                    "name": routes.HTTPS_LISTENER,
                    "protocol": "HTTPS",
                    "port": 443,
                    "hostname": gw.hostname,
                    "tls": {
                        "mode": "Terminate",
                        "certificateRefs": [{"group": "", "kind": "Secret", "name": tls_secret}],
                    },
                    # only the model routes of the serving namespace attach here
                    "allowedRoutes": {
                        "namespaces": {
                            "from": "Selector",
                            "selector": {"matchLabels": {"kubernetes.io/metadata.name": serving_namespace}},
                        }
                    },
                },
                {
                    "name": routes.HTTP_LISTENER,
                    "protocol": "HTTP",
                    "port": 80,
                    "hostname": gw.hostname,
                    # the redirect and cert-manager's ACME solver routes, both in the Gateway's namespace
                    "allowedRoutes": {"namespaces": {"from": "Same"}},
                },
            ],
        },
    }


def tls_secret_name(gw: GatewayConfig) -> str:
    return gw.tls.secret_name or f"{gw.name}-tls"


def cluster_issuer(gw: GatewayConfig, labels: dict[str, str]) -> dict[str, Any]:
    acme = gw.tls.acme
    assert acme is not None
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": kube.metadata(acme.issuer_name, None, labels),
        "spec": {
            "acme": {
                "email": acme.email,
                "server": acme.server,
                "privateKeySecretRef": {"name": f"{acme.issuer_name}-account-key"},
                "solvers": [
                    {
                        "http01": {
                            "gatewayHTTPRoute": {
                                "parentRefs": [routes.parent_ref(gw, routes.HTTP_LISTENER) | {"kind": "Gateway"}]
                            }
                        }
                    }
                ],
            }
        },
    }


def certificate(gw: GatewayConfig, labels: dict[str, str]) -> dict[str, Any]:
    acme = gw.tls.acme
    assert acme is not None
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": kube.metadata(tls_secret_name(gw), gw.namespace, labels),
        "spec": {
            "secretName": tls_secret_name(gw),
            "dnsNames": [gw.hostname],
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": acme.issuer_name},
        },
    }


def api_key_policy(gw: GatewayConfig, secret: str, labels: dict[str, str]) -> dict[str, Any]:
    """Envoy Gateway v1.9.0 SecurityPolicy ``apiKeyAuth`` (api/v1alpha1/api_key_auth_types.go) on
    the HTTPS listener: every request needs one of the clients' keys; the key is removed before
    the request reaches the model (``sanitize``) and the client's name is forwarded instead."""
    return {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "SecurityPolicy",
        "metadata": kube.metadata(f"{gw.name}-api-keys", gw.namespace, labels),
        "spec": {
            "targetRefs": [
                {
                    "group": routes.GATEWAY_GROUP,
                    "kind": "Gateway",
                    "name": gw.name,
                    "sectionName": routes.HTTPS_LISTENER,
                }
            ],
            "apiKeyAuth": {
                "credentialRefs": [{"group": "", "kind": "Secret", "name": secret}],
                "extractFrom": [{"headers": [API_KEY_HEADER]}],
                "forwardClientIDHeader": CLIENT_ID_HEADER,
                "sanitize": True,
            },
        },
    }


@dataclass(frozen=True)
class PublicEdgeArgs:
    """What the front door needs: the serving namespace, its vLLM models and alert thresholds
    (not the stack plan), the edge plan, monitoring and the readiness it waits for."""

    namespace: str
    """Namespace of the serving workloads (routes, pools and endpoint pickers live there)."""
    models: Sequence[VllmModelConfig]
    """The vLLM models behind the Gateway: a pool, endpoint picker and route each (canaries included)."""
    alerts: AlertThresholds
    """Thresholds of the endpoint pickers' alerts."""
    edge: EdgePlan
    """What ``edge.gateway`` means for this stack: provider, install, class, proxies, URL."""
    monitoring: MonitoringHandle
    """Prometheus facts: the endpoint pickers' and proxies' monitors, alerts and dashboard."""
    security: SecurityConfig
    """The serving namespace's effective security (``EdgePlan.serving_security``)."""
    api_keys: pulumi.Input[dict[str, str]] | None
    """Secret: client name -> API key (``apiKeys``), checked at the Gateway or by vLLM; None: no keys."""
    monitoring_crds: Sequence[pulumi.Resource] = field(default_factory=list)
    """Releases installing the ServiceMonitor CRD (``AddonsHandle.depends_for("monitoring.coreos.com")``)."""
    cluster_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """System nodes, CSI add-on and StorageClasses (``ClusterHandle.platform_ready``)."""
    serving_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """The serving namespace (``ServingNamespace``): routes, pools and secrets go there."""


class PublicEdge(pulumi.ComponentResource):
    """The Gateway, its certificate and keys, and the routing to every vLLM model."""

    url: str

    def __init__(self, name: str, args: PublicEdgeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:PublicEdge", name, None, opts)
        edge, gw = args.edge, args.edge.gateway
        serving_ns = args.namespace
        self.url = edge.url
        labels = kube.labels(gw.name, "gateway")
        child = pulumi.ResourceOptions(parent=self)

        def opts_after(*deps: Any) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=[d for d in deps if d is not None])

        # -- implementation and CRDs --------------------------------------------------------------
        crds = envoy.InferenceCrds(f"{name}-inference-crds", opts=child)
        controller: list[pulumi.Resource] = [crds]
        if edge.install:
            eg = envoy.EnvoyGateway(
                f"{name}-envoy-gateway",
                envoy.EnvoyGatewayArgs(cluster_ready=args.cluster_ready, inference_crds=[crds]),
                opts=child,
            )
            controller += eg.ready
        issuer_owner: list[pulumi.Resource] = []
        if gw.tls.acme is not None:
            cm = cert_manager.CertManager(
                f"{name}-cert-manager",
                cert_manager.CertManagerArgs(cluster_ready=args.cluster_ready, gateway_api=controller),
                opts=child,
            )
            issuer_owner.append(cm.release)

        # -- the Gateway, its certificate and its redirect ----------------------------------------
        ns = addon_namespace(f"{name}-ns", gw.namespace, "restricted", child)
        tls_secret = tls_secret_name(gw)
        self.gateway = observability.custom_resource(
            f"{name}-gateway", gateway_manifest(edge, serving_ns, tls_secret, labels), opts_after(ns, *controller)
        )
        if gw.tls.acme is not None:
            issuer = observability.custom_resource(
                f"{name}-issuer", cluster_issuer(gw, labels), opts_after(*issuer_owner)
            )
            observability.custom_resource(
                f"{name}-certificate", certificate(gw, labels), opts_after(ns, issuer, self.gateway)
            )
        observability.custom_resource(
            f"{name}-https-redirect", routes.https_redirect_route(gw, labels), opts_after(self.gateway)
        )

        # -- API keys ----------------------------------------------------------------------------
        if args.api_keys is not None:
            if edge.keys_at_gateway:
                secret = f"{gw.name}-api-keys"
                k8s.core.v1.Secret(
                    f"{name}-api-keys",
                    metadata=kube.metadata(secret, gw.namespace, labels),  # pyright: ignore[reportArgumentType]
                    type="Opaque",
                    string_data=args.api_keys,
                    opts=opts_after(ns),
                )
                observability.custom_resource(
                    f"{name}-api-key-policy", api_key_policy(gw, secret, labels), opts_after(self.gateway)
                )
            else:
                # vLLM checks them (--api-key, vllm.py); the Secret sits next to the model pods
                k8s.core.v1.Secret(
                    f"{name}-vllm-api-keys",
                    metadata=kube.metadata(VLLM_API_KEYS_SECRET, serving_ns, labels),  # pyright: ignore[reportArgumentType]
                    type="Opaque",
                    string_data=args.api_keys,
                    opts=opts_after(*args.serving_ready),
                )

        # -- body-based router -------------------------------------------------------------------
        for manifest in body_router.manifests(gw.namespace):
            kube_object(f"{name}-bbr-{manifest['kind'].lower()}", manifest, opts_after(ns))
        if edge.provider == "envoy":
            observability.custom_resource(
                f"{name}-bbr-extension",
                body_router.envoy_extension_policy(gw.namespace, gw.name),
                opts_after(self.gateway),
            )
        else:
            for manifest in body_router.gke_routing_extension(gw.namespace, gw.name):
                observability.custom_resource(
                    f"{name}-bbr-{manifest['kind'].lower()}", manifest, opts_after(self.gateway)
                )

        # -- per model: pools, endpoint pickers, routes --------------------------------------------
        monitoring_namespaces = [] if args.monitoring.namespace is None else [args.monitoring.namespace]
        peers = edge.gateway_peers(args.security)
        self.models = [
            ModelRouting(
                m.name,
                ModelRoutingArgs(
                    model=m,
                    namespace=serving_ns,
                    gateway=gw,
                    provider=edge.provider,
                    monitoring=args.monitoring,
                    security=args.security,
                    gateway_peers=peers,
                    monitoring_namespaces=monitoring_namespaces,
                    # Envoy runs ext_proc only on a matched route (routes.model_route)
                    catch_all=edge.provider == "envoy" and i == 0,
                    depends_on=[crds, self.gateway, *args.serving_ready],
                ),
                opts=child,
            )
            for i, m in enumerate(args.models)
        ]
        pools = [p for r in self.models for p, _ in r.pools]
        if args.monitoring.operator_crds and pools:
            observability.custom_resource(
                f"{name}-router-rules",
                gateway_alerts.prometheus_rule(
                    serving_ns, pools, args.alerts, {**labels, **args.monitoring.monitor_labels}
                ),
                opts_after(*args.monitoring_crds),
            )
        mon = args.monitoring
        if mon.operator_crds and edge.proxy_namespace is not None:
            observability.custom_resource(
                f"{name}-envoy-podmonitor",
                gateway_dashboard.envoy_pod_monitor(
                    serving_ns, edge.proxy_namespace, gw.name, gw.namespace, {**labels, **mon.monitor_labels}
                ),
                opts_after(*args.monitoring_crds),
            )
        if mon.dashboard_labels and pools:
            board = gateway_dashboard.gateway_dashboard(
                serving_ns, pools, envoy_namespace=edge.proxy_namespace if mon.operator_crds else None
            )
            cm = dashboards.dashboard_configmap(
                f"{gw.name}-dashboard", serving_ns, labels={**labels, **mon.dashboard_labels}, dashboard_json=board
            )
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard", metadata=cm["metadata"], data=cm["data"], opts=opts_after(*args.serving_ready)
            )
        self.register_outputs({"url": self.url, "gatewayClass": edge.class_name})


def kube_object(logical: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """A core object from a manifest dict (the types body_router.py builds)."""
    kind = manifest["kind"]
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    cls = {
        "ServiceAccount": k8s.core.v1.ServiceAccount,
        "Service": k8s.core.v1.Service,
        "Deployment": k8s.apps.v1.Deployment,
        "Role": k8s.rbac.v1.Role,
        "RoleBinding": k8s.rbac.v1.RoleBinding,
    }[kind]
    if kind == "RoleBinding":
        body["role_ref"] = body.pop("roleRef")
    return cls(logical, opts=opts, **body)
