"""docs/configuration.md lists exactly the settings the model has."""

from __future__ import annotations

from pathlib import Path

from genesis.service.settings import settings_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
BEGIN = "<!-- settings-table:begin -->"
END = "<!-- settings-table:end -->"


def test_configuration_doc_matches_settings_model() -> None:
    text = DOC.read_text()
    assert BEGIN in text, f"{DOC} lost its settings-table markers"
    assert END in text, f"{DOC} lost its settings-table markers"
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == settings_table(), (
        "docs/configuration.md is out of date; regenerate the table with "
        "python -c 'from genesis.service.settings import settings_table; print(settings_table())'"
    )
