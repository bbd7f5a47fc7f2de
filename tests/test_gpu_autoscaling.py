"""Elastic GPU capacity: every GPU pool that is meant to grow has something that grows it.

EKS: ``cluster.eks.gpuAutoscaler`` picks the Cluster Autoscaler (Helm, IRSA, ASG discovery
and scale-from-zero tags, node groups leave their desired size to it) or Karpenter (a
NodePool for every growing pool). GKE: the node pools' own autoscaling. Checked on the
stacks and on an EKS variant running the Cluster Autoscaler (prod has Karpenter).
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from conftest import PROJECT, STACKS, render, requires_upstream, resources_of_type
from stackfiles import assert_rejected, stack_values
from test_iam import _excused, require_parliament, run_parliament
from test_rendered_schemas import unknown_value_keys
from upstream import documented_keys

from llm_infra.components.render import helm_releases, run_program
from llm_infra.components.render.engine import Recording
from llm_infra.config import load_stack_config, versions
from llm_infra.config.cluster import POOL_LABEL

MNG = "eks:index:ManagedNodeGroup"
PLAIN_NG = "aws:eks/nodeGroup:NodeGroup"
ASG_TAG = "aws:autoscaling/tag:Tag"

# cluster-autoscaler/cloudprovider/aws/README.md at tag cluster-autoscaler-chart-9.59.0, lines
# 41-68, "Full Cluster Autoscaler Features Policy (Recommended)" (not in ../shared/upstream)
README_DESCRIBE_ACTIONS = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "eks:DescribeNodegroup",
]
README_SCALING_ACTIONS = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]

_renders: dict[str, Recording] = {}


def ca_cluster(existing: bool = False) -> dict:
    cluster = copy.deepcopy(stack_values("prod")[0]["cluster"])
    cluster["eks"].update(gpuAutoscaler="clusterAutoscaler", karpenter={"enabled": False})
    if existing:
        cluster["existingClusterName"] = "llm-prod-existing"
        cluster["eks"].pop("vpcCidr", None)
        cluster["eks"].pop("publicAccessCidrs", None)  # the existing cluster's endpoint is not ours
    return cluster


def ca_render(existing: bool = False):
    key = f"ca-{existing}"
    if key not in _renders:
        _renders[key] = run_program(PROJECT, "prod", config_overrides={"cluster": ca_cluster(existing)})
    return _renders[key]


def tags_by_asg(rec) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for r in resources_of_type(rec, ASG_TAG):
        tag = r.inputs["tag"]
        assert tag["propagateAtLaunch"] is False
        out.setdefault(r.inputs["autoscalingGroupName"], {})[tag["key"]] = tag["value"]
    return out


# ------------------------------------------------------------------ every stack
def test_every_growing_gpu_pool_has_an_autoscaler(stack):
    plan = load_stack_config(stack, *stack_values(stack))
    cluster = plan.config.cluster
    for pool in cluster.node_pools:
        feas = plan.feasibility[pool.name]
        desired = pool.desired_nodes if pool.desired_nodes is not None else pool.min_nodes
        if pool.max_nodes > desired:
            assert feas.autoscaler != "none", f"{stack}/{pool.name} is meant to grow but nothing grows it"
            assert feas.reach_nodes > desired
        expected = {"eks": None, "gke": "gke", "existing": "existing"}[cluster.cloud]
        if expected:
            assert feas.autoscaler == expected
    rec = render(stack)
    charts = {r["chart"] for r in helm_releases(rec)}
    if cluster.cloud == "eks":
        choice = cluster.eks.gpu_autoscaler_choice
        assert (versions.CLUSTER_AUTOSCALER.name in charts) == (choice == "clusterAutoscaler")
        assert (versions.KARPENTER.name in charts) == (choice == "karpenter")
    else:
        assert versions.CLUSTER_AUTOSCALER.name not in charts and versions.KARPENTER.name not in charts
    if cluster.cloud == "gke":
        for r in resources_of_type(rec, "gcp:container/nodePool:NodePool"):
            assert r.inputs["autoscaling"]["totalMaxNodeCount"] >= r.inputs["autoscaling"]["totalMinNodeCount"]


def test_prod_karpenter_covers_every_gpu_pool():
    rec, plan = render("prod"), load_stack_config("prod", *stack_values("prod"))
    assert plan.config.cluster.eks.gpu_autoscaler_choice == "karpenter"
    node_pools = {
        o["spec"]["template"]["metadata"]["labels"][POOL_LABEL]: o
        for o in [r.inputs for r in rec.resources if r.type == "kubernetes:karpenter.sh/v1:NodePool"]
    }
    assert set(node_pools) == {"a10g", "a10g-x4", "l40s", "a10g-x4-pp", "l40s-pp"}
    # g5.12xlarge (4 x A10G) is the 70B pool's type: without it that pool could never grow
    reqs = {r["key"]: r["values"] for r in node_pools["a10g-x4"]["spec"]["template"]["spec"]["requirements"]}
    assert reqs["node.kubernetes.io/instance-type"] == ["g5.12xlarge"]
    # managed node groups keep their size under Karpenter (nothing else changes it)
    assert all("ignoreScalingChanges" not in r.inputs for r in resources_of_type(rec, MNG))


# ------------------------------------------------------------------ the Cluster Autoscaler
def test_cluster_autoscaler_release_pinned_and_values_exist_upstream():
    rec = ca_render()
    [release] = [r for r in helm_releases(rec) if r["chart"] == versions.CLUSTER_AUTOSCALER.name]
    assert (release["version"], release["repository"], release["namespace"]) == (
        "9.59.0",
        "https://kubernetes.github.io/autoscaler",
        "kube-system",
    )
    upstream = yaml.safe_load(requires_upstream("helm-values", "cluster-autoscaler", "values.yaml").read_text())
    # extraArgs holds CA flags: the chart's values.yaml lists each one we set as a commented example
    documented = documented_keys("cluster-autoscaler")
    assert not unknown_value_keys(release["values"], upstream, documented)
    assert {("extraArgs", flag) for flag in release["values"]["extraArgs"]} <= documented
    v = release["values"]
    assert (v["cloudProvider"], v["awsRegion"]) == ("aws", "us-east-1")
    assert v["autoDiscovery"]["clusterName"] == "llm-prod"
    # the chart's default discovery tags, which we put on every ASG
    assert upstream["autoDiscovery"]["tags"] == [
        "k8s.io/cluster-autoscaler/enabled",
        "k8s.io/cluster-autoscaler/{{ .Values.autoDiscovery.clusterName }}",
    ]
    assert v["rbac"]["serviceAccount"]["name"] == "cluster-autoscaler"
    assert v["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert v["nodeSelector"] == {POOL_LABEL: "system"}
    args = v["extraArgs"]
    assert args["expander"] == "least-waste"
    assert args["balance-similar-node-groups"] is True
    assert args["skip-nodes-with-local-storage"] is False  # vLLM pods mount emptyDirs
    assert args["scale-down-unneeded-time"] == "15m"


def test_cluster_autoscaler_iam_follows_the_readme_policy():
    rec = ca_render()
    [role] = [r for r in resources_of_type(rec, "aws:iam/role:Role") if r.name.endswith("cluster-autoscaler-role")]
    statement = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert list(statement["Condition"]["StringLike"].values()) == [
        "system:serviceaccount:kube-system:cluster-autoscaler"
    ]
    [policy] = [
        r for r in resources_of_type(rec, "aws:iam/policy:Policy") if r.name.endswith("cluster-autoscaler-policy")
    ]
    describe, nodegroups, scale = json.loads(policy.inputs["policy"])["Statement"]
    # exactly the README's actions, none added
    assert (
        describe["Action"] + nodegroups["Action"] == README_DESCRIBE_ACTIONS
        and scale["Action"] == README_SCALING_ACTIONS
    )
    assert describe["Resource"] == ["*"]
    # narrowed as the README recommends: this cluster's node groups, its tagged ASGs (ARN form of
    # the README's minimal policy: arn:aws:autoscaling:<region>:<account>:autoScalingGroup:*:autoScalingGroupName/<name>)
    assert nodegroups["Resource"] == ["arn:aws:eks:us-east-1:123456789012:nodegroup/llm-prod/*/*"]
    assert scale["Resource"] == ["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/*"]
    assert scale["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/llm-prod": "owned"}}


def test_cluster_autoscaler_iam_passes_parliament(tmp_path):
    require_parliament()
    rec = ca_render()
    docs = [
        r
        for r in rec.resources
        if "cluster-autoscaler" in r.name and r.type in ("aws:iam/policy:Policy", "aws:iam/role:Role")
    ]
    assert len(docs) == 2
    for r in docs:
        kind = "trust" if r.type == "aws:iam/role:Role" else "policy"
        (tmp_path / f"{kind}--{r.name}.json").write_text(r.inputs["assumeRolePolicy" if kind == "trust" else "policy"])
    findings = run_parliament(tmp_path)
    unexcused = [f"{f['file']}: {f['issue']} {f.get('detail')}" for f in findings if not _excused(f)]
    assert not unexcused, unexcused


@pytest.mark.parametrize("existing", [False, True], ids=["new-cluster", "existing-cluster"])
def test_every_node_group_asg_is_tagged_for_discovery_and_scale_from_zero(existing):
    rec = ca_render(existing)
    cluster_name = "llm-prod-existing" if existing else "llm-prod"
    plan = load_stack_config(
        "prod", {**stack_values("prod")[0], "cluster": ca_cluster(existing)}, stack_values("prod")[1]
    )
    token = PLAIN_NG if existing else MNG
    groups = {(r.inputs.get("labels") or {})[POOL_LABEL]: r for r in resources_of_type(rec, token)}
    assert set(groups) == {"system", "a10g", "a10g-x4", "l40s", "a10g-x4-pp", "l40s-pp"}
    tags = tags_by_asg(rec)
    # the mocks name each node group's ASG eks-<resource name>-<suffix>, as EKS does
    asg = {pool: next(a for a in tags if a.startswith(f"eks-{r.name}-0")) for pool, r in groups.items()}
    # GPUs per node, by hand from the catalog: g5.2xlarge 1, g5.12xlarge 4, g6e.2xlarge 1
    gpus = {"a10g": "1", "a10g-x4": "4", "l40s": "1", "a10g-x4-pp": "4", "l40s-pp": "1"}
    for pool, name in asg.items():
        t = tags[name]
        assert t["k8s.io/cluster-autoscaler/enabled"] == "true"
        assert t[f"k8s.io/cluster-autoscaler/{cluster_name}"] == "owned"
        for key, value in groups[pool].inputs["labels"].items():
            assert t[f"k8s.io/cluster-autoscaler/node-template/label/{key}"] == value
        if pool == "system":
            assert not [k for k in t if "/taint/" in k or "/resources/" in k]
            continue
        facts = plan.pools[pool]
        assert t["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == f"{facts.taint_value}:NoSchedule"
        assert t["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == gpus[pool]
    # new clusters: pulumi-eks leaves the desired size to the autoscaler after creation
    if not existing:
        assert all(r.inputs["ignoreScalingChanges"] is True for r in groups.values())
    # the release waits for the tags it discovers groups by
    [release] = [
        r
        for r in rec.resources
        if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["name"] == "cluster-autoscaler"
    ]
    tag_urns = {r.urn for r in resources_of_type(rec, ASG_TAG)}
    assert tag_urns <= set(release.depends_on)
    assert not [r for r in rec.resources if r.type.startswith("kubernetes:karpenter")]


def test_the_70b_pool_grows_under_the_cluster_autoscaler():
    plan = load_stack_config("prod", {**stack_values("prod")[0], "cluster": ca_cluster()}, stack_values("prod")[1])
    x4 = plan.feasibility["a10g-x4"]
    # Cluster Autoscaler: up to maxNodes 4 = 3 replicas + 1 surge
    assert (x4.autoscaler, x4.reach_nodes, x4.need["rollout"]) == ("cluster-autoscaler", 4, 4)
    assert not plan.warnings


@pytest.mark.parametrize(
    ("edit", "path", "words"),
    [
        (
            lambda e: e.update(gpuAutoscaler="karpenter", karpenter={"enabled": False}),
            "cluster.eks.gpuAutoscaler",
            "needs cluster.eks.karpenter.enabled",
        ),
        (
            lambda e: e.update(gpuAutoscaler="clusterAutoscaler"),
            "cluster.eks.karpenter.enabled",
            "would add nodes for the same pending GPU pods",
        ),
        (
            lambda e: e["karpenter"].update(instanceTypes=["g6e.2xlarge", "g5.2xlarge"]),
            "cluster.nodePools[1].maxNodes",
            "meant to grow to 4 nodes, but it stays at 1",
        ),
        (
            lambda e: e.update(clusterAutoscaler={"expander": "priority"}),
            "cluster.eks.clusterAutoscaler",
            "only used with gpuAutoscaler: clusterAutoscaler",
        ),
        (
            lambda e: e.update(
                gpuAutoscaler="clusterAutoscaler",
                karpenter={"enabled": False},
                clusterAutoscaler={"scaleDownUnneededTime": "soon"},
            ),
            "cluster.eks.clusterAutoscaler.scaleDownUnneededTime",
            "should match pattern",
        ),
    ],
)
def test_gpu_autoscaler_choice_is_validated(edit, path, words):
    values, secrets = stack_values("prod")
    values = copy.deepcopy(values)
    edit(values["cluster"]["eks"])
    assert_rejected("prod", values, secrets, path, words)


def test_gke_and_existing_stacks_have_no_eks_autoscaler():
    for stack in STACKS:
        plan = load_stack_config(stack, *stack_values(stack))
        if plan.config.cluster.cloud != "eks":
            assert plan.config.cluster.eks is None
