"""Themes are data: TOML files turned into Textual themes.

Two places hold them: `themes/` shipped with workbench (workbench/_data/themes in the wheel),
and the user's own `$XDG_CONFIG_HOME/workbench/themes/`, where a file with a shipped theme's
name replaces it. Besides Textual's base colours a theme may set workbench's own variables
(THEME_VARIABLES); one it leaves out is derived from the theme's base colours, so Textual's
built-in themes work too and no colour is ever written in Python. The stylesheet uses only
variables, so switching theme recolours everything, payload highlighting included.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

from workbench.ui.prefs import prefs_path

DEFAULT_THEME = "workbench-dark"
# workbench's variables, each with the colour of Textual's colour system it falls back to
THEME_VARIABLES = {
    "status-ok": "success",
    "status-error": "error",
    "status-timeout": "warning",
    "cold-start": "primary",
    "log-stderr": "error",
    "log-platform": "foreground-darken-2",
    "log-build": "secondary",
    "sparkline-min": "primary",
    "sparkline-max": "accent",
}
_COLOURS = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
_NUMBERS = ("luminosity_spread", "text_alpha")


class ThemeError(Exception):
    pass


def themes_folder() -> Path:
    """`themes/` in the wheel (workbench/_data/themes) or at the top of a source checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_data" / "themes", package.parent / "themes"):
        if candidate.is_dir():
            return candidate
    return package / "_data" / "themes"


def user_themes_folder() -> Path:
    return prefs_path().parent / "themes"


def theme_variable_defaults(theme: Theme) -> dict[str, str]:
    """workbench's variables for a theme that does not set them, from its own colours."""
    system = theme.to_color_system().generate()
    return {name: system[source] for name, source in THEME_VARIABLES.items()}


def _colour(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeError(f"{path}: {key} must be a colour, as a string")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeError(f"{path}: {key} = {value!r} is not a colour") from None
    return value


def load_theme(path: Path) -> Theme:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ThemeError(f"{path}: {exc}") from None
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name or "primary" not in doc:
        raise ThemeError(f"{path}: a theme needs a name and at least a primary colour")
    unknown = sorted(set(doc) - {"name", "dark", "variables", *_NUMBERS, *_COLOURS})
    if unknown:
        raise ThemeError(f"{path}: unknown key {unknown[0]!r}")
    variables = doc.get("variables", {})
    if not isinstance(variables, dict):
        raise ThemeError(f"{path}: [variables] must be a table of colours")
    unknown = sorted(set(variables) - set(THEME_VARIABLES))
    if unknown:  # a typo would otherwise be silently ignored
        raise ThemeError(
            f"{path}: unknown variable {unknown[0]!r} (known: {', '.join(THEME_VARIABLES)})"
        )
    colours = {k: _colour(path, k, doc[k]) for k in _COLOURS if k in doc}
    extra: dict[str, Any] = {}  # Theme's numeric fields, each checked above
    for key in _NUMBERS:
        if key in doc:
            if not isinstance(doc[key], int | float) or isinstance(doc[key], bool):
                raise ThemeError(f"{path}: {key} must be a number")
            extra[key] = float(doc[key])
    theme = Theme(
        name=name,
        dark=bool(doc.get("dark", True)),
        **colours,  # type: ignore[arg-type]
        **extra,
    )
    own = {k: _colour(path, f"variables.{k}", v) for k, v in variables.items()}
    theme.variables = {**theme_variable_defaults(theme), **own}
    return theme


def load_themes(*folders: Path) -> tuple[list[Theme], list[str]]:
    """Every theme in the folders (the shipped one, then the user's, by default), and a
    message for each file that could not be read: a bad theme file is reported, never fatal.
    A later theme of the same name replaces an earlier one."""
    if not folders:
        folders = (themes_folder(), user_themes_folder())
    themes: dict[str, Theme] = {}
    problems = []
    for folder in folders:
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme(path)
            except ThemeError as exc:
                problems.append(str(exc))
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems
