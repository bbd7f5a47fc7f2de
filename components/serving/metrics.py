"""Prometheus metric names that the pinned vLLM (config/versions.py VLLM_IMAGE) emits.

One place for every name used by autoscaling triggers, prometheus-adapter rules, alerts and
dashboards. Checked against the vLLM "Production Metrics" documentation for the V1 engine:
``vllm:gpu_cache_usage_perc`` became ``vllm:kv_cache_usage_perc`` and
``vllm:time_per_output_token_seconds`` became ``vllm:inter_token_latency_seconds``; the old
names were deprecated, then hidden, then removed (vLLM's deprecation policy: hidden in the
next minor, removed in the one after), so guides that use them (seeds 000-004) no longer
match a current server.
"""

NUM_REQUESTS_WAITING = "vllm:num_requests_waiting"      # gauge, per model_name
NUM_REQUESTS_RUNNING = "vllm:num_requests_running"      # gauge
KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"              # gauge, 0..1
TTFT = "vllm:time_to_first_token_seconds"                # histogram
INTER_TOKEN_LATENCY = "vllm:inter_token_latency_seconds"  # histogram
E2E_LATENCY = "vllm:e2e_request_latency_seconds"         # histogram
PROMPT_TOKENS = "vllm:prompt_tokens_total"               # counter
GENERATION_TOKENS = "vllm:generation_tokens_total"       # counter
REQUEST_SUCCESS = "vllm:request_success_total"           # counter, label finished_reason
PREFIX_CACHE_QUERIES = "vllm:prefix_cache_queries_total"  # counter (tokens queried)
PREFIX_CACHE_HITS = "vllm:prefix_cache_hits_total"        # counter (tokens hit)
HTTP_REQUESTS = "http_requests_total"                    # API server (prometheus-fastapi-instrumentator), label status="2xx".."5xx"

# Names under which prometheus-adapter serves the signals on the custom metrics API
# (pods metrics) for plain HPAs when KEDA is off.
ADAPTER_QUEUE_DEPTH = "vllm_num_requests_waiting"
ADAPTER_KV_CACHE_USAGE = "vllm_kv_cache_usage_perc"
