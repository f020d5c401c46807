"""The published JSON Schema of the analysis spec, generated from the models.

Regenerate the committed copy after changing the models:
    python -m genesis.gate.schema > src/genesis/gate/analysis.schema.json
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from typing import Any

from genesis.gate.spec import AnalysisSpec

SCHEMA_FILE = "analysis.schema.json"


def json_schema() -> dict[str, Any]:
    schema = AnalysisSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "genesis gate analysis"
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def published_schema() -> str:
    """The copy shipped in the package, for editors and check-jsonschema."""
    return resources.files("genesis.gate").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - a one-line developer command
    sys.stdout.write(schema_text())
