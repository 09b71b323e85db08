"""Per-folder settings: `workbench.toml`, or `[tool.workbench]` in `pyproject.toml`.

Every key is checked against a table of validators so that a typo or a wrong type fails early,
naming the file, the key and what was expected, instead of being silently ignored.

Environment values: Lambda only holds strings, so TOML integers and floats are written as
Python prints them (`10`, `1.5`) and booleans as `true` / `false`, the way CloudFormation turns
a YAML scalar into a string. Arrays, tables and dates are errors.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from workbench.core.config.function import ConfigError
from workbench.core.vocab import BUILDER_KINDS, RUNTIME_CLIENTS

RUNTIMES = (
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "provided",
    "provided.al2",
    "provided.al2023",
    "go1.x",
)
ARCHITECTURES = ("x86_64", "arm64")
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Invalid(ValueError):
    """A value of the wrong type or range; the message says what was expected. `key` narrows
    the blame to one entry of a table, `got` describes the culprit when the value itself
    would not."""

    def __init__(self, expected: str, key: str | None = None, got: str | None = None) -> None:
        super().__init__(expected)
        self.key, self.got = key, got


Check = Callable[[Any, Path], object]  # (raw TOML value, the function folder) -> clean value


def display_path(path: Path) -> str:
    """Paths in messages: short when under the working folder, absolute otherwise."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _text(value: Any, _: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("a non-empty string")
    return value


def _bool(value: Any, _: Path) -> bool:
    if not isinstance(value, bool):
        raise Invalid("true or false")
    return value


def _choice(options: tuple[str, ...]) -> Check:
    def check(value: Any, _: Path) -> str:
        if value in options:
            return cast(str, value)
        close = difflib.get_close_matches(str(value), options, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close and isinstance(value, str) else ""
        raise Invalid(f"one of {', '.join(options)}{hint}")

    return check


def _number(lo: int, hi: int, what: str, whole: bool) -> Check:
    def check(value: Any, _: Path) -> float | int:
        kinds = (int,) if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not lo <= value <= hi:
            kind = "a whole number" if whole else "a number"
            raise Invalid(f"{kind} of {what} from {lo} to {hi}")
        return value if whole else float(value)

    return check


def _at_least_one(value: Any, _: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid("a whole number of at least 1")
    return value


def _name(value: Any, folder: Path) -> str:
    if not isinstance(value, str) or not FUNCTION_NAME.fullmatch(value):
        raise Invalid("a function name of 1 to 64 letters, digits, - and _")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Invalid("a list of non-empty strings")
    return tuple(value)


def _globs(value: Any, _: Path) -> tuple[str, ...]:
    return _strings(value)


def _files(value: Any, folder: Path) -> tuple[Path, ...]:
    return tuple(folder / v for v in _strings(value))


def _folders(value: Any, folder: Path) -> tuple[Path, ...]:
    paths = []
    for item in _strings(value):
        path = (folder / item).resolve()
        if not path.is_dir():
            raise Invalid(
                "a list of existing folders",
                got=f"{json.dumps(item)}, which is not a folder ({display_path(path)})",
            )
        paths.append(path)
    return tuple(paths)


def _command(value: Any, _: Path) -> tuple[str, ...]:
    # A string is split the way a shell would, so `start = "node --inspect x.js"` just works.
    argv = tuple(shlex.split(value)) if isinstance(value, str) else _strings(value)
    if not argv:
        raise Invalid("a command: a string or a list of strings")
    return argv


def _executable(value: Any, folder: Path) -> str:
    # a command name is looked up on PATH when the function starts; a path is taken from the
    # function's folder, like every other path in this file
    text = _text(value, folder)
    if "/" not in text and not text.startswith("~"):
        return text
    return str((folder / Path(text).expanduser()).absolute())


def _env_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise Invalid("a string (numbers and booleans are converted)", key=key)


def rpc_address(value: Any, _: Path | None = None) -> str:
    """HOST:PORT of a go1.x function to attach to (a bare PORT means 127.0.0.1)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise Invalid("HOST:PORT, e.g. 127.0.0.1:8001")
    host, sep, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536 or (sep and not host.strip("[]")):
        raise Invalid("HOST:PORT, e.g. 127.0.0.1:8001")
    return value if sep else f"127.0.0.1:{port}"


def _environment(value: Any, _: Path) -> dict[str, str]:
    if not isinstance(value, dict):
        raise Invalid("a table of names to strings")
    return {str(k): _env_value(str(k), v) for k, v in value.items()}


KEYS: dict[str, Check] = {
    "name": _name,
    "handler": _text,
    "runtime": _choice(RUNTIMES),
    "timeout": _number(1, 900, "seconds", whole=False),
    "memory": _number(128, 10240, "MB", whole=True),
    "memory_limit": _bool,
    "ephemeral_storage": _number(512, 10240, "MB", whole=True),
    "architecture": _choice(ARCHITECTURES),
    "environment": _environment,
    "env_files": _files,
    "build": _text,
    "start": _command,
    "concurrency": _at_least_one,
    "layers": _folders,
    "events_dir": _text,
    "theme": _text,
    "runtime_client": _choice(RUNTIME_CLIENTS),
    "python": _executable,
    "node": _executable,
    "builder": _choice(BUILDER_KINDS),
    "rpc": rpc_address,
    "history_max_records": _number(1, 10_000_000, "records", whole=True),
    "history_max_mb": _number(1, 1_000_000, "MB", whole=True),
    "log_max_mb": _number(1, 1024, "MB", whole=True),
}
TABLES: dict[str, dict[str, Check]] = {"watch": {"include": _globs, "exclude": _globs}}


@dataclass(frozen=True)
class Settings:
    """Checked settings of one folder. `values` is keyed like the file, nested keys dotted
    (`watch.include`); a key that is absent was not set."""

    file: Path | None = None
    table: str = ""  # "tool.workbench" when the settings live in pyproject.toml
    values: Mapping[str, object] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def where(self, key: str) -> str:
        assert self.file is not None
        return f"{display_path(self.file)}: {self._dotted(key)}"

    def _dotted(self, key: str) -> str:
        return f"{self.table}.{key}" if self.table else key

    @property
    def environment(self) -> dict[str, str]:
        return cast(dict[str, str], self.values.get("environment", {}))

    @property
    def env_files(self) -> tuple[Path, ...]:
        return cast(tuple[Path, ...], self.values.get("env_files", ()))


def _parse(path: Path) -> dict[str, Any]:
    import tomllib  # here, not at the top: a folder without a settings file never needs it

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        # The message already ends with "(at line N, column M)".
        raise ConfigError(f"{display_path(path)}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{display_path(path)}: cannot read it: {exc}") from None


def _shown(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, str | bool | int | float):
        return json.dumps(value)
    return f"{value} (a {type(value).__name__})"


def _unknown(shown_file: str, dotted: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(dotted, valid, n=1, cutoff=0.6)
    hint = f'did you mean "{close[0]}"?' if close else f"valid keys: {', '.join(valid)}"
    return ConfigError(f'{shown_file}: unknown key "{dotted}"; {hint}')


def _entries(raw: Mapping[str, Any], where: Callable[[str], str]) -> list[tuple[str, Any]]:
    """(dotted key, value) pairs: the [watch] table contributes `watch.include` and so on."""
    entries: list[tuple[str, Any]] = []
    for key, value in raw.items():
        if key not in TABLES:
            entries.append((key, value))
        elif isinstance(value, dict):
            entries.extend((f"{key}.{k}", v) for k, v in value.items())
        else:
            raise ConfigError(f"{where(key)} must be a table; got {_shown(value)}")
    return entries


def _check_table(raw: Mapping[str, Any], folder: Path, settings: Settings) -> dict[str, object]:
    shown_file = display_path(settings.file) if settings.file else "settings"
    checks = dict(KEYS) | {f"{t}.{k}": c for t, sub in TABLES.items() for k, c in sub.items()}
    valid = [settings._dotted(k) for k in [*checks, *TABLES]]
    out: dict[str, object] = {}
    for dotted, value in _entries(raw, lambda k: f'{shown_file}: "{settings._dotted(k)}"'):
        check = checks.get(dotted)
        if check is None:
            raise _unknown(shown_file, settings._dotted(dotted), valid)
        try:
            out[dotted] = check(value, folder)
        except Invalid as exc:
            raise _invalid(shown_file, settings._dotted(dotted), value, exc) from None
    _check_builder(out, shown_file, settings)
    return out


def _check_builder(values: Mapping[str, object], shown_file: str, settings: Settings) -> None:
    """`builder` and `build` must agree: "command" runs `build`, "none" runs nothing."""
    builder, build = values.get("builder"), values.get("build")
    key = f'"{settings._dotted("builder")}"'
    if builder == "command" and build is None:
        raise ConfigError(
            f'{shown_file}: {key} is "command" but no "{settings._dotted("build")}"'
            ' command is set; add one, e.g. build = "npm run build"'
        )
    if builder in ("none", "go", "rust") and build is not None:
        raise ConfigError(
            f'{shown_file}: {key} is "{builder}" but "{settings._dotted("build")}" '
            'is set too; remove one (builder = "command" runs the build command)'
        )


def _invalid(shown_file: str, dotted: str, value: Any, exc: Invalid) -> ConfigError:
    if exc.key is not None:
        dotted, value = f"{dotted}.{exc.key}", value[exc.key]
    got = exc.got or _shown(value)
    return ConfigError(f'{shown_file}: "{dotted}" must be {exc}; got {got}')


def load_settings(folder: Path) -> Settings:
    """The folder's settings; empty Settings when it has neither file."""
    folder = folder.resolve()
    own, pyproject = folder / "workbench.toml", folder / "pyproject.toml"
    if own.is_file():
        settings = Settings(file=own, warnings=_ignored_pyproject(pyproject))
        return _filled(settings, _parse(own), folder)
    if not pyproject.is_file():
        return Settings()
    tool = _parse(pyproject).get("tool", {})
    if not isinstance(tool, dict) or "workbench" not in tool:
        return Settings()
    settings = Settings(file=pyproject, table="tool.workbench")
    if not isinstance(tool["workbench"], dict):
        raise ConfigError(
            f'{display_path(pyproject)}: "tool.workbench" must be a table; '
            f"got {_shown(tool['workbench'])}"
        )
    return _filled(settings, tool["workbench"], folder)


def _filled(settings: Settings, raw: Mapping[str, Any], folder: Path) -> Settings:
    return Settings(
        settings.file, settings.table, _check_table(raw, folder, settings), settings.warnings
    )


def _ignored_pyproject(pyproject: Path) -> tuple[str, ...]:
    """Both files present: workbench.toml wins, and saying so avoids a silent surprise."""
    import tomllib

    try:
        tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ()  # pyproject.toml is not ours to judge when workbench.toml is in charge
    if isinstance(tool, dict) and "workbench" in tool:
        return (
            f"{display_path(pyproject)}: [tool.workbench] is ignored because "
            "workbench.toml is in the same folder",
        )
    return ()
