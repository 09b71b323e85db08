"""What a Python function can import: what it could in Lambda, and nothing of workbench's.

In Lambda, sys.path is the code folder (/var/task), the layers (/opt/python...), the runtime's
folder (/var/runtime: the runtime client, and boto3 with its dependencies), then the standard
library. Locally the same order is kept:

- a virtual environment's interpreter is swapped for the one it was made from (pyvenv.cfg's
  `home`), so no venv's packages reach the function, workbench's own least of all;
- the bundled client drops the interpreter's site-packages from sys.path (user site-packages
  too: the child runs with -s), keeping the standard library only;
- the packages the managed runtime ships (boto3, botocore and their dependencies) come from a
  small folder of symlinks placed where /var/runtime would be: after the layers, so a copy in
  the code folder or a layer wins, as it does in Lambda. They are taken from the interpreter's
  own site-packages when it has boto3, else from workbench's environment when that boto3
  supports the interpreter's version, else the function does without (as if it bundled none).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import sysconfig
import tempfile
from functools import cache
from pathlib import Path

from workbench.core.runtimes.interpreters import Interpreter

# What Lambda's Python runtimes ship beside the runtime client (import names).
BOTO = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
# awslambdaric (with its compiled runtime_client) and what it imports, for
# --runtime-client awslambdaric.
RIC = ("awslambdaric", "runtime_client", "simplejson", "snapshot_restore_py")


def base_interpreter(path: str) -> str:
    """The interpreter a venv was made from; any other interpreter as it is."""
    exe = Path(path)
    cfg = exe.parent.parent / "pyvenv.cfg"
    if not cfg.is_file():
        return path
    values: dict[str, str] = {}
    for line in cfg.read_text(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    executable = values.get("executable")
    if executable and os.access(executable, os.X_OK):
        return executable
    home = Path(values.get("home", ""))
    for name in (exe.name, "python3", "python"):
        if values.get("home") and os.access(home / name, os.X_OK):
            return str(home / name)
    return path  # a venv we cannot see through: run it as it is


def own_site_dirs(interp: Interpreter) -> list[Path]:
    """Where an interpreter keeps its packages, guessed from its layout (no subprocess):
    pyenv and uv keep lib/python3.N/site-packages under the prefix, Debian dist-packages."""
    prefix = Path(os.path.realpath(interp.path)).parent.parent
    version = f"python3.{interp.number}"
    guesses = [
        prefix / "lib" / version / "site-packages",
        prefix / "local" / "lib" / version / "dist-packages",
        prefix / "lib" / "python3" / "dist-packages",
    ]
    return [p for p in guesses if p.is_dir()]


def workbench_site_dirs() -> list[Path]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys(Path(paths[k]) for k in ("purelib", "platlib")))


def _has(folder: Path, name: str) -> Path | None:
    """The package, module or compiled extension `name` in `folder`, if there."""
    for entry in (folder / name, folder / f"{name}.py"):
        if entry.exists():
            return entry
    # a listing of the whole folder (site-packages is large): only when the plain names miss
    for entry in sorted(folder.glob(f"{name}.*.so")):
        if entry.exists():
            return entry
    return None


def _min_minor(folder: Path, dist: str) -> int:
    """The lowest 3.N a distribution declares it supports (Requires-Python: >=3.N)."""
    for meta in folder.glob(f"{dist}-*.dist-info/METADATA"):
        for line in meta.read_text(errors="replace").splitlines():
            if line.startswith("Requires-Python:"):
                found = [int(m) for m in re.findall(r">=\s*3\.(\d+)", line)]
                return max(found, default=0)
            if not line.strip():
                break
    return 0


def _boto_source(interp: Interpreter) -> Path | None:
    for folder in own_site_dirs(interp):
        if _has(folder, "boto3") and _has(folder, "botocore"):
            return folder
    for folder in workbench_site_dirs():
        if (
            _has(folder, "boto3")
            and _has(folder, "botocore")
            and max(_min_minor(folder, "boto3"), _min_minor(folder, "botocore")) <= interp.number
        ):
            return folder
    return None


def ric_source(interp: Interpreter) -> Path | None:
    """Where awslambdaric can come from for this interpreter: its own site-packages, or
    workbench's environment when that is the same Python version (awslambdaric is compiled)."""
    for folder in own_site_dirs(interp):
        if _has(folder, "awslambdaric"):
            return None  # importable as it is: its own site-packages stay on its path
    if interp.number == sys.version_info.minor:
        for folder in workbench_site_dirs():
            if _has(folder, "awslambdaric"):
                return folder
    raise LookupError("awslambdaric is not installed for this interpreter")


def ric_installed(interp: Interpreter) -> bool:
    try:
        ric_source(interp)
    except LookupError:
        return False
    return True


def runtime_packages(interp: Interpreter, with_ric: bool = False) -> Path | None:
    """The folder standing in for /var/runtime's packages, or None when there is nothing to
    put in it. Made once per process and reused."""
    entries: list[Path] = []
    boto = _boto_source(interp)
    if boto is not None:
        entries += [e for e in (_has(boto, n) for n in BOTO) if e is not None]
    if with_ric:
        ric = ric_source(interp)
        if ric is not None:
            entries += [e for e in (_has(ric, n) for n in RIC) if e is not None]
    if not entries:
        return None
    return _linked(tuple(entries))


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "workbench" / "python-runtime"


@cache
def _linked(entries: tuple[Path, ...]) -> Path:
    """A folder of symlinks to `entries`, named by their digest, so that processes share it
    and a changed set gets a new one; built aside and renamed into place, so a reader never
    sees it half made."""
    digest = hashlib.sha256("\0".join(map(str, entries)).encode()).hexdigest()[:16]
    for root in (_cache_root(), Path(tempfile.gettempdir()) / "workbench-python-runtime"):
        target = root / digest
        if all((target / e.name).exists() for e in entries):
            return target
        try:
            root.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(dir=root, prefix=".making-"))
            for entry in entries:
                (work / entry.name).symlink_to(entry)
            try:
                work.rename(target)
            except OSError:  # another process made it first (or a stale one is in the way)
                _remove(work)
                if not all((target / e.name).exists() for e in entries):
                    continue
            return target
        except OSError:
            continue  # a read-only cache folder: try the temporary one
    raise OSError("cannot make a folder for the runtime's packages")


def _remove(folder: Path) -> None:
    for entry in folder.iterdir():
        entry.unlink()
    folder.rmdir()
