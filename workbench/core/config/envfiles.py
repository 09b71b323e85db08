"""Environment files (`.env` and `--env-file`), read with python-dotenv.

`${VAR}` inside a value expands as python-dotenv does: from earlier lines of the same file,
then from the environment workbench itself runs in. A bare `KEY` line has no value, which
Lambda cannot hold, so it is an error rather than a silent empty string.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from workbench.core.config.function import ConfigError
from workbench.core.config.settings import display_path

DOTENV = ".env"


@dataclass(frozen=True)
class EnvFile:
    path: Path
    values: dict[str, str]
    origin: str  # why it was read: ".env in the function folder", "--env-file", ...

    @property
    def shown(self) -> str:
        return display_path(self.path)


def read_env_file(path: Path, origin: str = "--env-file") -> EnvFile:
    """One file; a file the user named that is not there is an error, never skipped."""
    shown = display_path(path)
    if not path.is_file():
        raise ConfigError(f"{shown}: env file not found (from {origin})")
    from dotenv import dotenv_values  # only a function that has env files pays its import

    try:
        raw = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read it: {exc}") from None
    values: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            raise ConfigError(f'{shown}: "{key}" has no value; write {key}= for an empty one')
        values[key] = value
    return EnvFile(path, values, origin)


def layered_env_files(
    folder: Path, configured: Iterable[tuple[Path, str]] = (), explicit: Iterable[Path] = ()
) -> list[EnvFile]:
    """Every env file of a function, in the order they apply (later wins): the files its
    settings name (`configured`, each with where it was named), then the folder's `.env`,
    then the `--env-file` paths."""
    files = [read_env_file(path, origin) for path, origin in configured]
    dotenv = folder / DOTENV
    if dotenv.is_file():
        files.append(read_env_file(dotenv, f"{DOTENV} in the function folder"))
    return files + [read_env_file(path) for path in explicit]
