"""The model store: prod streams from S3, dev from GCS (Ray path included), with least privilege.

Expected documents are literals built here from the stack files (bucket <cluster>-models-<stack>,
prefix models/<org>/<name>/<revision>), not read back from the code under test. parliament
lints every policy document of every stack in test_iam.py (the new RolePolicies included).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
import yaml
from conftest import PROJECT, render, resources_of_type
from stackfiles import assert_rejected, stack_values

from llm_infra.components.render import manifests, run_program
from llm_infra.config import load_stack_config

OIDC_PREFIX = "oidc.eks."


def _inputs(rec, type_token: str) -> list[tuple[str, dict[str, Any]]]:
    return [(r.name, r.inputs) for r in resources_of_type(rec, type_token)]


def _by_kind(rec, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in manifests(rec) if o["kind"] == kind}


def _readers(stack: str) -> dict[str, set[str]]:
    """Serving ServiceAccount -> the key prefixes it may read (from the stack file)."""
    plan = load_stack_config(stack, *stack_values(stack))
    out = {m.name: {f"models/{m.model}/{m.revision}"} for m in plan.config.models}
    for m in plan.config.models:
        if m.canary is not None:  # a canary streams its own revision (the stable one's by default)
            out[f"{m.name}-canary"] = {f"models/{m.model}/{m.canary.revision or m.revision}"}
    for svc in plan.config.ray_services:
        out[f"{svc.name}-ray-worker"] = {f"models/{m.model}/{m.revision}" for m in svc.models}
    for m in plan.config.multi_node_models:  # leader and workers of a group share the model's account
        out[m.name] = {f"models/{m.model}/{m.revision}"}
    return out


@pytest.fixture(scope="module")
def prod():
    return render("prod")


@pytest.fixture(scope="module")
def dev():
    return render("dev")


# -- S3 (prod) ---------------------------------------------------------------------------------------
BUCKET = "llm-prod-models-prod"


def test_prod_bucket_is_private_versioned_encrypted_and_protected(prod):
    (bucket,) = resources_of_type(prod, "aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == BUCKET
    assert bucket.protect and bucket.retain_on_delete, "cluster.protect: the weights outlive a destroy"
    (pab,) = _inputs(prod, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert {k: v for k, v in pab[1].items() if k != "bucket"} == {
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    (ver,) = _inputs(prod, "aws:s3/bucketVersioning:BucketVersioning")
    assert ver[1]["versioningConfiguration"] == {"status": "Enabled"}
    (enc,) = _inputs(prod, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert enc[1]["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    (own,) = _inputs(prod, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert own[1]["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    for _, i in (pab, ver, enc, own):
        assert i["bucket"] == f"{bucket.name}-id", "settings of the store's own bucket"


def _roles_touching_bucket(rec) -> dict[str, tuple[dict, dict]]:
    """Role name -> (trust policy, inline policy) of every role whose policy names the bucket."""
    roles = {n: json.loads(i["assumeRolePolicy"]) for n, i in _inputs(rec, "aws:iam/role:Role")}
    out = {}
    for name, i in _inputs(rec, "aws:iam/rolePolicy:RolePolicy"):
        if BUCKET in i["policy"]:
            out[name] = (roles[name], json.loads(i["policy"]))
    for name, i in _inputs(rec, "aws:iam/policy:Policy"):
        assert BUCKET not in i["policy"], f"managed policy {name} grants on the model store"
    return out


def test_prod_each_serving_account_reads_only_its_models_through_its_own_role(prod):
    readers = _readers("prod")
    granted = _roles_touching_bucket(prod)
    sas = _by_kind(prod, "ServiceAccount")
    seen = set()
    for sa, prefixes in readers.items():
        arn = sas[sa]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        role = arn.rsplit("/", 1)[1]
        trust, policy = granted[role]
        seen.add(role)
        (stmt,) = trust["Statement"]
        assert stmt["Action"] == "sts:AssumeRoleWithWebIdentity"
        (sub_key, sub) = next(iter(stmt["Condition"]["StringLike"].items()))
        assert sub_key.endswith(":sub") and sub == f"system:serviceaccount:llm-prod:{sa}", "exactly this account"
        assert "*" not in sub and "?" not in sub
        assert list(stmt["Condition"]["StringEquals"].values()) == ["sts.amazonaws.com"]
        assert policy == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadModelWeights",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{BUCKET}/{p}/*" for p in sorted(prefixes)],
                },
                {
                    "Sid": "ListModelWeights",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{BUCKET}",
                    "Condition": {"StringLike": {"s3:prefix": [f"{p}/*" for p in sorted(prefixes)]}},
                },
            ],
        }
    # besides the readers, only the fill Jobs' writer role touches the bucket
    (writer,) = set(granted) - seen
    trust, policy = granted[writer]
    assert (
        trust["Statement"][0]["Condition"]["StringLike"].popitem()[1]
        == "system:serviceaccount:llm-prod:model-store-fill"
    )
    all_prefixes = sorted(set().union(*readers.values()))
    write = next(s for s in policy["Statement"] if s["Sid"] == "WriteModelWeights")
    assert write["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    assert write["Resource"] == [f"arn:aws:s3:::{BUCKET}/{p}/*" for p in all_prefixes]
    assert sas["model-store-fill"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(f"/{writer}")


def test_prod_vllm_and_ray_stream_from_s3(prod):
    readers = _readers("prod")
    plan = load_stack_config("prod", *stack_values("prod"))
    for m in plan.config.models:
        (w,) = [
            o for o in manifests(prod) if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == m.name
        ]
        c = next(c for c in w["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm")
        assert c["args"][0] == f"s3://{BUCKET}/models/{m.model}/{m.revision}"
        assert c["args"][c["args"].index("--load-format") + 1] == "runai_streamer"
        assert {"name": "AWS_REGION", "value": "us-east-1"} in c["env"]
        assert w["spec"]["template"]["spec"]["serviceAccountName"] == m.name in readers
    rayservices = {o["metadata"]["name"]: o for o in manifests(prod) if o["kind"] == "RayService"}
    assert set(rayservices) == {svc.name for svc in plan.config.ray_services}
    for svc in plan.config.ray_services:
        ray = rayservices[svc.name]
        serve = yaml.safe_load(ray["spec"]["serveConfigV2"])
        sources = {
            llm["model_loading_config"]["model_id"]: llm for llm in serve["applications"][0]["args"]["llm_configs"]
        }
        for rm in svc.models:
            llm = sources[rm.model_id]
            assert llm["model_loading_config"]["model_source"] == f"s3://{BUCKET}/models/{rm.model}/{rm.revision}"
            assert llm["engine_kwargs"]["load_format"] == "runai_streamer"
        (workers,) = ray["spec"]["rayClusterConfig"]["workerGroupSpecs"]
        assert workers["template"]["spec"]["serviceAccountName"] == f"{svc.name}-ray-worker"
        assert "initContainers" not in workers["template"]["spec"], "nothing downloads from the Hub"
    # LeaderWorkerSet models: the leader's vllm serve streams from S3; every stage (leader and
    # workers, one account) reads the store and nothing downloads into the group's cache
    lwss = {o["metadata"]["name"]: o for o in manifests(prod) if o["kind"] == "LeaderWorkerSet"}
    assert set(lwss) == {m.name for m in plan.config.multi_node_models} and lwss
    for m in plan.config.multi_node_models:
        t = lwss[m.name]["spec"]["leaderWorkerTemplate"]
        script = t["leaderTemplate"]["spec"]["containers"][0]["command"][2]
        serve = shlex.split(script.split("&& exec ", 1)[1])
        assert serve[2] == f"s3://{BUCKET}/models/{m.model}/{m.revision}"
        assert serve[serve.index("--load-format") + 1] == "runai_streamer"
        assert "--download-dir" not in serve and "--revision" not in serve
        for role in ("leaderTemplate", "workerTemplate"):
            pod = t[role]["spec"]
            assert pod["serviceAccountName"] == m.name in readers
            assert "initContainers" not in pod, "nothing downloads from the Hub"
            assert {"name": "AWS_REGION", "value": "us-east-1"} in pod["containers"][0]["env"]


def test_fill_jobs_one_per_revision_and_workloads_wait_for_them(prod):
    readers = _readers("prod")
    prefixes = set().union(*readers.values())
    jobs = _by_kind(prod, "Job")
    uris = {j["spec"]["template"]["spec"]["containers"][0]["command"][5] for j in jobs.values()}
    assert uris == {f"s3://{BUCKET}/{p}" for p in prefixes}
    for j in jobs.values():
        pod = j["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "model-store-fill"
        assert pod["automountServiceAccountToken"] is False
        (c,) = pod["containers"]
        repo, revision = c["command"][3:5]
        assert len(revision) == 40 and c["command"][5].endswith(f"/{repo}/{revision}")
        assert "tolerations" not in pod, "fills run on CPU nodes"
    job_urns = {r.urn for r in prod.resources if r.type == "kubernetes:batch/v1:Job"}
    deployment = next(r for r in prod.resources if r.type == "kubernetes:apps/v1:Deployment" and r.name == "llama31-8b")
    assert job_urns & set(deployment.depends_on), "the workload waits for its revision's fill"


# -- GCS (dev) ---------------------------------------------------------------------------------------
GCS_BUCKET = "llm-dev-models-dev"


def test_dev_bucket_uniform_access_public_prevention(dev):
    (bucket,) = resources_of_type(dev, "gcp:storage/bucket:Bucket")
    i = bucket.inputs
    assert i["name"] == GCS_BUCKET
    assert i["uniformBucketLevelAccess"] is True and i["publicAccessPrevention"] == "enforced"
    assert i["versioning"] == {"enabled": True} and i["forceDestroy"] is False


def test_dev_readers_get_object_viewer_on_the_bucket_only_through_workload_identity(dev):
    members = _inputs(dev, "gcp:storage/bucketIAMMember:BucketIAMMember")
    viewer = {i["member"] for _, i in members if i["role"] == "roles/storage.objectViewer"}
    creators = {i["member"] for _, i in members if i["role"] == "roles/storage.objectCreator"}
    reader = "serviceAccount:llm-dev-model-reader@llm-infra-dev.iam.gserviceaccount.com"
    writer = "serviceAccount:llm-dev-model-writer@llm-infra-dev.iam.gserviceaccount.com"
    assert viewer == {reader, writer} and creators == {writer}
    assert {i["bucket"] for _, i in members} == {GCS_BUCKET}
    assert {i["role"] for _, i in members} == {"roles/storage.objectViewer", "roles/storage.objectCreator"}
    # never project-wide
    for _, i in _inputs(dev, "gcp:projects/iAMMember:IAMMember"):
        assert "storage" not in i["role"], i
    wi = {
        (i["serviceAccountId"].rsplit("/", 1)[1], i["member"])
        for _, i in _inputs(dev, "gcp:serviceaccount/iAMMember:IAMMember")
        if "model-" in i["serviceAccountId"]
    }
    assert wi == {
        (
            "llm-dev-model-reader@llm-infra-dev.iam.gserviceaccount.com",
            "serviceAccount:llm-infra-dev.svc.id.goog[llm-dev/llama3-8b]",
        ),
        (
            "llm-dev-model-writer@llm-infra-dev.iam.gserviceaccount.com",
            "serviceAccount:llm-infra-dev.svc.id.goog[llm-dev/model-store-fill]",
        ),
    }
    sa = _by_kind(dev, "ServiceAccount")["llama3-8b"]
    assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": reader.split(":", 1)[1]}


def test_dev_streams_from_gcs_and_reaches_the_metadata_server(dev):
    (sts,) = [o for o in manifests(dev) if o["kind"] == "StatefulSet"]
    tpl = sts["spec"]["template"]
    c = next(c for c in tpl["spec"]["containers"] if c["name"] == "vllm")
    assert (
        c["args"][0]
        == f"gs://{GCS_BUCKET}/models/NousResearch/Meta-Llama-3-8B-Instruct/53346005fb0ef11d3b6a83b12c895cca40156b6c"
    )
    assert c["args"][c["args"].index("--load-format") + 1] == "runai_streamer"
    (np,) = [
        o
        for o in manifests(dev)
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "allow-gke-metadata-server"
    ]
    sel = np["spec"]["podSelector"]["matchLabels"]
    assert sel.items() <= tpl["metadata"]["labels"].items()
    assert {(r["to"][0]["ipBlock"]["cidr"], r["ports"][0]["port"]) for r in np["spec"]["egress"]} == {
        ("169.254.169.254/32", 80),
        ("169.254.169.252/32", 988),
    }


def _dev_with_ray() -> dict[str, Any]:
    values, _ = stack_values("dev")
    cluster = values["cluster"]
    cluster["nodePools"].append(
        {"name": "l4-ray", "instanceType": "g2-standard-8", "minNodes": 0, "maxNodes": 3, "zones": ["us-central1-a"]}
    )
    return {
        "cluster": cluster,
        "rayServices": [
            {
                "name": "ray-llm",
                "workerPool": "l4-ray",
                "minWorkers": 1,
                "maxWorkers": 2,
                "models": [
                    {
                        "modelId": "qwen",
                        "model": "Qwen/Qwen2.5-7B-Instruct",
                        "revision": "a09a35458c702b33eeacc393d103063234e8bc28",
                    }
                ],
            }
        ],
    }


def test_dev_ray_path_streams_from_gcs_with_the_workers_account():
    rec = run_program(PROJECT, "dev", config_overrides=_dev_with_ray())
    objs = manifests(rec)
    (ray,) = [o for o in objs if o["kind"] == "RayService"]
    (llm,) = yaml.safe_load(ray["spec"]["serveConfigV2"])["applications"][0]["args"]["llm_configs"]
    assert llm["model_loading_config"]["model_source"] == (
        f"gs://{GCS_BUCKET}/models/Qwen/Qwen2.5-7B-Instruct/a09a35458c702b33eeacc393d103063234e8bc28"
    )
    assert llm["engine_kwargs"]["load_format"] == "runai_streamer"
    assert llm["engine_kwargs"]["model_loader_extra_config"] == {"concurrency": 16}
    sa = next(o for o in objs if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "ray-llm-ray-worker")
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].startswith("llm-dev-model-reader@")
    wi = {i["member"] for _, i in _inputs(rec, "gcp:serviceaccount/iAMMember:IAMMember")}
    assert "serviceAccount:llm-infra-dev.svc.id.goog[llm-dev/ray-llm-ray-worker]" in wi
    (workers,) = ray["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert workers["template"]["metadata"]["labels"]["llm-infra.io/model-store-reader"] == "true"


# -- config errors -----------------------------------------------------------------------------------
def _reject(stack: str, mutate, path: str, words: str) -> None:
    values, secrets = stack_values(stack)
    mutate(values, secrets)
    assert_rejected(stack, values, secrets, path, words)


def test_store_needs_pinned_revisions():
    _reject(
        "prod",
        lambda v, s: v["models"][0].pop("revision"),
        "models[0].revision",
        "pin the Hugging Face commit",
    )
    _reject(
        "prod",
        lambda v, s: v["rayServices"][0]["models"][1].update(revision="main"),
        "rayServices[0].models[1].revision",
        "'main' can move",
    )
    # a LeaderWorkerSet model streams too: its stages read the same revision
    _reject(
        "prod",
        lambda v, s: v["multiNodeModels"][0].pop("revision"),
        "multiNodeModels[0].revision",
        "pin the Hugging Face commit",
    )


def test_store_rejects_existing_clusters_missing_bucket_and_duplicate_flags():
    _reject("onprem", lambda v, s: v.update(modelStore={"enabled": True}), "modelStore.enabled", "cloud existing")
    _reject("prod", lambda v, s: v["modelStore"].update(create=False), "modelStore.bucket", "name the existing bucket")
    _reject(
        "prod",
        lambda v, s: v["models"][0].update(extraArgs=["--load-format=safetensors"]),
        "models[0].extraArgs",
        "set by modelStore",
    )
    _reject(
        "prod",
        lambda v, s: v["multiNodeModels"][0].update(extraArgs=["--model-loader-extra-config", "{}"]),
        "multiNodeModels[0].extraArgs",
        "set by modelStore",
    )


def test_an_existing_bucket_is_used_not_created():
    rec = run_program(
        PROJECT, "prod", config_overrides={"modelStore": {"enabled": True, "create": False, "bucket": "shared-weights"}}
    )
    assert not resources_of_type(rec, "aws:s3/bucket:Bucket")
    assert not resources_of_type(rec, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    policies = [
        json.loads(i["policy"])
        for _, i in _inputs(rec, "aws:iam/rolePolicy:RolePolicy")
        if "shared-weights" in i["policy"]
    ]
    assert len(policies) == len(_readers("prod")) + 1  # one per serving account, one for the fill Jobs
    (w,) = [o for o in manifests(rec) if o["kind"] == "Deployment" and o["metadata"]["name"] == "llama31-8b"]
    assert w["spec"]["template"]["spec"]["containers"][0]["args"][0].startswith("s3://shared-weights/models/")


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_no_cloud_keys_anywhere_only_workload_identities(stack):
    """IRSA / Workload Identity, never keys: no key variables or key files in any pod."""
    rec = render(stack)
    text = json.dumps(manifests(rec))
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "RUNAI_STREAMER_GCS_CREDENTIAL_FILE",
    ):
        assert key not in text, key
    assert not resources_of_type(rec, "aws:iam/accessKey:AccessKey")
    assert not resources_of_type(rec, "gcp:serviceaccount/key:Key")
