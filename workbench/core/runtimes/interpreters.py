"""Which interpreter runs a function: a Python or Node.js on this machine that matches its runtime.

Where to look, in order: the configured one (`python = ...` / `node = ...` in workbench.toml),
then PATH, then the version managers' own folders (pyenv and uv for Python; nvm, fnm and volta
for Node). The first exact match wins. With none, the nearest version runs (the newer one on a
tie: code written for 3.10 is likelier to run on 3.11 than on 3.9), and the Choice says so.

Everything is found once per process: `workbench invoke` starts one environment, and a server
starts one per cold start, so probing on every launch would cost a subprocess each time. Versions
come from names (python3.12, versions/3.12.1, v22.3.0) wherever a name carries them; only a
configured interpreter and PATH's `node` are asked (`--version`), once each.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from workbench.core.config.function import ConfigError

Kind = Literal["python", "node"]
PYTHON_MIN_MINOR = 9  # the bundled client runs on 3.9 and later
PYTHON_MINORS = range(PYTHON_MIN_MINOR, 20)
# Environment variables discovery reads: a change to one (a test, a shell) is a fresh lookup.
ENV_KEYS = (
    "PATH",
    "HOME",
    "PYENV_ROOT",
    "UV_PYTHON_INSTALL_DIR",
    "XDG_DATA_HOME",
    "NVM_DIR",
    "FNM_DIR",
    "VOLTA_HOME",
)


@dataclass(frozen=True, slots=True)
class Interpreter:
    kind: Kind
    path: str
    number: int  # Python: the minor version (3.N); Node.js: the major version
    source: str  # where it was found, for messages: "PATH", "pyenv", "nvm", ...

    @property
    def release(self) -> str:
        return f"3.{self.number}" if self.kind == "python" else str(self.number)

    @property
    def shown(self) -> str:
        return f"{'Python' if self.kind == 'python' else 'Node.js'} {self.release}"


@dataclass(frozen=True, slots=True)
class Choice:
    """The interpreter a runtime runs on, and whether it is the one the runtime names."""

    runtime: str
    interpreter: Interpreter
    wanted: int

    @property
    def exact(self) -> bool:
        return self.interpreter.number == self.wanted

    @property
    def version_tag(self) -> str:
        """INIT_START's `Runtime Version`: the release that really runs (`python:3.11.local`)."""
        prefix = "python" if self.interpreter.kind == "python" else "nodejs"
        return f"{prefix}:{self.interpreter.release}.local"

    @property
    def runs_on(self) -> str:
        """Short, for a status line: `Python 3.13`."""
        return self.interpreter.shown

    @property
    def note(self) -> str | None:
        """One line for stderr, doctor and the TUI when the runtime does not get its version."""
        if self.exact:
            return None
        i, wanted = self.interpreter, _wanted_name(self.interpreter.kind, self.wanted)
        if i.source.startswith(("python =", "node =")):
            return (
                f"{self.runtime}: the configured {i.kind} ({i.source}) is {i.shown}, not "
                f"{wanted}; running on it ({i.path})"
            )
        return (
            f"{self.runtime}: no {wanted} found on this machine; running on the nearest, "
            f"{i.shown} ({i.path}, from {i.source})"
        )


def _wanted_name(kind: Kind, number: int) -> str:
    return f"Python 3.{number}" if kind == "python" else f"Node.js {number}"


def wanted_number(runtime: str) -> int:
    """python3.12 -> 12, nodejs22.x -> 22."""
    if runtime.startswith("python"):
        return int(runtime.removeprefix("python").split(".")[1])
    return int(runtime.removeprefix("nodejs").removesuffix(".x"))


def choose(runtime: str, configured: str | None = None, where: str = "workbench.toml") -> Choice:
    """The interpreter `runtime` runs on. `configured`: the `python` / `node` setting (a path
    or a command name); `where` names it in messages. ConfigError when nothing can run it."""
    kind: Kind = "python" if runtime.startswith("python") else "node"
    return _choose(runtime, kind, configured, where, _env_key())


def clear_cache() -> None:
    """Forget what was found (tests that build fake installations, a long session)."""
    _choose.cache_clear()
    _candidates.cache_clear()
    _probe.cache_clear()


def _env_key() -> tuple[str | None, ...]:
    return tuple(os.environ.get(k) for k in ENV_KEYS)


@cache
def _choose(
    runtime: str, kind: Kind, configured: str | None, where: str, env: tuple[str | None, ...]
) -> Choice:
    wanted = wanted_number(runtime)
    if configured:
        return Choice(runtime, _configured(kind, configured, where), wanted)
    found = _candidates(kind, env)
    exact = [c for c in found if c.number == wanted]
    if exact:
        return Choice(runtime, exact[0], wanted)
    if not found:
        raise ConfigError(_none_found(runtime, kind, wanted))
    # nearest first; on a tie the newer; then the search order
    best = min(enumerate(found), key=lambda ic: (abs(ic[1].number - wanted), -ic[1].number, ic[0]))[
        1
    ]
    return Choice(runtime, best, wanted)


def _none_found(runtime: str, kind: Kind, wanted: int) -> str:
    if kind == "python":
        return (
            f"runtime {runtime} needs a Python 3.{PYTHON_MIN_MINOR} or later; none was found on "
            f"PATH, in pyenv or in uv. Install Python 3.{wanted} (e.g. `pyenv install 3.{wanted}` "
            f'or `uv python install 3.{wanted}`), or set python = "/path/to/python3" in '
            "workbench.toml."
        )
    return (
        f"runtime {runtime} needs `node` on PATH; none was found (nor in nvm, fnm or volta). "
        f'Install Node.js {wanted}, or set node = "/path/to/node" in workbench.toml.'
    )


def _configured(kind: Kind, value: str, where: str) -> Interpreter:
    path = shutil.which(value) if os.sep not in value else value
    if path is None or not os.access(path, os.X_OK) or os.path.isdir(path):
        raise ConfigError(f"{where}: {kind} = {value!r} is not an executable found here")
    number = _probe(kind, path)
    if number is None:
        raise ConfigError(
            f"{where}: {kind} = {value!r} did not answer `--version` as "
            f"{'Python 3' if kind == 'python' else 'Node.js'} does"
        )
    if kind == "python" and number < PYTHON_MIN_MINOR:
        raise ConfigError(
            f"{where}: python = {value!r} is Python 3.{number}; workbench's Python runtime "
            f"client needs 3.{PYTHON_MIN_MINOR} or later"
        )
    return Interpreter(kind, path, number, f"{kind} = in {where}")


@cache
def _probe(kind: Kind, path: str) -> int | None:
    """Ask an executable its version, once per process: `Python 3.12.1` / `v22.3.0`."""
    try:
        out = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=15,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip()
    pattern = r"Python 3\.(\d+)" if kind == "python" else r"v(\d+)\."
    match = re.match(pattern, text)
    return int(match.group(1)) if match else None


@cache
def _candidates(kind: Kind, env: tuple[str | None, ...]) -> tuple[Interpreter, ...]:
    del env  # part of the cache key only
    found = _pythons() if kind == "python" else _nodes()
    seen: set[tuple[str, int]] = set()
    unique = []
    for item in found:  # one installation found twice (PATH and pyenv) counts once
        key = (os.path.realpath(item.path), item.number)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return tuple(unique)


def _home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def _versioned(folder: Path, pattern: str, exe: str) -> list[tuple[tuple[int, ...], Path]]:
    """Installations under `folder` whose name matches `pattern` (groups: version numbers),
    newest first, with the executable at `exe` inside each."""
    if not folder.is_dir():
        return []
    out = []
    for entry in folder.iterdir():
        match = re.fullmatch(pattern, entry.name)
        path = entry / exe
        if match and os.access(path, os.X_OK):
            out.append((tuple(int(g) for g in match.groups()), path))
    return sorted(out, key=lambda vp: vp[0], reverse=True)


def _is_shim(path: str) -> bool:
    # pyenv's shims pick a version from .python-version files and fail for one not selected;
    # pyenv's versions are searched directly instead
    parts = Path(path).parts
    return "shims" in parts and any("pyenv" in p for p in parts)


def _pythons() -> list[Interpreter]:
    found: list[Interpreter] = []
    for minor in PYTHON_MINORS:
        path = shutil.which(f"python3.{minor}")
        if path is not None and not _is_shim(path):
            found.append(Interpreter("python", path, minor, "PATH"))
    pyenv = Path(os.environ.get("PYENV_ROOT") or _home() / ".pyenv") / "versions"
    for (major, minor, _), exe in _versioned(pyenv, r"(\d+)\.(\d+)\.(\d+)", "bin/python3"):
        if major == 3 and minor >= PYTHON_MIN_MINOR:
            found.append(Interpreter("python", str(exe), minor, "pyenv"))
    data = Path(os.environ.get("XDG_DATA_HOME") or _home() / ".local" / "share")
    uv = Path(os.environ.get("UV_PYTHON_INSTALL_DIR") or data / "uv" / "python")
    # cpython-3.12.7-linux-x86_64-gnu; free-threaded builds (3.13.0+freethreaded) are left out
    for (major, minor, _), exe in _versioned(uv, r"cpython-(\d+)\.(\d+)\.(\d+)-.*", "bin/python3"):
        if major == 3 and minor >= PYTHON_MIN_MINOR:
            found.append(Interpreter("python", str(exe), minor, "uv"))
    # last: the interpreter workbench itself runs on, which is always there
    found.append(Interpreter("python", sys.executable, sys.version_info.minor, "workbench's own"))
    return found


def _nodes() -> list[Interpreter]:
    found: list[Interpreter] = []
    node = shutil.which("node")
    if node is not None:
        major = _probe("node", node)
        if major is not None:
            found.append(Interpreter("node", node, major, "PATH"))
    nvm = Path(os.environ.get("NVM_DIR") or _home() / ".nvm") / "versions" / "node"
    semver = r"v(\d+)\.(\d+)\.(\d+)"
    found += [
        Interpreter("node", str(p), v[0], "nvm") for v, p in _versioned(nvm, semver, "bin/node")
    ]
    fnm_dirs = (
        [Path(os.environ["FNM_DIR"])]
        if os.environ.get("FNM_DIR")
        else [_home() / ".local" / "share" / "fnm", _home() / ".fnm"]
    )
    for fnm in fnm_dirs:
        found += [
            Interpreter("node", str(p), v[0], "fnm")
            for v, p in _versioned(fnm / "node-versions", semver, "installation/bin/node")
        ]
    volta = Path(os.environ.get("VOLTA_HOME") or _home() / ".volta") / "tools" / "image" / "node"
    found += [
        Interpreter("node", str(p), v[0], "volta")
        for v, p in _versioned(volta, r"(\d+)\.(\d+)\.(\d+)", "bin/node")
    ]
    return found
