"""GKE Gateway backends: health check and timeouts for a model behind a GKE Gateway.

A GKE Gateway (``gke-l7-*`` GatewayClasses, Gateway API enabled on the cluster) programs a
Google Cloud load balancer whose backend service defaults to ``GET /`` health checks (404
on vLLM: every endpoint unhealthy) and a 30 s backend timeout (streams cut). GKE's policy
CRDs (``networking.gke.io/v1``; GKE docs "Configure Gateway resources using Policies",
https://cloud.google.com/kubernetes-engine/docs/how-to/configure-gateway-resources) fix
both per backend Service:

* ``HealthCheckPolicy``: HTTP on the serving port, ``requestPath: /health``;
* ``GCPBackendPolicy``: ``timeoutSec`` = the route's timeout (long generations stream).

The load balancer's proxies and health checkers reach the pods from Google's front-end
ranges (35.191.0.0/16, 130.211.0.0/22; GKE docs "Health checks" firewall requirements),
not from a namespace: with Dataplane V2 enforcing NetworkPolicies they must be let in
(regional Gateways come from the proxy-only subnet: ``security.networkPolicy.ingressCidrs``).
"""

from __future__ import annotations

from typing import Any

from llm_infra.components import k8s as kube

GKE_POLICY_API = "networking.gke.io/v1"
HEALTH_CHECK_INTERVAL_SECONDS = 15
HEALTH_CHECK_TIMEOUT_SECONDS = 15
GOOGLE_LB_RANGES = ("35.191.0.0/16", "130.211.0.0/22")


def _target(service: str) -> dict[str, str]:
    return {"group": "", "kind": "Service", "name": service}


def health_check_policy(name: str, ns: str, labels: dict[str, str], port: int, path: str) -> dict[str, Any]:
    return {
        "apiVersion": GKE_POLICY_API,
        "kind": "HealthCheckPolicy",
        "metadata": kube.metadata(name, ns, labels),
        "spec": {
            "default": {
                "checkIntervalSec": HEALTH_CHECK_INTERVAL_SECONDS,
                "timeoutSec": HEALTH_CHECK_TIMEOUT_SECONDS,
                "healthyThreshold": 1,
                "unhealthyThreshold": 2,
                "config": {
                    "type": "HTTP",
                    "httpHealthCheck": {"portSpecification": "USE_FIXED_PORT", "port": port, "requestPath": path},
                },
            },
            "targetRef": _target(name),
        },
    }


def backend_policy(name: str, ns: str, labels: dict[str, str], timeout_seconds: int) -> dict[str, Any]:
    return {
        "apiVersion": GKE_POLICY_API,
        "kind": "GCPBackendPolicy",
        "metadata": kube.metadata(name, ns, labels),
        "spec": {"default": {"timeoutSec": timeout_seconds}, "targetRef": _target(name)},
    }


def load_balancer_network_policy(
    name: str, ns: str, labels: dict[str, str], selector: dict[str, str], port: int
) -> dict[str, Any]:
    """Lets Google's load balancer proxies and health checkers reach the serving port."""
    return {
        "metadata": kube.metadata(f"{name}-allow-gke-lb", ns, labels),
        "spec": {
            "podSelector": {"matchLabels": dict(selector)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": cidr}} for cidr in GOOGLE_LB_RANGES],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            ],
        },
    }
