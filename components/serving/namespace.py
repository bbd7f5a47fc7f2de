"""The serving namespace and its guard rails: Pod Security labels, GPU quota, default
container resources, NetworkPolicies, and the Hugging Face token Secret.

The rules and why each exists are documented in config/security.py. With ``cluster.protect``
the namespace is kept on ``pulumi destroy`` (``retain_on_delete``): deleting it would delete
every model cache volume in it, whatever their own options say."""

# `pyright: ignore[reportArgumentType]` on a resource's metadata/spec: pulumi_kubernetes types them as its
# *Args TypedDicts; these manifests are plain dicts, validated against the Kubernetes OpenAPI schema of the
# pinned version by tests/test_rendered_schemas.py instead.
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components.k8s import MANAGED_BY
from llm_infra.config.credentials import CredentialSource
from llm_infra.config.security import NODE_LOCAL_DNS, SecurityConfig

if TYPE_CHECKING:
    from llm_infra.components.addons.external_secrets import SecretSync

HF_TOKEN_SECRET = "hf-token"
HF_TOKEN_KEY = "token"
HF_TOKEN_VOLUME = "hf-token"
HF_TOKEN_DIR = "/var/run/secrets/huggingface"
HF_TOKEN_MODE = 0o440
"""Read-only for the owner and the pod's fsGroup (our non-root users), nobody else."""

GPU_QUOTA_KEY = "requests.nvidia.com/gpu"

SERVING_PORT = 8000
METRICS_PORTS = (8000, 8080, 44217, 44227)
"""vLLM serves /metrics on its API port; Ray exports node metrics on 8080, autoscaler and
dashboard metrics on 44217 / 44227."""


def hf_token_env() -> dict[str, str]:
    """``HF_TOKEN_PATH``: huggingface_hub (``hf download``, vLLM, Ray Serve LLM) reads the token
    from this file when ``HF_TOKEN`` is unset. A file, not an env var: environment values
    show up in ``/proc/<pid>/environ``, crash reports and every child process (Ray workers)."""
    return {"name": "HF_TOKEN_PATH", "value": f"{HF_TOKEN_DIR}/{HF_TOKEN_KEY}"}


def hf_token_volume(secret: pulumi.Input[str]) -> dict:
    return {
        "name": HF_TOKEN_VOLUME,
        "secret": {
            "secretName": secret,
            "items": [{"key": HF_TOKEN_KEY, "path": HF_TOKEN_KEY}],
            "defaultMode": HF_TOKEN_MODE,
        },
    }


def hf_token_mount() -> dict:
    return {"name": HF_TOKEN_VOLUME, "mountPath": HF_TOKEN_DIR, "readOnly": True}


@dataclass(frozen=True)
class ServingNamespaceArgs:
    namespace: str
    """Name of the namespace to create (a DNS label)."""
    security: SecurityConfig = field(default_factory=SecurityConfig)
    """Pod Security level, GPU quota and NetworkPolicies (``security`` of the stack config)."""
    hf_token: pulumi.Input[str] | None = None
    """Secret: the Hugging Face token; written to the Secret ``hf-token`` (key ``token``)."""
    monitoring_namespaces: Sequence[str] = field(default_factory=list)
    """Namespaces whose Prometheus scrapes the model pods."""
    protect: bool = False
    """``cluster.protect``: keep the namespace (and the model caches in it) on delete."""
    hf_token_source: CredentialSource | None = None
    """Set when the token comes from the secret manager: an ExternalSecret writes the Secret."""
    secret_sync: SecretSync | None = None
    """The External Secrets store (``ClusterAddons.handle.secret_sync``), with ``hf_token_source``."""


def _from_namespaces(names: Sequence[str]) -> list[dict]:
    return [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}}} for n in names]


class ServingNamespace(pulumi.ComponentResource):
    """The namespace models run in, with its guard rails and the Hugging Face token Secret."""

    args: ServingNamespaceArgs
    """What it was built from (``ServingContext.create`` reads name, security and protect)."""
    namespace: k8s.core.v1.Namespace
    """The Namespace object (a dependency of everything inside it)."""
    namespace_name: pulumi.Output[str]
    """Name of the namespace, known once the Namespace exists."""
    hf_token_secret: str | None
    """Name of the Secret holding the Hugging Face token (key ``token``), if any."""
    hf_token_secret_name: pulumi.Output[str | None]
    """``hf_token_secret`` as an output that resolves once the Secret (or its ExternalSecret) exists."""

    def __init__(self, name: str, args: ServingNamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:ServingNamespace", name, None, opts)
        self.args = args
        ns = args.namespace
        sec = args.security
        # Baseline is enforced: GPU pods need what "restricted" forbids (seed 000); restricted
        # is still warned about and audited so drift towards it stays visible.
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={
                "name": ns,
                "labels": {
                    **MANAGED_BY,
                    "pod-security.kubernetes.io/enforce": sec.pod_security,
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                },
            },
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.protect),
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])

        def meta(object_name: str) -> dict:
            return {"name": object_name, "namespace": ns, "labels": MANAGED_BY}

        if sec.gpu_quota is not None:
            # Extended resources are counted by requests only: Kubernetes "Resource Quotas",
            # "Resource quota for extended resources": "only quota items with prefix requests.
            # are allowed" (a GPU's request always equals its limit, overcommit is not allowed).
            k8s.core.v1.ResourceQuota(
                f"{name}-gpu-quota",
                metadata=meta("gpu-quota"),  # pyright: ignore[reportArgumentType]
                spec={"hard": {GPU_QUOTA_KEY: str(sec.gpu_quota)}},
                opts=in_ns,
            )
        # Defaults for any container that forgets its resources (ours all set them).
        k8s.core.v1.LimitRange(
            f"{name}-defaults",
            metadata=meta("container-defaults"),  # pyright: ignore[reportArgumentType]
            spec={  # pyright: ignore[reportArgumentType]
                "limits": [
                    {
                        "type": "Container",
                        "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
                        "default": {"cpu": "1", "memory": "1Gi"},
                    }
                ]
            },
            opts=in_ns,
        )
        if sec.network_policy.enabled:
            self._network_policies(name, args, meta, in_ns)

        self.hf_token_secret = None
        token_object = None
        if args.hf_token_source is not None:
            assert args.secret_sync is not None, "ESO is installed when a credential uses it"
            token_object: pulumi.Resource | None = args.secret_sync.external_secret(
                f"{name}-hf-token-sync", ns, HF_TOKEN_SECRET, args.hf_token_source, HF_TOKEN_KEY, in_ns
            )
            self.hf_token_secret = HF_TOKEN_SECRET
        elif args.hf_token is not None:
            token_object = k8s.core.v1.Secret(
                f"{name}-hf-token",
                metadata=meta(HF_TOKEN_SECRET),  # pyright: ignore[reportArgumentType]
                type="Opaque",
                string_data={HF_TOKEN_KEY: args.hf_token},
                opts=in_ns,
            )
            self.hf_token_secret = HF_TOKEN_SECRET
        self.namespace_name = self.namespace.id.apply(lambda _: ns)
        self.hf_token_secret_name = (
            token_object.id.apply(lambda _: HF_TOKEN_SECRET)
            if token_object is not None
            else pulumi.Output.from_input(None)
        )
        self.register_outputs({"namespace": self.namespace_name, "hfTokenSecretName": self.hf_token_secret_name})

    def _network_policies(self, name: str, args: ServingNamespaceArgs, meta, opts: pulumi.ResourceOptions) -> None:
        np = args.security.network_policy
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=meta("default-deny"),
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},  # pyright: ignore[reportArgumentType]
            opts=opts,
        )
        ingress: list[dict[str, Any]] = [{"from": [{"podSelector": {}}]}]  # Ray head <-> workers, in-namespace clients
        callers = [*_from_namespaces(np.ingress_namespaces), *[{"ipBlock": {"cidr": c}} for c in np.ingress_cidrs]]
        if callers:
            ingress.append({"from": callers, "ports": [{"protocol": "TCP", "port": SERVING_PORT}]})
        if args.monitoring_namespaces:
            ingress.append(
                {
                    "from": _from_namespaces(args.monitoring_namespaces),
                    "ports": [{"protocol": "TCP", "port": p} for p in METRICS_PORTS],
                }
            )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-ingress",
            metadata=meta("allow-gateway-and-monitoring"),
            spec={"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress},  # pyright: ignore[reportArgumentType]
            opts=opts,
        )
        egress = [
            {"to": [{"podSelector": {}}]},
            {
                # CoreDNS / kube-dns pods, or NodeLocal DNSCache (host network, link-local address)
                "to": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}},
                    {"ipBlock": {"cidr": NODE_LOCAL_DNS}},
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
        ]
        if np.egress_cidrs and np.egress_ports:
            egress.append(
                {
                    "to": [{"ipBlock": {"cidr": cidr}} for cidr in np.egress_cidrs],
                    "ports": [{"protocol": "TCP", "port": p} for p in np.egress_ports],
                }
            )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-egress",
            metadata=meta("allow-dns-and-model-downloads"),
            spec={"podSelector": {}, "policyTypes": ["Egress"], "egress": egress},  # pyright: ignore[reportArgumentType]
            opts=opts,
        )
