"""Themes are data: TOML files in `themes/` (shipped in the wheel) turned into Textual themes.

Besides Textual's base colours a theme sets workbench's own variables (THEME_VARIABLES); the
stylesheet uses only variables, so switching theme recolours everything, payload highlighting
included (it goes through Textual's highlighter, which uses the theme's variables too).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.theme import Theme

DEFAULT_THEME = "workbench-dark"
# workbench's variables, with what a theme that does not set them (Textual's own) gets
THEME_VARIABLES = {
    "status-ok": "#4EBF71",
    "status-error": "#E5484D",
    "status-timeout": "#E5A50A",
    "cold-start": "#3E9BDB",
    "log-stderr": "#E5797D",
    "log-platform": "#8D99AE",
    "log-build": "#B8A5C9",
    "sparkline-min": "#3D5A80",
    "sparkline-max": "#F4A261",
}
_COLOURS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground",
            "background", "surface", "panel", "boost")


class ThemeError(Exception):
    pass


def themes_folder() -> Path:
    """`themes/` in the wheel (workbench/_data/themes) or at the top of a source checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_data" / "themes", package.parent / "themes"):
        if candidate.is_dir():
            return candidate
    return package / "_data" / "themes"


def load_theme(path: Path) -> Theme:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ThemeError(f"{path}: {exc}") from None
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or "primary" not in doc:
        raise ThemeError(f"{path}: a theme needs a name and at least a primary colour")
    variables = doc.get("variables", {})
    if not isinstance(variables, dict):
        raise ThemeError(f"{path}: [variables] must be a table of colours")
    unknown = sorted(set(doc) - {"name", "dark", "variables", "luminosity_spread",
                                 "text_alpha", *_COLOURS})
    if unknown:
        raise ThemeError(f"{path}: unknown key {unknown[0]!r}")
    colours = {k: str(doc[k]) for k in _COLOURS if k in doc}
    extra = {k: float(doc[k]) for k in ("luminosity_spread", "text_alpha") if k in doc}
    return Theme(name=name, dark=bool(doc.get("dark", True)),
                 variables={**THEME_VARIABLES, **{k: str(v) for k, v in variables.items()}},
                 **colours, **extra)  # type: ignore[arg-type]


def load_themes(folder: Path | None = None) -> tuple[list[Theme], list[str]]:
    """Every theme in the folder, and a message for each file that could not be read (a bad
    theme file is reported, never fatal)."""
    folder = folder or themes_folder()
    themes, problems = [], []
    for path in sorted(folder.glob("*.toml")):
        try:
            themes.append(load_theme(path))
        except ThemeError as exc:
            problems.append(str(exc))
    return themes, problems
