"""The serving namespace: Pod Security labels and the Hugging Face token Secret."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.k8s import MANAGED_BY
from config.security import SecurityConfig

HF_TOKEN_SECRET = "hf-token"
HF_TOKEN_KEY = "token"


@dataclass(frozen=True)
class ServingNamespaceArgs:
    namespace: str
    security: SecurityConfig
    hf_token: pulumi.Output[str] | None
    monitoring_namespaces: list[str] = field(default_factory=list)


class ServingNamespace(pulumi.ComponentResource):
    hf_token_secret: str | None

    def __init__(self, name: str, args: ServingNamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:ServingNamespace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Baseline is enforced: GPU pods need what "restricted" forbids (seed 000).
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={
                "name": args.namespace,
                "labels": {
                    **MANAGED_BY,
                    "pod-security.kubernetes.io/enforce": args.security.pod_security,
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                },
            },
            opts=child,
        )
        self.hf_token_secret = None
        if args.hf_token is not None:
            k8s.core.v1.Secret(
                f"{name}-hf-token",
                metadata={"name": HF_TOKEN_SECRET, "namespace": args.namespace, "labels": MANAGED_BY},
                type="Opaque",
                string_data={HF_TOKEN_KEY: args.hf_token},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
            )
            self.hf_token_secret = HF_TOKEN_SECRET
        self.register_outputs({"namespace": args.namespace})
