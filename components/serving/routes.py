"""HTTPRoutes of the public Gateway: one per model, matched on the request's model name.

One OpenAI-compatible URL serves every model of the stack. A body-based router (the Gateway
API Inference Extension's BBR, ``body_router.py``) runs on the Gateway as an ext_proc filter and
copies the JSON body's ``model`` into the ``X-Gateway-Model-Name`` header, then clears the route
cache so Envoy / the Google load balancer matches again (GIE v1.5.0
config/charts/body-based-routing values.yaml: plugin ``body-field-to-header`` with ``fieldName:
model``, ``headerName: X-Gateway-Model-Name``; GIE guide "Serve multiple GenAI models":
HTTPRoutes with an ``Exact`` header match on it). Each model's rule sends its requests to the
model's InferencePool, split with its canary's pool by weight when it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm_infra.components import k8s as kube
from llm_infra.config.edge import GatewayConfig

MODEL_HEADER = "X-Gateway-Model-Name"
GATEWAY_GROUP = "gateway.networking.k8s.io"
POOL_GROUP = "inference.networking.k8s.io"
HTTPS_LISTENER = "https"
HTTP_LISTENER = "http"


def parent_ref(gw: GatewayConfig, section: str) -> dict[str, str]:
    return {
        "group": GATEWAY_GROUP,
        "kind": "Gateway",
        "name": gw.name,
        "namespace": gw.namespace,
        "sectionName": section,
    }


def pool_backends(pools: list[tuple[str, int | None]]) -> list[dict[str, Any]]:
    """``[(pool, weight)]`` -> backendRefs; no weight when a model has a single pool."""
    refs = []
    for pool, weight in pools:
        ref: dict[str, Any] = {"group": POOL_GROUP, "kind": "InferencePool", "name": pool}
        if weight is not None:
            ref["weight"] = weight
        refs.append(ref)
    return refs


def model_route(
    name: str,
    namespace: str,
    labels: dict[str, str],
    gw: GatewayConfig,
    served_name: str,
    pools: list[tuple[str, int | None]],
    *,
    catch_all: bool = False,
    adapters: Sequence[str] = (),
) -> dict[str, Any]:
    """The model's HTTPRoute on the Gateway's HTTPS listener: requests naming the model, or one of
    its LoRA ``adapters`` (vLLM serves each adapter as a model name of its own, and the endpoint
    picker routes it by adapter affinity within the model's pool).

    ``catch_all`` adds a rule without the header match (lower precedence than any rule with
    one: Gateway API HTTPRoute match precedence, "largest number of header matches"). Envoy
    runs a Gateway's ext_proc filters only for a request that matched a route, so a request
    must match one before the body-based router has set the header; requests for a model no
    route names end there and get the OpenAI-style 404 of that model server.
    """
    timeout = f"{gw.timeout_seconds}s"
    path = {"type": "PathPrefix", "value": gw.path}
    rules: list[dict[str, Any]] = [
        {
            "matches": [
                {"path": path, "headers": [{"type": "Exact", "name": MODEL_HEADER, "value": name}]}
                for name in (served_name, *adapters)
            ],
            "backendRefs": pool_backends(pools),
            "timeouts": {"request": timeout},
        }
    ]
    if catch_all:
        rules.append(
            {"matches": [{"path": path}], "backendRefs": pool_backends(pools), "timeouts": {"request": timeout}}
        )
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": kube.metadata(name, namespace, labels),
        "spec": {"parentRefs": [parent_ref(gw, HTTPS_LISTENER)], "hostnames": [gw.hostname], "rules": rules},
    }


def https_redirect_route(gw: GatewayConfig, labels: dict[str, str]) -> dict[str, Any]:
    """Everything on the HTTP listener is redirected to HTTPS (301). cert-manager's ACME
    HTTP-01 solver attaches its own route for ``/.well-known/acme-challenge/<token>`` (an Exact
    path match, which takes precedence over this prefix)."""
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": kube.metadata(f"{gw.name}-https-redirect", gw.namespace, labels),
        "spec": {
            "parentRefs": [parent_ref(gw, HTTP_LISTENER)],
            "hostnames": [gw.hostname],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}],
                }
            ],
        },
    }
