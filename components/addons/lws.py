"""LeaderWorkerSet controller (kubernetes-sigs/lws): runs the multi-node model groups.

Installed from its Helm chart (``oci://registry.k8s.io/lws/charts``, the installation guide's
``helm install lws oci://registry.k8s.io/lws/charts/lws``) when a stack has a
``multiNodeModel``. The chart ships the LeaderWorkerSet CRD in crds/ and its own webhook
certificates (``enableCertManager: false``). The chart's image tag defaults to ``main`` with
``pullPolicy: Always`` (charts/lws/values.yaml at v0.10.0): both are pinned here. Its webhooks
validate LeaderWorkerSets, so they depend on the release (Pulumi waits for its Deployment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components.k8s import IMAGE_PULL_POLICY
from llm_infra.config import versions
from llm_infra.config.addons import LWS_NAMESPACE

from .base import addon_namespace, helm_release, system_affinity

NAMESPACE = LWS_NAMESPACE


@dataclass(frozen=True)
class LwsArgs:
    cluster_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """System nodes, CSI add-on and StorageClasses (``ClusterHandle.platform_ready``)."""


def lws_values() -> dict[str, Any]:
    return {
        "image": {"manager": {"tag": versions.LWS_IMAGE_TAG, "pullPolicy": IMAGE_PULL_POLICY}},
        "affinity": system_affinity(),
    }


class LeaderWorkerSetController(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: LwsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:LeaderWorkerSetController", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = addon_namespace(f"{name}-ns", NAMESPACE, "baseline", child)
        self.values = lws_values()
        self.release = helm_release(
            f"{name}-release", versions.LWS, NAMESPACE, ns, self.values, child, depends_on=list(args.cluster_ready)
        )
        self.register_outputs({"namespace": NAMESPACE})
