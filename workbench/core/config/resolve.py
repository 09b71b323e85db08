"""One entry point from command-line targets to runnable functions, with every value explained.

Settings, nearest first (the first layer that sets a value wins it whole, lists included):
  1. command-line flags (`overrides`: handler, runtime, timeout, memory, region, runtime_client,
     log_max_mb)
  2. `workbench.toml`, or `[tool.workbench]` in `pyproject.toml`, in the function's code folder
  3. the SAM / CloudFormation template (with `Globals.Function` under each function)
  4. detection from the folder's files (`config.detect`)
  5. Lambda's defaults (3 s, 128 MB, x86_64, us-east-1)

Environment variables merge key by key; later sources win:
  template Environment.Variables < workbench.toml `environment` < workbench.toml `env_files`
  (in order) < `.env` in the code folder < `--env-file` files (in order) < `--env`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from workbench.core import protocol as P
from workbench.core.config.describe import check_handler_file, describe_function
from workbench.core.config.envfiles import DOTENV, layered_env_files
from workbench.core.config.function import ConfigError, FunctionConfig, detect
from workbench.core.config.settings import (
    KEYS,
    RUNTIMES,
    Invalid,
    Settings,
    display_path,
    load_settings,
)
from workbench.core.config.templates import find_template
from workbench.core.vocab import BuilderKind

if TYPE_CHECKING:  # templates are read by sam.py, imported only when there is one (yaml)
    from workbench.core.config.sam import SamFunction, Template

# Our setting name -> FunctionConfig field. Settings name things as workbench.toml does.
FIELDS = {
    "name": "name",
    "code_dir": "code_dir",
    "runtime": "runtime",
    "handler": "handler",
    "timeout": "timeout_s",
    "memory": "memory_mb",
    "memory_limit": "memory_limit",
    "ephemeral_storage": "ephemeral_storage_mb",
    "architecture": "architecture",
    "region": "region",
    "runtime_client": "runtime_client",
    "layers": "layers",
    "build": "build",
    "start": "start",
    "watch.include": "watch_include",
    "watch.exclude": "watch_exclude",
    "concurrency": "concurrency",
    "events_dir": "events_dir",
    "builder": "builder",
    "history_max_records": "history_max_records",
    "history_max_mb": "history_max_mb",
    "log_max_mb": "log_max_mb",
    "python": "python",
    "node": "node",
    "rpc": "rpc_address",
}
FLAGS = {
    "handler": "--handler",
    "runtime": "--runtime",
    "timeout": "--timeout",
    "memory": "--memory",
    "memory_limit": "--no-memory-limit",
    "region": "--region",
    "runtime_client": "--runtime-client",
    "log_max_mb": "--log-max-mb",
    "rpc": "--rpc",
}
ENV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]+")  # Lambda's own pattern for variable names
DETECTED = "detected from the folder's files"
DEFAULT = "default"


@dataclass(frozen=True)
class ResolvedFunction:
    """A runnable function and why each of its values is what it is."""

    config: FunctionConfig
    origin: str  # the folder, or "template.yaml: Resources.Api"
    sources: Mapping[str, str] = field(default_factory=dict)  # setting -> where it came from
    env_sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    target: Path | None = None  # what it was resolved from: its folder, or its template
    logical_id: str | None = None  # its id in the template, when it comes from one
    # the folder's TUI theme (workbench.toml): a preference of the UI's, not the function's
    theme: str | None = None

    def describe(self) -> str:
        """Plain text for `workbench doctor`: each setting, its value and its source."""
        return describe_function(
            self.config, self.origin, self.sources, self.env_sources, self.warnings, self.theme
        )


@dataclass(frozen=True)
class _Target:
    code_dir: Path | None
    origin: str
    sam: SamFunction | None = None


def resolve_functions(
    targets: Sequence[Path],
    *,
    function: str | None = None,
    overrides: Mapping[str, object] | None = None,
    parameter_overrides: Mapping[str, str] | None = None,
    env_files: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
) -> list[ResolvedFunction]:
    """Every function the targets name. A target is a function folder, a template file, or a
    folder holding template.yaml / template.yml (then each function in it, or `function`)."""
    flags = _checked_flags(overrides or {})
    region = str(flags.get("region", P.DEFAULT_REGION))
    found = _expand(targets, function, parameter_overrides or {}, region)
    resolved = [_resolve(t, flags, env_files, env or {}, function is not None) for t in found]
    _refuse_duplicates(resolved)
    return resolved


def _checked_flags(overrides: Mapping[str, object]) -> dict[str, object]:
    flags: dict[str, object] = {}
    for key, value in overrides.items():
        if key not in FLAGS:
            raise ValueError(f"not a command-line setting: {key!r} (one of {', '.join(FLAGS)})")
        if value is None:
            continue
        try:
            flags[key] = str(value) if key == "region" else KEYS[key](value, Path.cwd())
        except Invalid as exc:
            raise ConfigError(f"{FLAGS[key]} must be {exc}; got {value!r}") from None
    return flags


def _expand(
    targets: Sequence[Path], function: str | None, params: Mapping[str, str], region: str
) -> list[_Target]:
    """Targets in the order given; each template stands for its (selected) functions."""
    entries: list[_Target | Template] = []
    for target in targets:
        template = target if target.is_file() else find_template(target)
        if template is not None:
            from workbench.core.config.sam import read_template

            entries.append(read_template(template))
        elif target.is_dir():
            entries.append(_Target(target.resolve(), display_path(target)))
        else:
            raise ConfigError(f"{display_path(target)}: no such file or folder")
    templates = [e for e in entries if not isinstance(e, _Target)]
    if params:
        from workbench.core.config.sam import check_overrides

        check_overrides(
            params,
            [n for t in templates for n in t.parameter_names],
            ", ".join(t.shown for t in templates) or "--parameter-overrides",
        )
    chosen = _with_function(templates, function) if function is not None else templates
    found: list[_Target] = []
    for entry in entries:
        if isinstance(entry, _Target):
            found.append(entry)
        elif entry in chosen:
            found += _template_targets(entry, function, params, region)
    return found


def _template_targets(
    template: Template, function: str | None, params: Mapping[str, str], region: str
) -> list[_Target]:
    # With several templates, each takes the overrides it declares (_expand checked that
    # every override is declared by one of them).
    mine = {k: v for k, v in params.items() if k in template.parameter_names}
    functions = template.functions(function, mine, region)
    if not functions:
        raise ConfigError(
            f"{template.shown}: declares no function that exists with these parameter values"
        )
    return [
        _Target(f.code_dir, f"{template.shown}: Resources.{f.logical_id}", f) for f in functions
    ]


def _with_function(templates: list[Template], function: str) -> list[Template]:
    """The templates that declare `function`; none is an error listing what they do declare."""
    if not templates:
        raise ConfigError(
            f"--function {function}: picks a function of a SAM template, and "
            "none of the targets is a template"
        )
    having = [t for t in templates if function in t.function_ids]
    if not having:
        from workbench.core.config.sam import pick_id

        pick_id(
            [i for t in templates for i in t.function_ids],
            function,
            ", ".join(t.shown for t in templates),
        )
    return having


def _resolve(
    target: _Target,
    flags: Mapping[str, object],
    env_files: Sequence[Path],
    env: Mapping[str, str],
    picked: bool,
) -> ResolvedFunction:
    sam = target.sam
    if sam is not None and (sam.problem or sam.code_dir is None):
        hint = "" if picked else "; to run the template's other functions, name one with --function"
        raise ConfigError(f"{display_path(sam.template)}: {sam.problem}{hint}")
    assert target.code_dir is not None
    settings = load_settings(target.code_dir)
    chosen, sources = _layered(flags, settings, sam)
    if sam is not None and chosen.get("runtime") not in (None, *RUNTIMES):
        hint = "" if picked else "; to run the template's other functions, name one with --function"
        raise ConfigError(
            f"{display_path(sam.template)}: {sam.logical_id} cannot run locally: runtime "
            f"{chosen['runtime']} is not one workbench runs ({', '.join(RUNTIMES)}){hint}"
        )
    base = detect(
        target.code_dir,
        runtime=_str(chosen.get("runtime")),
        handler=_str(chosen.get("handler")),
        # the setting's validator let through only one of BUILDER_KINDS
        builder=cast(BuilderKind | None, chosen.get("builder")),
        attached=chosen.get("rpc") is not None,
    )
    _fill_from_detection(base, sam, chosen, sources)
    theme = _str(settings.values.get("theme"))
    sources["theme"] = settings.where("theme") if theme is not None else DEFAULT
    values, env_sources = _environment(target.code_dir, settings, sam, env_files, env)
    # Any: each value was checked by its KEYS validator (or came from detection) on the way in.
    changes: dict[str, Any] = {FIELDS[k]: v for k, v in chosen.items()}
    config = replace(
        base, env=values, config_files=_config_files(target, settings, env_files), **changes
    )
    _check_runtime_client(config, sources)
    _check_builder(config, sources)
    _check_attached(config, sources)
    warnings = [*settings.warnings, *(sam.warnings if sam else ())]
    missing = check_handler_file(config, sources.get("handler", DETECTED))
    return ResolvedFunction(
        config,
        target.origin,
        sources,
        env_sources,
        tuple(warnings + ([missing] if missing else [])),
        sam.template if sam else target.code_dir,
        sam.logical_id if sam else None,
        theme,
    )


def _config_files(
    target: _Target, settings: Settings, env_files: Sequence[Path]
) -> tuple[Path, ...]:
    """Every file whose edit changes the configuration, whether it exists yet or not."""
    assert target.code_dir is not None
    folder = target.code_dir
    files = [
        folder / "workbench.toml",
        folder / "pyproject.toml",
        *settings.env_files,
        folder / DOTENV,
        *env_files,
        *([target.sam.template] if target.sam else []),
    ]
    return tuple(dict.fromkeys(p.resolve() for p in files))


def resolve_again(
    fn: ResolvedFunction,
    *,
    overrides: Mapping[str, object] | None = None,
    parameter_overrides: Mapping[str, str] | None = None,
    env_files: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
) -> ResolvedFunction:
    """The same function read again from its files, with the same command-line values (live
    reload after a settings, env file or template edit)."""
    flags = _checked_flags(overrides or {})
    if fn.target is None:
        raise ValueError("resolve_again needs a ResolvedFunction made by resolve_functions")
    if fn.logical_id is None:
        target = _Target(fn.target, fn.origin)
    else:
        from workbench.core.config.sam import read_template

        region = str(flags.get("region", P.DEFAULT_REGION))
        found = _template_targets(
            read_template(fn.target), fn.logical_id, parameter_overrides or {}, region
        )
        target = found[0]
    return _resolve(target, flags, env_files, env or {}, True)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _layered(
    flags: Mapping[str, object], settings: Settings, sam: SamFunction | None
) -> tuple[dict[str, object], dict[str, str]]:
    """Nearest layer first: the first that sets a value wins it."""
    layers: list[tuple[Mapping[str, object], Callable[[str], str]]] = [
        (flags, lambda k: FLAGS[k]),
        (settings.values, settings.where),
    ]
    if sam is not None:
        layers.append((sam.values, lambda k: sam.sources[k]))
    chosen: dict[str, object] = {}
    sources: dict[str, str] = {}
    for key in FIELDS:
        for values, where in layers:
            if key in values:
                chosen[key], sources[key] = values[key], where(key)
                break
    return chosen, sources


def _fill_from_detection(
    base: FunctionConfig,
    sam: SamFunction | None,
    chosen: dict[str, object],
    sources: dict[str, str],
) -> None:
    """Sources for what no layer set: the logical id, detection, or Lambda's defaults."""
    if sam is not None and "name" not in chosen:
        chosen["name"] = sam.logical_id
        sources["name"] = f"logical id in {display_path(sam.template)}"
    sources.setdefault("name", "the folder's name")
    sources["code_dir"] = sam.sources["code_dir"] if sam is not None else "the folder given"
    for key in ("runtime", "handler", "builder"):
        sources.setdefault(key, DETECTED if getattr(base, key) else DEFAULT)
    for key in FIELDS:
        sources.setdefault(key, DEFAULT)


def _environment(
    code_dir: Path,
    settings: Settings,
    sam: SamFunction | None,
    env_files: Sequence[Path],
    env: Mapping[str, str],
) -> tuple[dict[str, str], dict[str, str]]:
    values: dict[str, str] = {}
    sources: dict[str, str] = {}

    def put(new: Mapping[str, str], where: Callable[[str], str] | str) -> None:
        for key, value in new.items():
            values[key], sources[key] = value, where if isinstance(where, str) else where(key)

    if sam is not None:
        put(sam.environment, lambda k: sam.env_sources[k])
    put(settings.environment, lambda k: settings.where(f"environment.{k}"))
    configured = [(p, settings.where("env_files")) for p in settings.env_files]
    for file in layered_env_files(code_dir, configured, env_files):
        put(file.values, file.shown)
    put(env, "--env")
    _check_env_names(sources)
    return values, sources


def _check_env_names(sources: Mapping[str, str]) -> None:
    for key, where in sources.items():
        if key in P.RESERVED_KEYS:
            raise ConfigError(
                f"Lambda reserves the environment variable {key} and does not let "
                f"a function set it; it is set in {where}"
            )
        if not ENV_NAME.fullmatch(key):
            raise ConfigError(
                f"{where}: {key!r} is not a name Lambda accepts for an environment "
                "variable (a letter, then letters, digits and _; two characters "
                "at least)"
            )


def _check_attached(config: FunctionConfig, sources: Mapping[str, str]) -> None:
    if config.rpc_address and not config.go_rpc:
        raise ConfigError(
            f"rpc {config.rpc_address} ({sources['rpc']}) attaches to a go1.x function over "
            f"net/rpc; {config.name} runs {config.runtime} ({sources['runtime']})"
        )


def _check_runtime_client(config: FunctionConfig, sources: Mapping[str, str]) -> None:
    if config.runtime_client == "awslambdaric" and config.family != "python":
        raise ConfigError(
            f"runtime_client awslambdaric ({sources['runtime_client']}) is for "
            f"Python functions; {config.name} runs {config.runtime}"
        )


def _check_builder(config: FunctionConfig, sources: Mapping[str, str]) -> None:
    if config.builder in ("go", "rust") and config.family != "provided":
        raise ConfigError(
            f"builder {config.builder} ({sources['builder']}) compiles a custom "
            f"runtime (provided.al2023); {config.name} runs {config.runtime} "
            f"({sources['runtime']})"
        )


def _refuse_duplicates(resolved: Sequence[ResolvedFunction]) -> None:
    seen: dict[str, ResolvedFunction] = {}
    for item in resolved:
        first = seen.setdefault(item.config.name, item)
        if first is not item:
            raise ConfigError(
                f'two functions are named "{item.config.name}": {first.origin} and '
                f"{item.origin}; set a different `name` in one's workbench.toml"
            )
