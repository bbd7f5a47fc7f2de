"""Serving images pulled onto every GPU node as it joins, before a model pod needs them.

One mechanism on every cloud: a DaemonSet on the GPU pools (their taints tolerated, their
selectors as node affinity) whose init containers are the serving images running ``true``; the
kubelet pulls each image once (``IfNotPresent``), so a replica scheduled there later starts
without the 10-20 GiB pull, and on a new node the pull starts as soon as the node registers,
while the GPU stack (driver validation, device plugin) comes up. A pause container keeps the
pod (and so the images, which the kubelet's image GC keeps while a container uses them) alive.

Why not GKE image streaming or a secondary boot disk: both need the images in Artifact Registry
or a disk image built out of band; the serving images are pulled from Docker Hub.
"""

# `pyright: ignore[reportArgumentType]` on a resource's metadata/spec: pulumi_kubernetes types them as its
# *Args TypedDicts; these manifests are plain dicts, validated against the Kubernetes OpenAPI schema of the
# pinned version by tests/test_rendered_schemas.py instead.

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components import k8s as kube
from llm_infra.config import NodePoolFacts, versions

NAME = "image-prepull"
PULL_RESOURCES = {"cpu": "10m", "memory": "16Mi"}


@dataclass(frozen=True)
class ImagePrepullArgs:
    """What the image pre-pull DaemonSet needs: its namespace, the GPU pools it runs on and the images."""

    namespace: str
    """Namespace of the DaemonSet and its ServiceAccount (the serving namespace, ``namespace``)."""
    pools: list[NodePoolFacts]
    """GPU pools the models and Ray workers use: their selectors (node affinity) and taints."""
    images: tuple[str, ...] = versions.ALL_IMAGES
    """Images pulled onto each node (default: every serving image, ``versions.ALL_IMAGES``)."""


def node_affinity(pools: list[NodePoolFacts]) -> dict:
    """Any node matching one pool's selector (terms are ORed)."""
    terms = [
        {"matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in sorted(p.selector.items())]}
        for p in pools
        if p.selector
    ]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


def tolerations(pools: list[NodePoolFacts]) -> list[dict]:
    out: list[dict] = []
    for p in pools:
        for t in p.tolerations():
            if t not in out:
                out.append(t)
    return out


def daemonset_spec(args: ImagePrepullArgs) -> dict:
    labels = kube.selector(NAME, NAME)
    pull = [
        {
            "name": f"pull-{i}",
            "image": image,
            "imagePullPolicy": kube.IMAGE_PULL_POLICY,
            "command": ["true"],
            "resources": {"requests": PULL_RESOURCES, "limits": PULL_RESOURCES},
            "securityContext": kube.container_security_context(read_only_root=True),
        }
        for i, image in enumerate(args.images)
    ]
    return {
        "selector": {"matchLabels": labels},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
        "template": {
            "metadata": {"labels": {**labels, **kube.MANAGED_BY}},
            "spec": {
                "serviceAccountName": NAME,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": kube.pod_security_context(run_as_non_root=True, uid=65535),
                "affinity": node_affinity(args.pools),
                "tolerations": tolerations(args.pools),
                "initContainers": pull,
                "containers": [
                    {
                        "name": "pause",
                        "image": versions.PAUSE_IMAGE,
                        "imagePullPolicy": kube.IMAGE_PULL_POLICY,
                        "resources": {"requests": PULL_RESOURCES, "limits": PULL_RESOURCES},
                        "securityContext": kube.container_security_context(read_only_root=True),
                    }
                ],
                "terminationGracePeriodSeconds": 0,
            },
        },
    }


class ImagePrepull(pulumi.ComponentResource):
    """The pre-pull DaemonSet of the serving images on the GPU pools."""

    def __init__(self, name: str, args: ImagePrepullArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:ImagePrepull", name, None, opts)
        labels = kube.labels(NAME, NAME)
        account = k8s.core.v1.ServiceAccount(
            name, **kube.service_account(NAME, args.namespace, labels), opts=pulumi.ResourceOptions(parent=self)
        )
        k8s.apps.v1.DaemonSet(
            name,
            metadata=kube.metadata(NAME, args.namespace, labels),  # pyright: ignore[reportArgumentType]
            spec=daemonset_spec(args),  # pyright: ignore[reportArgumentType]
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account]),
        )
        self.register_outputs({"images": list(args.images)})
