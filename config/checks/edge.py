"""Cross-field checks of the public Gateway (``edge``): provider vs. cloud, API keys, routing names."""

from __future__ import annotations

from ..edge import API_KEY_CLIENT
from .base import CheckerBase

GKE_INFERENCE_GATEWAY_CLASSES = ("gke-l7-regional-external-managed", "gke-l7-rilb")
"""GatewayClasses of GKE's built-in controller that support InferencePool backends (GKE docs
"About GKE Inference Gateway", https://cloud.google.com/kubernetes-engine/docs/concepts/about-gke-inference-gateway)."""


class EdgeChecks(CheckerBase):
    def check_edge(self) -> None:
        gw = self.config.edge.gateway
        cloud = self.config.cluster.cloud
        models = {m.name for m in self.config.models}
        for i, m in enumerate(self.config.models):
            if m.ingress is not None and gw is not None:
                self.add(f"models[{i}].ingress", "is the opt-in Ingress path; the model is already behind edge.gateway")
        if gw is None:
            if "apiKeys" in self.secrets:
                self.add("apiKeys", "is set but no edge.gateway uses it")
            return
        path = "edge.gateway"
        provider = gw.provider or ("gke" if cloud == "gke" else "envoy")
        if provider == "gke" and cloud != "gke":
            self.add(f"{path}.provider", f"gke is GKE's built-in Gateway controller; cluster.cloud is {cloud}")
        if provider == "gke":
            if gw.install:
                self.add(f"{path}.install", "GKE's Gateway controller is part of the cluster; nothing to install")
            if gw.class_name is not None and gw.class_name not in GKE_INFERENCE_GATEWAY_CLASSES:
                self.add(
                    f"{path}.className",
                    f"'{gw.class_name}' does not route to InferencePools; use one of {list(GKE_INFERENCE_GATEWAY_CLASSES)}",
                )
        elif (gw.install is False or (gw.install is None and cloud == "existing")) and gw.class_name is None:
            self.add(
                f"{path}.className",
                "name the existing GatewayClass (an Envoy Gateway with the AI Gateway extension's InferencePool "
                "support), or set install: true",
            )
        if gw.tls.acme is not None and gw.hostname.startswith("*."):
            self.add(
                f"{path}.tls.acme",
                "ACME HTTP-01 (through the Gateway) cannot issue a wildcard certificate; use tls.secretName",
            )
        for name in gw.objectives:
            if name not in models and not self.partial:
                self.add(f"{path}.objectives.{name}", f"is not a vLLM model of this stack ({sorted(models)})")
        served = {}
        for i, m in enumerate(self.config.models):
            if m.served_name in served:
                self.add(
                    f"models[{i}].servedModelName",
                    f"'{m.served_name}' is also served by {served[m.served_name]}: the gateway routes by the "
                    "request's model name, which must pick one model",
                )
            served[m.served_name] = m.name
        if "apiKeys" not in self.secrets:
            self.add(
                "apiKeys",
                "the public endpoint needs API keys: pulumi config set --secret --path 'apiKeys.<client>' <key> "
                "(one per client)",
            )
        elif self.api_key_clients is not None:
            if not self.api_key_clients:
                self.add(
                    "apiKeys",
                    "must be a map of client name -> key with at least one client "
                    "(pulumi config set --secret --path 'apiKeys.<client>' <key>)",
                )
            bad = [c for c in self.api_key_clients if not API_KEY_CLIENT.match(c)]
            if bad:
                self.add("apiKeys", f"client names {bad} must be letters, digits, '-', '_' or '.' (at most 63)")
