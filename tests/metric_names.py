"""The metric names the exporters really emit, written out for the tests.

The tests build their expectations and promtool input series from these literals instead of
``components/serving/metrics.py``, so a typo there (or a rename to a name no exporter has)
fails the tests instead of being copied into both sides.

* vLLM 0.31 V1 engine: ``vllm/v1/metrics/loggers.py`` ``PrometheusStatLogger`` (counters gain
  ``_total`` on exposition); HTTP: prometheus-fastapi-instrumentator defaults
  (``http_requests_total`` with ``status`` grouped as ``5xx``).
* NVIDIA dcgm-exporter default counters (``etc/default-counters.csv``).
* kube-state-metrics HPA / workload series; ingress-nginx controller requests.
"""

NUM_REQUESTS_WAITING = "vllm:num_requests_waiting"
NUM_REQUESTS_RUNNING = "vllm:num_requests_running"
KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
TTFT = "vllm:time_to_first_token_seconds"
INTER_TOKEN_LATENCY = "vllm:inter_token_latency_seconds"
E2E_LATENCY = "vllm:e2e_request_latency_seconds"
QUEUE_TIME = "vllm:request_queue_time_seconds"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
REQUEST_SUCCESS = "vllm:request_success_total"
NUM_PREEMPTIONS = "vllm:num_preemptions_total"
PREFIX_CACHE_QUERIES = "vllm:prefix_cache_queries_total"
PREFIX_CACHE_HITS = "vllm:prefix_cache_hits_total"
HTTP_REQUESTS = "http_requests_total"
HTTP_5XX = "5xx"

DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
DCGM_GPU_TEMP = "DCGM_FI_DEV_GPU_TEMP"

KSM_HPA_CURRENT_REPLICAS = "kube_horizontalpodautoscaler_status_current_replicas"
KSM_HPA_DESIRED_REPLICAS = "kube_horizontalpodautoscaler_status_desired_replicas"
KSM_HPA_MAX_REPLICAS = "kube_horizontalpodautoscaler_spec_max_replicas"
KSM_READY_REPLICAS = {
    "Deployment": ("kube_deployment_status_replicas_ready", "deployment"),
    "StatefulSet": ("kube_statefulset_status_replicas_ready", "statefulset"),
}

NGINX_REQUESTS = "nginx_ingress_controller_requests"

# llm-d-router v0.10.0 endpoint picker: pkg/epp/metrics/llm_d_router_metrics.go (subsystem llm_d_epp)
EPP_REQUESTS = "llm_d_epp_request_total"
EPP_REQUEST_ERRORS = "llm_d_epp_request_error_total"
EPP_READY_ENDPOINTS = "llm_d_epp_ready_endpoints"

# served by prometheus-adapter on the custom metrics API (our own names: ':' is not allowed there)
ADAPTER_QUEUE_DEPTH = "vllm_num_requests_waiting"
ADAPTER_KV_CACHE_USAGE = "vllm_kv_cache_usage_perc"

# Ray Serve (ray 2.58 ``python/ray/serve/_private/metrics_utils``/proxy metrics) and the vLLM
# engine metrics Ray Serve LLM re-exports with a ``ray_`` prefix and ':' -> '_'.
RAY_HTTP_REQUESTS = "ray_serve_num_http_requests_total"
RAY_HTTP_ERRORS = "ray_serve_num_http_error_requests_total"
RAY_REPLICA_HEALTHY = "ray_serve_deployment_replica_healthy"
RAY_QUEUED_QUERIES = "ray_serve_deployment_queued_queries"
RAY_TTFT = "ray_vllm_time_to_first_token_seconds"
RAY_KV_CACHE_USAGE = "ray_vllm_kv_cache_usage_perc"
RAY_REQUESTS_WAITING = "ray_vllm_num_requests_waiting"
