"""GPU catalog: the EKS instance types and GKE machine types this project can place GPU
node pools on, with the facts the sizing and cost code needs.

Pure data plus lookups; no Pulumi imports. Every family below is kept in one block with a
comment naming the cloud documentation page its shape facts come from (``source``).

Prices (``hourly_usd``) are approximate on-demand list prices per node-hour, Linux, in
us-east-1 (EKS) and us-central1 (GKE), as compiled on ``PRICE_DATE``. They are for cost
*estimates* only, not quotes: they exclude disks, network, EKS/GKE control-plane fees,
discounts (Savings Plans, CUDs, Spot) and any price change after that date. AWS prices for
P4d/P5 reflect the June 2025 on-demand reduction.

``product_label`` is the value NVIDIA GPU Feature Discovery (GPU Operator) writes to the
``nvidia.com/gpu.product`` node label (device name with spaces replaced by dashes). On EKS
it is the usual node selector. On GKE the managed driver install does not run GFD, so nodes
carry ``cloud.google.com/gke-accelerator=<accelerator>`` instead; ``product_label`` only
appears there when the GPU Operator is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Cloud = Literal["eks", "gke"]

PRICE_DATE = "2026-11-23"
"""Date the hourly prices below were compiled (shared by every shape)."""


Interconnect = Literal["pcie", "nvlink"]
"""How a node's GPUs talk to each other (tensor parallelism across more than one GPU)."""


@dataclass(frozen=True)
class GpuShape:
    """One instance type (EKS) or machine type (GKE) with GPUs attached."""

    name: str  # "g5.12xlarge" or "a2-highgpu-1g"
    cloud: Cloud
    gpu_model: str  # human name, e.g. "NVIDIA A10G"
    gpu_count: int  # GPUs per node
    gpu_memory_gib: int  # memory per GPU, GiB (nominal: 24 for A10G, 80 for H100)
    cuda_memory_gib: float  # total memory per GPU as CUDA reports it (torch.cuda.mem_get_info)
    cuda_memory_source: str  # where that figure was seen
    vcpus: int
    memory_gib: int  # host memory (GKE documents it in "GB"; same numbers)
    mig_capable: bool  # A100/H100 True
    product_label: str  # nvidia.com/gpu.product value set by GPU Feature Discovery
    accelerator: str | None  # GKE accelerator type; None on EKS
    hourly_usd: float  # approximate on-demand list price per node-hour
    price_date: str  # ISO date the price is taken from
    source: str  # name of the cloud documentation page the facts come from
    interconnect: Interconnect


# --- GPU models: (human name, memory per GPU GiB, MIG, GFD product label, CUDA total GiB, source)
# Label values as published by GFD on real nodes (nvidia.com/gpu.product).
# CUDA total: what ``torch.cuda.mem_get_info()[1]`` returns, which vLLM multiplies by
# gpu-memory-utilization (vllm/utils/mem_utils.py MemorySnapshot). It is below the nominal size
# (ECC and the driver's reservations); where sources differ the lower figure is used.
_A10G = (
    "NVIDIA A10G",
    24,
    False,
    "NVIDIA-A10G",
    22.06,
    "22.06 GiB on g5 in vLLM logs (figure from issue 11, thread not re-checked); the same-die A10 "
    "reports 'total capacity of 22.18 GiB' (OpenBMB/MiniCPM-V#640); lower figure used",
)
_L4 = (
    "NVIDIA L4",
    24,
    False,
    "NVIDIA-L4",
    21.95,
    "nvidia-smi 23034 MiB; torch 'total capacity of 21.98 GiB' on a 24 GB card (vllm-project/vllm#17835); rounded down",
)
_L40S = (
    "NVIDIA L40S",
    48,
    False,
    "NVIDIA-L40S",
    44.3,
    "46068 MiB cards (L40/L40S/A40): torch 'total capacity of 44.40 GiB' (QwenLM/Qwen3-VL#2097, L40); "
    "44.3 GiB in issue 11; lower figure used",
)
_A100_40 = (
    "NVIDIA A100 40GB",
    40,
    True,
    "NVIDIA-A100-SXM4-40GB",
    39.38,
    "vLLM 'total_gpu_memory (39.38GiB)' on 4x A100 40GB (vllm-project/vllm#16570)",
)
_A100_80 = (
    "NVIDIA A100 80GB",
    80,
    True,
    "NVIDIA-A100-SXM4-80GB",
    79.15,
    "torch 'total capacity of 79.35 GiB' on 8x A100 80GB (MoonshotAI/Kimi-VL#54); 79.15 GiB is "
    "common on PCIe cards (not re-checked); lower figure used",
)
_H100_80 = (
    "NVIDIA H100 80GB",
    80,
    True,
    "NVIDIA-H100-80GB-HBM3",
    79.1,
    "vLLM 'total_gpu_memory 79.22GiB' (vllm-project/vllm#10511); 79.1 GiB in issue 11; lower used",
)

CUDA_MEMORY_BY_PRODUCT = {g[3]: (g[4], g[5]) for g in (_A10G, _L4, _L40S, _A100_40, _A100_80, _H100_80)}
"""CUDA-visible memory per GFD product label, for existing-cluster pools that do not state it."""

# Row: (name, gpu_count, vcpus, memory_gib, hourly_usd)
_Row = tuple[str, int, int, int, float]


def _family(
    cloud: Cloud,
    gpu: tuple[str, int, bool, str, float, str],
    source: str,
    rows: list[_Row],
    *,
    accelerator: str | None = None,
    interconnect: Interconnect = "pcie",
) -> list[GpuShape]:
    model, mem, mig, label, cuda_mem, cuda_source = gpu
    return [
        GpuShape(
            name=name,
            cloud=cloud,
            gpu_model=model,
            gpu_count=count,
            gpu_memory_gib=mem,
            cuda_memory_gib=cuda_mem,
            cuda_memory_source=cuda_source,
            vcpus=vcpus,
            memory_gib=host_mem,
            mig_capable=mig,
            product_label=label,
            accelerator=accelerator,
            hourly_usd=price,
            price_date=PRICE_DATE,
            source=source,
            interconnect=interconnect,
        )
        for name, count, vcpus, host_mem, price in rows
    ]


def _aws_sizes(prefix: str, rows: list[tuple[str, int, int, int, float]]) -> list[_Row]:
    """Expand ("12xlarge", gpus, vcpus, mem, price) into full "g5.12xlarge" rows."""
    return [(f"{prefix}.{size}", g, c, m, p) for size, g, c, m, p in rows]


_SHAPES: list[GpuShape] = [
    # ---------------------------------------------------------------- EKS (us-east-1)
    # Amazon EC2 G5 Instances: NVIDIA A10G 24 GB, PCIe
    *_family(
        "eks",
        _A10G,
        "Amazon EC2 G5 Instances",
        _aws_sizes(
            "g5",
            [
                ("xlarge", 1, 4, 16, 1.006),
                ("2xlarge", 1, 8, 32, 1.212),
                ("4xlarge", 1, 16, 64, 1.624),
                ("8xlarge", 1, 32, 128, 2.448),
                ("12xlarge", 4, 48, 192, 5.672),
                ("16xlarge", 1, 64, 256, 4.096),
                ("24xlarge", 4, 96, 384, 8.144),
                ("48xlarge", 8, 192, 768, 16.288),
            ],
        ),
    ),
    # Amazon EC2 G6 Instances: NVIDIA L4 24 GB, PCIe
    *_family(
        "eks",
        _L4,
        "Amazon EC2 G6 Instances",
        _aws_sizes(
            "g6",
            [
                ("xlarge", 1, 4, 16, 0.8048),
                ("2xlarge", 1, 8, 32, 0.9776),
                ("4xlarge", 1, 16, 64, 1.3232),
                ("8xlarge", 1, 32, 128, 2.0144),
                ("12xlarge", 4, 48, 192, 4.6016),
                ("16xlarge", 1, 64, 256, 3.3968),
                ("24xlarge", 4, 96, 384, 6.6752),
                ("48xlarge", 8, 192, 768, 13.3504),
            ],
        ),
    ),
    # Amazon EC2 G6e Instances: NVIDIA L40S 48 GB, PCIe
    *_family(
        "eks",
        _L40S,
        "Amazon EC2 G6e Instances",
        _aws_sizes(
            "g6e",
            [
                ("xlarge", 1, 4, 32, 1.861),
                ("2xlarge", 1, 8, 64, 2.242),
                ("4xlarge", 1, 16, 128, 3.004),
                ("8xlarge", 1, 32, 256, 4.529),
                ("12xlarge", 4, 48, 384, 10.493),
                ("16xlarge", 1, 64, 512, 7.577),
                ("24xlarge", 4, 96, 768, 15.066),
                ("48xlarge", 8, 192, 1536, 30.131),
            ],
        ),
    ),
    # Amazon EC2 P4 Instances: 8x NVIDIA A100 40 GB SXM4, NVLink/NVSwitch
    *_family(
        "eks",
        _A100_40,
        "Amazon EC2 P4 Instances",
        _aws_sizes(
            "p4d",
            [
                ("24xlarge", 8, 96, 1152, 21.958),
            ],
        ),
        interconnect="nvlink",
    ),
    # Amazon EC2 P5 Instances: NVIDIA H100 80 GB SXM5 (HBM3), NVLink/NVSwitch
    *_family(
        "eks",
        _H100_80,
        "Amazon EC2 P5 Instances",
        _aws_sizes(
            "p5",
            [
                ("4xlarge", 1, 16, 256, 6.88),
                ("48xlarge", 8, 192, 2048, 55.04),
            ],
        ),
        interconnect="nvlink",
    ),
    # -------------------------------------------------------------- GKE (us-central1)
    # GPU machine types | Compute Engine Documentation: G2, NVIDIA L4 24 GB
    *_family(
        "gke",
        _L4,
        "GPU machine types | Compute Engine Documentation",
        [
            ("g2-standard-4", 1, 4, 16, 0.70683),
            ("g2-standard-8", 1, 8, 32, 0.85362),
            ("g2-standard-12", 1, 12, 48, 1.00041),
            ("g2-standard-16", 1, 16, 64, 1.14721),
            ("g2-standard-24", 2, 24, 96, 2.00083),
            ("g2-standard-32", 1, 32, 128, 1.73397),
            ("g2-standard-48", 4, 48, 192, 4.00165),
            ("g2-standard-96", 8, 96, 384, 8.00331),
        ],
        accelerator="nvidia-l4",
    ),
    # GPU machine types | Compute Engine Documentation: A2 Standard, NVIDIA A100 40 GB
    *_family(
        "gke",
        _A100_40,
        "GPU machine types | Compute Engine Documentation",
        [
            ("a2-highgpu-1g", 1, 12, 85, 3.673385),
            ("a2-highgpu-2g", 2, 24, 170, 7.34677),
            ("a2-highgpu-4g", 4, 48, 340, 14.69354),
            ("a2-highgpu-8g", 8, 96, 680, 29.38708),
            ("a2-megagpu-16g", 16, 96, 1360, 55.739504),
        ],
        accelerator="nvidia-tesla-a100",
        interconnect="nvlink",
    ),
    # GPU machine types | Compute Engine Documentation: A2 Ultra, NVIDIA A100 80 GB
    *_family(
        "gke",
        _A100_80,
        "GPU machine types | Compute Engine Documentation",
        [
            ("a2-ultragpu-1g", 1, 12, 170, 5.0688),
            ("a2-ultragpu-2g", 2, 24, 340, 10.1376),
            ("a2-ultragpu-4g", 4, 48, 680, 20.2752),
            ("a2-ultragpu-8g", 8, 96, 1360, 40.5504),
        ],
        accelerator="nvidia-a100-80gb",
        interconnect="nvlink",
    ),
    # GPU machine types | Compute Engine Documentation: A3 High, NVIDIA H100 80 GB.
    # 1g/2g/4g are offered only as Spot or Flex-start (DWS); their price here is the
    # 8g on-demand price pro-rated per GPU, an estimate rather than a list price.
    *_family(
        "gke",
        _H100_80,
        "GPU machine types | Compute Engine Documentation",
        [
            ("a3-highgpu-1g", 1, 26, 234, 11.06),
            ("a3-highgpu-2g", 2, 52, 468, 22.12),
            ("a3-highgpu-4g", 4, 104, 936, 44.25),
            ("a3-highgpu-8g", 8, 208, 1872, 88.49),
        ],
        accelerator="nvidia-h100-80gb",
        interconnect="nvlink",
    ),
]

GPU_SHAPES: dict[tuple[str, str], GpuShape] = {(s.cloud, s.name): s for s in _SHAPES}
if len(GPU_SHAPES) != len(_SHAPES):  # pragma: no cover - guards against a pasted duplicate
    raise RuntimeError("duplicate (cloud, name) in the GPU catalog")


def lookup(cloud: str, name: str) -> GpuShape | None:
    """The shape called ``name`` on ``cloud`` ("eks" or "gke"), or None if not catalogued."""
    return GPU_SHAPES.get((cloud.strip().lower(), name.strip()))


def shapes_for(cloud: str) -> list[GpuShape]:
    """Every catalogued shape of ``cloud``, in catalogue order (family, then size)."""
    key = cloud.strip().lower()
    return [s for s in _SHAPES if s.cloud == key]


def accelerators_for(cloud: str = "gke") -> set[str]:
    """The GKE accelerator types used by ``cloud``'s shapes (empty for EKS)."""
    return {s.accelerator for s in shapes_for(cloud) if s.accelerator is not None}
