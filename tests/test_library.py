"""llm-infra as a library: the example program that composes the components, and the wheel.

The example (examples/existing-cluster) is rendered through the same offline render as the
stacks; the wheel is built, installed into a clean virtualenv and imported from elsewhere.
"""

from __future__ import annotations

import dataclasses
import importlib.util
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

import pulumi
import pytest
import test_rendered_schemas as schema_checks
import yaml
from conftest import ROOT, objects, resources_of_type

from llm_infra import components
from llm_infra.components.render import Project, Recording, RenderError, helm_releases, run_program
from llm_infra.config import ConfigError, load_stack_config
from llm_infra.config.model_planning import plan_model


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


library_reference = _load_script("library_reference")
EXAMPLE_DIR = ROOT / "examples" / "existing-cluster"
EXAMPLE = Project.load(EXAMPLE_DIR)
STACK = "example"


@cache
def example() -> Recording:
    return run_program(EXAMPLE, STACK)


def example_definitions() -> dict[str, Any]:
    """The example's definitions (MODEL, POOL, constants, the plan), executed from its source
    up to the first resource."""
    namespace: dict[str, Any] = {}
    source = (EXAMPLE_DIR / "__main__.py").read_text()
    head = source.split("\ncfg = pulumi.Config()", 1)[0]  # definitions only, no resources
    exec(compile(head, str(EXAMPLE_DIR / "__main__.py"), "exec"), namespace)
    return namespace


def example_model():
    """The MODEL object of the example program (typed VllmModelConfig), read from its source."""
    return example_definitions()["MODEL"]


def example_variant(tmp_path: Path, old: str, new: str) -> Recording:
    """The example with one line of its source changed, rendered like the original."""
    project = shutil.copytree(EXAMPLE_DIR, tmp_path / "variant", ignore=shutil.ignore_patterns("__pycache__"))
    main = project / "__main__.py"
    source = main.read_text()
    assert source.count(old) == 1, old
    main.write_text(source.replace(old, new))
    return run_program(Project.load(project), STACK)


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


def test_example_uses_one_model_component_and_no_stack_config():
    rec = example()
    kinds = {r.type for r in rec.resources if not r.custom}
    assert kinds == {"llm-infra:serving:ServingNamespace", "llm-infra:serving:VllmService"}
    # no stack config describes the model or the cluster: the stack file sets nothing
    assert not (yaml.safe_load(EXAMPLE.stack_file(STACK).read_text()) or {}).get("config")
    source = (EXAMPLE_DIR / "__main__.py").read_text()
    assert "load_stack_config" not in source and "SCHEMA_TO_STACK_FILE" not in source
    # an existing cluster: nothing in any cloud, one Kubernetes provider for everything
    assert not [r for r in rec.resources if r.type.split(":")[0] in {"aws", "gcp", "eks"}]
    providers = resources_of_type(rec, "pulumi:providers:kubernetes")
    assert len(providers) == 1
    for r in rec.resources:
        if r.custom and r.type.startswith("kubernetes:"):
            assert r.provider and r.provider.startswith(providers[0].urn), (r.type, r.name, r.provider)


def test_example_serves_one_model_with_gpus_from_the_pool_facts():
    rec = example()
    defs = example_definitions()
    model, pool, ns = defs["MODEL"], defs["POOL"], defs["NAMESPACE"]
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
    assert pod["nodeSelector"].items() >= pool.node_selector.items()
    taint = pool.taint
    assert {"key": taint.key, "operator": "Equal", "value": taint.value, "effect": "NoSchedule"} in pod["tolerations"]
    # the cluster has a ReadWriteMany class: one weight cache shared by every replica
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert len(claims) == 1
    [pvc] = [o for o in objects(rec, "PersistentVolumeClaim", ns) if o["metadata"]["name"] == claims[0]]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["storageClassName"] == defs["RWX_STORAGE_CLASS"]


def test_example_without_a_shared_storage_class_keeps_one_cache_per_replica(tmp_path):
    rec = example_variant(
        tmp_path, 'RWX_STORAGE_CLASS: str | None = "nfs-client"', "RWX_STORAGE_CLASS: str | None = None"
    )
    ns = example_definitions()["NAMESPACE"]
    workload = model_workload(rec, ns, "StatefulSet")
    [template] = workload["spec"]["volumeClaimTemplates"]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "storageClassName" not in template["spec"]  # the cluster's default class
    assert not objects(rec, "PersistentVolumeClaim", ns)
    [scaled] = objects(rec, "ScaledObject", ns)
    assert scaled["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
    assert scaled["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]


def test_example_service_and_endpoint_reach_the_model():
    rec = example()
    ns = example_definitions()["NAMESPACE"]
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
    assert rec.outputs["namespace"] == ns


def test_example_namespace_installs_nothing_on_the_cluster_and_lets_prometheus_scrape():
    rec = example()
    defs = example_definitions()
    ns = defs["NAMESPACE"]
    [namespace] = [o for o in objects(rec, "Namespace") if o["metadata"]["name"] == ns]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    # Prometheus and KEDA already run: no Helm release, nothing outside the namespace
    assert not helm_releases(rec)
    assert {o["metadata"].get("namespace") for o in objects(rec) if o["kind"] != "Namespace"} == {ns}
    # no hfToken set: no token Secret
    assert not objects(rec, "Secret", ns)
    scrapers = [
        rule
        for policy in objects(rec, "NetworkPolicy", ns)
        for rule in policy["spec"].get("ingress", [])
        if {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": defs["PROMETHEUS_NAMESPACE"]}}}
        in rule.get("from", [])
    ]
    assert scrapers and all({"protocol": "TCP", "port": 8000} in rule["ports"] for rule in scrapers)


def test_example_autoscales_on_queue_depth_from_the_given_prometheus():
    rec = example()
    defs = example_definitions()
    model, ns = defs["MODEL"], defs["NAMESPACE"]
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
        assert trigger["metadata"]["serverAddress"] == defs["PROMETHEUS_URL"]
    assert any("vllm:num_requests_waiting" in t["metadata"]["query"] for t in prometheus)
    assert not [t for t in spec["triggers"] if t["type"] in {"cpu", "memory"}]


def test_example_monitors_carry_the_labels_prometheus_selects():
    rec = example()
    defs = example_definitions()
    ns = defs["NAMESPACE"]
    monitors = [
        *objects(rec, "ServiceMonitor", ns),
        *objects(rec, "PodMonitor", ns),
        *objects(rec, "PrometheusRule", ns),
    ]
    assert monitors
    for obj in monitors:
        assert obj["metadata"]["labels"].items() >= defs["PROMETHEUS_SELECTOR"].items(), obj["metadata"]["name"]


def test_example_exports_the_capacity_plan():
    capacity = example().outputs["capacity"]
    gpu = example_definitions()["POOL"].gpu
    assert capacity["gpu"] == gpu.model
    assert capacity["tensorParallelSize"] == 1
    assert capacity["maxModelLen"] == example_model().max_model_len
    assert capacity["kvCacheTokens"] >= capacity["maxModelLen"]
    # one replica of one GPU and four of them both fit on one 4-GPU node: one node's price
    assert capacity["hourlyCostMin"] == capacity["hourlyCostMax"] == pytest.approx(gpu.hourly_usd, abs=0.01)


def test_example_derives_gpus_per_replica_from_other_facts(tmp_path):
    """16 GiB GPUs cannot hold the weights plus a 16k sequence: two GPUs per replica."""
    rec = example_variant(
        tmp_path,
        'gpu=GpuFacts(model="NVIDIA L4", count=4, memory_gib=24, product_label="NVIDIA-L4", hourly_usd=3.4),',
        'gpu=GpuFacts(model="NVIDIA T4", count=4, memory_gib=16, product_label="Tesla-T4"),',
    )
    deployment = model_workload(rec, example_definitions()["NAMESPACE"])
    container = vllm_container(deployment)
    assert container["resources"]["limits"]["nvidia.com/gpu"] in (2, "2")
    args = [*container.get("command", []), *container.get("args", [])]
    assert flag(args, "--tensor-parallel-size") == "2"
    assert rec.outputs["capacity"]["tensorParallelSize"] == 2


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("max_model_len=16384,", "max_model_len=1_000_000,", "spec.maxModelLen: 1000000 exceeds the model's context"),
        (
            'gpu=GpuFacts(model="NVIDIA L4", count=4, memory_gib=24, product_label="NVIDIA-L4", hourly_usd=3.4),',
            'gpu=GpuFacts(model="X", count=1, memory_gib=8, product_label="X"),',
            "spec.model: does not fit",
        ),
        (
            "    max_nodes=2,\n)",
            "    max_nodes=2,\n    zones=['us-east-1a'],\n)",
            "pool.zones: not used on an existing cluster",
        ),
        ('    node_pool="gpu",', '    node_pool="gpus",', "spec.nodePool: no node pool 'gpus' (did you mean 'gpu'?)"),
    ],
    ids=["too-long", "does-not-fit", "cloud-field-on-existing-nodes", "unknown-pool"],
)
def test_example_reports_planning_errors_in_its_own_terms(tmp_path, old, new, expected):
    with pytest.raises(RenderError) as err:
        example_variant(tmp_path, old, new)
    message = str(err.value)
    assert expected in message, message
    assert "Traceback" not in message and "cluster.nodePools" not in message and "models[0]" not in message


def test_example_objects_pass_the_same_schema_checks_as_the_stacks():
    rec = example()
    schema_checks.test_core_objects_match_kubernetes_openapi_strict(rec)
    schema_checks.test_custom_resources_match_upstream_crds(rec)
    schema_checks.test_helm_values_keys_exist_upstream(rec)


def test_plan_model_equals_the_stack_plan_of_the_same_model():
    """plan_model runs the stack path: the example's MODEL on POOL inside a whole stack config
    (load_stack_config, as a stack file would give it) gets the same plan."""
    defs = example_definitions()
    model, pool = defs["MODEL"], defs["POOL"]
    stack = load_stack_config(
        "example",
        {
            "cluster": {
                "cloud": "existing",
                "name": "c",
                "existing": {"kubeconfigPath": "x", "rwxStorageClass": defs["RWX_STORAGE_CLASS"]},
                "nodePools": [pool.model_dump(by_alias=True, exclude_unset=True)],
            },
            "addons": {
                "gpuOperator": {"enabled": False},
                "keda": {"enabled": True},
                "monitoring": {
                    "mode": "existing",
                    "prometheusUrl": defs["PROMETHEUS_URL"],
                    "selectorLabels": defs["PROMETHEUS_SELECTOR"],
                },
            },
            "models": [model],
        },
        {},
    )
    assert defs["plan"] == stack.models[model.name]
    assert defs["plan"].tensor_parallel_size == example().outputs["capacity"]["tensorParallelSize"]


def test_readme_library_snippet_runs(tmp_path):
    """The snippet under "Use as a library" in README.md is a working program."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use as a library", 1)[1].split("\n## ", 1)[0]
    [snippet] = re.findall(r"```python\n(.*?)```", section, re.S)
    (tmp_path / "__main__.py").write_text(snippet)
    (tmp_path / "Pulumi.yaml").write_text("name: snippet\nruntime: python\n")
    (tmp_path / "Pulumi.readme.yaml").write_text("config: {}\n")
    rec = run_program(Project.load(tmp_path), "readme")
    workload = model_workload(rec, "llm-inference", "StatefulSet")
    assert vllm_container(workload)["resources"]["limits"]["nvidia.com/gpu"] in (1, "1")
    assert rec.outputs["endpoint"] == "http://qwen25-7b.llm-inference.svc.cluster.local:8000/v1"
    # Prometheus (namespace "monitoring") may scrape the model through the NetworkPolicies
    assert any(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in rule.get("from", [])
        for policy in objects(rec, "NetworkPolicy", "llm-inference")
        for rule in policy["spec"].get("ingress", [])
    )


# -- the public API ------------------------------------------------------------------------


def test_llm_infra_is_the_public_api_surface():
    import llm_infra

    for name in llm_infra.__all__:
        assert getattr(llm_infra, name) is not None, name
    # the same objects as where they are defined, and llm_infra.components keeps its exports
    assert llm_infra.VllmService is components.VllmService
    assert llm_infra.plan_model is plan_model
    assert set(components.__all__) - {"read_stack_plan", "secret"} <= set(llm_infra.__all__)
    assert llm_infra.__version__ == components.__version__


def test_handles_and_args_are_frozen():
    """Nothing a component hands on can change afterwards."""
    from llm_infra.components import AddonsHandle, ClusterHandle, MonitoringHandle, ServingContext

    for cls in (
        ClusterHandle,
        AddonsHandle,
        MonitoringHandle,
        ServingContext,
        components.VllmServiceArgs,
        components.RayLlmServiceArgs,
        components.ServingNamespaceArgs,
        components.AddonsArgs,
        components.ExistingClusterArgs,
    ):
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls.__name__  # type: ignore[attr-defined]
    handle = AddonsHandle.existing(autoscaler="keda", prometheus_url="http://p:9090", monitor_labels={"a": "b"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        handle.autoscaler = "none"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        handle.monitoring.gpu_metrics = True  # type: ignore[misc]
    # sequences handed on are tuples: appending to them is impossible, not just discouraged
    assert isinstance(handle.gpu_ready, tuple)
    assert handle.crd_owners == {"keda.sh": [], "monitoring.coreos.com": []}  # CRDs exist: nothing to wait for


def _all_args_classes() -> list[type]:
    """Every ``*Args`` dataclass of every module under llm_infra.components (cloud clusters included)."""
    import importlib
    import pkgutil

    found = []
    for mod in pkgutil.walk_packages(components.__path__, "llm_infra.components."):
        module = importlib.import_module(mod.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__name__.endswith("Args")
                and value.__module__ == module.__name__
                and dataclasses.is_dataclass(value)
            ):
                found.append(value)
    return found


def test_component_args_hold_no_stack_plan():
    from llm_infra.config import StackPlan

    found = _all_args_classes()
    assert {a.__name__ for a in found} >= {
        "VllmServiceArgs",
        "RayLlmServiceArgs",
        "ServingNamespaceArgs",
        "AddonsArgs",
        "ExistingClusterArgs",
        "PublicEdgeArgs",
        "MultiNodeServiceArgs",
    }
    for args in found:
        annotations = " ".join(str(f.type) for f in dataclasses.fields(args))
        assert StackPlan.__name__ not in annotations, args.__name__


def test_every_component_documents_its_args_and_outputs():
    for component, args in library_reference.components():
        if args is not None:
            rows = library_reference.args_rows(args)
            assert rows and all(doc for *_, doc in rows), [(component.__name__, n) for n, _, _, doc in rows if not doc]
        outputs = library_reference.output_rows(component)
        typed = [n for n, t, _ in outputs if t.startswith("pulumi.Output[")]
        assert typed, f"{component.__name__} has no typed pulumi.Output attribute"


def test_every_args_dataclass_documents_every_field():
    missing = [
        f"{args.__module__}.{args.__name__}.{name}"
        for args in _all_args_classes()
        for name, _, _, doc in library_reference.args_rows(args)
        if not doc.strip()
    ]
    assert not missing, "fields without an attribute docstring: " + ", ".join(missing)


def test_readme_library_reference_is_generated_from_the_code():
    readme = (ROOT / "README.md").read_text()
    assert library_reference.BEGIN in readme
    assert library_reference.updated(readme) == readme, "run scripts/library_reference.py"


def test_plan_model_errors_name_the_callers_fields():
    defs = example_definitions()
    with pytest.raises(ConfigError) as err:
        plan_model(defs["MODEL"].model_copy(update={"max_model_len": 1_000_000}), defs["POOL"])
    [issue] = err.value.issues
    assert issue.path == "spec.maxModelLen"
    assert "exceeds the model's context of 32768 tokens" in issue.message  # Qwen2.5-7B: max_position_embeddings
    with pytest.raises(ConfigError) as err:
        plan_model(defs["MODEL"], defs["POOL"], prometheus=False)  # and no ReadWriteMany class
    assert [i.path for i in err.value.issues] == ["spec.cache.accessMode", "spec.autoscaling"]


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


@pytest.mark.parametrize("stack", ["onprem", "prod"])
def test_llm_platform_outputs_name_every_service(stack):
    """LlmPlatform's outputs, resolved under mocks, against names derived here: a Service's DNS
    name is <service>.<namespace>.svc.cluster.local; a RayService's Serve Service is
    <name>-serve-svc (KubeRay); vLLM serves on 8000, Ray Serve on 8000 too."""
    from stackfiles import stack_values
    from test_provider import capture, run

    values, secrets = stack_values(stack)
    plan = load_stack_config(stack, values, secrets)

    def program(seen):
        platform = components.LlmPlatform(
            "llm",
            plan,
            hf_token=pulumi.Output.secret("token") if "hfToken" in secrets else None,
            grafana_admin_password=pulumi.Output.secret("pw") if "grafanaAdminPassword" in secrets else None,
            kubeconfig=pulumi.Output.secret("{}") if plan.config.cluster.cloud == "existing" else None,
        )
        capture(seen, platform, ["endpoints", "namespace", "prometheus_url"])

    _, seen = run(program)
    ns = plan.config.namespace
    expected = {m.name: f"http://{m.name}.{ns}.svc.cluster.local:8000/v1" for m in plan.config.models}
    # a canary has a Service of its own, <model>-canary (its share of traffic comes through the route)
    expected |= {
        f"{m.name}-canary": f"http://{m.name}-canary.{ns}.svc.cluster.local:8000/v1"
        for m in plan.config.models
        if m.canary is not None
    }
    expected |= {s.name: f"http://{s.name}-serve-svc.{ns}.svc.cluster.local:8000/v1" for s in plan.config.ray_services}
    # a LeaderWorkerSet model's Service selects the group leaders, which serve the API
    expected |= {m.name: f"http://{m.name}.{ns}.svc.cluster.local:8000/v1" for m in plan.config.multi_node_models}
    assert seen["endpoints"] == expected
    assert seen["namespace"] == ns
    mon = plan.config.addons.monitoring
    if mon.mode == "existing":
        assert seen["prometheus_url"] == mon.prometheus_url
    elif mon.mode == "install":
        assert seen["prometheus_url"].endswith(f".{mon.namespace}.svc:9090")
