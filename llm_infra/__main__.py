"""``python -m llm_infra render --stack NAME``: the offline render (see llm_infra.components.render)."""

import sys

from llm_infra.components.render.cli import main

sys.exit(main())
