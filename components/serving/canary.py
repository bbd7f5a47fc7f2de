"""The canary of a vLLM model: its own workload next to the stable one, and the alerts that
compare the two.

* the workload is a ``VllmService`` named ``<model>-canary`` built from the derived config
  (config/canary_model.py): same pod template code, Service, PDB, cache, ServiceMonitor, own
  alerts and dashboard, autoscaling between 1 and its traffic share of ``maxReplicas``. Its
  pods carry ``app.kubernetes.io/name: vllm`` and ``app.kubernetes.io/instance: <model>-canary``
  (the stable pods: ``instance: <model>``), so a selector on both labels picks one of the two.
* with the stable model behind an nginx Ingress, an ingress-nginx canary Ingress (same host
  and path, ``canary-weight`` = the canary's weight) splits that traffic; the Gateway API
  route (weighted backendRefs) splits Gateway traffic.
* two comparison alerts, from the canary's and the stable model's own series (both serve the
  same ``model_name``; their Services tell them apart): the canary's 5xx ratio above the
  stable one's by ``alerts.canaryErrorRatioMargin``, and its p95 time to first token above the
  stable one's times ``alerts.canaryTtftRatio``, both for ``alerts.canaryFor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components import k8s as kube
from llm_infra.config import ModelPlan
from llm_infra.config.canary_model import canary_image, canary_model
from llm_infra.config.serving import VllmModelConfig
from llm_infra.config.stack import AlertThresholds

from . import observability
from .context import ServingContext
from .observability import ModelScope, error_ratio, runbook_url, ttft_quantile
from .vllm import VllmService, VllmServiceArgs

ALERT_CANARY_ERRORS = "VllmCanaryErrorRatioWorse"
ALERT_CANARY_TTFT = "VllmCanaryTimeToFirstTokenWorse"
WINDOW = "5m"

NGINX_CANARY = "nginx.ingress.kubernetes.io/canary"
NGINX_CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
"""ingress-nginx canary annotations (docs: user-guide/nginx-configuration/annotations, "Canary"):
a second Ingress for the same host and path sends ``canary-weight`` percent of its requests to
its own backend."""


def comparison_rules(stable: ModelScope, canary: ModelScope, alerts: AlertThresholds) -> list[dict[str, Any]]:
    """The two alerts that fire while the canary does worse than the stable model."""
    model = canary.model_name
    labels = {
        "severity": "warning",
        "model_name": model,
        "llm_service": canary.service,
        "stable_service": stable.service,
    }
    margin, ratio, for_ = alerts.canary_error_ratio_margin, alerts.canary_ttft_ratio, alerts.canary_for

    def rule(alert: str, expr: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": for_,
            "labels": labels,
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": runbook_url(alerts, alert),
            },
        }

    by = "namespace, le"
    return [
        rule(
            ALERT_CANARY_ERRORS,
            f"({error_ratio(canary, WINDOW)}) > on (namespace) ({error_ratio(stable, WINDOW)} + {margin:g})",
            f"{model}: canary {canary.service} fails more requests than {stable.service}",
            f"{{{{ $value | humanizePercentage }}}} of the requests to the canary {canary.service} answered 5xx, "
            f"more than {margin:.1%} above the stable {stable.service}, for {for_}: roll the canary back.",
        ),
        rule(
            ALERT_CANARY_TTFT,
            f"{ttft_quantile(canary, 0.95, WINDOW, by=by)} > on (namespace) "
            f"({ttft_quantile(stable, 0.95, WINDOW, by=by)} * {ratio:g})",
            f"{model}: canary {canary.service} is slower to the first token than {stable.service}",
            f'p95 time to first token of the canary {canary.service} is {{{{ $value | printf "%.2f" }}}}s, more '
            f"than {ratio:g} x the stable {stable.service}'s, for {for_}: roll the canary back.",
        ),
    ]


def canary_ingress(name: str, namespace: str, labels: dict[str, str], stable: VllmModelConfig) -> dict[str, Any] | None:
    """The ingress-nginx canary Ingress of a stable model exposed by an nginx Ingress."""
    if stable.ingress is None or stable.canary is None or stable.ingress.class_name != "nginx":
        return None
    manifest = VllmService._ingress(name, namespace, labels, stable)
    manifest["metadata"]["annotations"].update({NGINX_CANARY: "true", NGINX_CANARY_WEIGHT: str(stable.canary.weight)})
    return manifest


@dataclass(frozen=True)
class VllmCanaryArgs:
    """What a model's canary needs: the stable model and its service, the canary's plan and the serving context."""

    model: VllmModelConfig
    """The stable model (with its ``canary``)."""
    plan: ModelPlan
    """The canary's own plan (``StackPlan.models["<model>-canary"]``)."""
    stable: VllmService
    """The stable model's ``VllmService``: the comparison alerts query its series."""
    context: ServingContext
    """Namespace, add-ons (Prometheus, autoscaler), StorageClasses (``ServingContext.create``)."""


class VllmCanary(pulumi.ComponentResource):
    """A model's canary: its workload, its share of the Ingress, and the comparison alerts."""

    def __init__(self, name: str, args: VllmCanaryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:serving:VllmCanary", name, None, opts)
        ctx, stable = args.context, args.stable
        derived = canary_model(args.model)
        deps = opts.depends_on if opts is not None else None
        self.service = VllmService(
            derived.name,
            VllmServiceArgs(
                model=derived, plan=args.plan, context=ctx, image=canary_image(args.model), split_metrics=True
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps),
        )
        ns = ctx.namespace
        labels = kube.labels(derived.name, "vllm")
        ingress = canary_ingress(derived.name, ns, labels, args.model)
        if ingress is not None:
            k8s.networking.v1.Ingress(
                derived.name,
                metadata=ingress["metadata"],
                spec=ingress["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service.service]),
            )
        mon = ctx.addons.monitoring
        if mon.operator_crds:
            observability.custom_resource(
                f"{derived.name}-comparison-rules",
                observability.prometheus_rule(
                    f"{derived.name}-comparison",
                    ns,
                    labels={**labels, **mon.monitor_labels},
                    groups=[
                        {
                            "name": f"vllm-canary.{ns}.{derived.name}",
                            "rules": comparison_rules(stable.scope, self.service.scope, ctx.alerts),
                        }
                    ],
                ),
                pulumi.ResourceOptions(parent=self, depends_on=ctx.addons.depends_for("monitoring.coreos.com")),
            )
        canary = args.model.canary
        assert canary is not None  # a CanaryService is made only for a model with a canary
        self.register_outputs({"endpoint": self.service.endpoint, "weight": canary.weight})
