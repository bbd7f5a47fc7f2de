"""Pulumi unit-test mocks that record what the program declares.

The offline render runs the real ``__main__.py`` against these instead of the Pulumi
engine: every resource registration is recorded with its inputs (secrets still marked),
parent, dependencies and options; cloud resources get plausible outputs so that code
which reads them (kubeconfigs, ARNs, endpoints) keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

FAKE_ACCOUNT = "123456789012"

OutputFactory = Callable[[MockResourceArgs], dict[str, Any]]
MOCK_OUTPUTS: dict[str, OutputFactory] = {}
"""Extra outputs per type token for resources whose outputs the program reads."""


def mock_outputs(*type_tokens: str) -> Callable[[OutputFactory], OutputFactory]:
    def register(fn: OutputFactory) -> OutputFactory:
        for token in type_tokens:
            MOCK_OUTPUTS[token] = fn
        return fn

    return register


def fake_kubeconfig(cluster_name: str, server: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": "ZmFrZQ=="}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": {"token": "offline-render"}}],
    }


@mock_outputs("eks:index:Cluster")
def _eks_cluster(args: MockResourceArgs) -> dict[str, Any]:
    name = args.name
    kubeconfig = fake_kubeconfig(name, f"https://{name}.eks.offline.invalid")
    return {
        "kubeconfig": kubeconfig,
        "kubeconfigJson": json.dumps(kubeconfig),
        "eksCluster": {"name": name, "arn": f"arn:aws:eks:us-east-1:{FAKE_ACCOUNT}:cluster/{name}"},
        "core": {
            "cluster": {"name": name},
            "oidcProvider": {"arn": f"arn:aws:iam::{FAKE_ACCOUNT}:oidc-provider/oidc.eks.offline.invalid/id/{name}",
                             "url": f"oidc.eks.offline.invalid/id/{name}"},
        },
        "clusterSecurityGroupId": f"sg-{name}",
        "nodeSecurityGroupId": f"sg-{name}-nodes",
        "oidcProviderArn": f"arn:aws:iam::{FAKE_ACCOUNT}:oidc-provider/oidc.eks.offline.invalid/id/{name}",
        "oidcProviderUrl": f"oidc.eks.offline.invalid/id/{name}",
        "oidcIssuer": f"oidc.eks.offline.invalid/id/{name}",
        "clusterOidcIssuer": f"https://oidc.eks.offline.invalid/id/{name}",
    }


def _generic_outputs(args: MockResourceArgs) -> dict[str, Any]:
    outputs: dict[str, Any] = {"name": args.inputs.get("name", args.name)}
    if args.typ.startswith("aws:"):
        outputs["arn"] = f"arn:aws:{args.typ.split(':')[1].split('/')[0]}::{FAKE_ACCOUNT}:{args.name}"
    if args.typ.startswith("gcp:"):
        outputs["selfLink"] = f"https://offline.invalid/{args.name}"
    return outputs


class RenderMocks(Mocks):
    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = {**_generic_outputs(args), **args.inputs}
        factory = MOCK_OUTPUTS.get(args.typ)
        if factory:
            outputs.update(factory(args))
        return f"{args.name}-id", outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": FAKE_ACCOUNT, "arn": f"arn:aws:iam::{FAKE_ACCOUNT}:user/offline", "userId": "offline"}, []
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["us-east-1a", "us-east-1b", "us-east-1c"], "zoneIds": ["use1-az1", "use1-az2", "use1-az3"]}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": "us-east-1", "region": "us-east-1"}, []
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"accessToken": "offline", "project": "offline", "region": "us-central1"}, []
        return {}, []


SECRET_MASK = "[secret]"


def mask_secrets(value: Any) -> Any:
    """Replace every value Pulumi marks secret with a mask (the value is never kept).

    Numbers cross the gRPC boundary as doubles; whole numbers are turned back into ints,
    as the provider does with the schema's integer fields (ports, replicas, seconds).
    """
    if rpc.is_rpc_secret(value):
        return SECRET_MASK
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class ResourceRecord:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    depends_on: list[str] = field(default_factory=list)
    protect: bool = False
    retain_on_delete: bool = False
    provider: str | None = None
    aliases: list[str] = field(default_factory=list)


class RecordingMonitor(MockMonitor):
    """A MockMonitor that also keeps parent, dependencies and options of each resource."""

    def __init__(self, mocks: Mocks):
        super().__init__(mocks)
        self.records: list[ResourceRecord] = []
        self.stack_outputs: dict[str, Any] = {}
        self._stack_urn: str | None = None

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self._stack_urn = response.urn
            return response
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=False)
        self.records.append(
            ResourceRecord(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                inputs=mask_secrets(inputs),
                depends_on=sorted(set(request.dependencies)),
                protect=bool(request.protect),
                retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
                provider=request.provider or None,
                aliases=sorted(a.urn or a.spec.name for a in getattr(request, "aliases", []) if (a.urn or a.spec.name)),
            )
        )
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802
        if request.urn == self._stack_urn or request.urn.split("::")[2:3] == ["pulumi:pulumi:Stack"]:
            outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=False)
            self.stack_outputs = mask_secrets(outputs)
        return super().RegisterResourceOutputs(request)


__all__ = ["MOCK_OUTPUTS", "RecordingMonitor", "RenderMocks", "ResourceRecord", "SECRET_MASK", "mock_outputs", "pulumi"]
