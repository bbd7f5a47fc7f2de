"""Credentials from the cloud's secret manager through the External Secrets Operator (issue 18).

Expected values are literals: object shapes from the ExternalSecret / ClusterSecretStore CRDs of
external-secrets v2.9.0 (../shared/upstream/crds/external-secrets.io, validated here with their
schemas and CEL rules), IAM from the AWS Secrets Manager and Secret Manager documentation
(``secretsmanager:GetSecretValue`` / ``DescribeSecret`` on the secret's ARN, whose name ends in
``-`` and six random characters; ``roles/secretmanager.secretAccessor`` on the secret), and the
mocks' real-shaped ARNs (components/render/mocks.py: account 123456789012, us-east-1).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import crd_cel
import pytest
from conftest import PROJECT, STACKS, find, objects, render, resources_of_type
from stackfiles import assert_rejected, stack_values
from test_iam import run_parliament
from upstream import crd_schemas, custom_resource_errors

from llm_infra.components.render import Recording, run_program
from llm_infra.config import load_stack_config

ACCOUNT = "123456789012"
ESO_SA = "system:serviceaccount:external-secrets:external-secrets"
SA_REF = {"name": "external-secrets", "namespace": "external-secrets"}
LABELS = {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "llm-infra"}

EXPECTED_STORE = {
    "prod": {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": "aws-secrets-manager", "labels": LABELS},
        "spec": {
            "provider": {
                "aws": {
                    "service": "SecretsManager",
                    "region": "us-east-1",
                    "auth": {"jwt": {"serviceAccountRef": SA_REF}},
                }
            }
        },
    },
    "dev": {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": "google-secret-manager", "labels": LABELS},
        "spec": {
            "provider": {
                "gcpsm": {
                    "projectID": "llm-infra-dev",
                    "auth": {
                        "workloadIdentity": {
                            "clusterLocation": "us-central1",
                            "clusterName": "llm-dev",
                            "clusterProjectID": "llm-infra-dev",
                            "serviceAccountRef": SA_REF,
                        }
                    },
                }
            }
        },
    },
}


def _external_secret(
    ns: str, name: str, store: str, refresh: str, key: str, remote: dict, template: dict | None = None
) -> dict:
    tmpl: dict[str, Any] = {"type": "Opaque", "metadata": {"labels": LABELS}}
    if template:
        tmpl.update({"engineVersion": "v2", "data": template})
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns, "labels": LABELS},
        "spec": {
            "refreshInterval": refresh,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": store},
            "target": {"name": name, "creationPolicy": "Owner", "deletionPolicy": "Retain", "template": tmpl},
            "data": [{"secretKey": key, "remoteRef": remote}],
        },
    }


GRAFANA_TEMPLATE = {"admin-user": "admin", "admin-password": '{{ index . "admin-password" }}'}
EXPECTED_EXTERNAL_SECRETS = {
    "prod": [
        _external_secret("llm-prod", "hf-token", "aws-secrets-manager", "1h", "token", {"key": "llm-prod/hf-token"}),
        _external_secret(
            "monitoring",
            "grafana-admin",
            "aws-secrets-manager",
            "1h",
            "admin-password",
            {"key": "llm-prod/grafana-admin-password"},
            GRAFANA_TEMPLATE,
        ),
    ],
    "dev": [
        _external_secret("llm-dev", "hf-token", "google-secret-manager", "30m", "token", {"key": "llm-dev-hf-token"}),
        _external_secret(
            "monitoring",
            "grafana-admin",
            "google-secret-manager",
            "30m",
            "admin-password",
            {"key": "llm-dev-grafana-admin-password", "version": "latest"},
            GRAFANA_TEMPLATE,
        ),
    ],
    "onprem": [],
}


def _stacks(*names: str) -> list[str]:
    return [s for s in names if s in STACKS]


# ------------------------------------------------------------------------ rendered objects
@pytest.mark.parametrize("stack", STACKS)
def test_external_secrets_and_store_are_exactly_the_expected_ones(stack):
    rec = render(stack)
    assert sorted(objects(rec, "ExternalSecret"), key=lambda o: o["metadata"]["name"]) == sorted(
        EXPECTED_EXTERNAL_SECRETS[stack], key=lambda o: o["metadata"]["name"]
    )
    stores = objects(rec, "ClusterSecretStore")
    assert stores == ([EXPECTED_STORE[stack]] if stack in EXPECTED_STORE else [])


@pytest.mark.parametrize("stack", STACKS)
def test_the_workloads_read_the_secret_names_eso_writes(stack):
    """Same Secret names and keys as with Pulumi secrets: nothing downstream changes."""
    rec = render(stack)
    written = {(o["metadata"]["namespace"], o["spec"]["target"]["name"]) for o in objects(rec, "ExternalSecret")}
    declared = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects(rec, "Secret")}
    assert not written & declared, "a Secret is both declared by Pulumi and written by ESO"
    if stack in ("prod", "dev"):
        kps = next(
            r
            for r in rec.resources
            if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["name"] == "kube-prometheus-stack"
        )
        assert kps.inputs["values"]["grafana"]["admin"]["existingSecret"] == "grafana-admin"
        ns = {"prod": "llm-prod", "dev": "llm-dev"}[stack]
        mounted = {v["secret"]["secretName"] for o in objects(rec) for v in _volumes(o) if "secret" in v}
        assert mounted == {"hf-token"} and (ns, "hf-token") in written


def _volumes(obj: dict) -> list[dict]:
    spec = obj.get("spec") or {}
    out = list(((spec.get("template") or {}).get("spec") or {}).get("volumes", []))
    for group in [
        spec.get("rayClusterConfig", {}).get("headGroupSpec", {}),
        *spec.get("rayClusterConfig", {}).get("workerGroupSpecs", []),
    ]:
        out += group.get("template", {}).get("spec", {}).get("volumes", [])
    return out


@pytest.mark.parametrize("stack", _stacks("prod", "dev"))
def test_eso_objects_validate_against_the_crds_and_their_cel_rules(stack):
    rec = render(stack)
    objs = objects(rec, "ExternalSecret") + objects(rec, "ClusterSecretStore")
    assert objs
    schemas = crd_schemas()
    for obj in objs:
        assert custom_resource_errors(obj) == []
        schema = schemas[(obj["apiVersion"], obj["kind"])]
        assert [str(f) for f in crd_cel.check(obj, schema).findings] == []


@pytest.mark.parametrize("stack", _stacks("prod", "dev"))
def test_eso_release_is_pinned_with_crds_and_the_cloud_identity(stack):
    rec = render(stack)
    (release,) = [
        r for r in rec.resources if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["name"] == "external-secrets"
    ]
    i = release.inputs
    assert (i["chart"], i["version"], i["repositoryOpts"]["repo"]) == (
        "external-secrets",
        "2.9.0",
        "https://charts.external-secrets.io",
    )
    assert i["namespace"] == "external-secrets"
    assert i["values"]["installCRDs"] is True  # chart 2.9.0 values.yaml: "install and upgrade CRDs through helm chart"
    annotations = {
        "prod": {
            "eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/llm-addons-external-secrets-identity-role"
        },
        "dev": {"iam.gke.io/gcp-service-account": "llm-dev-eso@llm-infra-dev.iam.gserviceaccount.com"},
    }[stack]
    assert i["values"]["serviceAccount"] == {"create": True, "name": "external-secrets", "annotations": annotations}
    ns = find(rec, "Namespace", "external-secrets")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# ---------------------------------------------------------------------------------- ordering
def _closure(rec: Recording) -> dict[str, set[str]]:
    from test_ordering import closure

    return closure(rec.resources)


def _urn(rec: Recording, kind: str, name: str, namespace: str | None = None) -> str:
    (urn,) = [
        r.urn
        for r in rec.resources
        if r.inputs.get("kind") == kind
        and (r.inputs.get("metadata") or {}).get("name") == name
        and (namespace is None or r.inputs["metadata"].get("namespace") == namespace)
    ]
    return urn


@pytest.mark.parametrize("stack", _stacks("prod", "dev"))
def test_workloads_wait_for_their_external_secret_which_waits_for_eso_and_the_store(stack):
    rec = render(stack)
    deps = _closure(rec)
    release = next(
        r.urn
        for r in rec.resources
        if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["name"] == "external-secrets"
    )
    store = _urn(rec, "ClusterSecretStore", EXPECTED_STORE[stack]["metadata"]["name"])
    assert release in deps[store]
    hf = _urn(rec, "ExternalSecret", "hf-token")
    grafana = _urn(rec, "ExternalSecret", "grafana-admin")
    for es in (hf, grafana):
        assert {release, store} <= deps[es]
    kps = next(
        r.urn
        for r in rec.resources
        if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs["name"] == "kube-prometheus-stack"
    )
    assert grafana in deps[kps]
    workloads = [
        r
        for r in rec.resources
        if r.type
        in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:ray.io/v1:RayService")
        # the model servers (the gateway's body-based router reads no Hugging Face token)
        and r.inputs["metadata"]["namespace"] == stack_values(stack)[0]["namespace"]
    ]
    assert workloads
    for w in workloads:
        assert hf in deps[w.urn], f"{w.name} may start before ESO writes hf-token"


# ----------------------------------------------------------------------------------- IAM
def _doc(text: str) -> dict:
    return json.loads(text)


def _eso_policy(rec: Recording) -> dict:
    (policy,) = [r for r in resources_of_type(rec, "aws:iam/rolePolicy:RolePolicy") if "external-secrets" in r.name]
    return _doc(policy.inputs["policy"])


@pytest.mark.parametrize("stack", _stacks("prod"))
def test_eks_role_reads_only_the_named_secrets_it_created(stack):
    rec = render(stack)
    secrets = {r.inputs["name"]: r for r in resources_of_type(rec, "aws:secretsmanager/secret:Secret")}
    assert set(secrets) == {"llm-prod/hf-token", "llm-prod/grafana-admin-password"}
    for s in secrets.values():
        assert s.protect, "cluster.protect: the secret container survives pulumi destroy"
        assert not {"secretString", "secretBinary"} & set(s.inputs)
    assert not resources_of_type(rec, "aws:secretsmanager/secretVersion:SecretVersion"), (
        "values are the operators' to put in"
    )
    # the mocks' ARN: arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>
    arns = sorted(f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{n}-" for n in secrets)
    policy = _eso_policy(rec)
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert len(statement["Resource"]) == 2
    for arn, prefix in zip(sorted(statement["Resource"]), arns, strict=True):
        assert arn.startswith(prefix) and len(arn) == len(prefix) + 6 and "*" not in arn
    (role,) = [
        r for r in resources_of_type(rec, "aws:iam/role:Role") if r.name == "llm-addons-external-secrets-identity-role"
    ]
    trust = _doc(role.inputs["assumeRolePolicy"])
    (t,) = trust["Statement"]
    assert t["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert list(t["Condition"]["StringLike"].values()) == [ESO_SA]
    assert list(t["Condition"]["StringEquals"].values()) == ["sts.amazonaws.com"]


def _variant_without_created_secrets() -> Recording:
    values, _ = stack_values("prod")
    creds = copy.deepcopy(values["credentials"])
    creds["createSecrets"] = False
    creds["hfToken"]["version"] = "AWSCURRENT"
    return run_program(PROJECT, "prod", config_overrides={"credentials": creds})


@pytest.fixture(scope="module")
def prod_named_secrets() -> Recording:
    if "prod" not in STACKS:
        pytest.skip("needs the prod stack")
    return _variant_without_created_secrets()


def test_eks_role_matches_existing_secrets_by_name_only(prod_named_secrets, tmp_path):
    rec = prod_named_secrets
    assert not resources_of_type(rec, "aws:secretsmanager/secret:Secret")
    policy = _eso_policy(rec)
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadNamedSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                # AWS Secrets Manager user guide: a secret's ARN is its name, "-" and six random characters
                "Resource": [
                    f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:llm-prod/grafana-admin-password-??????",
                    f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:llm-prod/hf-token-??????",
                ],
            }
        ],
    }
    hf = next(o for o in objects(rec, "ExternalSecret") if o["metadata"]["name"] == "hf-token")
    assert hf["spec"]["data"] == [
        {"secretKey": "token", "remoteRef": {"key": "llm-prod/hf-token", "version": "AWSCURRENT"}}
    ]
    # parliament over this variant's policy too (the stacks' own are linted by tests/test_iam.py)
    (tmp_path / "eso.json").write_text(json.dumps(policy))
    assert run_parliament(tmp_path) == []


@pytest.mark.parametrize("stack", _stacks("dev"))
def test_gke_service_account_may_access_only_the_named_secrets(stack):
    rec = render(stack)
    (gsa,) = [
        r
        for r in resources_of_type(rec, "gcp:serviceaccount/account:Account")
        if r.inputs["accountId"] == "llm-dev-eso"
    ]
    assert gsa.inputs["project"] == "llm-infra-dev"
    member = "serviceAccount:llm-dev-eso@llm-infra-dev.iam.gserviceaccount.com"
    bindings = {
        (r.inputs["secretId"], r.inputs["role"], r.inputs["member"])
        for r in resources_of_type(rec, "gcp:secretmanager/secretIamMember:SecretIamMember")
    }
    assert bindings == {
        ("projects/llm-infra-dev/secrets/llm-dev-hf-token", "roles/secretmanager.secretAccessor", member),
        ("projects/llm-infra-dev/secrets/llm-dev-grafana-admin-password", "roles/secretmanager.secretAccessor", member),
    }
    # nothing project-wide: the nodes' two roles only (tests/test_clusters.py)
    project_roles = {r.inputs["role"] for r in resources_of_type(rec, "gcp:projects/iAMMember:IAMMember")}
    assert "roles/secretmanager.secretAccessor" not in project_roles
    # ESO's binding (the model store's own readers/writer are in tests/test_model_store.py)
    (wi,) = [
        r
        for r in resources_of_type(rec, "gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["serviceAccountId"].endswith("/llm-dev-eso@llm-infra-dev.iam.gserviceaccount.com")
    ]
    assert wi.inputs == {
        "serviceAccountId": "projects/llm-infra-dev/serviceAccounts/llm-dev-eso@llm-infra-dev.iam.gserviceaccount.com",
        "role": "roles/iam.workloadIdentityUser",
        "member": "serviceAccount:llm-infra-dev.svc.id.goog[external-secrets/external-secrets]",
    }
    assert not resources_of_type(rec, "gcp:secretmanager/secret:Secret"), "dev names existing secrets"


def test_gke_can_create_the_secret_containers():
    if "dev" not in STACKS:
        pytest.skip("needs the dev stack")
    values, _ = stack_values("dev")
    creds = copy.deepcopy(values["credentials"])
    creds["createSecrets"] = True
    rec = run_program(PROJECT, "dev", config_overrides={"credentials": creds})
    created = {r.inputs["secretId"]: r for r in resources_of_type(rec, "gcp:secretmanager/secret:Secret")}
    assert set(created) == {"llm-dev-hf-token", "llm-dev-grafana-admin-password"}
    assert all(
        r.inputs["replication"] == {"auto": {}} and r.inputs["project"] == "llm-infra-dev" for r in created.values()
    )
    assert not resources_of_type(rec, "gcp:secretmanager/secretVersion:SecretVersion")
    ids = {r.inputs["secretId"] for r in resources_of_type(rec, "gcp:secretmanager/secretIamMember:SecretIamMember")}
    assert ids == {
        "llm-addons-external-secrets-identity-hftoken-id",
        "llm-addons-external-secrets-identity-grafanaadminpassword-id",
    }


def test_existing_cluster_reads_through_the_named_store():
    if "onprem" not in STACKS:
        pytest.skip("needs the onprem stack")
    creds = {
        "hfToken": {"source": "secretManager", "name": "llm/hf-token", "property": "token"},
        "clusterSecretStore": "vault-backend",
    }
    rec = run_program(PROJECT, "onprem", config_overrides={"credentials": creds})
    assert not objects(rec, "ClusterSecretStore")
    assert not [r for r in rec.resources if r.type.startswith(("aws:", "gcp:"))]
    (es,) = objects(rec, "ExternalSecret")
    assert es["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "vault-backend"}
    assert es["spec"]["data"] == [{"secretKey": "token", "remoteRef": {"key": "llm/hf-token", "property": "token"}}]
    assert custom_resource_errors(es) == []


# ----------------------------------------------------------------------------- config errors
def _creds(values: dict) -> dict:
    return values.setdefault("credentials", {})


REJECTED = [
    (
        "no-name",
        "prod",
        lambda v, s: _creds(v)["hfToken"].pop("name"),
        "credentials.hfToken.name",
        "needs the secret's name",
    ),
    ("pulumi-secret-too", "dev", lambda v, s: s.update(hfToken=True), "hfToken", "remove the Pulumi secret"),
    (
        "store-on-eks",
        "prod",
        lambda v, s: _creds(v).update(clusterSecretStore="vault"),
        "credentials.clusterSecretStore",
        "only named for cloud existing",
    ),
    (
        "store-on-gke",
        "dev",
        lambda v, s: _creds(v).update(clusterSecretStore="vault"),
        "credentials.clusterSecretStore",
        "Google Secret Manager",
    ),
    (
        "existing-without-store",
        "onprem",
        lambda v, s: _creds(v).update(hfToken={"source": "secretManager", "name": "hf"}),
        "credentials.clusterSecretStore",
        "name the ClusterSecretStore",
    ),
    (
        "create-on-existing",
        "onprem",
        lambda v, s: _creds(v).update(createSecrets=True),
        "credentials.createSecrets",
        "cloud existing",
    ),
    (
        "create-without-sync",
        "prod",
        lambda v, s: v["credentials"].update(hfToken={"source": "pulumi"}, grafanaAdminPassword={"source": "pulumi"}),
        "credentials.createSecrets",
        "no credential",
    ),
    (
        "name-without-secret-manager",
        "onprem",
        lambda v, s: _creds(v).update(hfToken={"name": "x"}),
        "credentials.hfToken.name",
        "only used with source secretManager",
    ),
    (
        "google-id-with-slash",
        "dev",
        lambda v, s: v["credentials"]["hfToken"].update(name="llm/hf"),
        "credentials.hfToken.name",
        "not a Google secret id",
    ),
    (
        "bad-refresh",
        "dev",
        lambda v, s: v["credentials"].update(refreshInterval="1 hour"),
        "credentials.refreshInterval",
        "should match pattern",
    ),
    (
        "unknown-source",
        "dev",
        lambda v, s: v["credentials"]["hfToken"].update(source="vault"),
        "credentials.hfToken.source",
        "pulumi",
    ),
    (
        "gated-without-any-source",
        "prod",
        lambda v, s: v["credentials"].update(hfToken={"source": "pulumi"}),
        "models[0].requiresHfToken",
        "secretManager",
    ),
]


@pytest.mark.parametrize(
    "case_id,stack,mutate,path,words",
    [c for c in REJECTED if c[1] in STACKS],
    ids=[c[0] for c in REJECTED if c[1] in STACKS],
)
def test_bad_credential_sources_are_rejected_with_their_path(case_id, stack, mutate, path, words):
    values, secrets = stack_values(stack)
    mutate(values, secrets)
    assert_rejected(stack, values, secrets, path, words)


@pytest.mark.parametrize("stack", _stacks("prod", "dev"))
def test_stacks_on_the_secret_manager_need_no_pulumi_secret(stack):
    values, secrets = stack_values(stack)
    assert not {"hfToken", "grafanaAdminPassword"} & set(secrets)
    plan = load_stack_config(stack, values, secrets)
    assert plan.has_credential("hfToken") and plan.has_credential("grafanaAdminPassword")
    assert set(plan.config.credentials.from_secret_manager()) == {"hfToken", "grafanaAdminPassword"}
