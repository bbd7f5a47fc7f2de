"""Invariants of the GPU catalog (config/catalog.py)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date

import pytest

from llm_infra.config.catalog import (
    GPU_SHAPES,
    PRICE_DATE,
    GpuShape,
    accelerators_for,
    lookup,
    shapes_for,
)

GKE_ACCELERATORS = {"nvidia-l4", "nvidia-tesla-a100", "nvidia-a100-80gb", "nvidia-h100-80gb"}
ALL = list(GPU_SHAPES.values())


def family(shape: GpuShape) -> str:
    """ "g5" for g5.12xlarge, "a2-highgpu" for a2-highgpu-4g."""
    return shape.name.split(".")[0] if shape.cloud == "eks" else shape.name.rsplit("-", 1)[0]


# ----------------------------------------------------------------------- coverage

EKS_SIZES = ["xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"]


@pytest.mark.parametrize("fam", ["g5", "g6", "g6e"])
@pytest.mark.parametrize("size", EKS_SIZES)
def test_every_g_family_size_is_catalogued(fam: str, size: str) -> None:
    assert lookup("eks", f"{fam}.{size}") is not None


@pytest.mark.parametrize(
    "cloud,name",
    [("eks", "p4d.24xlarge"), ("eks", "p5.48xlarge")]
    + [("gke", f"g2-standard-{n}") for n in (4, 8, 12, 16, 24, 32, 48, 96)]
    + [("gke", f"a2-highgpu-{n}g") for n in (1, 2, 4, 8)]
    + [("gke", "a2-megagpu-16g")]
    + [("gke", f"a2-ultragpu-{n}g") for n in (1, 2, 4, 8)]
    + [("gke", "a3-highgpu-8g")],
)
def test_required_shapes_present(cloud: str, name: str) -> None:
    shape = lookup(cloud, name)
    assert shape is not None and shape.cloud == cloud and shape.name == name


def test_keys_match_shapes() -> None:
    for (cloud, name), shape in GPU_SHAPES.items():
        assert (shape.cloud, shape.name) == (cloud, name)
    assert len(ALL) >= 46


# ----------------------------------------------------------------------- per-cloud rules


def test_gke_shapes_have_known_accelerator() -> None:
    gke = shapes_for("gke")
    assert gke
    for s in gke:
        assert s.accelerator in GKE_ACCELERATORS, s.name


def test_eks_shapes_have_no_accelerator() -> None:
    eks = shapes_for("eks")
    assert eks
    for s in eks:
        assert s.accelerator is None, s.name
        assert re.fullmatch(r"[a-z0-9]+\.\d*xlarge", s.name), s.name


def test_shapes_for_partitions_catalog() -> None:
    eks, gke = shapes_for("eks"), shapes_for("gke")
    assert len(eks) + len(gke) == len(ALL)
    assert all(s.cloud == "eks" for s in eks) and all(s.cloud == "gke" for s in gke)
    assert shapes_for("aks") == []


def test_accelerators_for() -> None:
    assert accelerators_for() == GKE_ACCELERATORS
    assert accelerators_for("gke") == GKE_ACCELERATORS
    assert accelerators_for("eks") == set()


# ----------------------------------------------------------------------- field sanity


@pytest.mark.parametrize("shape", ALL, ids=lambda s: f"{s.cloud}:{s.name}")
def test_field_sanity(shape: GpuShape) -> None:
    assert shape.gpu_count in {1, 2, 4, 8, 16}
    assert shape.gpu_memory_gib in {24, 40, 48, 80}
    assert shape.vcpus > 0 and shape.memory_gib > 0
    assert shape.vcpus % shape.gpu_count == 0  # vCPUs split evenly across GPUs
    assert shape.interconnect in {"pcie", "nvlink"}
    assert shape.hourly_usd > 0
    assert shape.price_date == PRICE_DATE
    assert shape.source.strip()
    assert shape.product_label.startswith("NVIDIA-") and " " not in shape.product_label


def test_price_date_is_iso() -> None:
    date.fromisoformat(PRICE_DATE)


def test_source_names_docs_page_per_family() -> None:
    by_family: dict[str, set[str]] = defaultdict(set)
    for s in ALL:
        by_family[family(s)].add(s.source)
    for fam, sources in by_family.items():
        assert len(sources) == 1, fam
    assert by_family["g5"] == {"Amazon EC2 G5 Instances"}
    assert by_family["g6e"] == {"Amazon EC2 G6e Instances"}
    assert by_family["a3-highgpu"] == {"GPU machine types | Compute Engine Documentation"}


def test_mig_and_interconnect_follow_gpu() -> None:
    for s in ALL:
        datacenter_sxm = any(k in s.gpu_model for k in ("A100", "H100"))
        assert s.mig_capable == datacenter_sxm, s.name
        expected = (
            "nvlink" if family(s) in {"p4d", "p5", "a2-highgpu", "a2-megagpu", "a2-ultragpu", "a3-highgpu"} else "pcie"
        )
        assert s.interconnect == expected, s.name


def test_product_label_consistent_per_gpu_model() -> None:
    labels: dict[str, set[str]] = defaultdict(set)
    memory: dict[str, set[int]] = defaultdict(set)
    for s in ALL:
        labels[s.gpu_model].add(s.product_label)
        memory[s.gpu_model].add(s.gpu_memory_gib)
    assert all(len(v) == 1 for v in labels.values()), labels
    assert all(len(v) == 1 for v in memory.values()), memory
    assert {next(iter(v)) for v in labels.values()} == {
        "NVIDIA-A10G",
        "NVIDIA-L4",
        "NVIDIA-L40S",
        "NVIDIA-A100-SXM4-40GB",
        "NVIDIA-A100-SXM4-80GB",
        "NVIDIA-H100-80GB-HBM3",
    }


def test_accelerator_consistent_with_gpu_model() -> None:
    expected = {
        "nvidia-l4": "NVIDIA-L4",
        "nvidia-tesla-a100": "NVIDIA-A100-SXM4-40GB",
        "nvidia-a100-80gb": "NVIDIA-A100-SXM4-80GB",
        "nvidia-h100-80gb": "NVIDIA-H100-80GB-HBM3",
    }
    for s in shapes_for("gke"):
        assert expected[s.accelerator or ""] == s.product_label, s.name


# ----------------------------------------------------------------------- spot facts


@pytest.mark.parametrize(
    "cloud,name,gpus,gpu_mem,vcpus,mem,label",
    [
        ("eks", "g5.xlarge", 1, 24, 4, 16, "NVIDIA-A10G"),
        ("eks", "g5.12xlarge", 4, 24, 48, 192, "NVIDIA-A10G"),
        ("eks", "g5.48xlarge", 8, 24, 192, 768, "NVIDIA-A10G"),
        ("eks", "g6.12xlarge", 4, 24, 48, 192, "NVIDIA-L4"),
        ("eks", "g6e.12xlarge", 4, 48, 48, 384, "NVIDIA-L40S"),
        ("eks", "g6e.48xlarge", 8, 48, 192, 1536, "NVIDIA-L40S"),
        ("eks", "p4d.24xlarge", 8, 40, 96, 1152, "NVIDIA-A100-SXM4-40GB"),
        ("eks", "p5.48xlarge", 8, 80, 192, 2048, "NVIDIA-H100-80GB-HBM3"),
        ("gke", "g2-standard-24", 2, 24, 24, 96, "NVIDIA-L4"),
        ("gke", "g2-standard-48", 4, 24, 48, 192, "NVIDIA-L4"),
        ("gke", "g2-standard-96", 8, 24, 96, 384, "NVIDIA-L4"),
        ("gke", "a2-highgpu-1g", 1, 40, 12, 85, "NVIDIA-A100-SXM4-40GB"),
        ("gke", "a2-megagpu-16g", 16, 40, 96, 1360, "NVIDIA-A100-SXM4-40GB"),
        ("gke", "a2-ultragpu-8g", 8, 80, 96, 1360, "NVIDIA-A100-SXM4-80GB"),
        ("gke", "a3-highgpu-8g", 8, 80, 208, 1872, "NVIDIA-H100-80GB-HBM3"),
    ],
)
def test_spot_facts(cloud, name, gpus, gpu_mem, vcpus, mem, label) -> None:
    s = lookup(cloud, name)
    assert s is not None
    assert (s.gpu_count, s.gpu_memory_gib, s.vcpus, s.memory_gib, s.product_label) == (gpus, gpu_mem, vcpus, mem, label)


def test_a3_is_h100_and_g2_24_has_two_l4() -> None:
    a3 = lookup("gke", "a3-highgpu-8g")
    assert a3 is not None and "H100" in a3.gpu_model and a3.accelerator == "nvidia-h100-80gb"
    g2 = lookup("gke", "g2-standard-24")
    assert g2 is not None and g2.gpu_count == 2 and "L4" in g2.gpu_model
    assert lookup("gke", "a2-highgpu-2g").accelerator == "nvidia-tesla-a100"
    assert lookup("gke", "a2-ultragpu-2g").accelerator == "nvidia-a100-80gb"


def test_single_gpu_sizes_in_g_families() -> None:
    # Only 12x/24x (4 GPUs) and 48x (8 GPUs) are multi-GPU; 16xlarge has one GPU.
    for fam in ("g5", "g6", "g6e"):
        for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge"):
            assert lookup("eks", f"{fam}.{size}").gpu_count == 1


# ----------------------------------------------------------------------- prices


def test_bigger_shapes_never_cheaper_within_family() -> None:
    """A shape with at least as many GPUs, vCPUs and memory as another of its family
    never costs less (g5.16xlarge vs g5.12xlarge are not comparable: 1 GPU vs 4)."""
    by_family: dict[tuple[str, str], list[GpuShape]] = defaultdict(list)
    for s in ALL:
        by_family[(s.cloud, family(s))].append(s)
    for shapes in by_family.values():
        for big in shapes:
            for small in shapes:
                if big is small:
                    continue
                if big.gpu_count >= small.gpu_count and big.vcpus >= small.vcpus and big.memory_gib >= small.memory_gib:
                    assert big.hourly_usd >= small.hourly_usd, (big.name, small.name)


def test_more_gpus_of_same_model_never_cheaper() -> None:
    by_model: dict[tuple[str, str], list[GpuShape]] = defaultdict(list)
    for s in ALL:
        by_model[(s.cloud, s.gpu_model)].append(s)
    for shapes in by_model.values():
        for a in shapes:
            for b in shapes:
                if a.gpu_count > b.gpu_count:
                    assert a.hourly_usd > b.hourly_usd, (a.name, b.name)


def test_price_per_gpu_plausible() -> None:
    ranges = {  # USD per GPU-hour, on-demand, wide bounds to catch typos only
        "NVIDIA A10G": (0.5, 4.5),
        "NVIDIA L4": (0.4, 4.0),
        "NVIDIA L40S": (1.2, 8.0),
        "NVIDIA A100 40GB": (2.0, 5.0),
        "NVIDIA A100 80GB": (3.0, 7.0),
        "NVIDIA H100 80GB": (5.0, 14.0),
    }
    for s in ALL:
        low, high = ranges[s.gpu_model]
        assert low <= s.hourly_usd / s.gpu_count <= high, s.name


# ----------------------------------------------------------------------- lookup


def test_lookup_unknown_returns_none() -> None:
    assert lookup("eks", "g5.96xlarge") is None
    assert lookup("gke", "g5.xlarge") is None  # right name, wrong cloud
    assert lookup("eks", "a2-highgpu-1g") is None
    assert lookup("aks", "Standard_NC24ads_A100_v4") is None
    assert lookup("eks", "") is None


def test_lookup_normalizes_cloud_case() -> None:
    assert lookup("EKS", "g5.xlarge") is GPU_SHAPES[("eks", "g5.xlarge")]


def test_shapes_are_frozen() -> None:
    s = lookup("eks", "g5.xlarge")
    with pytest.raises(AttributeError):
        s.gpu_count = 2  # type: ignore[misc]


# Memory per GPU as CUDA reports it (vLLM's total_gpu_memory), from published logs; see the
# sources in config/catalog.py. Always below the nominal size.
EXPECTED_CUDA_MEMORY = {
    "NVIDIA A10G": 22.06,
    "NVIDIA L4": 21.95,
    "NVIDIA L40S": 44.3,
    "NVIDIA A100 40GB": 39.38,
    "NVIDIA A100 80GB": 79.15,
    "NVIDIA H100 80GB": 79.1,
}


def test_every_gpu_has_its_cuda_visible_memory_with_a_source() -> None:
    for shape in GPU_SHAPES.values():
        assert shape.cuda_memory_gib == EXPECTED_CUDA_MEMORY[shape.gpu_model], shape.name
        assert 0.9 * shape.gpu_memory_gib < shape.cuda_memory_gib < shape.gpu_memory_gib
        assert "GiB" in shape.cuda_memory_source and (
            "#" in shape.cuda_memory_source or "issue" in shape.cuda_memory_source
        )
