"""llm-infra as a library: the example program that composes the components, and the wheel.

The example (examples/existing-cluster) is rendered through the same offline render as the
stacks; the wheel is built, installed into a clean virtualenv and imported from elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import test_rendered_schemas as schema_checks
import yaml
from conftest import ROOT, objects, resources_of_type

from llm_infra import components
from llm_infra.components.render import Project, Recording, RenderError, helm_releases, run_program
from llm_infra.config import load_stack_config

EXAMPLE_DIR = ROOT / "examples" / "existing-cluster"
EXAMPLE = Project.load(EXAMPLE_DIR)
STACK = "example"


@cache
def example() -> Recording:
    return run_program(EXAMPLE, STACK)


def example_config() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.stack_file(STACK).read_text())["config"]
    return {k.split(":", 1)[1]: v for k, v in data.items()}


def example_model():
    """The MODEL object of the example program (typed VllmModelConfig), read from its source."""
    namespace: dict[str, Any] = {}
    source = (EXAMPLE_DIR / "__main__.py").read_text()
    head = source.split("\ncfg = pulumi.Config()", 1)[0]  # definitions only, no resources
    exec(compile(head, str(EXAMPLE_DIR / "__main__.py"), "exec"), namespace)
    return namespace["MODEL"]


def flag(args: list[str], name: str) -> str | None:
    """Value of ``--name value`` or ``--name=value`` in a container's args."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def model_workload(rec: Recording, namespace: str, kind: str = "Deployment") -> dict[str, Any]:
    """The one model's pods: a Deployment (shared RWX cache) or a StatefulSet (RWO per replica)."""
    workloads = [*objects(rec, "Deployment", namespace), *objects(rec, "StatefulSet", namespace)]
    assert [w["kind"] for w in workloads] == [kind], [(w["kind"], w["metadata"]["name"]) for w in workloads]
    return workloads[0]


def served_model(container: dict[str, Any]) -> str | None:
    """``vllm serve <model>`` or ``--model <model>``."""
    argv = [*container.get("command", []), *container.get("args", [])]
    if "serve" in argv and len(argv) > argv.index("serve") + 1 and not argv[argv.index("serve") + 1].startswith("-"):
        return argv[argv.index("serve") + 1]
    return flag(argv, "--model")


def vllm_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    with_gpus = [c for c in containers if "nvidia.com/gpu" in (c.get("resources") or {}).get("limits", {})]
    assert len(with_gpus) == 1, [c["name"] for c in containers]
    return with_gpus[0]


# -- the example program -------------------------------------------------------------------


def test_example_is_its_own_pulumi_project():
    manifest = yaml.safe_load((EXAMPLE_DIR / "Pulumi.yaml").read_text())
    assert manifest["name"] == "llm-example"
    assert manifest["runtime"]["name"] == "python"
    assert EXAMPLE.stacks() == [STACK]
    assert (EXAMPLE_DIR / "README.md").is_file()


def test_example_composes_the_components_without_llm_platform():
    rec = example()
    kinds = {r.type for r in rec.resources if not r.custom}
    assert {
        "llm-infra:cluster:ExistingCluster",
        "llm-infra:addons:ClusterAddons",
        "llm-infra:serving:ServingNamespace",
        "llm-infra:serving:VllmService",
    } <= kinds
    assert "llm-infra:index:LlmPlatform" not in kinds
    # an existing cluster: nothing in any cloud, one Kubernetes provider for everything
    assert not [r for r in rec.resources if r.type.split(":")[0] in {"aws", "gcp", "eks"}]
    providers = resources_of_type(rec, "pulumi:providers:kubernetes")
    assert len(providers) == 1
    for r in rec.resources:
        if r.custom and r.type.startswith("kubernetes:"):
            assert r.provider and r.provider.startswith(providers[0].urn), (r.type, r.name, r.provider)


def test_example_serves_one_model_with_gpus_from_the_pool_facts():
    rec = example()
    cfg = example_config()
    model = example_model()
    pool = cfg["gpuPool"]
    ns = cfg["namespace"]
    deployment = model_workload(rec, ns, "Deployment")
    assert deployment["metadata"]["name"] == model.name
    pod = deployment["spec"]["template"]["spec"]
    container = vllm_container(deployment)
    # Qwen2.5-7B (15 GiB of bf16 weights) at 16k tokens fits one 24 GiB L4: one GPU per replica
    assert container["resources"]["limits"]["nvidia.com/gpu"] in (1, "1")
    assert container["resources"]["requests"]["nvidia.com/gpu"] in (1, "1")
    args = [*container.get("command", []), *container.get("args", [])]
    assert served_model(container) == model.model == "Qwen/Qwen2.5-7B-Instruct"
    assert flag(args, "--max-model-len") == str(model.max_model_len)
    assert flag(args, "--tensor-parallel-size") in (None, "1")
    # lands on the pool's nodes and tolerates exactly its taint
    assert pod["nodeSelector"].items() >= pool["nodeSelector"].items()
    taint = pool["taint"]
    assert {"key": taint["key"], "operator": "Equal", "value": taint["value"], "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    # the cluster has a ReadWriteMany class: one weight cache shared by every replica
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert len(claims) == 1
    [pvc] = [o for o in objects(rec, "PersistentVolumeClaim", ns) if o["metadata"]["name"] == claims[0]]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["storageClassName"] == cfg["cluster"]["rwxStorageClass"]


def test_example_without_a_shared_storage_class_keeps_one_cache_per_replica():
    cfg = example_config()
    cluster = {k: v for k, v in cfg["cluster"].items() if k != "rwxStorageClass"}
    rec = run_program(EXAMPLE, STACK, config_overrides={"cluster": cluster})
    ns = cfg["namespace"]
    workload = model_workload(rec, ns, "StatefulSet")
    [template] = workload["spec"]["volumeClaimTemplates"]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert template["spec"]["storageClassName"] == cfg["cluster"]["storageClass"]
    assert not objects(rec, "PersistentVolumeClaim", ns)
    [scaled] = objects(rec, "ScaledObject", ns)
    assert scaled["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
    assert scaled["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]


def test_example_service_and_endpoint_reach_the_model():
    rec = example()
    ns = example_config()["namespace"]
    deployment = model_workload(rec, ns)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    endpoint = rec.outputs["endpoint"]
    match = re.fullmatch(rf"http://([a-z0-9-]+)\.{ns}\.svc\.cluster\.local:(\d+)/v1", endpoint)
    assert match, endpoint
    service_name, port = match.group(1), int(match.group(2))
    services = [s for s in objects(rec, "Service", ns) if s["metadata"]["name"] == service_name]
    assert len(services) == 1, f"no Service {service_name} for the endpoint {endpoint}"
    spec = services[0]["spec"]
    assert spec["selector"].items() <= pod_labels.items()
    assert port in [p["port"] for p in spec["ports"]]
    container_ports = {p["containerPort"] for p in vllm_container(deployment).get("ports", [])}
    for p in spec["ports"]:
        if p["port"] == port:
            assert p.get("targetPort", port) in container_ports | {
                pp.get("name") for pp in vllm_container(deployment)["ports"]
            }


def test_example_namespace_and_addons_follow_the_stack_file():
    rec = example()
    cfg = example_config()
    ns = cfg["namespace"]
    [namespace] = [o for o in objects(rec, "Namespace") if o["metadata"]["name"] == ns]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert rec.outputs["namespace"] == ns
    # gpuOperator disabled, Prometheus exists: only KEDA is installed
    charts = {r["chart"] for r in helm_releases(rec)}
    assert "keda" in charts
    assert not charts & {"gpu-operator", "kube-prometheus-stack"}
    # no hfToken set: no token Secret
    assert not objects(rec, "Secret", ns)
    # the NetworkPolicies let the given Prometheus namespace scrape the model port
    assert objects(rec, "NetworkPolicy", ns)
    scrapers = [
        rule
        for policy in objects(rec, "NetworkPolicy", ns)
        for rule in policy["spec"].get("ingress", [])
        if {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": cfg["prometheus"]["namespace"]}}}
        in rule.get("from", [])
    ]
    assert scrapers and all({"protocol": "TCP", "port": 8000} in rule["ports"] for rule in scrapers)


def test_example_autoscales_on_queue_depth_from_the_given_prometheus():
    rec = example()
    cfg = example_config()
    model = example_model()
    ns = cfg["namespace"]
    deployment = model_workload(rec, ns)
    [scaled] = objects(rec, "ScaledObject", ns)
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        model.autoscaling.min_replicas,
        model.autoscaling.max_replicas,
    )
    prometheus = [t for t in spec["triggers"] if t["type"] == "prometheus"]
    assert prometheus, spec["triggers"]
    for trigger in prometheus:
        assert trigger["metadata"]["serverAddress"] == cfg["prometheus"]["prometheusUrl"]
    assert any("vllm:num_requests_waiting" in t["metadata"]["query"] for t in prometheus)
    assert not [t for t in spec["triggers"] if t["type"] in {"cpu", "memory"}]


def test_example_monitors_carry_the_labels_prometheus_selects():
    rec = example()
    cfg = example_config()
    ns = cfg["namespace"]
    monitors = [
        *objects(rec, "ServiceMonitor", ns),
        *objects(rec, "PodMonitor", ns),
        *objects(rec, "PrometheusRule", ns),
    ]
    assert monitors
    for obj in monitors:
        assert obj["metadata"]["labels"].items() >= cfg["prometheus"]["selectorLabels"].items(), obj["metadata"]["name"]


def test_example_exports_the_capacity_plan():
    capacity = example().outputs["capacity"]
    gpu = example_config()["gpuPool"]["gpu"]
    assert capacity["gpu"] == gpu["model"]
    assert capacity["tensorParallelSize"] == 1
    assert capacity["maxModelLen"] == example_model().max_model_len
    assert capacity["kvCacheTokens"] >= capacity["maxModelLen"]
    # one replica of one GPU and four of them both fit on one 4-GPU node: one node's price
    assert capacity["hourlyCostMin"] == capacity["hourlyCostMax"] == pytest.approx(gpu["hourlyUsd"], abs=0.01)


def test_example_derives_gpus_per_replica_from_other_facts():
    """16 GiB GPUs cannot hold the weights plus a 16k sequence: two GPUs per replica."""
    cfg = example_config()
    pool = {
        **cfg["gpuPool"],
        "gpu": {"model": "NVIDIA T4", "count": 4, "memoryGib": 16, "productLabel": "Tesla-T4"},
        "nodeSelector": {"nvidia.com/gpu.product": "Tesla-T4"},
    }
    rec = run_program(EXAMPLE, STACK, config_overrides={"gpuPool": pool})
    deployment = model_workload(rec, cfg["namespace"])
    container = vllm_container(deployment)
    assert container["resources"]["limits"]["nvidia.com/gpu"] in (2, "2")
    args = [*container.get("command", []), *container.get("args", [])]
    assert flag(args, "--tensor-parallel-size") == "2"
    assert deployment["spec"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"] == "Tesla-T4"
    assert rec.outputs["capacity"]["tensorParallelSize"] == 2


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {
                "gpuPool": {
                    "gpu": {"model": "X", "count": 4, "memoryGib": "lots", "productLabel": "X"},
                    "nodeSelector": {"a": "b"},
                }
            },
            "example: gpuPool.gpu.memoryGib:",
        ),
        (
            {
                "gpuPool": {
                    "gpu": {"model": "X", "count": 1, "memoryGib": 8, "productLabel": "X"},
                    "nodeSelector": {"a": "b"},
                }
            },
            "example: MODEL.",
        ),
        ({"prometheus": {"prometheusUrl": "http://prometheus:9090"}}, "example: prometheus.selectorLabels:"),
        (
            {"cluster": {"name": "c", "kubeconfigPath": "~/.kube/config", "typo": 1}},
            "example: cluster.typo: unknown field",
        ),
        ({"cluster": {"name": "c"}}, "example: cluster.kubeconfigPath:"),
        ({"cluster": {"name": "c"}, "kubeconfig": "apiVersion: v1"}, "example: kubeconfig: must be stored encrypted"),
    ],
    ids=[
        "bad-gpu-facts",
        "model-does-not-fit",
        "prometheus-labels",
        "unknown-field",
        "no-kubeconfig",
        "plain-kubeconfig",
    ],
)
def test_example_reports_config_errors_in_its_own_terms(override, expected):
    with pytest.raises(RenderError) as err:
        run_program(EXAMPLE, STACK, config_overrides=override)
    message = str(err.value)
    assert expected in message, message
    assert "Traceback" not in message and "cluster.nodePools" not in message and "models[0]" not in message


def test_example_objects_pass_the_same_schema_checks_as_the_stacks():
    rec = example()
    schema_checks.test_core_objects_match_kubernetes_openapi_strict(rec)
    schema_checks.test_custom_resources_match_upstream_crds(rec)
    schema_checks.test_helm_values_keys_exist_upstream(rec)


def test_example_model_plan_matches_the_library_validation():
    """The example's typed MODEL goes through the same load_stack_config as a stack file."""
    cfg = example_config()
    plan = load_stack_config(
        "example",
        {
            "cluster": {
                "cloud": "existing",
                "name": "c",
                "existing": {"kubeconfigPath": "x"},
                "nodePools": [{"name": "gpu", **cfg["gpuPool"]}],
            },
            "addons": {"monitoring": {"mode": "existing", **cfg["prometheus"]}, **cfg["addons"]},
            "models": [example_model()],
        },
        {},
    )
    assert plan.models["qwen25-7b"].tensor_parallel_size == example().outputs["capacity"]["tensorParallelSize"]


def test_readme_library_snippet_runs(tmp_path):
    """The snippet under "Use as a library" in README.md is a working program."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use as a library", 1)[1].split("\n## ", 1)[0]
    [snippet] = re.findall(r"```python\n(.*?)```", section, re.S)
    (tmp_path / "__main__.py").write_text(snippet)
    (tmp_path / "Pulumi.yaml").write_text("name: snippet\nruntime: python\n")
    cfg = example_config()
    stack_file = {"config": {f"snippet:{k}": cfg[k] for k in ("gpuPool", "prometheus")}}
    (tmp_path / "Pulumi.readme.yaml").write_text(yaml.safe_dump(stack_file))
    rec = run_program(Project.load(tmp_path), "readme")
    workload = model_workload(rec, "llm-inference", "StatefulSet")
    assert vllm_container(workload)["resources"]["limits"]["nvidia.com/gpu"] in (1, "1")
    assert rec.outputs["endpoint"].startswith("http://")
    # Prometheus (namespace "monitoring" by default) may scrape the model through the NetworkPolicies
    assert any(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in rule.get("from", [])
        for policy in objects(rec, "NetworkPolicy", "llm-inference")
        for rule in policy["spec"].get("ingress", [])
    )


# -- the public API ------------------------------------------------------------------------


def test_public_api_names_resolve():
    for name in components.__all__:
        assert getattr(components, name) is not None, name
    assert isinstance(components.__version__, str) and components.__version__
    assert (ROOT / "llm_infra" / "py.typed").is_file()


def test_cloud_clusters_are_exported_but_imported_on_first_use():
    probe = (
        "import sys\nfrom llm_infra import components\n"
        "assert not {'pulumi_eks', 'pulumi_aws', 'pulumi_gcp'} & set(sys.modules), sorted(sys.modules)\n"
        "from llm_infra.components import EksGpuCluster, EksGpuClusterArgs, GkeGpuCluster, GkeGpuClusterArgs\n"
        "from llm_infra.components.cluster.eks import EksGpuCluster as E\n"
        "from llm_infra.components.cluster.gke import GkeGpuCluster as G\n"
        "assert EksGpuCluster is E and GkeGpuCluster is G\n"
        "assert 'pulumi_eks' in sys.modules and 'pulumi_gcp' in sys.modules\n"
        "assert not {'EksGpuCluster', 'GkeGpuCluster'} & set(components.__all__)\n"
        "try:\n    components.NoSuchThing\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit('no AttributeError')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr


# -- packaging -----------------------------------------------------------------------------


def project_version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^version = "([^"]+)"', project, re.M)
    assert match
    return match.group(1)


def _source_copy(dest: Path) -> Path:
    """The repository as a fresh clone has it (tests and examples included, no venv/build)."""
    ignore = shutil.ignore_patterns(
        ".venv", "venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"
    )
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = _source_copy(tmp / "src")
    out = tmp / "dist"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [whl] = out.glob("*.whl")
    return whl


def test_wheel_contains_the_packages_and_their_type_markers(wheel):
    assert wheel.name == f"llm_infra-{project_version()}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "llm_infra/__init__.py",
        "llm_infra/__main__.py",
        "llm_infra/py.typed",
        "llm_infra/components/__init__.py",
        "llm_infra/config/catalog.py",
        "llm_infra/components/render/cli.py",
        "llm_infra/components/serving/vllm.py",
        "llm_infra/config/versions.py",
    ):
        assert required in names, required
    # one top-level package: nothing generic such as `components` or `config` at the top
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"llm_infra", f"llm_infra-{project_version()}.dist-info"}, tops
    # every module in the source tree ships (no subpackage forgotten in pyproject's list)
    for pkg in ("components", "config"):
        for path in (ROOT / pkg).rglob("*.py"):
            assert f"llm_infra/{path.relative_to(ROOT).as_posix()}" in names, path


def test_wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(f"llm_infra-{project_version()}.dist-info/METADATA").decode()
    assert f"\nVersion: {project_version()}\n" in meta
    assert "\nRequires-Python: >=3.11\n" in meta
    assert "\nLicense-Expression: Apache-2.0\n" in meta
    for dep in ("pulumi", "pulumi-kubernetes", "pydantic", "PyYAML"):
        assert re.search(rf"^Requires-Dist: {re.escape(dep)}\b", meta, re.M | re.I), dep
    for line in re.findall(r"^Requires-Dist: (?:pytest|hypothesis|setuptools|wheel)\b.*$", meta, re.M):
        assert line.endswith('extra == "test"'), line  # test tools only in the extra


def test_wheel_installs_and_imports_in_a_clean_virtualenv(wheel, tmp_path):
    started = time.perf_counter()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    clean_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": os.environ["PATH"]},
        ).stdout.strip()
    )
    # third-party dependencies come from the dev virtualenv (no registry needed); llm-infra
    # itself must come from the clean one, imported from a directory outside the repository
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": sysconfig.get_paths()["purelib"], "PYTHONNOUSERSITE": "1"}
    probe = (
        "import pathlib\nfrom llm_infra import components, config\n"
        "print(components.__version__)\n"
        "print(pathlib.Path(components.__file__).resolve())\n"
        "print(pathlib.Path(config.__file__).resolve())\n"
        "from llm_infra.components import ExistingCluster, VllmService, ServingNamespace, ClusterAddons, LlmPlatform\n"
        "from llm_infra.config.serving import VllmModelConfig\n"
    )
    result = subprocess.run(
        [str(python), "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    version, components_file, config_file = result.stdout.split()
    assert version == project_version()
    site = clean_site.resolve()
    assert Path(components_file) == site / "llm_infra" / "components" / "__init__.py"
    assert Path(config_file) == site / "llm_infra" / "config" / "__init__.py"
    assert (site / "llm_infra" / "py.typed").is_file()
    assert not (site / "components").exists() and not (site / "config").exists()

    # the installed library renders the example project (copied away from the repository)
    project = shutil.copytree(EXAMPLE_DIR, tmp_path / "llm-example", ignore=shutil.ignore_patterns("__pycache__"))
    render = subprocess.run(
        [
            str(python),
            "-m",
            "llm_infra",
            "render",
            "--project-dir",
            str(project),
            "--stack",
            STACK,
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert render.returncode == 0, render.stderr
    assert list((tmp_path / "out" / "manifests").rglob("deployment-*.yaml"))
    assert time.perf_counter() - started < 30
