"""What a function is: where its code lives, how it starts, and its Lambda settings.

Detection from a folder is deliberately simple here and explains itself; layered configuration
(workbench.toml, SAM templates) builds on FunctionConfig.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from workbench.core import protocol as P
from workbench.core.vocab import Architecture, BuilderKind, Family, RuntimeClient

PYTHON_MODULE_GUESSES = ("lambda_function", "app", "handler", "main", "index", "function")
PYTHON_FUNC_GUESSES = ("lambda_handler", "handler", "main")
NODE_EXTS = (".js", ".mjs", ".cjs")
PROVIDED = ("provided", "provided.al2", "provided.al2023")
# the retired Go runtime: the binary serves net/rpc on _LAMBDA_SERVER_PORT (runtimes/gorpc)
GO_RPC = "go1.x"
DEFAULT_HISTORY_RECORDS = 5000
BUILD_DIR = Path(".workbench") / "build"  # a builder's output, relative to code_dir
# installed dependencies (reload/dependencies.py): one folder per set, DEPS_CURRENT names
# the one in use
DEPS_DIR = Path(".workbench") / "deps"
DEPS_CURRENT = "current"
DEFAULT_HISTORY_MB = 512
# what history keeps of one invocation's log (its beginning and its end past that)
DEFAULT_LOG_MB = 4


def venv_site_packages(code_dir: Path) -> Path | None:
    """The site-packages of a `.venv` in the function's folder, when there is one."""
    found = sorted((code_dir / ".venv" / "lib").glob("python3*/site-packages"))
    return found[-1] if found else None


class ConfigError(Exception):
    """A configuration problem, worded for the person who has to fix it."""


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    code_dir: Path
    runtime: str
    handler: str
    timeout_s: float = P.DEFAULT_TIMEOUT_S
    memory_mb: int = P.DEFAULT_MEMORY_MB
    env: dict[str, str] = field(default_factory=dict)
    region: str = P.DEFAULT_REGION
    account: str = P.DEFAULT_ACCOUNT
    architecture: Architecture = "x86_64"
    runtime_client: RuntimeClient = "builtin"
    notes: tuple[str, ...] = ()  # what detection found and assumed, for `doctor` and the UI
    # Appended by the configuration layer (workbench.toml, SAM); defaults keep older callers valid.
    # "go" / "rust": compiled into .workbench/build/bootstrap first; "none" / "command": chosen
    # in settings (no build at all / the `build` command); None: whatever the folder implies
    builder: BuilderKind | None = None
    build: str | None = None  # a shell command run in code_dir before the function starts
    start: tuple[str, ...] | None = None  # replaces how the runtime starts, when set
    layers: tuple[Path, ...] = ()  # local layer folders, in the order Lambda would stack them
    watch_include: tuple[str, ...] = ()  # globs; empty means everything under code_dir
    watch_exclude: tuple[str, ...] = ()
    # past memory_mb the runtime is killed, as Lambda kills it (--no-memory-limit: not)
    memory_limit: bool = True
    ephemeral_storage_mb: int = 512  # the size of its /tmp, as Lambda's EphemeralStorage
    concurrency: int = 1  # execution environments kept side by side
    events_dir: str = "events"  # saved events, relative to code_dir
    history_max_records: int = DEFAULT_HISTORY_RECORDS  # the history keeps the newest this many
    history_max_mb: int = DEFAULT_HISTORY_MB  # ... and about this many MB of them
    log_max_mb: int = DEFAULT_LOG_MB  # ... and of each invocation's log at most this many MB
    # Files whose edit changes this configuration (settings, env files, template), existing or
    # not: live reload reads the configuration again when one of them is saved.
    config_files: tuple[Path, ...] = ()
    # the interpreter to run a Python / Node.js runtime on (`python` / `node` in workbench.toml:
    # a path or a command name); None: the one found for the runtime's version
    python: str | None = None
    node: str | None = None
    # go1.x only: HOST:PORT of a function the user started themselves (under a debugger, say),
    # which workbench invokes over net/rpc and neither starts, restarts nor stops
    rpc_address: str | None = None

    @property
    def go_rpc(self) -> bool:
        """Run as the go1.x runtime did: over net/rpc, not the Runtime API."""
        return self.runtime == GO_RPC

    def executable(self) -> Path:
        """The file a compiled function runs: what a builder made, else for go1.x the file
        the handler names (go1.x's handler was the binary's name), else `bootstrap`."""
        if self.builder in ("go", "rust") and not self.build:
            return self.built_bootstrap()
        if self.go_rpc and self.handler and (self.code_dir / self.handler).is_file():
            return self.code_dir / self.handler
        return self.code_dir / "bootstrap"

    def built_bootstrap(self) -> Path:
        """Where a builder puts the function's executable (go, rust): the runtime starts it."""
        return self.code_dir / BUILD_DIR / "bootstrap"

    def dependencies_dir(self) -> Path | None:
        """Where the function imports its own dependencies from, when it has any: a `.venv`
        in its folder, else the set workbench installed from its requirements."""
        if self.family != "python":
            return None
        venv = venv_site_packages(self.code_dir)
        if venv is not None:
            return venv
        root = self.code_dir / DEPS_DIR
        try:
            key = (root / DEPS_CURRENT).read_text().strip()
        except OSError:
            return None
        folder = root / key
        return folder if key and folder.is_dir() else None

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"

    @property
    def family(self) -> Family:
        if self.runtime.startswith("python"):
            return "python"
        if self.runtime.startswith("nodejs"):
            return "node"
        return "provided"

    def with_overrides(self, **changes: object) -> FunctionConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def local_python_runtime() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def local_node_runtime() -> str:
    node = shutil.which("node")
    if node is None:
        return "nodejs20.x"
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=5).stdout
        return f"nodejs{int(out.strip().lstrip('v').split('.')[0])}.x"
    except (OSError, ValueError, subprocess.SubprocessError):
        return "nodejs20.x"


def _python_candidates(folder: Path) -> list[tuple[str, str]]:
    """Every module's first plausible handler, best guess first: one per file."""
    files = sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith(("test_", "_")))
    ordered = [m for m in PYTHON_MODULE_GUESSES if m in files] + [
        m for m in files if m not in PYTHON_MODULE_GUESSES
    ]
    found: list[tuple[str, str]] = []
    for module in ordered:
        source = (folder / f"{module}.py").read_text(errors="replace")
        for fn in PYTHON_FUNC_GUESSES:
            if re.search(rf"^(async\s+)?def\s+{fn}\s*\(", source, re.MULTILINE):
                found.append((f"{module}.{fn}", f"found def {fn}() in {module}.py"))
                break
    return found


def _python_handler(folder: Path) -> tuple[str, str] | None:
    found = _python_candidates(folder)
    return found[0] if found else None


def _other_handlers_note(folder: Path, chosen: str) -> str | None:
    """The guess stands, but a second candidate means the guess may be wrong: say how to pick."""
    others = [h for h, _ in _python_candidates(folder) if h != chosen]
    if not others:
        return None
    return (
        f"also found {', '.join(others)}; to use another handler, set it in "
        f'workbench.toml, e.g. handler = "{others[0]}"'
    )


BUILDERS: dict[BuilderKind, tuple[str, str]] = {
    "go": (
        "go.mod",
        "Go module: built with `go build -tags lambda.norpc` into .workbench/build/bootstrap",
    ),
    "rust": (
        "Cargo.toml",
        "Rust crate: built with `cargo build --release` into .workbench/build/bootstrap",
    ),
}


GO_RPC_NOTE = (
    "Go module, runtime go1.x: built with `go build` (no lambda.norpc tag, so it serves "
    "net/rpc) into .workbench/build/bootstrap"
)


def _builder(folder: Path) -> BuilderKind | None:
    """Compiled custom runtimes: a bootstrap already in the folder wins over building one."""
    if (folder / "bootstrap").is_file():
        return None
    return next(
        (kind for kind, (marker, _) in BUILDERS.items() if (folder / marker).is_file()), None
    )


def _node_handler(folder: Path) -> tuple[str, str] | None:
    for stem in ("index", "app", "handler", "main"):
        for ext in NODE_EXTS:
            if (folder / f"{stem}{ext}").is_file():
                return f"{stem}.handler", f"found {stem}{ext}; assumed its export `handler`"
    return None


def _compiled(folder: Path, chosen: BuilderKind | None) -> BuilderKind | None:
    """The compiled kind (go, rust): the `builder` setting's, else what the folder shows."""
    if chosen in BUILDERS:
        return chosen
    return None if chosen == "none" else _builder(folder)


def detect(
    folder: Path,
    runtime: str | None = None,
    handler: str | None = None,
    builder: BuilderKind | None = None,
    attached: bool = False,
) -> FunctionConfig:
    """Decide the runtime and handler from the folder, unless the caller already knows
    (`builder`: the setting, one of BUILDER_KINDS, when there is one)."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: not a folder. Give the folder that holds the function's code."
        )
    notes: list[str] = []
    bootstrap = folder / "bootstrap"
    chosen, builder = builder, _compiled(folder, builder)
    if runtime is None:
        if bootstrap.is_file():
            runtime = "provided.al2023"
            notes.append("found an executable `bootstrap`: custom runtime (provided.al2023)")
        elif builder is not None:
            runtime = "provided.al2023"
        elif (folder / "package.json").is_file() or _node_handler(folder):
            runtime = local_node_runtime()
            notes.append(f"found Node.js code: runtime {runtime} (from the local node)")
        elif any(folder.glob("*.py")):
            runtime = local_python_runtime()
            notes.append(f"found Python code: runtime {runtime} (from this interpreter)")
        else:
            raise ConfigError(
                f"{folder}: cannot tell what kind of function this is (no bootstrap, *.py, "
                "index.js/mjs, package.json, go.mod or Cargo.toml). Pass --runtime (python3.12, "
                "nodejs20.x, provided.al2023) and --handler, or set runtime and handler in "
                "workbench.toml."
            )
    family = (
        "python"
        if runtime.startswith("python")
        else ("node" if runtime.startswith("nodejs") else "provided")
    )
    if family == "provided" and runtime not in (*PROVIDED, GO_RPC):
        raise ConfigError(
            f"unknown runtime {runtime!r}: use python3.X, nodejsNN.x, provided.al2023 or go1.x"
        )
    if family != "provided":
        builder = None
    elif builder == "go" and runtime == GO_RPC and chosen != "command":
        notes.append(GO_RPC_NOTE)
    elif builder is not None and chosen != "command":
        notes.append(BUILDERS[builder][1])
    if handler is None:
        finders = {"python": _python_handler, "node": _node_handler}
        found = finders[family](folder) if family in finders else None
        if found:
            handler, why = found
            notes.append(f"handler {handler}: {why}")
            other = _other_handlers_note(folder, handler) if family == "python" else None
            notes.extend([other] if other else [])
        elif family == "provided":
            handler = "bootstrap"
        else:
            raise ConfigError(
                f"{folder}: found no handler function. Pass --handler MODULE.FUNCTION "
                '(for example --handler app.handler), or set handler = "app.handler" in '
                "workbench.toml."
            )
    # a build command leaves its own bootstrap, perhaps not made yet
    if (
        family == "provided"
        and builder is None
        and chosen != "command"
        and not os.access(bootstrap, os.X_OK)
        and not (runtime == GO_RPC and handler and os.access(folder / handler, os.X_OK))
        and not attached  # the user runs it: nothing here is started
    ):
        hint = "chmod +x bootstrap" if bootstrap.is_file() else "add an executable `bootstrap`"
        raise ConfigError(f"{folder}: a custom runtime needs an executable bootstrap ({hint}).")
    return FunctionConfig(
        name=folder.name,
        code_dir=folder,
        runtime=runtime,
        handler=handler,
        notes=tuple(notes),
        builder=chosen if chosen in ("none", "command") else builder,
    )
