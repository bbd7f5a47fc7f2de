"""LLM inference on Kubernetes GPUs: one stack = cluster, add-ons, and serving stacks.

The same program runs under `pulumi up` and under the offline render
(`python -m llm_infra render --stack dev`).
"""

import pulumi

from llm_infra.components import LlmPlatform, read_stack_plan, secret, secret_map
from llm_infra.components.reports import (
    capacity_report,
    hosts_report,
    node_pool_report,
    plan_warnings,
    system_pool_report,
)

plan = read_stack_plan()  # validates everything before any resource is declared

platform = LlmPlatform(
    "llm",
    plan,
    hf_token=secret("hfToken"),
    grafana_admin_password=secret("grafanaAdminPassword"),
    kubeconfig=secret("kubeconfig"),
    api_keys=secret_map("apiKeys"),
)

pulumi.export("kubeconfig", platform.cluster.kubeconfig)  # secret
pulumi.export("namespace", plan.config.namespace)
pulumi.export("systemPool", system_pool_report(plan))
pulumi.export("nodePools", node_pool_report(plan))
pulumi.export("models", capacity_report(plan))
pulumi.export(
    "endpoints",
    {
        s.name: s.endpoint
        for s in [*platform.vllm, *(c.service for c in platform.canaries), *platform.ray, *platform.multi_node]
    },
)
pulumi.export("hosts", hosts_report(plan))
if platform.edge is not None:
    pulumi.export("url", platform.edge.url)  # one OpenAI-compatible base URL for every model
pulumi.export("warnings", plan_warnings(plan))
