"""Guard rails for shared production clusters: Pod Security, GPU quota, network isolation.

What the serving namespace gets (components/serving/namespace.py, rayservice.py, vllm.py):

* Pod Security Standards: ``podSecurity`` is enforced (baseline by default), ``restricted`` is
  always warned about and audited. Every pod we declare meets ``restricted`` (non-root,
  no privilege escalation, all capabilities dropped, RuntimeDefault seccomp, only
  emptyDir/PVC/Secret volumes): GPUs come from the device plugin, which needs none of what
  ``restricted`` forbids. ``baseline`` stays the default for other workloads in the namespace
  and for ``vllmRunAsRoot``.
* A ResourceQuota on ``nvidia.com/gpu`` (``gpuQuota``) and LimitRange defaults for containers
  that declare no resources (ours all do).
* NetworkPolicies (``networkPolicy``), default deny in both directions, then only:

  ingress
    - from pods of the same namespace, any port (Ray head <-> workers: GCS, object
      manager, raylet ports are dynamic; in-namespace clients);
    - from ``ingressNamespaces`` (ingress controller, gateway proxies) and ``ingressCidrs``
      (load balancers that target pod IPs directly) on the serving port 8000; the namespace
      of a model's ``httpRoute`` Gateway is added for that model's pods;
    - from the monitoring namespace on the metrics ports (vLLM 8000, Ray 8080/44217/44227);
    - from the KubeRay operator's namespace to the Ray pods on the dashboard (8265, Serve
      config submission and status) and Serve (8000) ports.
    - Kubelet probes need no rule: traffic from a pod's own node is always allowed
      (Kubernetes NetworkPolicy semantics). KEDA and prometheus-adapter need none either:
      they query Prometheus, never the pods.
  egress
    - to pods of the same namespace;
    - DNS (UDP/TCP 53) to kube-system (CoreDNS / kube-dns) and to NodeLocal DNSCache's
      link-local address 169.254.20.10 (GKE, kubespray);
    - ``egressCidrs`` on ``egressPorts`` (default anywhere on 443): the Hugging Face Hub and
      its CDN for weight downloads. Port 80 stays closed, which keeps the cloud metadata
      endpoint (169.254.169.254:80) out of reach of model pods;
    - from the Ray head only: ``apiServerCidrs`` on ``apiServerPorts`` (443 on EKS/GKE, 6443
      on kubeadm clusters) for the autoscaler sidecar, which patches the RayCluster. Policies
      match after the Service DNAT, so these are the API server endpoints' addresses.

  A NetworkPolicy needs a CNI that enforces it (Calico, Cilium, GKE Dataplane V2, the EKS VPC
  CNI with ``enableNetworkPolicy``); elsewhere the objects are inert.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from .base import ConfigModel

NODE_LOCAL_DNS = "169.254.20.10/32"
"""NodeLocal DNSCache's default listen address (GKE, kubespray, kOps)."""


def _cidrs(values: list[str]) -> list[str]:
    for v in values:
        try:
            ipaddress.ip_network(v, strict=True)
        except ValueError as err:
            raise ValueError(f"'{v}' is not a CIDR block ({err})") from None
    return values


def _ports(values: list[int]) -> list[int]:
    bad = [p for p in values if not 1 <= p <= 65535]
    if bad:
        raise ValueError(f"ports must lie in 1..65535, got {bad}")
    return values


class NetworkPolicyConfig(ConfigModel):
    enabled: bool = True
    ingress_namespaces: list[str] = Field(
        default_factory=list,
        description="more namespaces whose pods may call the models on port 8000 (an opt-in ingress controller); "
        "the proxies of edge.gateway are admitted without being listed",
    )
    ingress_cidrs: list[str] = Field(
        default_factory=list,
        description="address ranges that may call the models on port 8000 directly: load balancers with pod-IP "
        "targets (AWS Load Balancer Controller in ip mode: the VPC subnets; GKE container-native load "
        "balancing: the proxy-only subnet and the health-check ranges 35.191.0.0/16, 130.211.0.0/22)",
    )
    egress_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="where model pods may connect (Hugging Face Hub and its CDN); narrow it to a mirror or "
        "proxy where one exists",
    )
    egress_ports: list[int] = Field(default_factory=lambda: [443], description="TCP ports allowed to egressCidrs")
    api_server_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="addresses of the Kubernetes API server endpoints (after the kubernetes Service's DNAT), "
        "which the Ray head's autoscaler calls; narrow it to the control plane's addresses",
    )
    api_server_ports: list[int] = Field(
        default_factory=lambda: [443, 6443],
        description="API server ports: 443 on EKS and GKE, 6443 on kubeadm-style clusters",
    )

    @field_validator("ingress_cidrs", "egress_cidrs", "api_server_cidrs")
    @classmethod
    def _check_cidrs(cls, v: list[str]) -> list[str]:
        return _cidrs(v)

    @field_validator("egress_ports", "api_server_ports")
    @classmethod
    def _check_ports(cls, v: list[int]) -> list[int]:
        return _ports(v)


class SecurityConfig(ConfigModel):
    pod_security: Literal["baseline", "restricted"] = Field(
        default="baseline", description="enforced Pod Security Standard; restricted is warned and audited"
    )
    gpu_quota: int | None = Field(default=None, ge=1, description="most GPUs the inference namespace may request")
    network_policy: NetworkPolicyConfig = NetworkPolicyConfig()
    vllm_run_as_root: bool = Field(
        default=False,
        description="run vLLM as the image's root user instead of uid 10001: only for ReadWriteMany cache "
        "storage that ignores fsGroup (some NFS servers), where a non-root download cannot write",
    )

    @field_validator("vllm_run_as_root")
    @classmethod
    def _root(cls, v: bool, info: ValidationInfo) -> bool:
        if v and info.data.get("pod_security") == "restricted":
            raise ValueError("podSecurity 'restricted' rejects pods running as root")
        return v
