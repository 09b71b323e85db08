"""What the user chose in the TUI and wants kept: the theme, and remapped keys.

Stored in `$XDG_CONFIG_HOME/workbench/tui.toml` (~/.config by default):

    theme = "workbench-light"

    [keys]        # binding id = keys, comma-separated (F1 shows the ids)
    invoke = "ctrl+r,f5"
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


def prefs_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "workbench" / "tui.toml"


@dataclass
class Prefs:
    theme: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    problem: str | None = None  # why the file could not be read, to show the user

    @classmethod
    def load(cls, path: Path | None = None) -> Prefs:
        path = path or prefs_path()
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return cls(problem=f"{path}: {exc}")
        theme = doc.get("theme")
        keys = doc.get("keys", {})
        if not isinstance(keys, dict):
            return cls(problem=f"{path}: [keys] must be a table of binding id = keys")
        # keys may be "ctrl+r,f5" or ["ctrl+r", "f5"]; Textual's keymap wants the former
        return cls(
            theme if isinstance(theme, str) else None,
            {
                str(k): ",".join(map(str, v)) if isinstance(v, list) else str(v)
                for k, v in keys.items()
            },
        )

    def save(self, path: Path | None = None) -> None:
        """Rewritten whole, atomically: a crash mid-write never leaves half a file."""
        path = path or prefs_path()
        lines = []
        if self.theme:
            lines.append(f"theme = {json.dumps(self.theme)}")
        if self.keys:
            lines += ["", "[keys]"]
            lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in sorted(self.keys.items())]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)
