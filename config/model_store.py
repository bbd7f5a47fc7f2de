"""The per-stack model store: weights in the cloud's object storage, streamed to the GPUs.

One bucket per stack (S3 on EKS, GCS on GKE), created and protected by the stack or an existing
one. A Kubernetes Job fills it once per model revision from Hugging Face; vLLM (and Ray Serve
LLM's vLLM engine) then load from ``s3://`` / ``gs://`` with the Run:ai Model Streamer
(``--load-format runai_streamer``), so a new replica streams the weights straight to its GPUs
instead of downloading from the Hub or copying them from a cache volume.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import Field

from .base import ConfigModel

STORE_SCHEME = {"eks": "s3", "gke": "gs"}
"""URI scheme of each cloud's store as vLLM's runai_utils accepts it (``SUPPORTED_SCHEMES``
``s3://``, ``gs://``, ``az://``: vllm/transformers_utils/runai_utils.py)."""

PINNED_REVISION = re.compile(r"^[0-9a-f]{40}$")
"""A Hugging Face commit id: branches and tags move, a commit does not, so one fill per revision
stays valid for as long as the models point at it."""

READER_LABEL = "llm-infra.io/model-store-reader"
"""Pod label of everything that reads the store (serving pods, fill Jobs): the GKE metadata
NetworkPolicy selects on it."""

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
"""Bucket names both clouds accept (S3 "Bucket naming rules"; GCS "Bucket names": 3-63 characters
of lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit)."""


class ModelStoreConfig(ConfigModel):
    """Weights in object storage (S3 on EKS, GCS on GKE), loaded with the Run:ai Model Streamer."""

    enabled: bool = Field(
        default=False, description="stream every model's weights from the store (models pin a revision)"
    )
    bucket: str | None = Field(
        default=None, description="bucket name; default: <cluster.name>-models-<stack>; required with create false"
    )
    create: bool = Field(
        default=True,
        description="create the bucket here (versioned, encrypted, private, protected with cluster.protect); "
        "false: use an existing bucket",
    )
    prefix: str = Field(
        default="models", pattern=r"^[a-z0-9][a-z0-9._/-]*[a-z0-9]$", description="key prefix of the weights"
    )
    concurrency: int = Field(
        default=16,
        ge=1,
        le=64,
        description="Run:ai streamer threads per process (model-loader-extra-config concurrency; its object-store "
        "default is 8)",
    )
    memory_limit_gib: int | None = Field(
        default=None,
        ge=1,
        description="CPU buffer of the streamer (model-loader-extra-config memory_limit); default: the streamer's "
        "own (40 GB)",
    )

    def bucket_name(self, cluster_name: str, stack: str) -> str:
        return self.bucket or f"{cluster_name}-models-{stack}".lower()


def object_prefix(prefix: str, repo: str, revision: str) -> str:
    """Key prefix of one model revision: ``<prefix>/<org>/<name>/<revision>`` (no trailing slash)."""
    return f"{prefix}/{repo}/{revision}"


def model_uri(cloud: str, bucket: str, prefix: str, repo: str, revision: str) -> str:
    """What vLLM loads: ``s3://<bucket>/<prefix>/<org>/<name>/<revision>``."""
    return f"{STORE_SCHEME[cloud]}://{bucket}/{object_prefix(prefix, repo, revision)}"


def fill_job_name(repo: str, revision: str) -> str:
    """A Job per model revision (DNS label): a new revision is a new Job, an old one is never refilled."""
    digest = hashlib.sha256(f"{repo}@{revision}".encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9-]+", "-", repo.split("/", 1)[1].lower()).strip("-")[:30].rstrip("-")
    return f"fill-{slug}-{digest}"
