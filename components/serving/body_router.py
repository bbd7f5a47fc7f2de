"""The body-based router (BBR): reads the request's ``model`` and sets ``X-Gateway-Model-Name``.

The objects of the Gateway API Inference Extension's ``body-based-routing`` chart at v1.5.0
(config/charts/body-based-routing/templates/bbr.yaml, rbac.yaml, gke.yaml), declared here so they
are validated like every other object and carry our hardening: a Deployment running
``bbr --streaming`` with the chart's default plugins, its Service (ext_proc, port 9004), a
ServiceAccount and a Role to read ConfigMaps in its namespace (adapter -> base-model maps).

How the Gateway calls it depends on the implementation:

* Envoy Gateway: an ``EnvoyExtensionPolicy`` (gateway.envoyproxy.io/v1alpha1, Envoy Gateway v1.9.0
  api/v1alpha1/ext_proc_types.go) on the Gateway's HTTPS listener, request body
  ``FullDuplexStreamed`` (what ``--streaming`` speaks), fail closed (the CRD's CEL rule forbids
  failOpen with that mode, and a request without its model header cannot be routed anyway);
* GKE: a ``GCPRoutingExtension`` and a gRPC ``HealthCheckPolicy`` (networking.gke.io/v1), as the
  chart's gke.yaml renders them.
"""

from __future__ import annotations

import json
from typing import Any

from llm_infra.components import k8s as kube
from llm_infra.config import versions

from .routes import GATEWAY_GROUP, HTTPS_LISTENER, MODEL_HEADER

NAME = "body-based-router"
PORT = 9004
HEALTH_PORT = 9005
RUN_AS = 65532
"""The image is distroless ``static:nonroot`` (uid/gid 65532)."""
RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
PLUGINS = (
    ("body-field-to-header", "model-extractor", {"fieldName": "model", "headerName": MODEL_HEADER}),
    ("base-model-to-header", "base-model-mapper", None),
)
"""The chart's default ``bbr.plugins`` (values.yaml at v1.5.0)."""


def args() -> list[str]:
    out = ["--streaming", "--v", "3"]
    for kind, name, params in PLUGINS:
        out += [
            "--plugin",
            f"{kind}:{name}:{json.dumps(params, separators=(',', ':'))}" if params else f"{kind}:{name}",
        ]
    return [*out, "--tracing=false"]


def selector() -> dict[str, str]:
    return kube.selector(NAME, "body-based-router")


def manifests(namespace: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role, RoleBinding, Deployment and Service (core objects)."""
    labels = kube.labels(NAME, "body-based-router")

    def meta(kind_name):
        return kube.metadata(kind_name, namespace, labels)

    probe = {"grpc": {"port": HEALTH_PORT}, "periodSeconds": 10, "timeoutSeconds": 5}
    container = {
        "name": "bbr",
        "image": versions.BBR_IMAGE,
        "imagePullPolicy": kube.IMAGE_PULL_POLICY,
        "args": args(),
        "env": [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "ports": [
            {"name": "grpc", "containerPort": PORT, "protocol": "TCP"},
            {"name": "grpc-health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 6},
        "resources": RESOURCES,
        "securityContext": kube.container_security_context(read_only_root=True),
    }
    pod = {
        "serviceAccountName": NAME,
        "securityContext": kube.pod_security_context(run_as_non_root=True, uid=RUN_AS),
        "containers": [container],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(NAME)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(f"{NAME}-configmap-reader"),
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(NAME),
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{NAME}-configmap-reader"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(NAME),
            "spec": {
                "replicas": 2,  # every request of the stack passes through it
                "selector": {"matchLabels": selector()},
                "template": {"metadata": {"labels": {**labels, **selector()}}, "spec": pod},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(NAME),
            "spec": {
                "type": "ClusterIP",
                "selector": selector(),
                "ports": [
                    {"name": "grpc", "protocol": "TCP", "port": PORT, "targetPort": PORT, "appProtocol": "HTTP2"}
                ],
            },
        },
    ]


def envoy_extension_policy(namespace: str, gateway: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyExtensionPolicy",
        "metadata": kube.metadata(NAME, namespace, kube.labels(NAME, "body-based-router")),
        "spec": {
            "targetRefs": [{"group": GATEWAY_GROUP, "kind": "Gateway", "name": gateway, "sectionName": HTTPS_LISTENER}],
            "extProc": [
                {
                    "backendRefs": [{"group": "", "kind": "Service", "name": NAME, "port": PORT}],
                    "processingMode": {"request": {"body": "FullDuplexStreamed"}},
                    "failOpen": False,
                    "messageTimeout": "5s",
                }
            ],
        },
    }


def gke_routing_extension(namespace: str, gateway: str) -> list[dict[str, Any]]:
    labels = kube.labels(NAME, "body-based-router")
    return [
        {
            "apiVersion": "networking.gke.io/v1",
            "kind": "GCPRoutingExtension",
            "metadata": kube.metadata(NAME, namespace, labels),
            "spec": {
                "targetRefs": [{"group": GATEWAY_GROUP, "kind": "Gateway", "name": gateway}],
                "extensionChains": [
                    {
                        "name": "chain1",
                        "extensions": [
                            {
                                "name": "ext1",
                                "authority": "myext.com",
                                "timeout": "1s",
                                "supportedEvents": ["RequestHeaders", "RequestBody", "RequestTrailers"],
                                "requestBodySendMode": "FullDuplexStreamed",
                                "backendRef": {"group": "", "kind": "Service", "name": NAME, "port": PORT},
                            }
                        ],
                    }
                ],
            },
        },
        {
            "apiVersion": "networking.gke.io/v1",
            "kind": "HealthCheckPolicy",
            "metadata": kube.metadata(f"{NAME}-healthcheck", namespace, labels),
            "spec": {
                "default": {
                    "config": {
                        "type": "GRPC",
                        "grpcHealthCheck": {"portSpecification": "USE_FIXED_PORT", "port": HEALTH_PORT},
                    }
                },
                "targetRef": {"group": "", "kind": "Service", "name": NAME},
            },
        },
    ]
