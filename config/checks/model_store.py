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
    out += _check_pinned_revisions(stack)
    out += _check_store_flags(stack)
    return out


def _check_pinned_revisions(stack: Stack) -> Issues:
    """The store is filled once per revision: every streamed model (and a canary's own revision) pins a commit."""
    out = Issues()
    cfg = stack.config
    sources = [(f"models[{i}]", m) for i, m in enumerate(cfg.models)]
    sources += [(f"multiNodeModels[{i}]", m) for i, m in enumerate(cfg.multi_node_models)]
    sources += [
        (f"rayServices[{i}].models[{j}]", m) for i, svc in enumerate(cfg.ray_services) for j, m in enumerate(svc.models)
    ]
    for path, m in sources:
        if m.revision is None or not PINNED_REVISION.match(m.revision):
            out.add(
                f"{path}.revision",
                "modelStore.enabled: pin the Hugging Face commit (40 hex characters); the store is filled "
                f"once per revision{'' if m.revision is None else f', and {m.revision!r} can move'}",
            )
    for i, m in enumerate(cfg.models):
        # a canary streams its own revision from the store (the stable one's when unset)
        if m.canary is not None and m.canary.revision is not None and not PINNED_REVISION.match(m.canary.revision):
            out.add(
                f"models[{i}].canary.revision",
                f"modelStore.enabled: pin the Hugging Face commit (40 hex characters); {m.canary.revision!r} can move",
            )
    return out


def _check_store_flags(stack: Stack) -> Issues:
    """``extraArgs`` may not set the streamer's flags a second time (models, canaries, multi-node models)."""
    out = Issues()
    cfg = stack.config
    flag_lists = [(f"models[{i}].extraArgs", m.extra_args) for i, m in enumerate(cfg.models)]
    flag_lists += [
        (f"models[{i}].canary.extraArgs", m.canary.extra_args) for i, m in enumerate(cfg.models) if m.canary is not None
    ]
    flag_lists += [(f"multiNodeModels[{i}].extraArgs", m.extra_args) for i, m in enumerate(cfg.multi_node_models)]
    for path, args in flag_lists:
        for arg in args:
            flag = arg.split("=", 1)[0]
            if flag in STORE_FLAGS:
                out.add(path, f"'{flag}' is set by modelStore (runai_streamer, modelStore.concurrency)")
    return out
