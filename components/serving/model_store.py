"""The model store: a bucket of weights per stack, read-only for the serving pods, filled once per revision.

* Bucket: S3 on EKS (versioning, SSE-S3 encryption, all four public-access blocks, bucket owner
  enforced) or GCS on GKE (uniform bucket-level access, public access prevention enforced,
  versioning); created here and protected with ``cluster.protect`` (kept on ``pulumi destroy``),
  or an existing one (``modelStore.create: false``).
* Readers (least privilege, no keys): every serving ServiceAccount (a vLLM model's own, a
  RayService's workers') is the only principal of its reader. EKS: one IRSA role per account,
  trusted only by ``system:serviceaccount:<ns>:<sa>``, allowed ``s3:GetObject`` on its models'
  prefixes and ``s3:ListBucket`` restricted to them by ``s3:prefix``. GKE: one Google service
  account with ``roles/storage.objectViewer`` on the bucket (a bucket IAM member, never the
  project) that only the serving KSAs may impersonate (``roles/iam.workloadIdentityUser``).
* Writer: the fill Jobs' own ServiceAccount with its own role (EKS: put/list/get on the models'
  prefixes; GKE: objectCreator + objectViewer on the bucket).
* Fill: one Job per model revision (the pinned vLLM image: huggingface_hub downloads the
  revision, boto3 / google-cloud-storage, which the image's runai-model-streamer[s3,gcs] extras
  bring, upload what the bucket does not hold yet). Workloads wait for their Jobs.
"""

# `pyright: ignore[reportArgumentType]` on a resource's metadata/spec: pulumi_kubernetes types them as its
# *Args TypedDicts; these manifests are plain dicts, validated against the Kubernetes OpenAPI schema of the
# pinned version by tests/test_rendered_schemas.py instead.

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

with warnings.catch_warnings():
    # import-time deprecation notices of resources this module does not use (the V2 bucket
    # resources, a misspelled GCS data source); pulumi_aws/pulumi_gcp load submodules lazily
    warnings.simplefilter("ignore", DeprecationWarning)
    aws.s3.Bucket  # noqa: B018
    gcp.storage.Bucket  # noqa: B018

from llm_infra.components import k8s as kube
from llm_infra.components.cluster.base import AwsIrsa
from llm_infra.components.cluster.irsa import irsa_role
from llm_infra.config import versions
from llm_infra.config.model_store import READER_LABEL, ModelStoreConfig, fill_job_name, model_uri, object_prefix

from .namespace import hf_token_env, hf_token_mount, hf_token_volume

COMPONENT = "model-store"
FILL_SERVICE_ACCOUNT = "model-store-fill"
READ_ACTIONS = ("s3:GetObject",)
LIST_ACTION = "s3:ListBucket"
WRITE_ACTIONS = ("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject")
GCP_READER_ROLE = "roles/storage.objectViewer"
GCP_WRITER_ROLES = ("roles/storage.objectCreator", "roles/storage.objectViewer")
GCP_WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
GKE_METADATA = (("169.254.169.254/32", 80), ("169.254.169.252/32", 988))
"""Where pods reach GKE's metadata server for Workload Identity tokens (GKE docs, Workload
Identity Federation for GKE, "Restrictions": allow egress to it when NetworkPolicies restrict
egress); the namespace's default egress keeps port 80 closed."""
FILL_DIR = "/fill"
FILL_SCRIPT = """\
import os, sys
from huggingface_hub import snapshot_download
repo, revision, uri, exclude = sys.argv[1:5]
local = snapshot_download(repo, revision=revision, local_dir=os.path.join(os.environ["FILL_DIR"], "model"),
                          ignore_patterns=exclude.split(","))
scheme, _, rest = uri.partition("://")
bucket, _, prefix = rest.partition("/")
files = {}
for root, dirs, names in os.walk(local):
    dirs[:] = [d for d in dirs if not d.startswith(".")]
    for n in names:
        path = os.path.join(root, n)
        files[prefix + "/" + os.path.relpath(path, local)] = path
if scheme == "s3":
    import boto3
    s3 = boto3.client("s3")
    have = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
            for o in page.get("Contents", [])}
    for key, path in sorted(files.items()):
        if key not in have:
            s3.upload_file(path, bucket, key)
else:
    from google.cloud import storage
    gcs = storage.Client()
    have = {b.name for b in gcs.list_blobs(bucket, prefix=prefix + "/")}
    for key, path in sorted(files.items()):
        if key not in have:
            gcs.bucket(bucket).blob(key).upload_from_filename(path)
print(f"{uri}: {len(files)} files, {len(files) - len(have & set(files))} uploaded")
"""
"""Fill one revision: download it, upload the files the bucket lacks (a re-run resumes)."""


@dataclass(frozen=True)
class StoredModel:
    repo: str
    revision: str
    weights_gib: float
    gated: bool


@dataclass(frozen=True)
class Reader:
    service_account: str
    models: tuple[StoredModel, ...]


def _s3_prefix_policy(sid: str, actions: tuple[str, ...], bucket: str, prefixes: list[str], partition: str) -> str:
    """``actions`` on the objects under the prefixes, ListBucket only under them (s3:prefix condition)."""
    objects = [f"arn:{partition}:s3:::{bucket}/{p}/*" for p in sorted(prefixes)]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": objects},
                {
                    "Sid": "ListModelWeights",
                    "Effect": "Allow",
                    "Action": LIST_ACTION,
                    "Resource": f"arn:{partition}:s3:::{bucket}",
                    "Condition": {"StringLike": {"s3:prefix": [f"{p}/*" for p in sorted(prefixes)]}},
                },
            ],
        },
        sort_keys=True,
    )


def s3_reader_policy(bucket: str, prefixes: list[str], partition: str = "aws") -> str:
    """A serving account's policy: read its models' objects, list only their prefixes."""
    return _s3_prefix_policy("ReadModelWeights", READ_ACTIONS, bucket, prefixes, partition)


def s3_writer_policy(bucket: str, prefixes: list[str], partition: str = "aws") -> str:
    """The fill Jobs' policy: write (and read back) the revisions' objects, list only their prefixes."""
    return _s3_prefix_policy("WriteModelWeights", WRITE_ACTIONS, bucket, prefixes, partition)


def fill_storage_gib(m: StoredModel) -> int:
    """Scratch space of a fill Job: the revision's files with 10 % + 5 GiB of headroom."""
    return math.ceil(m.weights_gib * 1.1 + 5)


@dataclass(frozen=True)
class ModelStoreArgs:
    """What the model store needs: its config, the cloud and bucket, the readers and the cluster's identity facts."""

    config: ModelStoreConfig
    """``modelStore``: create the bucket or use an existing one, the key prefix."""
    cloud: str
    """``cluster.cloud``: ``eks`` (S3, IRSA) or ``gke`` (GCS, Workload Identity)."""
    bucket: str
    """The bucket's name (``modelStore.bucket``, or ``<cluster>-models-<stack>``)."""
    cluster_name: str
    """``cluster.name``: in the service accounts' names and the bucket's labels."""
    namespace: str
    """The serving namespace: the readers' and the fill Jobs' ServiceAccounts live there."""
    readers: list[Reader]
    """Every serving ServiceAccount with the model revisions it reads (its least-privilege reader)."""
    protect: bool
    """``cluster.protect``: a created bucket outlives ``pulumi destroy``."""
    hf_token_secret: str | None
    """Name of the Secret with the Hugging Face token the fill Jobs use for gated models."""
    network_policies: bool
    """``security.networkPolicy.enabled``: on GKE, let the fill Jobs reach the metadata server."""
    aws_irsa: AwsIrsa | None = None
    """EKS only: the cluster's OIDC provider, account, region and tags (IRSA roles)."""
    gcp_project: str | None = None
    """GKE only: ``cluster.gke.project``, the bucket's and service accounts' project."""
    gcp_region: str | None = None
    """GKE only: ``cluster.region``, the created bucket's location (None: ``US``)."""


class ModelStore(pulumi.ComponentResource):
    """Bucket, least-privilege readers and writer, and the Jobs that fill it."""

    annotations: dict[str, dict[str, pulumi.Input[str]]]
    """ServiceAccount name -> annotations binding it to its cloud identity."""
    fill_jobs: dict[tuple[str, str], k8s.batch.v1.Job]

    def __init__(self, name: str, args: ModelStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:ModelStore", name, None, opts)
        self.args = args
        self.annotations = {}
        models = {(m.repo, m.revision): m for r in args.readers for m in r.models}
        prefixes = [object_prefix(args.config.prefix, repo, rev) for repo, rev in sorted(models)]
        if args.cloud == "eks":
            self._aws(name, args, prefixes)
        else:
            self._gcp(name, args)
        labels = kube.labels(COMPONENT, COMPONENT)
        writer = k8s.core.v1.ServiceAccount(
            f"{name}-fill",
            metadata={  # pyright: ignore[reportArgumentType]
                **kube.metadata(FILL_SERVICE_ACCOUNT, args.namespace, labels),
                "annotations": self.annotations[FILL_SERVICE_ACCOUNT],
            },
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._identity),
        )
        if args.cloud == "gke" and args.network_policies:
            k8s.networking.v1.NetworkPolicy(
                f"{name}-allow-metadata",
                metadata=kube.metadata("allow-gke-metadata-server", args.namespace, labels),  # pyright: ignore[reportArgumentType]
                spec=metadata_network_policy_spec(),  # pyright: ignore[reportArgumentType]
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.fill_jobs = {
            key: k8s.batch.v1.Job(
                f"{name}-{fill_job_name(*key)}",
                metadata=kube.metadata(fill_job_name(*key), args.namespace, labels),  # pyright: ignore[reportArgumentType]
                spec=fill_job_spec(args, m),  # pyright: ignore[reportArgumentType]
                opts=pulumi.ResourceOptions(parent=self, depends_on=[writer, *self._identity]),
            )
            for key, m in sorted(models.items())
        }
        self.register_outputs({"bucket": args.bucket, "models": [f"{r}@{v}" for r, v in sorted(models)]})

    def uri(self, repo: str, revision: str) -> str:
        return model_uri(self.args.cloud, self.args.bucket, self.args.config.prefix, repo, revision)

    def jobs_for(self, models: list[tuple[str, str]]) -> list[pulumi.Resource]:
        return [self.fill_jobs[k] for k in models if k in self.fill_jobs]

    def env(self) -> list[dict[str, str]]:
        """Environment of every store reader: the bucket's region for the AWS SDK of the streamer."""
        if self.args.cloud == "eks" and self.args.aws_irsa is not None:
            return [{"name": "AWS_REGION", "value": self.args.aws_irsa.region}]
        return []

    # -- EKS ----------------------------------------------------------------------------------------
    def _aws(self, name: str, args: ModelStoreArgs, prefixes: list[str]) -> None:
        irsa = args.aws_irsa
        assert irsa is not None, "EKS clusters hand out their IRSA facts"
        child = pulumi.ResourceOptions(parent=self)
        bucket_ready: list[pulumi.Resource] = []
        if args.config.create:
            bucket = aws.s3.Bucket(
                f"{name}-bucket",
                bucket=args.bucket,
                tags={**irsa.tags, "llm-infra-role": "model-store"},
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
            )
            bucket_ready = [
                bucket,
                aws.s3.BucketPublicAccessBlock(
                    f"{name}-public-access-block",
                    bucket=bucket.id,
                    block_public_acls=True,
                    block_public_policy=True,
                    ignore_public_acls=True,
                    restrict_public_buckets=True,
                    opts=child,
                ),
                aws.s3.BucketOwnershipControls(
                    f"{name}-ownership",
                    bucket=bucket.id,
                    rule={"object_ownership": "BucketOwnerEnforced"},
                    opts=child,
                ),
                aws.s3.BucketVersioning(
                    f"{name}-versioning",
                    bucket=bucket.id,
                    versioning_configuration={"status": "Enabled"},
                    opts=child,
                ),
                aws.s3.BucketServerSideEncryptionConfiguration(
                    f"{name}-encryption",
                    bucket=bucket.id,
                    rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
                    opts=child,
                ),
            ]
        self._identity: list[pulumi.Resource] = list(bucket_ready)

        def identity(resource: str, account: str, description: str, policy: str) -> None:
            """An IRSA role trusted by ``account`` only, with its one inline S3 policy."""
            role = irsa_role(resource, irsa, args.namespace, account, description, child)
            attached = aws.iam.RolePolicy(resource, role=role.name, policy=policy, opts=child)
            self.annotations[account] = {"eks.amazonaws.com/role-arn": role.arn}
            self._identity += [role, attached]

        for reader in args.readers:
            sa = reader.service_account
            own = [object_prefix(args.config.prefix, m.repo, m.revision) for m in reader.models]
            identity(
                f"{name}-read-{sa}",
                sa,
                f"Reads model weights of {sa} from s3://{args.bucket} (IRSA {args.namespace}/{sa})",
                s3_reader_policy(args.bucket, own, irsa.partition),
            )
        identity(
            f"{name}-fill",
            FILL_SERVICE_ACCOUNT,
            f"Fills s3://{args.bucket} with model revisions from Hugging Face (IRSA {args.namespace}/{FILL_SERVICE_ACCOUNT})",
            s3_writer_policy(args.bucket, prefixes, irsa.partition),
        )

    # -- GKE ----------------------------------------------------------------------------------------
    def _gcp(self, name: str, args: ModelStoreArgs) -> None:
        project = args.gcp_project
        assert project is not None, "validated: GKE stacks name their project"
        child = pulumi.ResourceOptions(parent=self)
        bucket_name: pulumi.Input[str] = args.bucket
        self._identity = []
        if args.config.create:
            bucket = gcp.storage.Bucket(
                f"{name}-bucket",
                name=args.bucket,
                project=project,
                location=(args.gcp_region or "US").upper(),
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                versioning={"enabled": True},
                force_destroy=False,
                labels={"llm-infra-cluster": args.cluster_name, "llm-infra-role": "model-store"},
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
            )
            bucket_name = bucket.name
            self._identity.append(bucket)
        for role_name, roles, accounts in (
            ("reader", (GCP_READER_ROLE,), [r.service_account for r in args.readers]),
            ("writer", GCP_WRITER_ROLES, [FILL_SERVICE_ACCOUNT]),
        ):
            account = gcp.serviceaccount.Account(
                f"{name}-{role_name}",
                account_id=gcp_account_id(args.cluster_name, role_name),
                display_name=f"Model store {role_name} of {args.cluster_name}",
                project=project,
                opts=child,
            )
            member = account.email.apply(lambda e: f"serviceAccount:{e}")
            self._identity.append(account)
            for role in roles:
                self._identity.append(
                    gcp.storage.BucketIAMMember(
                        f"{name}-{role_name}-{role.split('.')[-1].lower()}",
                        bucket=bucket_name,
                        role=role,
                        member=member,
                        opts=child,
                    )
                )
            for ksa in accounts:
                self._identity.append(
                    gcp.serviceaccount.IAMMember(
                        f"{name}-{role_name}-wi-{ksa}",
                        service_account_id=account.name,
                        role=GCP_WORKLOAD_IDENTITY_USER,
                        member=f"serviceAccount:{project}.svc.id.goog[{args.namespace}/{ksa}]",
                        opts=child,
                    )
                )
                self.annotations[ksa] = {"iam.gke.io/gcp-service-account": account.email}


def gcp_account_id(cluster_name: str, role: str) -> str:
    """A service account id (6-30 characters): ``<cluster>-model-<reader|writer>``."""
    return f"{cluster_name[:17].rstrip('-')}-model-{role}"


def metadata_network_policy_spec() -> dict:
    return {
        "podSelector": {"matchLabels": {READER_LABEL: "true"}},
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"protocol": "TCP", "port": port}]}
            for cidr, port in GKE_METADATA
        ],
    }


def fill_job_spec(args: ModelStoreArgs, m: StoredModel) -> dict:
    """One revision: the pinned vLLM image runs FILL_SCRIPT as the non-root vLLM user on CPU nodes."""
    from .vllm import DOWNLOAD_EXCLUDE, DOWNLOAD_RESOURCES, VLLM_UID

    scratch = fill_storage_gib(m)
    uri = model_uri(args.cloud, args.bucket, args.config.prefix, m.repo, m.revision)
    env = [
        {"name": "FILL_DIR", "value": FILL_DIR},
        {"name": "HOME", "value": FILL_DIR},
        {"name": "HF_HOME", "value": f"{FILL_DIR}/hf"},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
    ]
    if args.cloud == "eks" and args.aws_irsa is not None:
        env.append({"name": "AWS_REGION", "value": args.aws_irsa.region})
    mounts = [{"name": "fill", "mountPath": FILL_DIR}]
    volumes: list[dict] = [{"name": "fill", "emptyDir": {"sizeLimit": f"{scratch}Gi"}}]
    if m.gated and args.hf_token_secret:
        env.append(hf_token_env())
        mounts.append(hf_token_mount())
        volumes.append(hf_token_volume(args.hf_token_secret))
    resources = {**DOWNLOAD_RESOURCES, "ephemeral-storage": f"{scratch}Gi"}
    return {
        "backoffLimit": 4,
        "template": {
            "metadata": {"labels": {**kube.selector(COMPONENT, COMPONENT), READER_LABEL: "true"}},
            "spec": {
                "restartPolicy": "OnFailure",
                "serviceAccountName": FILL_SERVICE_ACCOUNT,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": kube.pod_security_context(run_as_non_root=True, uid=VLLM_UID),
                "containers": [
                    {
                        "name": "fill",
                        "image": versions.VLLM_IMAGE,
                        "imagePullPolicy": kube.IMAGE_PULL_POLICY,
                        "command": ["python3", "-c", FILL_SCRIPT, m.repo, m.revision, uri, ",".join(DOWNLOAD_EXCLUDE)],
                        "env": env,
                        "resources": {"requests": resources, "limits": resources},
                        "volumeMounts": mounts,
                        "securityContext": kube.container_security_context(read_only_root=True),
                    }
                ],
                "volumes": volumes,
            },
        },
    }
