"""Where genesis' run-time assets are, in an installed wheel or in a source checkout.

The assets (cookiecutter template, Helm chart, reusable workflows, monitoring config)
live at the top of the repository, where people edit them, and ship inside the wheel
under `genesis/_assets/`. Everything that needs one asks here, so both layouts work.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_PACKAGED = _PACKAGE / "_assets"
# src/genesis/ -> the checkout's root, used by editable installs and the test suite.
_CHECKOUT = _PACKAGE.parent.parent

# Asset name -> its folder at the top of the repository (and under _assets in a wheel).
TOP_LEVEL: dict[str, str] = {
    "templates": "templates",
    "charts": "charts",
    "workflows": "workflows",
}
# Asset name -> its folder inside the package (package data, the same in both layouts).
IN_PACKAGE: dict[str, str] = {
    "monitoring": "observability/monitoring",
}

NAMES: tuple[str, ...] = tuple(sorted({*TOP_LEVEL, *IN_PACKAGE}))


class AssetNotFoundError(LookupError):
    """An unknown asset name, or an installation that lacks the asset."""


def asset_path(name: str) -> Path:
    """The directory holding asset `name` (one of `NAMES`)."""
    if name in IN_PACKAGE:
        candidates = [_PACKAGE / IN_PACKAGE[name]]
    elif name in TOP_LEVEL:
        candidates = [_PACKAGED / TOP_LEVEL[name]]
        if (_CHECKOUT / "pyproject.toml").is_file():
            candidates.append(_CHECKOUT / TOP_LEVEL[name])
    else:
        raise AssetNotFoundError(f"unknown asset {name!r}; known assets: {', '.join(NAMES)}")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise AssetNotFoundError(
        f"asset {name!r} is missing from this installation (looked in "
        f"{', '.join(str(c) for c in candidates)}); reinstall genesis from a wheel or checkout"
    )


__all__ = ["NAMES", "AssetNotFoundError", "asset_path"]
