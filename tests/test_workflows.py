"""GitHub Actions workflows: schema, zizmor audit, stack coverage and hardening.

The workflows live in .github/workflows/:

* pull-request.yaml: tests + offline render, `pulumi preview` per stack (same-repo
  PRs only) and a notice for fork PRs;
* deploy.yaml: tests, then `pulumi up` per stack behind GitHub environments.

The stacks are the ``Pulumi.<stack>.yaml`` files at the repository root, globbed
at test time, so adding a stack without wiring it into CI fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
PR_WORKFLOW = WORKFLOWS_DIR / "pull-request.yaml"
DEPLOY_WORKFLOW = WORKFLOWS_DIR / "deploy.yaml"

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# `uses: owner/repo[/path]@<40 hex> # v1.2.3` on one line.
PINNED_LINE_RE = re.compile(
    r"uses:\s*['\"]?(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>[0-9a-f]{40})['\"]?"
    r"\s+#\s*(?P<version>v\d+(?:\.\d+){0,2})\s*$"
)
CLOUDS = {"aws", "gcp", "none"}
# llm-infra:cluster.cloud in a stack file -> the matrix `cloud` of that stack.
CLUSTER_CLOUD_TO_CI = {"gke": "gcp", "eks": "aws", "existing": "none"}
CI_CLOUD_ACTIONS = {
    "gcp": {"google-github-actions/auth", "google-github-actions/setup-gcloud"},
    "aws": {"aws-actions/configure-aws-credentials"},
    "none": set(),
}
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials"
GCP_AUTH = "google-github-actions/auth"
GCP_SETUP = "google-github-actions/setup-gcloud"
PULUMI_ACTION = "pulumi/actions"
OIDC_ACTIONS = {AWS_CREDENTIALS, GCP_AUTH}
SAME_REPO_CONDITION = "github.event.pull_request.head.repo.full_name == github.repository"
FORK_CONDITION = "github.event.pull_request.head.repo.full_name != github.repository"

# zizmor findings of severity Medium that are accepted, as (audit ident, file
# name) pairs, each documented in a comment in that workflow. None today.
ACCEPTED_MEDIUM_FINDINGS: set[tuple[str, str]] = set()


# ---------------------------------------------------------------------- helpers


def repo_stacks() -> set[str]:
    """Stack names from the Pulumi.<stack>.yaml files at the repository root."""
    stacks = set()
    for pattern in ("Pulumi.*.yaml", "Pulumi.*.yml"):
        for path in ROOT.glob(pattern):
            stacks.add(path.name[len("Pulumi.") :].rsplit(".", 1)[0])
    return stacks


@pytest.fixture(scope="module")
def stacks() -> set[str]:
    found = repo_stacks()
    assert found, f"no Pulumi.<stack>.yaml stack file in {ROOT}"
    return found


def declared_ci_clouds() -> dict[str, str]:
    """stack -> expected CI cloud, for stacks whose file sets llm-infra:cluster.cloud."""
    declared = {}
    for stack in repo_stacks():
        path = next(p for p in (ROOT / f"Pulumi.{stack}.yaml", ROOT / f"Pulumi.{stack}.yml") if p.exists())
        config = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config") or {}
        cluster = config.get("llm-infra:cluster")
        if isinstance(cluster, dict) and cluster.get("cloud") in CLUSTER_CLOUD_TO_CI:
            declared[stack] = CLUSTER_CLOUD_TO_CI[cluster["cloud"]]
    return declared


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS_DIR.glob("*.yaml"), *WORKFLOWS_DIR.glob("*.yml")])


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a YAML mapping"
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    if True in data:
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="module")
def pr() -> dict[str, Any]:
    return load(PR_WORKFLOW)


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return load(DEPLOY_WORKFLOW)


@pytest.fixture(scope="module")
def all_workflows() -> dict[str, dict[str, Any]]:
    return {path.name: load(path) for path in workflow_files()}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def action_of(step: dict[str, Any]) -> str | None:
    """`owner/repo` of a step's `uses:` (None for `run:` steps)."""
    uses = step.get("uses")
    if not uses:
        return None
    return uses.split("@", 1)[0]


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in steps(job) if action_of(s) == action]


def pulumi_steps(job: dict[str, Any], command: str) -> list[dict[str, Any]]:
    return [s for s in steps_using(job, PULUMI_ACTION) if (s.get("with") or {}).get("command") == command]


def deploy_jobs(deploy: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """stack -> (job id, job) for every job running `pulumi up`."""
    by_stack: dict[str, tuple[str, dict[str, Any]]] = {}
    for job_id, job in deploy["jobs"].items():
        for step in pulumi_steps(job, "up"):
            stack = str(step["with"]["stack-name"]).rsplit("/", 1)[-1]
            assert stack not in by_stack, f"stack {stack!r} deployed by {by_stack[stack][0]} and {job_id}"
            by_stack[stack] = (job_id, job)
    return by_stack


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs") or []
    return [value] if isinstance(value, str) else list(value)


def ancestors(jobs: dict[str, Any], job_id: str) -> set[str]:
    seen: set[str] = set()
    todo = needs(jobs[job_id])
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(needs(jobs[current]))
    return seen


def run_scripts(workflow: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for job_id, job in workflow["jobs"].items():
        for step in steps(job):
            if "run" in step:
                yield job_id, str(step["run"])


def tool(name: str) -> str:
    """An executable from PATH, else from the venv next to this interpreter."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    pytest.fail(f"{name} not found: install the test extras (pip install -e '.[test]')")


# ------------------------------------------------------------------ real tools


def test_workflow_files_exist() -> None:
    assert PR_WORKFLOW.is_file()
    assert DEPLOY_WORKFLOW.is_file()


def test_workflows_match_the_github_workflow_schema() -> None:
    files = [str(p) for p in workflow_files()]
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_offline_has_no_high_or_medium_finding() -> None:
    result = subprocess.run(
        [
            tool("zizmor"),
            "--offline",  # no GitHub token here: online audits are skipped
            "--format",
            "json",
            "--no-exit-codes",  # judge findings from the JSON, not the exit code
            "--no-progress",
            "--color",
            "never",
            str(WORKFLOWS_DIR),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout or "[]")

    def describe(finding: dict[str, Any]) -> str:
        det = finding["determinations"]
        where = [
            f"{loc['symbolic']['key'].get('Local', {}).get('verbatim_path', '?')}:"
            f"{loc['concrete']['location']['start_point']['row'] + 1}"
            for loc in finding.get("locations", [])
            if loc["symbolic"].get("kind") == "Primary"
        ]
        return f"{det['severity']}/{det['confidence']} {finding['ident']}: {finding['desc']} at {', '.join(where)}"

    def files_of(finding: dict[str, Any]) -> set[str]:
        return {
            Path(loc["symbolic"]["key"].get("Local", {}).get("verbatim_path", "?")).name
            for loc in finding.get("locations", [])
        }

    active = [f for f in findings if not f.get("ignored")]
    for finding in active:
        print(describe(finding))
    high = [f for f in active if f["determinations"]["severity"] == "High"]
    assert not high, "zizmor High findings:\n" + "\n".join(map(describe, high))
    medium = [
        f
        for f in active
        if f["determinations"]["severity"] == "Medium"
        and not all((f["ident"], name) in ACCEPTED_MEDIUM_FINDINGS for name in files_of(f))
    ]
    assert not medium, "zizmor Medium findings:\n" + "\n".join(map(describe, medium))


# ---------------------------------------------------------------- stack coverage


def test_preview_matrix_is_exactly_the_repo_stacks(pr: dict[str, Any], stacks: set[str]) -> None:
    matrix = pr["jobs"]["preview"]["strategy"]["matrix"]
    listed = list(matrix["stack"])
    assert len(listed) == len(set(listed)), f"duplicate stacks in the preview matrix: {listed}"
    assert set(listed) == stacks, f"preview matrix {sorted(listed)} != Pulumi.<stack>.yaml stacks {sorted(stacks)}"


def test_preview_matrix_maps_each_stack_to_one_cloud(pr: dict[str, Any], stacks: set[str]) -> None:
    include = pr["jobs"]["preview"]["strategy"]["matrix"].get("include") or []
    clouds: dict[str, str] = {}
    for entry in include:
        assert set(entry) == {"stack", "cloud"}, f"unexpected include entry {entry}"
        assert entry["stack"] not in clouds, f"{entry['stack']} mapped twice"
        assert entry["cloud"] in CLOUDS, f"{entry}: cloud must be one of {sorted(CLOUDS)}"
        clouds[entry["stack"]] = entry["cloud"]
    assert set(clouds) == stacks, f"include maps {sorted(clouds)}, stacks are {sorted(stacks)}"


def test_ci_credentials_match_each_stack_cluster_cloud(pr: dict[str, Any], deploy: dict[str, Any]) -> None:
    """gke stacks get Google credentials, eks stacks AWS ones, existing clusters none."""
    declared = declared_ci_clouds()
    if not declared:
        pytest.skip("no stack file declares llm-infra:cluster.cloud")
    include = pr["jobs"]["preview"]["strategy"]["matrix"].get("include") or []
    matrix_clouds = {entry["stack"]: entry["cloud"] for entry in include}
    by_stack = deploy_jobs(deploy)
    cloud_actions = set().union(*CI_CLOUD_ACTIONS.values())
    for stack, cloud in declared.items():
        assert matrix_clouds.get(stack) == cloud, f"preview: {stack} should be cloud {cloud!r}"
        job_id, job = by_stack[stack]
        used = {action_of(s) for s in steps(job)} & cloud_actions
        assert used == CI_CLOUD_ACTIONS[cloud], (
            f"{job_id}: credential actions {sorted(u or '' for u in used)} for a {cloud} stack"
        )


def test_deploy_workflow_covers_every_stack(deploy: dict[str, Any], stacks: set[str]) -> None:
    assert set(deploy_jobs(deploy)) == stacks


# ------------------------------------------------------------ pull-request flow


def test_pr_workflow_triggers_on_pull_request_only(pr: dict[str, Any]) -> None:
    on = pr["on"]
    assert (on if isinstance(on, list) else list(on if isinstance(on, dict) else [on])) == ["pull_request"]


def test_pr_test_job_runs_tests_render_and_publishes_it(pr: dict[str, Any]) -> None:
    job = pr["jobs"]["test"]
    python = steps_using(job, "actions/setup-python")
    assert python and str(python[0]["with"]["python-version"]) == "3.11"
    scripts = "\n".join(str(s.get("run", "")) for s in steps(job))
    assert "make test" in scripts
    assert "make render-all" in scripts
    assert scripts.index("make test") < scripts.index("make render-all")
    upload = steps_using(job, "actions/upload-artifact")
    assert upload and upload[0]["with"]["path"] == "build/render"
    assert "build/render/*/summary.md" in scripts
    assert "$GITHUB_STEP_SUMMARY" in scripts


def test_preview_runs_for_same_repo_prs_after_tests(pr: dict[str, Any]) -> None:
    job = pr["jobs"]["preview"]
    assert needs(job) == ["test"]
    assert SAME_REPO_CONDITION in str(job["if"])
    assert "make install" in "\n".join(str(s.get("run", "")) for s in steps(job))
    (preview,) = pulumi_steps(job, "preview")
    with_ = preview["with"]
    assert with_["stack-name"] == "${{ vars.PULUMI_ORG }}/${{ matrix.stack }}"
    assert with_["comment-on-pr"] is True
    assert with_["github-token"] == "${{ secrets.GITHUB_TOKEN }}"
    assert with_["work-dir"] == "."
    assert preview["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


def test_preview_credentials_follow_the_stack_cloud(pr: dict[str, Any]) -> None:
    job = pr["jobs"]["preview"]
    expected = {AWS_CREDENTIALS: "aws", GCP_AUTH: "gcp", GCP_SETUP: "gcp"}
    for action, cloud in expected.items():
        (step,) = steps_using(job, action)
        assert str(step.get("if", "")).replace('"', "'") == f"matrix.cloud == '{cloud}'", action
    aws = steps_using(job, AWS_CREDENTIALS)[0]["with"]
    assert aws["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert "vars." in aws["aws-region"]
    gcp = steps_using(job, GCP_AUTH)[0]["with"]
    assert gcp["workload_identity_provider"].startswith("${{ vars.")
    assert gcp["service_account"].startswith("${{ vars.")
    assert "gke-gcloud-auth-plugin" in steps_using(job, GCP_SETUP)[0]["with"]["install_components"]
    # Credentials come before the preview.
    order = [action_of(s) for s in steps(job)]
    assert max(order.index(a) for a in expected) < order.index(PULUMI_ACTION)


def test_fork_prs_get_a_succeeding_notice(pr: dict[str, Any]) -> None:
    job = pr["jobs"]["fork-notice"]
    assert FORK_CONDITION in str(job["if"])
    assert job.get("permissions") == {}
    script = "\n".join(str(s.get("run", "")) for s in steps(job))
    assert "$GITHUB_STEP_SUMMARY" in script
    assert "skipped" in script and "fork" in script
    assert not re.search(r"\bexit\s+[1-9]", script), "the fork notice must not fail the run"
    assert not any(action_of(s) in OIDC_ACTIONS | {PULUMI_ACTION} for s in steps(job))


# ------------------------------------------------------------------ deploy flow


def test_deploy_triggers(deploy: dict[str, Any]) -> None:
    on = deploy["on"]
    assert set(on) == {"push", "workflow_dispatch"}
    assert on["push"]["branches"] == ["main"]


def test_deploy_jobs_run_after_tests(deploy: dict[str, Any]) -> None:
    jobs = deploy["jobs"]
    test_jobs = {
        job_id for job_id, job in jobs.items() if "make test" in "\n".join(str(s.get("run", "")) for s in steps(job))
    }
    assert test_jobs, "deploy.yaml has no job running `make test`"
    for stack, (job_id, job) in deploy_jobs(deploy).items():
        assert ancestors(jobs, job_id) & test_jobs, f"{job_id} ({stack}) does not depend on a test job"
        assert "make install" in "\n".join(str(s.get("run", "")) for s in steps(job)), job_id
        (up,) = pulumi_steps(job, "up")
        assert up["with"]["stack-name"] == f"${{{{ vars.PULUMI_ORG }}}}/{stack}"
        assert up["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


def test_deploys_never_overlap_per_stack(deploy: dict[str, Any]) -> None:
    for stack, (job_id, job) in deploy_jobs(deploy).items():
        concurrency = job.get("concurrency")
        assert isinstance(concurrency, dict), f"{job_id}: needs a concurrency mapping"
        assert concurrency["group"] == f"pulumi-{stack}", f"{job_id}: group must be keyed by the stack"
        assert concurrency.get("cancel-in-progress") is False, f"{job_id}: must not cancel a running deploy"


def test_deploys_use_environments_and_prod_waits_for_dev(deploy: dict[str, Any]) -> None:
    by_stack = deploy_jobs(deploy)
    for stack, (job_id, job) in by_stack.items():
        environment = job.get("environment")
        name = environment.get("name") if isinstance(environment, dict) else environment
        assert name, f"{job_id} ({stack}) must run in a GitHub environment"
    prod_id, prod = by_stack["prod"]
    prod_env = prod["environment"]
    assert (prod_env.get("name") if isinstance(prod_env, dict) else prod_env) == "production"
    assert by_stack["dev"][0] in ancestors(deploy["jobs"], prod_id)


# ------------------------------------------------------------------- hardening


def test_every_action_is_pinned_to_a_full_sha_with_a_version_comment() -> None:
    pins: dict[str, set[str]] = {}
    for path in workflow_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip().removeprefix("- ")
            if not stripped.startswith("uses:"):
                continue
            target = stripped.split(":", 1)[1].split("#", 1)[0].strip().strip("'\"")
            if target.startswith("./") or target.startswith("docker://"):
                continue
            match = PINNED_LINE_RE.search(stripped)
            assert match, f"{path.name}:{number}: not pinned to a 40-hex SHA with a '# vX.Y.Z' comment: {line.strip()}"
            pins.setdefault(match["action"], set()).add(match["ref"])
    assert pins, "no `uses:` found"
    inconsistent = {action: refs for action, refs in pins.items() if len(refs) > 1}
    assert not inconsistent, f"one action pinned to several SHAs: {inconsistent}"


def test_uses_parsed_from_yaml_are_pinned(all_workflows: dict[str, dict[str, Any]]) -> None:
    # Same rule on the parsed documents, so a `uses:` the line scan missed
    # (flow style, job-level reusable workflow) is still checked.
    for name, workflow in all_workflows.items():
        for job_id, job in workflow["jobs"].items():
            refs = [job["uses"]] if "uses" in job else []
            refs += [s["uses"] for s in steps(job) if "uses" in s]
            for ref in refs:
                if ref.startswith("./") or ref.startswith("docker://"):
                    continue
                assert SHA_RE.match(ref.rsplit("@", 1)[-1]), f"{name} {job_id}: {ref} is not SHA-pinned"


def test_permissions_are_least_privilege(all_workflows: dict[str, dict[str, Any]]) -> None:
    for name, workflow in all_workflows.items():
        assert "permissions" in workflow, f"{name}: no top-level permissions"
        top = workflow["permissions"]
        assert top == {} or top == {"contents": "read"}, f"{name}: top-level permissions {top!r}"
        for job_id, job in workflow["jobs"].items():
            assert "permissions" in job, f"{name} {job_id}: no job-level permissions"
            perms = job["permissions"]
            assert isinstance(perms, dict), f"{name} {job_id}: permissions must be a mapping, got {perms!r}"
            writes = {scope for scope, level in perms.items() if level == "write"}
            uses_oidc = any(action_of(s) in OIDC_ACTIONS for s in steps(job))
            comments = any(
                (s.get("with") or {}).get("comment-on-pr") in (True, "true") for s in steps_using(job, PULUMI_ACTION)
            )
            expected = ({"id-token"} if uses_oidc else set()) | ({"pull-requests"} if comments else set())
            assert writes == expected, f"{name} {job_id}: write scopes {sorted(writes)}, expected {sorted(expected)}"


def test_checkouts_do_not_persist_credentials(all_workflows: dict[str, dict[str, Any]]) -> None:
    for name, workflow in all_workflows.items():
        for job_id, job in workflow["jobs"].items():
            for step in steps_using(job, "actions/checkout"):
                assert (step.get("with") or {}).get("persist-credentials") is False, f"{name} {job_id}"


def test_no_expressions_inside_run_scripts(all_workflows: dict[str, dict[str, Any]]) -> None:
    # Anything dynamic reaches a script through `env:` (zizmor template-injection).
    for name, workflow in all_workflows.items():
        for job_id, script in run_scripts(workflow):
            assert "${{" not in script, f"{name} {job_id}: expression inside run:\n{script}"


def test_jobs_that_run_pulumi_put_the_pinned_uv_on_the_path(all_workflows) -> None:
    """Pulumi.yaml sets toolchain uv: the Pulumi CLI looks uv up on the PATH and runs the
    program with `uv run python` (pulumi/pulumi sdk/python/toolchain/uv.go, newUv / Command),
    so every job with a Pulumi step installs uv, at the Makefile's pinned version, before it."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["options"]["toolchain"] == "uv"
    checked = 0
    for name, workflow in all_workflows.items():
        for job_id, job in workflow["jobs"].items():
            job_steps = steps(job)
            pulumi_at = [i for i, s in enumerate(job_steps) if (action_of(s) or "").startswith("pulumi/actions")]
            if not pulumi_at:
                continue
            uv_at = [
                i
                for i, s in enumerate(job_steps)
                if 'pip install --quiet "uv==$(make -s uv-version)"' in (s.get("run") or "")
            ]
            assert uv_at and uv_at[0] < pulumi_at[0], f"{name} {job_id}: no uv on the PATH before the Pulumi step"
            checked += 1
    assert checked == 4  # PR preview + three deploys
    version = subprocess.run(
        ["make", "-s", "uv-version"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
