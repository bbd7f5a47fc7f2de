"""The model store vs. the cloud and the models that stream from it."""

from __future__ import annotations

from ..model_store import BUCKET_NAME, PINNED_REVISION
from .base import Issues, Stack

STORE_FLAGS = ("--load-format", "--model-loader-extra-config")
"""vLLM flags the model store sets (the Run:ai streamer and its concurrency); ``extraArgs`` may
not set them a second time."""


def check_model_store(stack: Stack) -> Issues:
    """The store needs a cloud bucket, a valid name and pinned revisions; its flags are its own."""
    out = Issues()
    store = stack.config.model_store
    if not store.enabled:
        return out
    if stack.config.cluster.cloud == "existing":
        out.add(
            "modelStore.enabled",
            "the model store is an S3 (EKS) or GCS (GKE) bucket this stack wires with IRSA / Workload "
            "Identity; cloud existing has neither",
        )
    if not store.create and store.bucket is None:
        out.add("modelStore.bucket", "create false: name the existing bucket")
    if store.bucket is not None and not BUCKET_NAME.match(store.bucket):
        out.add(
            "modelStore.bucket",
            f"'{store.bucket}' is not a bucket name (3-63 lowercase letters, digits, dots and hyphens)",
        )
    sources = [(f"models[{i}]", m) for i, m in enumerate(stack.config.models)]
    sources += [
        (f"rayServices[{i}].models[{j}]", m)
        for i, svc in enumerate(stack.config.ray_services)
        for j, m in enumerate(svc.models)
    ]
    for path, m in sources:
        if m.revision is None or not PINNED_REVISION.match(m.revision):
            out.add(
                f"{path}.revision",
                "modelStore.enabled: pin the Hugging Face commit (40 hex characters); the store is filled "
                f"once per revision{'' if m.revision is None else f', and {m.revision!r} can move'}",
            )
    for i, m in enumerate(stack.config.models):
        for arg in m.extra_args:
            if arg.split("=", 1)[0] in STORE_FLAGS:
                out.add(
                    f"models[{i}].extraArgs",
                    f"'{arg.split('=', 1)[0]}' is set by modelStore (runai_streamer, modelStore.concurrency)",
                )
        canary = m.canary
        if canary is None:
            continue
        # a canary streams its own revision from the store (the stable one's when unset)
        if canary.revision is not None and not PINNED_REVISION.match(canary.revision):
            out.add(
                f"models[{i}].canary.revision",
                f"modelStore.enabled: pin the Hugging Face commit (40 hex characters); {canary.revision!r} can move",
            )
        for arg in canary.extra_args:
            if arg.split("=", 1)[0] in STORE_FLAGS:
                out.add(
                    f"models[{i}].canary.extraArgs",
                    f"'{arg.split('=', 1)[0]}' is set by modelStore (runai_streamer, modelStore.concurrency)",
                )
    return out
