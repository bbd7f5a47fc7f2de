"""Pulumi unit-test mocks that record what the program declares.

The offline render runs the real ``__main__.py`` against these instead of the Pulumi
engine: every resource registration is recorded with its inputs (secrets still marked),
parent, dependencies and options; cloud resources get plausible outputs so that code
which reads them (kubeconfigs, ARNs, endpoints) keeps working.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.proto import resource_pb2

FAKE_ACCOUNT = "123456789012"
FAKE_REGION = "us-east-1"
"""Where the fake AWS resources live; ARNs below have the real shapes (IAM is global: no region)."""


def oidc_issuer_host(cluster: str, region: str = FAKE_REGION) -> str:
    """``oidc.eks.<region>.amazonaws.com/id/<32 hex>``, the shape EKS gives a cluster's issuer."""
    return f"oidc.eks.{region}.amazonaws.com/id/{hashlib.sha256(cluster.encode()).hexdigest()[:32].upper()}"


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
    issuer = oidc_issuer_host(args.inputs.get("name", name))
    return {
        "kubeconfig": kubeconfig,
        "kubeconfigJson": json.dumps(kubeconfig),
        # eksCluster and core hold resource references (aws.eks.Cluster, iam.Role, ...): a plain
        # dict there makes the SDK reject every output of the resource, so they are left out
        "clusterSecurityGroupId": f"sg-{name}",
        "nodeSecurityGroupId": f"sg-{name}-nodes",
        "oidcProviderArn": f"arn:aws:iam::{FAKE_ACCOUNT}:oidc-provider/{issuer}",
        "oidcProviderUrl": issuer,
        "oidcIssuer": issuer,
        "clusterOidcIssuer": f"https://{issuer}",
    }


@mock_outputs("aws:iam/role:Role", "aws:iam/policy:Policy", "aws:iam/instanceProfile:InstanceProfile")
def _iam_arn(args: MockResourceArgs) -> dict[str, Any]:
    """``arn:aws:iam::<account>:<role|policy|instance-profile>/<path><name>`` (IAM ids are names)."""
    kind = {"role": "role", "policy": "policy", "instanceProfile": "instance-profile"}[
        args.typ.split("/")[1].split(":")[0]
    ]
    name = args.inputs.get("name", args.name)
    path = args.inputs.get("path", "/")
    return {"arn": f"arn:aws:iam::{FAKE_ACCOUNT}:{kind}{path}{name}", "name": name, "path": path}


@mock_outputs("gcp:container/cluster:Cluster")
def _gke_cluster(args: MockResourceArgs) -> dict[str, Any]:
    return {
        "endpoint": "203.0.113.10",
        "masterAuth": {"clusterCaCertificate": "ZmFrZS1jYQ=="},
        "location": args.inputs.get("location", "us-central1"),
    }


@mock_outputs("gcp:serviceaccount/account:Account")
def _gcp_service_account(args: MockResourceArgs) -> dict[str, Any]:
    account, project = args.inputs.get("accountId", args.name), args.inputs.get("project", "offline")
    email = f"{account}@{project}.iam.gserviceaccount.com"
    return {"email": email, "name": f"projects/{project}/serviceAccounts/{email}"}


@mock_outputs("aws:secretsmanager/secret:Secret")
def _secretsmanager_secret(args: MockResourceArgs) -> dict[str, Any]:
    """``arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>``."""
    name = args.inputs.get("name", args.name)
    suffix = hashlib.sha256(name.encode()).hexdigest()[:6]
    return {"arn": f"arn:aws:secretsmanager:{FAKE_REGION}:{FAKE_ACCOUNT}:secret:{name}-{suffix}", "name": name}


@mock_outputs("aws:sqs/queue:Queue")
def _sqs_queue(args: MockResourceArgs) -> dict[str, Any]:
    name = args.inputs.get("name", args.name)
    return {
        "url": f"https://sqs.{FAKE_REGION}.amazonaws.com/{FAKE_ACCOUNT}/{name}",
        "arn": f"arn:aws:sqs:{FAKE_REGION}:{FAKE_ACCOUNT}:{name}",
    }


def _asg_name(node_group_name: str) -> str:
    return f"eks-{node_group_name}-0a1b2c3d-offline"


@mock_outputs("aws:eks/nodeGroup:NodeGroup")
def _eks_node_group(args: MockResourceArgs) -> dict[str, Any]:
    """The Auto Scaling group EKS creates behind a managed node group (its tags are ours to set)."""
    return {"resources": [{"autoscalingGroups": [{"name": _asg_name(args.name)}], "remoteAccessSecurityGroupId": ""}]}


FAKE_EKS_SUBNETS = {
    # id: (zone, public)
    "subnet-0a11111111111111a": ("us-east-1a", False),
    "subnet-0b22222222222222b": ("us-east-1b", False),
    "subnet-0c33333333333333c": ("us-east-1c", False),
    "subnet-0d44444444444444d": ("us-east-1a", True),
}
"""Subnets of the fake existing EKS cluster (``existingClusterName``) the lookups return."""


def _existing_eks_cluster(name: str) -> dict[str, Any]:
    issuer = f"https://{oidc_issuer_host(name)}"
    return {
        "name": name,
        "id": name,
        "arn": f"arn:aws:eks:{FAKE_REGION}:{FAKE_ACCOUNT}:cluster/{name}",
        "endpoint": f"https://{name}.gr7.us-east-1.eks.offline.invalid",
        "certificateAuthorities": [{"data": "ZmFrZS1jYQ=="}],
        "identities": [{"oidcs": [{"issuer": issuer}]}],
        "version": "1.33",
        "status": "ACTIVE",
        "vpcConfig": {
            "vpcId": "vpc-0e55555555555555e",
            "subnetIds": sorted(FAKE_EKS_SUBNETS),
            "clusterSecurityGroupId": "sg-0f66666666666666f",
            "securityGroupIds": [],
            "endpointPublicAccess": True,
            "endpointPrivateAccess": True,
            "publicAccessCidrs": ["0.0.0.0/0"],
        },
    }


def _generic_outputs(args: MockResourceArgs) -> dict[str, Any]:
    outputs: dict[str, Any] = {"name": args.inputs.get("name", args.name)}
    if args.typ.startswith("aws:"):
        # arn:aws:<service>:<region>:<account>:<resource>/<name>; types whose ARN the program
        # reads have exact shapes above (IAM, SQS)
        module, resource = args.typ.split(":")[1].split("/")
        outputs["arn"] = f"arn:aws:{module}:{FAKE_REGION}:{FAKE_ACCOUNT}:{resource.lower()}/{outputs['name']}"
    if args.typ.startswith("gcp:"):
        outputs["selfLink"] = f"https://offline.invalid/{args.name}"
    return outputs


MANAGED_NODE_GROUP = "eks:index:ManagedNodeGroup"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


class RenderMocks(Mocks):
    def __init__(self) -> None:
        self.inner: dict[str, tuple[str, dict[str, Any]]] = {}
        """Resources that exist only inside a remote component (URN -> id, state): the program
        reaches them through resource references, which the monitor answers by URN."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = {**_generic_outputs(args), **args.inputs}
        factory = MOCK_OUTPUTS.get(args.typ)
        if factory:
            outputs.update(factory(args))
        if args.typ == MANAGED_NODE_GROUP:
            # pulumi-eks's ManagedNodeGroup creates an aws.eks.NodeGroup inside and outputs a
            # reference to it (``nodeGroup``); give it one, with its Auto Scaling group
            name = f"{args.name}-nodegroup"
            urn = f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{NODE_GROUP}::{name}"
            inner = MockResourceArgs(typ=NODE_GROUP, name=args.name, inputs={}, provider="", resource_id="")
            self.inner[urn] = (f"{name}-id", {"nodeGroupName": args.name, **_eks_node_group(inner)})
            outputs["nodeGroup"] = {rpc._special_sig_key: rpc._special_resource_sig, "urn": urn, "id": f"{name}-id"}
        return f"{args.name}-id", outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": FAKE_ACCOUNT,
                "arn": f"arn:aws:iam::{FAKE_ACCOUNT}:user/offline",
                "userId": "offline",
            }, []
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {
                "names": ["us-east-1a", "us-east-1b", "us-east-1c"],
                "zoneIds": ["use1-az1", "use1-az2", "use1-az3"],
            }, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": "us-east-1", "region": "us-east-1"}, []
        if args.token == "aws:eks/getCluster:getCluster":
            return _existing_eks_cluster(args.args["name"]), []
        if args.token == "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider":
            url = str(args.args.get("url", "")).removeprefix("https://")
            return {
                "arn": f"arn:aws:iam::{FAKE_ACCOUNT}:oidc-provider/{url}",
                "url": url,
                "clientIdLists": ["sts.amazonaws.com"],
            }, []
        if args.token == "aws:ec2/getSubnet:getSubnet":
            sid = args.args["id"]
            zone, public = FAKE_EKS_SUBNETS[sid]
            return {
                "id": sid,
                "availabilityZone": zone,
                "mapPublicIpOnLaunch": public,
                "vpcId": "vpc-0e55555555555555e",
            }, []
        if args.token == "gcp:container/getCluster:getCluster":
            name = args.args["name"]
            return {
                "name": name,
                "location": args.args.get("location"),
                "project": args.args.get("project"),
                "endpoint": "203.0.113.20",
                "masterAuths": [{"clusterCaCertificate": "ZmFrZS1jYQ=="}],
                "workloadIdentityConfigs": [{"workloadPool": f"{args.args.get('project')}.svc.id.goog"}],
            }, []
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
        inner = value.get("value")
        if isinstance(inner, dict) and not rpc.is_rpc_secret(inner):
            # a secret map (e.g. Secret.stringData, which the Kubernetes SDK marks secret as a
            # whole): its keys are names, not credentials; masking per value keeps the object's shape
            return {k: SECRET_MASK for k in inner}
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

    # Resource references (a resource passed as an input, e.g. ``ManagedNodeGroup(cluster=...,
    # node_role=...)``) are turned off: deserializing one inside the monitor would look the
    # resource up on the monitor thread's event loop, which the program's loop cannot await.
    # Without them the SDK sends the resource's ID (custom) or URN (component) instead.
    def SupportsFeature(self, request):
        response = super().SupportsFeature(request)
        if request.id == "resourceReferences":
            # the SDK answers with a class (type(...)) whose attribute is the answer; its stub does not say so
            response.hasSupport = False  # pyright: ignore[reportAttributeAccessIssue]
        return response

    def GetDeploymentInfo(self, request):
        info = super().GetDeploymentInfo(request)
        features = [f for f in info.supportedFeatures if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        for urn, (id_, state) in getattr(self.mocks, "inner", {}).items():
            self.resources.setdefault(urn, MockMonitor.ResourceRegistration(urn, id_, state))
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

    def RegisterResourceOutputs(self, request):
        if request.urn == self._stack_urn or request.urn.split("::")[2:3] == ["pulumi:pulumi:Stack"]:
            outputs = rpc.deserialize_properties(request.outputs, keep_unknowns=False)
            self.stack_outputs = mask_secrets(outputs)
        return super().RegisterResourceOutputs(request)


__all__ = ["MOCK_OUTPUTS", "SECRET_MASK", "RecordingMonitor", "RenderMocks", "ResourceRecord", "mock_outputs", "pulumi"]
