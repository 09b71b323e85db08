"""A function's own dependencies, installed as `sam build` installs them, and kept warm.

Lambda runs a function with its dependencies beside its code (`sam build` pip-installs
requirements.txt into the artefact). Locally they go into the code folder's
`.workbench/deps/<key>/`, where the key hashes the requirement file and the interpreter that
will import them; `.workbench/deps/current` names the set in use, and the environment puts
that folder on the function's path right after its code. An unchanged key installs nothing,
so a save costs a hash of one small file. A failed install leaves the last good set in use.

What counts as the function's requirements, first found wins: a `.venv` in the folder (the
developer manages it: its site-packages is used as it is, nothing is installed); a
`requirements.txt`; the `[project] dependencies` of a `pyproject.toml`.

A Node function whose package.json has dependencies gets `npm ci` (or `npm install` without a
lock file) in its folder when it has no node_modules yet, as `sam build` runs it.

pip itself does the installing, with the interpreter the function runs on, so that wheels
match its version; aws-lambda-builders (what SAM uses) would add a dependency tree of its own
to do the same pip call.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from workbench.core.bus import Bus
from workbench.core.config.function import (
    DEPS_CURRENT,
    DEPS_DIR,
    FunctionConfig,
    venv_site_packages,
)
from workbench.core.reload.builders import Builder, BuildError, BuildResult

KEPT = 2  # sets kept: the one in use and the one before it


@dataclass(frozen=True, slots=True)
class Requirements:
    """What to install: pip arguments, and the bytes whose change means a reinstall."""

    source: str  # for messages: "requirements.txt", "pyproject.toml"
    pip_args: tuple[str, ...]
    content: bytes


def requirements_of(code_dir: Path) -> Requirements | None:
    req = code_dir / "requirements.txt"
    if req.is_file():
        return Requirements("requirements.txt", ("-r", str(req)), req.read_bytes())
    project = code_dir / "pyproject.toml"
    if project.is_file():
        import tomllib  # only a folder with a pyproject.toml needs the parser

        try:
            doc = tomllib.loads(project.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # settings.py reports a broken pyproject.toml in words
        deps = doc.get("project", {}).get("dependencies")
        if isinstance(deps, list) and deps and all(isinstance(d, str) for d in deps):
            return Requirements("pyproject.toml", tuple(deps), "\n".join(deps).encode())
    return None


class PythonDependencyBuilder(Builder):
    """The install step of one function for the interpreter it runs on: a build whose output
    is a folder of packages rather than a bootstrap."""

    kind = "dependencies"
    has_artefact = False

    def __init__(self, cfg: FunctionConfig, interpreter: str, bus: Bus) -> None:
        super().__init__(cfg, bus)
        self.interpreter = interpreter
        self.root = cfg.code_dir / DEPS_DIR
        self._key: str | None = None

    def wanted(self) -> Requirements | None:
        if self.cfg.family != "python" or venv_site_packages(self.cfg.code_dir) is not None:
            return None
        return requirements_of(self.cfg.code_dir)

    def key(self, reqs: Requirements) -> str:
        digest = hashlib.sha256(reqs.content)
        digest.update(f"\0{self.interpreter}\0{_mtime(self.interpreter)}".encode())
        return digest.hexdigest()[:16]

    @property
    def needed(self) -> bool:  # type: ignore[override]  # a fact of the folder, not the kind
        """The requirements have no installed set yet: costs a hash of one small file."""
        reqs = self.wanted()
        if reqs is None:
            return False
        try:
            return (self.root / DEPS_CURRENT).read_text().strip() != self.key(reqs)
        except OSError:
            return True

    async def command(self) -> tuple[list[str], dict[str, str]]:
        reqs = self.wanted()
        if reqs is None:
            raise BuildError("the requirements went away")
        self._key = self.key(reqs)
        partial = self.root / f"{self._key}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        self.line(f"installing {reqs.source} for {self.interpreter}")
        argv = [
            self.interpreter,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            str(partial),
            *reqs.pip_args,
        ]
        # the user's pip settings (an index mirror) apply; those that fight --target do not
        fighting = ("PIP_TARGET", "PIP_PREFIX", "PIP_USER", "PIP_REQUIRE_VIRTUALENV")
        env = {k: v for k, v in os.environ.items() if k not in fighting}
        env["PYTHONNOUSERSITE"] = "1"
        return argv, env

    async def install(self) -> Path | None:
        """pip succeeded: the new set becomes current, atomically, and older ones go."""
        assert self._key is not None
        final = self.root / self._key
        shutil.rmtree(final, ignore_errors=True)
        (self.root / f"{self._key}.partial").rename(final)
        staged = self.root / f"{DEPS_CURRENT}.new"
        staged.write_text(self._key + "\n")
        # atomically: an environment starting now sees the old set or the new one
        staged.replace(self.root / DEPS_CURRENT)
        self._prune(keep=self._key)
        return None

    def _prune(self, keep: str) -> None:
        sets = [p for p in self.root.iterdir() if p.is_dir() and p.name != keep]
        sets.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in sets[KEPT - 1 :] + [p for p in sets if p.name.endswith(".partial")]:
            shutil.rmtree(old, ignore_errors=True)


def _mtime(path: str) -> int:
    """An interpreter upgraded in place is another interpreter for compiled wheels."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


class NodeDependencyBuilder(Builder):
    """`npm ci` (with a lock file) or `npm install` in the folder of a Node function whose
    package.json has dependencies and no node_modules yet, as `sam build` runs it. A
    node_modules that workbench did not install is the developer's, and left alone; one that
    it did is installed again when package.json or the lock file changes."""

    kind = "dependencies"
    has_artefact = False

    def __init__(self, cfg: FunctionConfig, npm: str, bus: Bus) -> None:
        super().__init__(cfg, bus)
        self.npm = npm
        self.marker = cfg.code_dir / DEPS_DIR / "node_modules.key"

    def key(self) -> str:
        digest = hashlib.sha256()
        for name in ("package.json", "package-lock.json"):
            try:
                digest.update((self.cfg.code_dir / name).read_bytes())
            except OSError:
                digest.update(b"\0")
        return digest.hexdigest()[:16]

    @property
    def needed(self) -> bool:  # type: ignore[override]  # a fact of the folder, not the kind
        if not (self.cfg.code_dir / "node_modules").exists():
            return True
        try:
            return self.marker.read_text().strip() != self.key()
        except OSError:
            return False  # the developer's own node_modules

    async def command(self) -> tuple[list[str], dict[str, str]]:
        lock = (self.cfg.code_dir / "package-lock.json").is_file()
        verb = "ci" if lock else "install"
        self.line(f"running npm {verb} for {self.cfg.name}")
        return [self.npm, verb, "--no-audit", "--no-fund"], dict(os.environ)

    async def install(self) -> Path | None:
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(self.key() + "\n")  # after npm: `install` may write the lock
        return None


def _node_dependencies(code_dir: Path) -> bool:
    try:
        doc = json.loads((code_dir / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and bool(doc.get("dependencies"))


def dependencies_for(cfg: FunctionConfig, bus: Bus) -> Builder | None:
    """The install step, when the function has dependencies to install: Python requirements
    for the interpreter its runtime starts, or a Node package's (not when a `start` command of
    its own runs the function)."""
    from workbench.core.runtimes import launch_for

    if cfg.start:
        return None
    if cfg.family == "python" and requirements_of(cfg.code_dir) is not None:
        return PythonDependencyBuilder(cfg, launch_for(cfg).argv[0], bus)
    if cfg.family == "node" and _node_dependencies(cfg.code_dir):
        npm = shutil.which("npm")
        return NodeDependencyBuilder(cfg, npm, bus) if npm is not None else None
    return None


async def install_then_build(
    cfg: FunctionConfig,
    bus: Bus,
    builder: Builder,
    deps: Builder | None = None,
) -> BuildResult:
    """Dependencies first (when their requirements changed), then the function's own build;
    the first failure ends it. The time is both together: what a save waits for."""
    deps = deps if deps is not None else dependencies_for(cfg, bus)
    spent = 0.0
    if deps is not None and deps.needed:
        installed = await deps.build()
        if not installed.ok:
            return installed
        spent = installed.duration_ms
    built = await builder.build()
    return replace(built, duration_ms=built.duration_ms + spent)
