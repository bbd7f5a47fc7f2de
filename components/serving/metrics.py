"""Prometheus metric names that autoscaling triggers, prometheus-adapter rules, alerts and
dashboards read: one place for every name, checked against the pinned versions.

vLLM (config/versions.py VLLM_IMAGE, v0.31.0), V1 engine; every series carries the labels
``model_name`` (the served model name) and ``engine`` (data-parallel rank). Checked against:

* vLLM ``vllm/v1/metrics/loggers.py`` (``PrometheusStatLogger``, vllm-project/vllm main of
  the 0.1x-0.3x line): the KV-cache gauge is ``vllm:kv_cache_usage_perc``; the older
  ``vllm:gpu_cache_usage_perc`` was first exported beside it marked "DEPRECATED: Use
  vllm:kv_cache_usage_perc instead", then removed. ``vllm:time_per_output_token_seconds``
  was deprecated in 0.11 ("[Metrics] Deprecate TPOT in favor of ITL", vllm-project/vllm#24110),
  hidden in 0.12 (only with ``--show-hidden-metrics-for-version=0.11``) and removed in 0.13:
  use ``vllm:inter_token_latency_seconds``. Cross-checked with llm-d's model-server metrics
  reference (llm-d.ai/docs, operations/observability/model-server-metrics). The seed guides
  (000-004) still use the old names, and some use ``vllm_`` with underscores, which no vLLM
  ever exported.
* Counters are declared without ``_total`` (``vllm:prompt_tokens``, ``vllm:request_success``,
  ``vllm:prefix_cache_hits``...); prometheus_client appends ``_total`` on exposition, which
  is the name Prometheus stores.
* The OpenAI server instruments HTTP with prometheus-fastapi-instrumentator's defaults
  (``vllm/entrypoints/serve/instrumentator/metrics.py``): ``http_requests_total`` with
  ``handler``, ``method`` and ``status`` grouped as ``2xx``..``5xx``; ``/metrics`` and
  ``/health`` are excluded.

NVIDIA DCGM exporter (GPU Operator): gauges labelled ``gpu``, ``UUID``, ``modelName``,
``Hostname`` and, with Kubernetes pod mapping and ``honorLabels`` on its ServiceMonitor,
the ``namespace``/``pod``/``container`` that hold the GPU.

kube-state-metrics (kube-prometheus-stack): HPA series labelled ``namespace`` and
``horizontalpodautoscaler``; workload series labelled ``deployment`` / ``statefulset``.
"""

# -- vLLM -----------------------------------------------------------------------------
NUM_REQUESTS_WAITING = "vllm:num_requests_waiting"  # gauge: queue depth
NUM_REQUESTS_RUNNING = "vllm:num_requests_running"  # gauge: requests in the batch
KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"  # gauge, 0..1
TTFT = "vllm:time_to_first_token_seconds"  # histogram
INTER_TOKEN_LATENCY = "vllm:inter_token_latency_seconds"  # histogram
E2E_LATENCY = "vllm:e2e_request_latency_seconds"  # histogram
QUEUE_TIME = "vllm:request_queue_time_seconds"  # histogram
PROMPT_TOKENS = "vllm:prompt_tokens_total"  # counter
GENERATION_TOKENS = "vllm:generation_tokens_total"  # counter
REQUEST_SUCCESS = "vllm:request_success_total"  # counter, label finished_reason
NUM_PREEMPTIONS = "vllm:num_preemptions_total"  # counter
PREFIX_CACHE_QUERIES = "vllm:prefix_cache_queries_total"  # counter (tokens queried)
PREFIX_CACHE_HITS = "vllm:prefix_cache_hits_total"  # counter (tokens hit)
HTTP_REQUESTS = "http_requests_total"  # API server, label status="2xx".."5xx"
HTTP_5XX = "5xx"

# -- NVIDIA DCGM exporter ----------------------------------------------------------------
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"  # %, duty cycle
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"  # MiB of frame buffer in use
DCGM_GPU_TEMP = "DCGM_FI_DEV_GPU_TEMP"  # degrees Celsius

# -- kube-state-metrics ----------------------------------------------------------------
KSM_HPA_CURRENT_REPLICAS = "kube_horizontalpodautoscaler_status_current_replicas"
KSM_HPA_DESIRED_REPLICAS = "kube_horizontalpodautoscaler_status_desired_replicas"
KSM_HPA_MAX_REPLICAS = "kube_horizontalpodautoscaler_spec_max_replicas"
KSM_READY_REPLICAS = {
    "Deployment": ("kube_deployment_status_replicas_ready", "deployment"),
    "StatefulSet": ("kube_statefulset_status_replicas_ready", "statefulset"),
}
"""Ready replicas of a workload kind: (metric, label that names the workload)."""

# -- ingress-nginx controller --------------------------------------------------------------
NGINX_REQUESTS = "nginx_ingress_controller_requests"  # counter, labels ingress, host, status

# -- llm-d-router endpoint picker (EPP), v0.10.0 pkg/epp/metrics/llm_d_router_metrics.go ------
EPP_REQUESTS = "llm_d_epp_request_total"
"""Counter, labels model_name, target_model_name, fairness_id, priority: requests the EPP scheduled."""
EPP_REQUEST_ERRORS = "llm_d_epp_request_error_total"
"""Counter, the same labels plus error_code: requests that failed, among them every request for a
pool without a ready endpoint (pkg/epp/handlers/server.go records it when scheduling fails)."""
EPP_READY_ENDPOINTS = "llm_d_epp_ready_endpoints"  # gauge, label name (the InferencePool)
EPP_AVERAGE_QUEUE = "llm_d_epp_average_queue_size"  # gauge, label name
EPP_AVERAGE_KV_CACHE = "llm_d_epp_average_kv_cache_utilization"  # gauge, label name

# Names under which prometheus-adapter serves the signals on the custom metrics API
# (pods metrics) for plain HPAs when KEDA is off. The add-ons component writes the adapter
# rules that produce them (seriesQuery on the vLLM name, per namespace/pod).
ADAPTER_QUEUE_DEPTH = "vllm_num_requests_waiting"
ADAPTER_KV_CACHE_USAGE = "vllm_kv_cache_usage_perc"
