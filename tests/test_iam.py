"""IAM the render declares: derived from upstream's published documents, and linted.

* Karpenter: the node role, the controller's six managed policies, the interruption queue's
  policy and its EventBridge rules are compared, statement by statement (by Sid), with
  Karpenter's getting-started CloudFormation of the pinned release
  (../shared/upstream/iam/karpenter/cloudformation.yaml: aws/karpenter-provider-aws,
  ``website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml``,
  release-v1.14.1), read here at test time. ``DEVIATIONS`` lists what we change on purpose.
* Every policy document (role trust policies, managed policies, queue policies) goes through
  parliament (``$PARLIAMENT``; ``make tools`` installs it into .venv-tools); findings other
  than ``PARLIAMENT_EXCEPTIONS`` (each with its reason) fail.
* The render's mocks give ARNs their real shapes, so both checks see realistic documents.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, STACKS, render, resources_of_type
from stackfiles import stack_values
from upstream import in_ci, upstream_path

from llm_infra.components.cluster.karpenter_iam import CONTROLLER_POLICIES, policy_name
from llm_infra.components.render.mocks import FAKE_ACCOUNT, FAKE_REGION
from llm_infra.config import load_stack_config, versions

POLICY_TYPES = {
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
}
"""Every resource type whose input is an IAM policy document, and that input."""

DEVIATIONS: dict[tuple[str, str], str] = {
    # (policy kind, Sid): why ours differs from upstream's statement. None today: the
    # program's policies are upstream's, with upstream's scoping.
}


# ---------------------------------------------------------------------------- upstream document
class _CfnLoader(yaml.SafeLoader):
    """Loads CloudFormation YAML: short tags (!Sub, !GetAtt, !Ref ...) become ``{"Fn::X": value}``."""


def _short_tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)
    return {name: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _short_tag)


def upstream_template() -> dict[str, Any]:
    path = upstream_path("iam", "karpenter", "cloudformation.yaml")  # fails on CI when missing
    return yaml.load(path.read_text(), Loader=_CfnLoader)


def cluster_of(stack: str):
    return load_stack_config(stack, *stack_values(stack)).config.cluster


def eks_karpenter_stacks() -> list[str]:
    return [s for s in STACKS if (c := cluster_of(s)).cloud == "eks" and c.eks is not None and c.eks.karpenter.enabled]


class Rendered:
    """The Karpenter IAM of one rendered stack, and the values upstream's ${...} stand for."""

    def __init__(self, stack: str):
        self.rec = render(stack)
        cluster = cluster_of(stack)
        self.cluster, self.region = cluster.name, cluster.region
        roles = resources_of_type(self.rec, "aws:iam/role:Role")
        [self.node_role] = [r for r in roles if r.name.endswith("karpenter-node")]
        [self.controller_role] = [r for r in roles if r.name.endswith("karpenter-controller")]
        [queue] = resources_of_type(self.rec, "aws:sqs/queue:Queue")
        self.queue_arn = f"arn:aws:sqs:{FAKE_REGION}:{FAKE_ACCOUNT}:{queue.inputs['name']}"
        self.node_role_arn = f"arn:aws:iam::{FAKE_ACCOUNT}:role/{self.node_role.name}"
        self.substitutions = {
            "AWS::Partition": "aws",
            "AWS::Region": self.region,
            "AWS::AccountId": FAKE_ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            "ClusterName": self.cluster,
            "KarpenterNodeRole.Arn": self.node_role_arn,
            "KarpenterInterruptionQueue.Arn": self.queue_arn,
        }

    def resolve(self, value: Any) -> Any:
        """Evaluate !Sub / !GetAtt with this stack's values (and parse JSON policy strings)."""
        if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda m: self.substitutions[m.group(1)], value["Fn::Sub"])
        if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
            return self.substitutions[value["Fn::GetAtt"]]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def _as_set(value: Any) -> set[str]:
    return {str(v) for v in (value if isinstance(value, list) else [value])}


def normalized(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement with order-free actions, resources and condition values."""
    out = {
        "Effect": statement["Effect"],
        "Action": _as_set(statement["Action"]),
        "Resource": _as_set(statement.get("Resource", [])),
    }
    out["Condition"] = {
        op: {key: _as_set(v) for key, v in keys.items()} for op, keys in (statement.get("Condition") or {}).items()
    }
    if "Principal" in statement:
        out["Principal"] = statement["Principal"]
    return out


def by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    statements = document["Statement"]
    sids = [s.get("Sid") for s in statements]
    assert None not in sids and len(set(sids)) == len(sids), f"statements without a unique Sid: {sids}"
    return {s["Sid"]: normalized(s) for s in statements}


# ---------------------------------------------------------------------------- Karpenter vs upstream
@pytest.fixture(scope="module", params=eks_karpenter_stacks() or [None])
def karpenter(request) -> Rendered:
    if request.param is None:
        pytest.fail("no EKS stack enables Karpenter: nothing to compare with upstream")
    return Rendered(request.param)


def statement_differences(kind: str, ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[list[str], int]:
    """What differs between our policy document and upstream's, Sid by Sid (deviations aside),
    and how many statements were compared."""
    ours_, theirs_ = by_sid(ours), by_sid(theirs)
    diffs = (
        [
            f"{kind}: Sids differ: ours only {sorted(set(ours_) - set(theirs_))}, upstream only {sorted(set(theirs_) - set(ours_))}"
        ]
        if set(ours_) != set(theirs_)
        else []
    )
    compared = 0
    for sid, expected in theirs_.items():
        if sid not in ours_:
            continue
        if (kind, sid) in DEVIATIONS:
            if ours_[sid] == expected:
                diffs.append(f"{kind}/{sid} is listed as a deviation but equals upstream: drop it from DEVIATIONS")
            continue
        for part in ("Effect", "Action", "Resource", "Condition"):
            if ours_[sid][part] != expected[part]:
                diffs.append(f"{kind}/{sid} {part}: ours {ours_[sid][part]}, upstream {expected[part]}")
        compared += 1
    return diffs, compared


def _upstream_policy(karpenter: Rendered, kind: str) -> tuple[str, dict[str, Any]]:
    props = upstream_template()["Resources"][f"{kind}Policy"]["Properties"]
    return karpenter.resolve(props["ManagedPolicyName"]), json.loads(karpenter.resolve(props["PolicyDocument"]))


def test_controller_policies_are_upstreams_statement_by_statement(karpenter):
    template = upstream_template()["Resources"]
    policies = {r.inputs["name"]: r for r in resources_of_type(karpenter.rec, "aws:iam/policy:Policy")}
    upstream_kinds = [k.removesuffix("Policy") for k, r in template.items() if r["Type"] == "AWS::IAM::ManagedPolicy"]
    assert upstream_kinds == list(CONTROLLER_POLICIES), "upstream's policy split changed: mirror it in karpenter_iam.py"
    compared = 0
    for kind in upstream_kinds:
        name, theirs = _upstream_policy(karpenter, kind)
        assert name == policy_name(kind, karpenter.cluster)
        assert name in policies, f"the render declares no IAM policy {name} (upstream {kind}Policy)"
        assert policies[name].inputs["path"] == "/"
        diffs, n = statement_differences(kind, json.loads(policies[name].inputs["policy"]), theirs)
        assert not diffs, "\n".join(diffs)
        compared += n
    assert compared == 18 - len(DEVIATIONS)  # 6 + 4 + 1 + 1 + 1 + 5 statements at release-v1.14.1


@pytest.mark.parametrize(
    "kind, old, new",
    [
        # what the former hand-written policy had: instance profiles tagged karpenter.sh/nodeclass,
        # no spot-instances-request tagging, no DescribeInstanceStatus
        ("IAMIntegration", "karpenter.k8s.aws/ec2nodeclass", "karpenter.sh/nodeclass"),
        ("NodeLifecycle", ',"arn:aws:ec2:{region}:*:spot-instances-request/*"', ""),
        ("ResourceDiscovery", '"ec2:DescribeInstanceStatus",', ""),
        ("NodeLifecycle", '"aws:RequestTag/eks:eks-cluster-name":"{cluster}",', ""),
    ],
)
def test_the_comparison_catches_what_the_old_policy_got_wrong(karpenter, kind, old, new):
    name = policy_name(kind, karpenter.cluster)
    [policy] = [r for r in resources_of_type(karpenter.rec, "aws:iam/policy:Policy") if r.inputs["name"] == name]
    compact = json.dumps(json.loads(policy.inputs["policy"]), separators=(",", ":"))
    old = old.format(region=karpenter.region, cluster=karpenter.cluster)
    assert old in compact
    diffs, _ = statement_differences(kind, json.loads(compact.replace(old, new)), _upstream_policy(karpenter, kind)[1])
    assert diffs


def test_controller_role_has_the_six_policies_and_nothing_else(karpenter):
    policies = {r.inputs["name"] for r in resources_of_type(karpenter.rec, "aws:iam/policy:Policy")}
    attached = {
        r.inputs["policyArn"].rsplit("/", 1)[-1]
        for r in resources_of_type(karpenter.rec, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.inputs["role"] == karpenter.controller_role.name
    }
    assert attached == {policy_name(kind, karpenter.cluster) for kind in CONTROLLER_POLICIES} <= policies
    trust = json.loads(karpenter.controller_role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Action"] for s in trust] == ["sts:AssumeRoleWithWebIdentity"]
    assert trust[0]["Principal"]["Federated"].startswith(f"arn:aws:iam::{FAKE_ACCOUNT}:oidc-provider/oidc.eks.")


def test_node_role_is_upstreams(karpenter):
    role = upstream_template()["Resources"]["KarpenterNodeRole"]["Properties"]
    theirs = karpenter.resolve(role["AssumeRolePolicyDocument"])
    ours = json.loads(karpenter.node_role.inputs["assumeRolePolicy"])
    assert [normalized(s) for s in ours["Statement"]] == [normalized(s) for s in theirs["Statement"]]
    attached = {
        r.inputs["policyArn"]
        for r in resources_of_type(karpenter.rec, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.inputs["role"] == karpenter.node_role.name
    }
    assert attached == set(karpenter.resolve(role["ManagedPolicyArns"]))


def test_interruption_queue_policy_and_rules_are_upstreams(karpenter):
    template = upstream_template()["Resources"]
    [policy] = resources_of_type(karpenter.rec, "aws:sqs/queuePolicy:QueuePolicy")
    ours = json.loads(policy.inputs["policy"])
    theirs = karpenter.resolve(template["KarpenterInterruptionQueuePolicy"]["Properties"]["PolicyDocument"])
    assert ours["Id"] == theirs["Id"]
    assert sorted(map(repr, map(normalized, ours["Statement"]))) == sorted(
        map(repr, map(normalized, theirs["Statement"]))
    )
    deny = next(s for s in ours["Statement"] if s.get("Sid") == "DenyHTTP")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}  # a JSON false, as CloudFormation sends it
    queue_props = template["KarpenterInterruptionQueue"]["Properties"]
    [queue] = resources_of_type(karpenter.rec, "aws:sqs/queue:Queue")
    assert queue.inputs["messageRetentionSeconds"] == queue_props["MessageRetentionPeriod"]
    assert queue.inputs["sqsManagedSseEnabled"] is queue_props["SqsManagedSseEnabled"]
    upstream_rules = sorted(
        json.dumps(r["Properties"]["EventPattern"], sort_keys=True)
        for r in template.values()
        if r["Type"] == "AWS::Events::Rule"
    )
    our_rules = sorted(
        json.dumps(json.loads(r.inputs["eventPattern"]), sort_keys=True)
        for r in resources_of_type(karpenter.rec, "aws:cloudwatch/eventRule:EventRule")
    )
    assert our_rules == upstream_rules
    targets = resources_of_type(karpenter.rec, "aws:cloudwatch/eventTarget:EventTarget")
    assert len(targets) == len(upstream_rules) and {t.inputs["targetId"] for t in targets} == {
        "KarpenterInterruptionQueueTarget"
    }


# ---------------------------------------------------------------------------- mocks: real ARN shapes
ARN_SHAPES = {
    "aws:iam/role:Role": r"^arn:aws:iam::\d{12}:role/[\w+=,.@-]+$",
    "aws:iam/policy:Policy": r"^arn:aws:iam::\d{12}:policy/[\w+=,.@-]+$",
    "aws:sqs/queue:Queue": r"^arn:aws:sqs:[a-z]{2}-[a-z]+-\d:\d{12}:[\w-]{1,80}$",
}


def test_render_mocks_give_arns_their_real_shapes():
    assert eks_karpenter_stacks(), "no EKS stack"
    rec = render(eks_karpenter_stacks()[0])
    checked = 0
    for record in rec.resources:
        for key in ("roleArn", "serviceAccountRoleArn", "policyArn", "principalArn"):
            value = record.inputs.get(key)
            if isinstance(value, str) and ":iam::aws:" not in value:
                assert re.match(ARN_SHAPES["aws:iam/role:Role"], value) or re.match(
                    ARN_SHAPES["aws:iam/policy:Policy"], value
                ), (record.name, value)
                checked += 1
    assert checked >= 8
    for doc in _policy_documents(rec):
        for arn in re.findall(r'"(arn:[^"]+)"', doc.text):
            assert re.match(r"^arn:aws:[a-z0-9-]+:([a-z]{2}-[a-z]+-\d)?:(\d{12}|\*)?:", arn), (doc.name, arn)
    oidc = [
        s["Principal"]["Federated"]
        for d in _policy_documents(rec)
        if d.kind == "trust"
        for s in json.loads(d.text)["Statement"]
        if "Federated" in s.get("Principal", {})
    ]
    assert oidc and all(
        re.match(
            rf"^arn:aws:iam::\d{{12}}:oidc-provider/oidc\.eks\.{FAKE_REGION}\.amazonaws\.com/id/[0-9A-F]{{32}}$", a
        )
        for a in oidc
    )
    [queue] = resources_of_type(rec, "aws:sqs/queuePolicy:QueuePolicy")
    assert re.match(rf"^https://sqs\.{FAKE_REGION}\.amazonaws\.com/\d{{12}}/[\w-]+$", queue.inputs["queueUrl"])


# ---------------------------------------------------------------------------- parliament
class _Doc:
    def __init__(self, kind: str, name: str, text: str):
        self.kind, self.name, self.text = kind, name, text

    @property
    def file(self) -> str:
        return f"{self.kind}--{self.name}.json"


def _policy_documents(rec) -> list[_Doc]:
    docs = []
    for type_token, key in POLICY_TYPES.items():
        kind = {"aws:iam/role:Role": "trust", "aws:sqs/queuePolicy:QueuePolicy": "queue"}.get(type_token, "policy")
        for r in resources_of_type(rec, type_token):
            value = r.inputs[key]
            docs.append(
                _Doc(kind, r.inputs.get("name", r.name), value if isinstance(value, str) else json.dumps(value))
            )
    return docs


PARLIAMENT_EXCEPTIONS = [
    {
        "issue": "MALFORMED",
        "files": r"trust--.*",
        "detail": "Statement contains neither Resource nor NotResource",
        "reason": "role trust policies (AssumeRolePolicyDocument) have no Resource element by definition; parliament "
        "1.6 lints them as identity policies",
    },
    {
        "issue": "UNKNOWN_FEDERATION_SOURCE",
        "files": r"trust--.*",
        "detail": r"arn:aws:iam::\d{12}:oidc-provider/oidc\.eks\..*",
        "reason": "IRSA trusts the cluster's IAM OIDC provider; parliament 1.6 knows SAML providers and four web "
        "identity IdPs (Cognito, Amazon, Facebook, Google), not IAM OIDC providers",
    },
    {
        "issue": "RESOURCE_MISMATCH",
        "files": r"policy--KarpenterControllerNodeLifecyclePolicy-.*",
        "detail": r"ec2:(RunInstances|CreateFleet)",
        "reason": "upstream grants RunInstances/CreateFleet over three statements (untagged inputs: images, subnets, "
        "security groups; launch templates by tag; created resources by request tag); parliament wants each "
        "statement to name every resource type the action touches",
    },
    {
        "issue": "RESOURCE_MISMATCH",
        "files": r"policy--KarpenterControllerResourceDiscoveryPolicy-.*",
        "detail": r"ssm:GetParameter",
        "reason": "upstream's AllowSSMReadActions names AWS's public parameters (arn:aws:ssm:<region>::parameter/aws/"
        "service/*, no account); parliament's ARN format expects an account",
    },
    {
        "issue": "RESOURCE_STAR",
        "files": r"policy--KarpenterControllerZonalShiftPolicy-.*",
        "detail": r"arc-zonal-shift:GetManagedResource",
        "reason": "upstream scopes GetManagedResource by the condition arc-zonal-shift:ResourceIdentifier (this "
        "cluster's ARN), not by Resource",
    },
    {
        "issue": "PERMISSIONS_MANAGEMENT_ACTIONS",
        "files": r"policy--KarpenterControllerIAMIntegrationPolicy-.*",
        "detail": r"iam:(passrole|createinstanceprofile|addroletoinstanceprofile|removerolefrominstanceprofile|deleteinstanceprofile)",
        "reason": "Karpenter creates the instance profiles of its EC2NodeClasses: PassRole only of the node role to EC2, "
        "instance-profile actions only on profiles tagged for this cluster, region and an EC2NodeClass",
    },
]


def _parliament_executable() -> str | None:
    candidates = [
        os.environ.get("PARLIAMENT"),
        str(ROOT / ".venv-tools" / "bin" / "parliament"),
        shutil.which("parliament"),
    ]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


def require_parliament() -> str:
    """The parliament executable; fails under CI and skips elsewhere when it is missing."""
    exe = _parliament_executable()
    if exe is None:
        message = "parliament not found: set PARLIAMENT (make tools creates .venv-tools/bin/parliament)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return exe


def run_parliament(directory: Path) -> list[dict[str, Any]]:
    """parliament (with its community auditors) over every ``*.json`` policy in ``directory``:
    its findings, each with the ``file`` it was found in."""
    proc = subprocess.run(
        [
            require_parliament(),
            "--directory",
            str(directory),
            "--include_policy_extension",
            ".json",
            "--json",
            "--include-community-auditors",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode in (0, 1), f"parliament failed ({proc.returncode}): {proc.stderr[-2000:]}"
    findings = []
    for line in proc.stdout.splitlines():
        if line.strip():
            finding = json.loads(line)
            location = finding.get("location") or {}
            finding["file"] = Path(location.get("filepath", "")).name
            findings.append(finding)
    return findings


@pytest.fixture(scope="module")
def parliament_findings(tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """parliament (with its community auditors) over every policy document of every stack."""
    require_parliament()
    findings: dict[str, list[dict[str, Any]]] = {}
    for stack in STACKS:
        docs = _policy_documents(render(stack))
        findings[stack] = []
        if not docs:
            continue
        out = tmp_path_factory.mktemp(f"iam-{stack}")
        for doc in docs:
            (out / doc.file).write_text(doc.text)
        findings[stack] = run_parliament(out)
    return findings


def _excused(finding: dict[str, Any]) -> dict[str, str] | None:
    detail = json.dumps(finding.get("detail", "")) + json.dumps((finding.get("location") or {}).get("actions", []))
    for e in PARLIAMENT_EXCEPTIONS:
        if (
            e["issue"] == finding["issue"]
            and re.fullmatch(e["files"], finding["file"].removesuffix(".json"))
            and re.search(e["detail"], detail)
        ):
            return e
    return None


@pytest.mark.parametrize("stack", STACKS)
def test_every_policy_document_passes_parliament(stack, parliament_findings):
    docs = _policy_documents(render(stack))
    aws = [r for r in render(stack).resources if r.type.startswith("aws:")]
    if not docs:
        assert not aws, f"{stack} declares AWS resources but no policy document was found to lint"
        pytest.skip(f"{stack} declares no IAM policy documents (no AWS resources)")
    kinds = {d.kind for d in docs}
    assert {"trust", "policy"} <= kinds
    unexcused = [f"{f['file']}: {f['issue']} {f.get('detail')}" for f in parliament_findings[stack] if not _excused(f)]
    assert not unexcused, "parliament findings without a documented reason:\n" + "\n".join(unexcused)


def test_parliament_exceptions_are_all_still_needed(parliament_findings):
    used = {id(e) for findings in parliament_findings.values() for f in findings if (e := _excused(f))}
    stale = [e["issue"] + " " + e["files"] for e in PARLIAMENT_EXCEPTIONS if id(e) not in used]
    assert not stale, f"exceptions no finding needs any more: {stale}"


def test_parliament_flags_a_bad_policy(parliament_findings, tmp_path):
    """The linter is really run: an unscoped wildcard policy gets findings."""
    exe = _parliament_executable()
    assert exe is not None  # the parliament_findings fixture already required it
    (tmp_path / "policy--bad.json").write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:PassRole"], "Resource": "*"}],
            }
        )
    )
    proc = subprocess.run(
        [exe, "--directory", str(tmp_path), "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    issues = {json.loads(line)["issue"] for line in proc.stdout.splitlines() if line.strip()}
    assert issues, proc.stderr


def test_karpenter_chart_and_crd_chart_share_version():
    assert (versions.KARPENTER_CRD.version, versions.KARPENTER_CRD.repository) == (
        versions.KARPENTER.version,
        versions.KARPENTER.repository,
    )
