"""The stack's public front door: one Gateway API Gateway for every vLLM model (config ``edge``).

What a stack with ``edge.gateway`` gets (components/addons/gateway.py, cert_manager.py,
components/serving/edge.py, inference_pool.py, routes.py):

* a Gateway API implementation that routes to ``InferencePool`` backends (Gateway API
  Inference Extension): on GKE the built-in Gateway controller (``provider: gke``, the
  cluster's Gateway API is enabled), elsewhere Envoy Gateway with the Envoy AI Gateway
  extension that translates InferencePool backends (``provider: envoy``), installed and
  pinned by the stack or, with ``install: false``, an existing one named by ``className``;
* one Gateway with an HTTPS listener (certificate from cert-manager through ACME HTTP-01,
  or an existing Secret) and an HTTP listener that only redirects to HTTPS;
* API keys: the Pulumi secret ``apiKeys`` (client name -> key, several clients), enforced by
  the gateway (Envoy Gateway ``SecurityPolicy.apiKeyAuth``) or, where the implementation has
  no API-key authentication (GKE), by vLLM itself (``--api-key``, every client's key);
* per model an InferencePool and its endpoint picker (llm-d-router), a body-based router that
  copies the request's ``model`` into ``X-Gateway-Model-Name``, and HTTPRoutes matching that
  header: one OpenAI-compatible URL ``https://<hostname><path>`` for every model.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import ConfigModel, DnsLabel

LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"
"""Gateway API ``Hostname`` (gateway.networking.k8s.io v1.6.1): lowercase DNS name, optional wildcard."""
API_KEY_CLIENT = re.compile(r"^[A-Za-z0-9]([-_.A-Za-z0-9]{0,61}[A-Za-z0-9])?$")
"""A client name of ``apiKeys``: it becomes a Secret data key (``[-._a-zA-Z0-9]+``) and the
client id Envoy Gateway forwards."""


class AcmeConfig(ConfigModel):
    """A cert-manager ClusterIssuer that gets the Gateway's certificate from an ACME CA by HTTP-01
    through the Gateway itself (cert-manager's ``gatewayHTTPRoute`` solver)."""

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="ACME account contact")
    server: str = Field(
        default=LETSENCRYPT_PRODUCTION,
        pattern=r"^https://\S+$",
        description="ACME directory (Let's Encrypt production by default; its staging directory for tests)",
    )
    issuer_name: DnsLabel = Field(default="letsencrypt", description="name of the ClusterIssuer the stack creates")


class GatewayTlsConfig(ConfigModel):
    """Exactly one of ``acme`` (cert-manager issues and renews) or ``secretName`` (an existing
    ``kubernetes.io/tls`` Secret in the Gateway's namespace)."""

    acme: AcmeConfig | None = None
    secret_name: DnsLabel | None = Field(default=None, description="existing TLS Secret in the Gateway's namespace")

    @model_validator(mode="after")
    def _one_source(self) -> GatewayTlsConfig:
        if (self.acme is None) == (self.secret_name is None):
            raise ValueError("set exactly one of acme (cert-manager) or secretName (an existing TLS Secret)")
        return self


class InferenceObjectiveConfig(ConfigModel):
    """An InferenceObjective (llm-d.ai/v1alpha2) on a model's pool: requests that name it in the
    ``x-llm-d-inference-objective`` header (llm-d-router v0.10.0 pkg/epp/metadata/consts.go) get its
    priority when the pool is saturated."""

    name: DnsLabel
    priority: int = Field(ge=-1000, le=1000, description="higher is served first under load; default objective: 0")


class GatewayConfig(ConfigModel):
    provider: Literal["envoy", "gke"] | None = Field(
        default=None, description="Gateway implementation; default: gke on GKE, envoy (Envoy Gateway) elsewhere"
    )
    install: bool | None = Field(
        default=None,
        description="install Envoy Gateway and the Envoy AI Gateway extension (pinned Helm charts); default: true "
        "on EKS, false on existing clusters (an Envoy Gateway with InferencePool support is already there)",
    )
    class_name: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="GatewayClass of the Gateway; default: the class the stack creates (envoy) or "
        "gke-l7-regional-external-managed (gke); required for an existing Envoy Gateway",
    )
    name: DnsLabel = "inference-gateway"
    namespace: DnsLabel = Field(
        default="inference-gateway", description="namespace of the Gateway, its keys and its router"
    )
    proxy_namespace: DnsLabel = Field(
        default="envoy-gateway-system",
        description="where Envoy Gateway runs the Gateway's proxies (its controller's namespace unless it deploys "
        "them in the Gateway's namespace): the models' NetworkPolicies admit it",
    )
    hostname: str = Field(pattern=HOSTNAME, description="public DNS name of the OpenAI-compatible endpoint")
    path: str = Field(default="/v1", pattern=r"^/[A-Za-z0-9/_.-]*$", description="path prefix routed to the models")
    timeout_seconds: int = Field(default=600, ge=30, le=3600, description="request timeout (long generations stream)")
    tls: GatewayTlsConfig
    objectives: dict[str, list[InferenceObjectiveConfig]] = Field(
        default_factory=dict, description="model name -> InferenceObjectives (priorities) on its pool"
    )


class EdgeConfig(ConfigModel):
    gateway: GatewayConfig | None = Field(
        default=None, description="the public Gateway (off: in-cluster Services only)"
    )

    @field_validator("gateway")
    @classmethod
    def _objectives_unique(cls, gw: GatewayConfig | None) -> GatewayConfig | None:
        if gw is not None:
            for model, objectives in gw.objectives.items():
                names = [o.name for o in objectives]
                if len(names) != len(set(names)):
                    raise ValueError(f"objectives.{model}: duplicate objective names {sorted(names)}")
        return gw
