"""Schemas of custom resources whose CRDs are not in ../shared/upstream, written from their
published API reference, so that objects of these kinds are still checked field by field.

Used only for a kind that ``../shared/upstream/crds`` (or ``LLM_INFRA_CRDS_DIR``) lacks: once
the CRD file is there, it wins. Missing upstream files (report them to the lead):

* GoogleCloudPlatform/gke-gateway-api, tag v1.4.0,
  ``config/crd/networking.gke.io_healthcheckpolicies.yaml`` and
  ``config/crd/networking.gke.io_gcpbackendpolicies.yaml``; GKE's ``gcproutingextensions.networking.gke.io``
  (GKE docs "Customize GKE Gateway traffic using Service Extensions": GCPRoutingExtension);
* envoyproxy/gateway, tag v1.9.0, ``charts/gateway-crds-helm/templates/generated/``
  ``gateway.envoyproxy.io_securitypolicies.yaml`` and ``gateway.envoyproxy.io_envoyextensionpolicies.yaml``
  (fields below: api/v1alpha1/securitypolicy_types.go, api_key_auth_types.go, envoyextensionpolicy_types.go,
  ext_proc_types.go at that tag; the CEL rules are copied from their kubebuilder markers).

Source of the fields below: the GKE Gateway API reference, package ``networking.gke.io/v1``
(https://googlecloudplatform.github.io/gke-gateway-api/; HealthCheckPolicy, GCPBackendPolicy,
CommonHTTPHealthCheck) and GKE docs "Configure Gateway resources using Policies"
(https://cloud.google.com/kubernetes-engine/docs/how-to/configure-gateway-resources).
Sub-objects this project does not set are typed ``object`` without their inner fields.
"""

from __future__ import annotations

from collections.abc import Sequence
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


# -- Envoy Gateway v1.9.0 (gateway.envoyproxy.io/v1alpha1) ------------------------------------------
_EG_TARGET_REF = {
    "type": "object",
    "required": ["group", "kind", "name"],
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": {"type": "string"},
        "sectionName": {"type": "string"},
    },
}
_SECRET_REF = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": {"type": "string"},
        "namespace": {"type": "string"},
    },
}
_BACKEND_REF = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "port": _int(1, 65535),
        "weight": {"type": "integer"},
    },
}
_BODY_MODE = {"type": "string", "enum": ["Streamed", "Buffered", "BufferedPartial", "FullDuplexStreamed"]}


def _eg_policy(kind: str, spec_properties: dict[str, Any], rules: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string", "enum": [kind]},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {"targetRefs": {"type": "array", "items": _EG_TARGET_REF}, **spec_properties},
            },
        },
    }


DOCUMENTED_SCHEMAS[("gateway.envoyproxy.io/v1alpha1", "SecurityPolicy")] = _eg_policy(
    "SecurityPolicy",
    {
        "apiKeyAuth": {
            "type": "object",
            "required": ["credentialRefs", "extractFrom"],
            "properties": {
                "credentialRefs": {"type": "array", "items": _SECRET_REF},
                "extractFrom": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            k: {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
                            for k in ("headers", "params", "cookies")
                        },
                        "x-kubernetes-validations": [
                            {
                                "rule": "(has(self.headers) ? 1 : 0) + (has(self.params) ? 1 : 0) + "
                                "(has(self.cookies) ? 1 : 0) == 1",
                                "message": "exactly one of headers, params, or cookies must be specified",
                            }
                        ],
                    },
                },
                "forwardClientIDHeader": {"type": "string"},
                "sanitize": {"type": "boolean"},
            },
        },
        "basicAuth": _OBJECT,
        "jwt": _OBJECT,
        "oidc": _OBJECT,
        "cors": _OBJECT,
        "extAuth": _OBJECT,
        "authorization": _OBJECT,
    },
)
DOCUMENTED_SCHEMAS[("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy")] = _eg_policy(
    "EnvoyExtensionPolicy",
    {
        "extProc": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "backendRefs": {"type": "array", "items": _BACKEND_REF},
                    "messageTimeout": {"type": "string"},
                    "failOpen": {"type": "boolean"},
                    "processingMode": {
                        "type": "object",
                        "properties": {
                            "request": {"type": "object", "properties": {"body": _BODY_MODE, "attributes": _OBJECT}},
                            "response": {"type": "object", "properties": {"body": _BODY_MODE, "attributes": _OBJECT}},
                            "allowModeOverride": {"type": "boolean"},
                        },
                    },
                    "shadowMode": {"type": "boolean"},
                    "metadata": _OBJECT,
                    "statusOnError": {"type": "integer"},
                },
                "x-kubernetes-validations": [
                    {
                        "rule": "!(has(self.failOpen) && self.failOpen == true && has(self.processingMode) && "
                        "((has(self.processingMode.request) && has(self.processingMode.request.body) && "
                        "self.processingMode.request.body == 'FullDuplexStreamed') || "
                        "(has(self.processingMode.response) && has(self.processingMode.response.body) && "
                        "self.processingMode.response.body == 'FullDuplexStreamed')))",
                        "message": "If FullDuplexStreamed body processing mode is used, FailOpen must be false.",
                    },
                    {
                        "rule": "has(self.backendRefs) ? self.backendRefs.all(f, f.kind == 'Service' || "
                        "f.kind == 'ServiceImport' || f.kind == 'Backend') : true",
                        "message": "BackendRefs only supports Service, ServiceImport, and Backend kind.",
                    },
                ],
            },
        },
        "wasm": _OBJECT,
        "lua": _OBJECT,
    },
)

# -- GKE Service Extensions (networking.gke.io/v1) ----------------------------------------------------
DOCUMENTED_SCHEMAS[("networking.gke.io/v1", "GCPRoutingExtension")] = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string", "enum": ["GCPRoutingExtension"]},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["targetRefs", "extensionChains"],
            "properties": {
                "targetRefs": {"type": "array", "items": _TARGET_REF},
                "extensionChains": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "extensions"],
                        "properties": {
                            "name": {"type": "string"},
                            "matchCondition": _OBJECT,
                            "extensions": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "authority": {"type": "string"},
                                        "timeout": {"type": "string"},
                                        "failOpen": {"type": "boolean"},
                                        "forwardHeaders": {"type": "array", "items": {"type": "string"}},
                                        "supportedEvents": {
                                            "type": "array",
                                            "items": {
                                                "type": "string",
                                                "enum": [
                                                    "RequestHeaders",
                                                    "RequestBody",
                                                    "RequestTrailers",
                                                    "ResponseHeaders",
                                                    "ResponseBody",
                                                    "ResponseTrailers",
                                                ],
                                            },
                                        },
                                        "requestBodySendMode": {
                                            "type": "string",
                                            "enum": ["Streamed", "FullDuplexStreamed"],
                                        },
                                        "backendRef": _BACKEND_REF,
                                        "metadata": _OBJECT,
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
