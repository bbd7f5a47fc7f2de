"""Every pinned image and Helm chart, in one place.

Charts match the upstream values files in ``../shared/upstream/helm-values`` (see its
SOURCES.md), so the tests can check every values key we set against the chart's defaults.
Bump a version here, then re-run the tests: they fail on keys the new chart no longer has.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repository: str


GPU_OPERATOR = Chart("gpu-operator", "v26.7.0", "https://helm.ngc.nvidia.com/nvidia")
KEDA = Chart("keda", "2.20.2", "https://kedacore.github.io/charts")
KUBERAY_OPERATOR = Chart("kuberay-operator", "1.7.0", "https://ray-project.github.io/kuberay-helm/")
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts")
PROMETHEUS_ADAPTER = Chart("prometheus-adapter", "5.3.0", "https://prometheus-community.github.io/helm-charts")
KARPENTER = Chart("karpenter", "1.14.1", "oci://public.ecr.aws/karpenter")
KARPENTER_CRD = Chart("karpenter-crd", KARPENTER.version, KARPENTER.repository)
"""Karpenter's CRDs as a chart of their own (templates/, so ``helm upgrade`` upgrades them; the
karpenter chart's crds/ are never upgraded by Helm). Same registry and version as the controller
(aws/karpenter-provider-aws, charts/karpenter-crd, release-v1.14.1)."""

KARPENTER_AL2023_AMI = "v20260818"
"""EKS-optimized AL2023 AMI release for Karpenter's ``al2023@<version>`` alias (GPU pools get the
NVIDIA variant of that release). Release tags of awslabs/amazon-eks-ami (``v<YYYYMMDD>``); v20260818
is the release that awslabs/amazon-eks-ami PRs #2807/#2815 build on. Bump it deliberately: every
new release drifts (replaces) all Karpenter GPU nodes."""
KARPENTER_BOTTLEROCKET_AMI = "v1.61.0"
"""Bottlerocket release for the ``bottlerocket@<version>`` alias (bottlerocket-os/bottlerocket
v1.61.0, 2026-05-18: aws-k8s-1.3x-nvidia variants)."""

KUBERAY_CRDS = tuple(
    f"https://raw.githubusercontent.com/ray-project/kuberay/v{KUBERAY_OPERATOR.version}/ray-operator/config/crd/bases/ray.io_{kind}.yaml"
    for kind in ("rayclusters", "rayjobs", "rayservices")
)
"""KubeRay's CRDs at the operator's release tag. The kuberay-operator chart ships them in crds/,
which Helm installs once and never upgrades (KubeRay's upgrade guide applies them separately)."""
KPS_CRD_UPGRADE_BUSYBOX_TAG = "1.37.0"
"""busybox of kube-prometheus-stack's CRD upgrade job (the chart defaults to ``latest``)."""
CLUSTER_AUTOSCALER = Chart("cluster-autoscaler", "9.59.0", "https://kubernetes.github.io/autoscaler")
"""appVersion 1.35.0; EKS stacks with ``cluster.eks.gpuAutoscaler: clusterAutoscaler``."""

VLLM_IMAGE = "vllm/vllm-openai:v0.31.0"
"""vLLM OpenAI-compatible server. The same image runs the weight pre-download (it ships the
``hf`` CLI of huggingface_hub), so one pin covers both containers."""

VLLM_IMAGES = (VLLM_IMAGE,)
"""The vLLM images a model may run: the stable one, and any a canary (``models[].canary.image``)
tries before it becomes ``VLLM_IMAGE``. Add a new release here (with its CUDA major below), then
name it in the canary, so every image that runs is pinned in this file and driver-checked."""

RAY_LLM_IMAGE = "rayproject/ray-llm:2.58.0-py312-cu130"
"""Ray with Ray Serve LLM and a bundled vLLM; used with KubeRay operator 1.7.0."""

KUBERNETES_VERSION = "1.35"
"""Control-plane version of new EKS clusters (GKE: the release channel's default unless the
stack pins ``cluster.kubernetesVersion``), and the schema the tests validate against.

The newest minor in standard support on both clouds whose dates are in
``config/k8s_support.py`` (as of 2026-12-02): EKS 1.35 (EKS release 2026-01-28, end of
standard support 2027-03-27), GKE 1.35 (Regular channel 2026-02-11, end of standard
support 2027-04-11). 1.33 left standard support on GKE 2026-08-03 and on EKS 2026-07-29."""

GPU_OPERATOR_DRIVER_VERSION = "595.91.07"
"""``driver.version`` in the gpu-operator v26.7.0 chart values (deployments/gpu-operator/values.yaml):
the driver NVIDIA's driver manager installs on GKE with ``gpuDriver: operator``."""

IMAGE_CUDA_MAJOR = {VLLM_IMAGE: 13, RAY_LLM_IMAGE: 13}
"""CUDA major version each serving image is built with: ray-llm's tag says ``cu130``; the
vllm/vllm-openai v0.31.0 image is a CUDA 13 build (issue 12's review). The node driver
must support it (config/drivers.py)."""

EXTERNAL_SECRETS = Chart("external-secrets", "2.9.0", "https://charts.external-secrets.io")
"""External Secrets Operator (external-secrets/external-secrets v2.9.0): syncs credentials from AWS
Secrets Manager / Google Secret Manager into Kubernetes Secrets (``credentials.*.source: secretManager``)."""

LWS = Chart("lws", "0.10.0", "oci://registry.k8s.io/lws/charts")
"""LeaderWorkerSet controller (kubernetes-sigs/lws v0.10.0; the chart is published with the
release's version, its Chart.yaml in git says 0.1.0): multi-node model groups (multiNodeModels)."""
LWS_IMAGE_TAG = "v0.10.0"
"""``image.manager.tag`` of the lws chart (``registry.k8s.io/lws/lws``): the chart defaults to ``main``."""
ENVOY_GATEWAY = Chart("gateway-helm", "v1.9.0", "oci://docker.io/envoyproxy")
"""Envoy Gateway (envoyproxy/gateway v1.9.0, charts/gateway-helm; controller image
docker.io/envoyproxy/gateway:v1.9.0 filled in at release): the Gateway API implementation of EKS
and existing clusters. Its chart also installs the Gateway API CRDs (``crds.enabled``)."""
AI_GATEWAY = Chart("ai-gateway-helm", "v1.1.0", "oci://docker.io/envoyproxy")
"""Envoy AI Gateway (envoyproxy/ai-gateway v1.1.0, manifests/charts/ai-gateway-helm): the extension
server that makes Envoy Gateway route HTTPRoute backends of kind InferencePool
(examples/inference-pool/envoy-gateway-values-addon.yaml at v1.1.0). Its go.mod builds against
envoyproxy/gateway v1.8.1; the extension-server hooks it uses are unchanged in v1.9.0."""
AI_GATEWAY_CRDS = Chart("ai-gateway-crds-helm", AI_GATEWAY.version, AI_GATEWAY.repository)
"""The AI Gateway's own CRDs (AIGatewayRoute, ...), which its controller watches; same release."""
CERT_MANAGER = Chart("cert-manager", "v1.21.1", "https://charts.jetstack.io")
"""cert-manager (cert-manager/cert-manager v1.21.1): issues the Gateway's certificate (ACME)."""
LLM_D_ROUTER_GATEWAY = Chart("llm-d-router-gateway", "v0.10.0", "oci://ghcr.io/llm-d/charts")
"""llm-d-router v0.10.0 chart ``llm-d-router-gateway`` (InferencePool + endpoint picker), the successor
of the Inference Extension's ``inferencepool`` chart; published as
oci://ghcr.io/llm-d/charts/llm-d-router-gateway with the release tag as version
(.github/ISSUE_TEMPLATE/new-release.md at v0.10.0)."""
EPP_IMAGE_TAG = "v0.10.0"
"""ghcr.io/llm-d/llm-d-router-endpoint-picker at the chart's release (routerlib values default to
``main``, a moving branch tag)."""
BBR_IMAGE = "registry.k8s.io/gateway-api-inference-extension/bbr:v1.5.0"
"""Body-based router of the Gateway API Inference Extension v1.5.0 (config/charts/body-based-routing
values ``bbr.image``): copies the request's ``model`` into ``X-Gateway-Model-Name``. v1.6.0 moved it
to llm-d/llm-d-inference-payload-processor, which has no release in ../shared/upstream yet."""
GATEWAY_API_INFERENCE_EXTENSION = "v1.6.0"
INFERENCE_POOL_CRDS = (
    "https://github.com/kubernetes-sigs/gateway-api-inference-extension/releases/download/"
    f"{GATEWAY_API_INFERENCE_EXTENSION}/manifests.yaml",
)
"""InferencePool (inference.networking.k8s.io/v1) and InferencePoolImport CRDs at the release tag."""
INFERENCE_OBJECTIVE_CRDS = (
    f"https://raw.githubusercontent.com/llm-d/llm-d-router/{LLM_D_ROUTER_GATEWAY.version}/config/crd/bases/"
    "llm-d.ai_inferenceobjectives.yaml",
)
"""InferenceObjective (llm-d.ai/v1alpha2), which the llm-d-router EPP reads, at its release tag."""

ALL_CHARTS = (
    GPU_OPERATOR,
    KEDA,
    KUBERAY_OPERATOR,
    KUBE_PROMETHEUS_STACK,
    PROMETHEUS_ADAPTER,
    KARPENTER,
    KARPENTER_CRD,
    CLUSTER_AUTOSCALER,
    EXTERNAL_SECRETS,
    LWS,
    ENVOY_GATEWAY,
    AI_GATEWAY,
    AI_GATEWAY_CRDS,
    CERT_MANAGER,
    LLM_D_ROUTER_GATEWAY,
)
ALL_IMAGES = (*VLLM_IMAGES, RAY_LLM_IMAGE)
"""The serving (GPU) images, each with its CUDA major in ``IMAGE_CUDA_MAJOR``; pre-pulled on GPU
nodes (components/addons/image_prepull.py)."""
EPP_IMAGE = f"ghcr.io/llm-d/llm-d-router-endpoint-picker:{EPP_IMAGE_TAG}"
ROUTER_IMAGES = (EPP_IMAGE, BBR_IMAGE)
"""CPU images of the public Gateway's routing (endpoint picker, body-based router)."""

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
"""Keeps the image pre-pull pods alive (the sandbox image of Kubernetes 1.31+ kubeadm/containerd)."""
