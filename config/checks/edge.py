"""Cross-field checks of the public Gateway (``edge``): provider vs. cloud, API keys, routing names."""

from __future__ import annotations

from ..edge import API_KEY_CLIENT
from .base import Issues, Stack

GKE_INFERENCE_GATEWAY_CLASSES = ("gke-l7-regional-external-managed", "gke-l7-rilb")
"""GatewayClasses of GKE's built-in controller that support InferencePool backends (GKE docs
"About GKE Inference Gateway", https://cloud.google.com/kubernetes-engine/docs/concepts/about-gke-inference-gateway)."""


def check_edge(stack: Stack) -> Issues:
    """The public Gateway: provider vs. cloud, class, TLS, objectives, served names and API keys."""
    out = Issues()
    gw = stack.config.edge.gateway
    for i, m in enumerate(stack.config.models):
        if m.ingress is not None and gw is not None:
            out.add(f"models[{i}].ingress", "is the opt-in Ingress path; the model is already behind edge.gateway")
    if gw is None:
        if "apiKeys" in stack.secrets:
            out.add("apiKeys", "is set but no edge.gateway uses it")
        return out
    out += _check_gateway_provider(stack)
    out += _check_routing_names(stack)
    out += _check_api_keys(stack)
    return out


def _check_gateway_provider(stack: Stack) -> Issues:
    """GKE's own controller only on GKE (nothing to install, a class that routes to InferencePools);
    an Envoy Gateway the stack does not install is named by its class; ACME cannot issue wildcards."""
    out = Issues()
    gw = stack.config.edge.gateway
    assert gw is not None
    cloud = stack.config.cluster.cloud
    path = "edge.gateway"
    provider = gw.provider or ("gke" if cloud == "gke" else "envoy")
    if provider == "gke" and cloud != "gke":
        out.add(f"{path}.provider", f"gke is GKE's built-in Gateway controller; cluster.cloud is {cloud}")
    if provider == "gke":
        if gw.install:
            out.add(f"{path}.install", "GKE's Gateway controller is part of the cluster; nothing to install")
        if gw.class_name is not None and gw.class_name not in GKE_INFERENCE_GATEWAY_CLASSES:
            out.add(
                f"{path}.className",
                f"'{gw.class_name}' does not route to InferencePools; use one of {list(GKE_INFERENCE_GATEWAY_CLASSES)}",
            )
    elif (gw.install is False or (gw.install is None and cloud == "existing")) and gw.class_name is None:
        out.add(
            f"{path}.className",
            "name the existing GatewayClass (an Envoy Gateway with the AI Gateway extension's InferencePool "
            "support), or set install: true",
        )
    if gw.tls.acme is not None and gw.hostname.startswith("*."):
        out.add(
            f"{path}.tls.acme",
            "ACME HTTP-01 (through the Gateway) cannot issue a wildcard certificate; use tls.secretName",
        )
    return out


def _check_routing_names(stack: Stack) -> Issues:
    """Objectives name models of this stack; every served name picks exactly one model."""
    out = Issues()
    gw = stack.config.edge.gateway
    assert gw is not None
    models = {m.name for m in stack.config.models}
    for name in gw.objectives:
        if name not in models and not stack.partial:
            out.add(f"edge.gateway.objectives.{name}", f"is not a vLLM model of this stack ({sorted(models)})")
    served: dict[str, str] = {}
    for i, m in enumerate(stack.config.models):
        if m.served_name in served:
            out.add(
                f"models[{i}].servedModelName",
                f"'{m.served_name}' is also served by {served[m.served_name]}: the gateway routes by the "
                "request's model name, which must pick one model",
            )
        served[m.served_name] = m.name
    return out


def _check_api_keys(stack: Stack) -> Issues:
    """The public endpoint needs keys: a secret map of client name -> key, names DNS-like."""
    out = Issues()
    if "apiKeys" not in stack.secrets:
        out.add(
            "apiKeys",
            "the public endpoint needs API keys: pulumi config set --secret --path 'apiKeys.<client>' <key> "
            "(one per client)",
        )
    elif stack.api_key_clients is not None:
        if not stack.api_key_clients:
            out.add(
                "apiKeys",
                "must be a map of client name -> key with at least one client "
                "(pulumi config set --secret --path 'apiKeys.<client>' <key>)",
            )
        bad = [c for c in stack.api_key_clients if not API_KEY_CLIENT.match(c)]
        if bad:
            out.add("apiKeys", f"client names {bad} must be letters, digits, '-', '_' or '.' (at most 63)")
    return out
