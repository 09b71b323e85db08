"""Words about a resolved function: the `doctor` description and the missing-handler check."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from workbench.core.config.function import NODE_EXTS, FunctionConfig
from workbench.core.config.settings import display_path

# The order `doctor` lists settings in, with the FunctionConfig field each one reads.
SHOWN = (
    ("name", "name"),
    ("code_dir", "code_dir"),
    ("runtime", "runtime"),
    ("handler", "handler"),
    ("builder", "builder"),
    ("timeout", "timeout_s"),
    ("memory", "memory_mb"),
    ("memory_limit", "memory_limit"),
    ("ephemeral_storage", "ephemeral_storage_mb"),
    ("architecture", "architecture"),
    ("region", "region"),
    ("runtime_client", "runtime_client"),
    ("layers", "layers"),
    ("build", "build"),
    ("start", "start"),
    ("watch.include", "watch_include"),
    ("watch.exclude", "watch_exclude"),
    ("concurrency", "concurrency"),
    ("events_dir", "events_dir"),
    ("theme", None),  # the UI's, from workbench.toml; not part of the function's config
    ("history_max_records", "history_max_records"),
    ("history_max_mb", "history_max_mb"),
    ("log_max_mb", "log_max_mb"),
)


def shown_value(value: object) -> str:
    if value is None or value == ():
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path):
        return display_path(value)
    if isinstance(value, tuple) and all(isinstance(v, Path) for v in value):
        return ", ".join(display_path(v) for v in value)
    if isinstance(value, tuple):
        return shlex.join(str(v) for v in value)
    return str(value)


def describe_function(
    config: FunctionConfig,
    origin: str,
    sources: Mapping[str, str],
    env_sources: Mapping[str, str],
    warnings: Sequence[str],
    theme: str | None = None,
) -> str:
    lines = [f"{config.name} ({origin})"]
    for setting, attr in SHOWN:
        value = shown_value(getattr(config, attr) if attr is not None else theme)
        lines.append(f"  {setting} = {value} ({sources.get(setting, 'default')})")
    lines.append("  environment:" if config.env else "  environment: (none)")
    lines += [f"    {k} = {v} ({env_sources.get(k, '?')})" for k, v in sorted(config.env.items())]
    for title, items in (("notes", config.notes), ("warnings", warnings)):
        if items:
            lines.append(f"  {title}:")
            lines += [f"    - {item}" for item in items]
    return "\n".join(lines)


def _handler_files(config: FunctionConfig) -> list[Path] | None:
    """Files any one of which would hold the handler's module; None when not checkable."""
    module, dot, _ = config.handler.rpartition(".")
    if not dot or not module:
        return None
    if config.family == "python":
        # "pkg.mod.fn" and "pkg/mod.fn" both name pkg/mod.py; layers add /opt/python.
        rel = module.replace(".", "/")
        roots = [config.code_dir, *(layer / "python" for layer in config.layers)]
        return [p for root in roots for p in (root / f"{rel}.py", root / rel / "__init__.py")]
    if config.family == "node":
        return [config.code_dir / f"{module}{ext}" for ext in NODE_EXTS]
    return None


def check_handler_file(config: FunctionConfig, source: str) -> str | None:
    """A warning when the handler's file is missing. Not an error: Lambda too accepts such a
    function and fails at its first invoke, and the file may appear before that."""
    if config.family not in ("python", "node"):
        return None
    files = _handler_files(config)
    if files is None:
        return (
            f"{config.name}: handler {config.handler!r} ({source}) is not MODULE.FUNCTION; "
            "the first invoke will fail with Runtime.MalformedHandlerName"
        )
    if any(f.is_file() for f in files):
        return None
    return (
        f"{config.name}: handler {config.handler} ({source}) needs "
        f"{display_path(files[0])}, which does not exist; the first invoke will fail with "
        "Runtime.ImportModuleError"
    )


_MISSING_MODULE = re.compile(r"No module named '([^']+)'")


def missing_module_hint(config: FunctionConfig, error_body: bytes) -> str | None:
    """For a Runtime.ImportModuleError over a module the function's folder does not hold:
    where its dependencies go (the error itself stays the service's)."""
    try:
        doc = json.loads(error_body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("errorType") != "Runtime.ImportModuleError":
        return None
    found = _MISSING_MODULE.search(str(doc.get("errorMessage", "")))
    if found is None or config.family != "python":
        return None
    top = found.group(1).split(".")[0]
    folder = display_path(config.code_dir)
    if (config.code_dir / "requirements.txt").is_file():
        return (
            f"hint: {top} is not installed for {config.name}: add it to "
            f"{folder}/requirements.txt (workbench installs that file for the function)"
        )
    return (
        f"hint: {top} is not installed for {config.name}: list it in a requirements.txt in "
        f"{folder}, and workbench installs it for the function's runtime as `sam build` does"
    )
