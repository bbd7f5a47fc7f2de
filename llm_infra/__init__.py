"""llm_infra: Pulumi components for LLM inference on Kubernetes GPUs.

The one importable package of the ``llm-infra`` distribution. Its two halves live at the
repository's top level, where the Pulumi program (``__main__.py``) uses them too:

- ``llm_infra.components``: the ComponentResources (clusters, add-ons, vLLM and Ray serving);
- ``llm_infra.config``: the typed configuration, GPU catalog and capacity arithmetic.

``python -m llm_infra render --stack dev`` renders a stack offline.
"""
