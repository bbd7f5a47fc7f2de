"""Schemas of custom resources whose CRDs are not in ../shared/upstream, written from their
published API reference, so that objects of these kinds are still checked field by field.

Used only for a kind that ``../shared/upstream/crds`` (or ``LLM_INFRA_CRDS_DIR``) lacks: once
the CRD file is there, it wins. Missing upstream files (report them to the lead):

* GoogleCloudPlatform/gke-gateway-api, tag v1.4.0,
  ``config/crd/networking.gke.io_healthcheckpolicies.yaml`` and
  ``config/crd/networking.gke.io_gcpbackendpolicies.yaml``.

Source of the fields below: the GKE Gateway API reference, package ``networking.gke.io/v1``
(https://googlecloudplatform.github.io/gke-gateway-api/; HealthCheckPolicy, GCPBackendPolicy,
CommonHTTPHealthCheck) and GKE docs "Configure Gateway resources using Policies"
(https://cloud.google.com/kubernetes-engine/docs/how-to/configure-gateway-resources).
Sub-objects this project does not set are typed ``object`` without their inner fields.
"""

from __future__ import annotations

from typing import Any


def _int(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


_OBJECT = {"type": "object"}
_TARGET_REF = {
    "type": "object",
    "required": ["group", "kind", "name"],
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": {"type": "string"},
        "namespace": {"type": "string"},
    },
}
_HTTP_CHECK = {
    "type": "object",
    "properties": {
        "host": {"type": "string"},
        "port": _int(1, 65535),
        "portName": {"type": "string"},
        "portSpecification": {"type": "string", "enum": ["USE_FIXED_PORT", "USE_NAMED_PORT", "USE_SERVING_PORT"]},
        "proxyHeader": {"type": "string", "enum": ["NONE", "PROXY_V1"]},
        "requestPath": {"type": "string", "pattern": r"\/[A-Za-z0-9\/\-._~%!?$&'()*+,;=:]*$", "maxLength": 2048},
        "response": {"type": "string"},
    },
}


def _resource(kind: str, default: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string", "enum": [kind]},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["targetRef"],
                "properties": {"default": default, "targetRef": _TARGET_REF},
            },
        },
    }


DOCUMENTED_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("networking.gke.io/v1", "HealthCheckPolicy"): _resource(
        "HealthCheckPolicy",
        {
            "type": "object",
            "properties": {
                "checkIntervalSec": _int(1, 300),
                "timeoutSec": _int(1, 300),
                "healthyThreshold": _int(1, 10),
                "unhealthyThreshold": _int(1, 10),
                "logConfig": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
                "config": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": ["TCP", "HTTP", "HTTPS", "HTTP2", "GRPC"]},
                        "httpHealthCheck": _HTTP_CHECK,
                        "httpsHealthCheck": _HTTP_CHECK,
                        "http2HealthCheck": _HTTP_CHECK,
                        "grpcHealthCheck": _OBJECT,
                        "tcpHealthCheck": _OBJECT,
                    },
                },
            },
        },
    ),
    ("networking.gke.io/v1", "GCPBackendPolicy"): _resource(
        "GCPBackendPolicy",
        {
            "type": "object",
            "properties": {
                # "If the field is omitted, a default value (30s) will be used."
                "timeoutSec": {"type": "integer", "minimum": 1},
                "backendPreference": {"type": "string"},
                "connectionDraining": _OBJECT,
                "iap": _OBJECT,
                "logging": _OBJECT,
                "maxRatePerEndpoint": {"type": "integer"},
                "securityPolicy": {"type": "string"},
                "sessionAffinity": _OBJECT,
            },
        },
    ),
}
