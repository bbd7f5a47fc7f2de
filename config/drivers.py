"""Does the node's NVIDIA driver run the CUDA version of every pinned serving image?

CUDA minor-version compatibility: an image built with CUDA 13.x needs a driver of branch
R580 or newer, CUDA 12.x R525 or newer. Source: NVIDIA CUDA Compatibility guide, "Minor
Version Compatibility", Table 1 "CUDA Toolkit 11.x, 12.x, and 13.x Minimum and Maximum
Required Driver Versions" (https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html;
the same table is in the CUDA Toolkit 13.0 release notes).

Which driver a GKE GPU node gets:

* ``gpuDriver: operator``: the GPU Operator's driver manager installs the chart's pinned
  driver (``versions.GPU_OPERATOR_DRIVER_VERSION``, gpu-operator v26.7.0 values.yaml).
* ``gpuDriver: gke``: GKE installs the branch its ``DEFAULT``/``LATEST`` label points to
  for the node's GKE version ("Manually install NVIDIA GPU drivers" / "About GPUs in GKE",
  https://cloud.google.com/kubernetes-engine/docs/how-to/gpus#installing_drivers). Only
  branches with a published row go in ``GKE_DRIVER_BRANCH``; an unlisted combination cannot
  be shown to run the images and is rejected, naming the fix.
"""

from __future__ import annotations

from . import versions

MIN_DRIVER_BRANCH = {13: 580, 12: 525, 11: 450}
"""CUDA major -> oldest driver branch that runs it (NVIDIA table above)."""

GKE_DRIVER_BRANCH: dict[tuple[str, str], int] = {}
"""(GKE minor, DEFAULT|LATEST) -> driver branch GKE installs on COS. Empty: the stored GKE
documentation available when this was written lists no row for the supported minors
(1.35+) with these labels; add rows with their source as GKE publishes them."""


def driver_branch(version: str) -> int:
    """``"595.91.07"`` -> 595."""
    return int(version.split(".")[0])


def required_branch(images: tuple[str, ...] = versions.ALL_IMAGES) -> tuple[int, str]:
    """(oldest driver branch every image needs, the image that needs it)."""
    branch, image = max((MIN_DRIVER_BRANCH[versions.IMAGE_CUDA_MAJOR[i]], i) for i in images)
    return branch, image


def gke_node_branch(
    gpu_driver: str, gpu_driver_version: str, gke_minor: str | None, stated: int | None = None
) -> int | None:
    """Driver branch a GKE GPU node gets (None: not known). With GKE-managed drivers the
    table row wins; without one, the branch the stack states (``gke.gpuDriverBranch``)."""
    if gpu_driver == "operator":
        return driver_branch(versions.GPU_OPERATOR_DRIVER_VERSION)
    known = GKE_DRIVER_BRANCH.get((gke_minor, gpu_driver_version)) if gke_minor else None
    return known if known is not None else stated
