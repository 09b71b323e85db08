"""Watching a function's folder: the saves that change the function, grouped into change sets.

watchfiles (inotify through Rust's notify) reports raw events. The filter drops what never
changes the function (VCS folders, caches, build output, editor swap files, what .gitignore
excludes, the config's watch globs); a content memo then drops saves that rewrote a file with
the bytes it already had (an editor's unchanged save, a build that rewrites its outputs in
place), which also keeps a build that writes into the folder from reloading itself forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path

import pathspec
from watchfiles import Change, awatch

# Folders whose contents never change what the function does.
IGNORED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".workbench",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".idea",
        ".vscode",
        ".aws-sam",
        "cdk.out",
    }
)
# What builds write into the folder, per kind of builder (folder or file names): watching it
# would make every build trigger the next.
BUILD_OUTPUTS = {"rust": ("target", "Cargo.lock"), "command": ("dist", "build", "out")}
STAGED_OUTPUTS = frozenset({"target"})
# Editor swap and backup files (vim, emacs, JetBrains), atomic-save temporaries, bytecode.
SCRATCH_NAMES = re.compile(
    r"(\.sw[a-p]|\.swpx|~|\.tmp|\.py[cod]|\.___jb_(tmp|old)___)$|^(\.#|#.*#$|4913$|\.DS_Store$)"
)
DEBOUNCE_MS = 50  # the most one change set waits for further distinct changes
STEP_MS = 10  # quiet time that ends a change set
HASHED_UP_TO = 8 * 1024 * 1024  # bigger files are compared by size and mtime only
PROBE = "armed"


def _spec(lines: Sequence[str]) -> pathspec.GitIgnoreSpec | None:
    lines = [line for line in lines if line.strip()]
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


class WatchFilter:
    """Which paths under `root` matter, as `root`-relative POSIX paths."""

    def __init__(
        self,
        root: Path,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        outputs: Sequence[str] = (),
        events_dir: str | None = None,
        always: Iterable[str] = (),
    ) -> None:
        self.root = root.resolve()
        # the function's configuration files (workbench.toml, .env, ...): wanted even when
        # .gitignore or the watch globs leave them out, as .gitignore usually does .env
        self.always = frozenset(always)
        # saved events live in the function's folder and never change what it does
        self._events = events_dir.strip("/") + "/" if events_dir else None
        self._prefix = str(self.root) + os.sep
        self._dirs = IGNORED_DIRS | frozenset(outputs)
        # a build tool that makes an output folder by renaming a temporary one beside it
        # (cargo: `target` from `target<6 random characters>`): that one is output too
        names = "|".join(re.escape(o) for o in outputs if o in STAGED_OUTPUTS)
        self._staged = re.compile(rf"^(?:{names})[A-Za-z0-9]{{6}}$") if names else None
        self._include = _spec(include)
        self._exclude = _spec(exclude)
        self._gitignore = self._read_gitignore()

    def _read_gitignore(self) -> pathspec.GitIgnoreSpec | None:
        try:
            return _spec((self.root / ".gitignore").read_text(errors="replace").splitlines())
        except OSError:
            return None

    def relative(self, path: str) -> str | None:
        if not path.startswith(self._prefix):
            return None
        return path[len(self._prefix) :].replace(os.sep, "/")

    def wanted(self, rel: str) -> bool:
        if rel in self.always:
            return True
        parts = rel.split("/")
        if any(p in self._dirs for p in parts) or SCRATCH_NAMES.search(parts[-1]):
            return False
        if self._staged is not None and self._staged.match(parts[0]):
            return False
        if any(pair == ("node_modules", ".cache") for pair in itertools.pairwise(parts)):
            return False
        if self._events and rel.startswith(self._events) and rel.endswith(".json"):
            return False
        if rel == ".gitignore":  # changes what is ignored, not what the function does
            self._gitignore = self._read_gitignore()
            return False
        if self._gitignore is not None and self._gitignore.match_file(rel):
            return False
        if self._exclude is not None and self._exclude.match_file(rel):
            return False
        return self._include is None or self._include.match_file(rel)


class ContentMemo:
    """The last known content of each file seen changing; a path whose bytes are the same as
    last time did not change. A file seen for the first time counts as changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._seen: dict[str, bytes | None] = {}

    def real_changes(self, changes: dict[str, set[Change]]) -> set[str]:
        real = set()
        for rel, kinds in changes.items():
            path = self.root / rel
            if path.is_dir():
                continue  # a folder's files report their own changes
            digest = _digest(path)
            if digest is None and Change.added in kinds and rel not in self._seen:
                continue  # came and went within the set: an editor's or sed's temporary
            if rel not in self._seen or self._seen[rel] != digest:
                real.add(rel)
            self._seen[rel] = digest
        return real


def _digest(path: Path) -> bytes | None:
    try:
        st = path.stat()
        if st.st_size > HASHED_UP_TO:
            return f"{st.st_size}:{st.st_mtime_ns}".encode()
        return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    except OSError:
        return None  # gone: deleted, or renamed away


class Watcher:
    """Change sets for one function folder, its local layers and its configuration files, as
    paths relative to the folder ("../template.yaml" for a file outside it).

    `start()` returns once the watches are in place, proven by a probe file in a private
    folder seen coming through the same watcher: a save made after `start()` is never missed.
    Folders are watched recursively. A configuration file outside them (a SAM template at
    the project's top, an env file elsewhere) is watched through its folder by a second,
    non-recursive loop: watching a template's folder recursively could mean a whole project.
    """

    def __init__(
        self,
        flt: WatchFilter,
        layers: Sequence[Path] = (),
        debounce_ms: int = DEBOUNCE_MS,
        step_ms: int = STEP_MS,
        files: Iterable[Path] = (),
    ) -> None:
        self.filter = flt
        self._layers: list[WatchFilter] = []
        self._layer_roots: tuple[Path, ...] = tuple(Path(p).resolve() for p in layers)
        self.memo = ContentMemo(flt.root)
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self._queue: asyncio.Queue[set[str] | BaseException | None] = asyncio.Queue()
        self._files = tuple(files)
        self._main: _Loop | None = None
        self._layer_loop: _Loop | None = None
        self._outside: _Loop | None = None
        self._outside_files: frozenset[Path] = frozenset()

    async def start(self, timeout: float = 5.0) -> None:
        self._main = _Loop(self, [self.filter.root], True, self._name, last=True)
        await self._main.start(timeout)
        roots, self._layer_roots = self._layer_roots, ()
        await self.watch_layers(roots, timeout)
        await self.watch_files(self._files, timeout)

    async def stop(self) -> None:
        for loop in (self._outside, self._layer_loop, self._main):
            if loop is not None:
                await loop.stop()

    async def watch_layers(self, layers: Iterable[Path], timeout: float = 5.0) -> None:
        """Watch these layer folders (a reload may have changed the function's layers); a
        layer inside the function's folder is watched with it already."""
        roots = tuple(
            r for r in (Path(p).resolve() for p in layers) if self.filter.relative(str(r)) is None
        )
        if roots == self._layer_roots:
            return
        if self._layer_loop is not None:
            await self._layer_loop.stop()
        self._layer_loop, self._layer_roots = None, roots
        self._layers = [WatchFilter(p) for p in roots]
        if roots:
            self._layer_loop = _Loop(self, list(roots), True, self._name)
            await self._layer_loop.start(timeout)

    async def watch_files(self, files: Iterable[Path], timeout: float = 5.0) -> None:
        """Watch exactly these files as well (a function's configuration files, which a
        reload may change), whether they exist yet or not."""
        wanted = frozenset(Path(f).resolve() for f in files)
        self.filter.always = frozenset(
            rel for f in wanted if (rel := self.filter.relative(str(f))) is not None
        )
        outside = frozenset(
            f for f in wanted if self.filter.relative(str(f)) is None and f.parent.is_dir()
        )
        if outside == self._outside_files:
            return
        if self._outside is not None:
            await self._outside.stop()
        self._outside, self._outside_files = None, outside
        if outside:

            def name(path: str) -> str | None:
                return os.path.relpath(path, self.filter.root) if Path(path) in outside else None

            self._outside = _Loop(self, sorted({f.parent for f in outside}), False, name)
            await self._outside.start(timeout)

    async def changes(self) -> AsyncIterator[set[str]]:
        """Each change set that really changed something; ends when the watcher stops."""
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _name(self, path: str) -> str | None:
        rel = self.filter.relative(path)
        if rel is not None:
            return rel if self.filter.wanted(rel) else None
        for layer in self._layers:
            lrel = layer.relative(path)
            if lrel is not None and layer.wanted(lrel):
                return os.path.relpath(path, self.filter.root)
        return None

    def _put(self, named: dict[str, set[Change]]) -> None:
        real = self.memo.real_changes(named)
        if real:
            self._queue.put_nowait(real)


class _Loop:
    """One watchfiles loop over some folders, feeding its watcher's change sets."""

    def __init__(
        self,
        watcher: Watcher,
        roots: Sequence[Path],
        recursive: bool,
        name: Callable[[str], str | None],
        last: bool = False,
    ) -> None:
        self.watcher = watcher
        self.roots = roots
        self.recursive = recursive
        self.name = name
        self.last = last  # its end ends the watcher's change sets
        self._stop = asyncio.Event()
        self._armed = asyncio.Event()
        self._probe_dir = Path(tempfile.mkdtemp(prefix="workbench-watch-"))
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"watcher-{self.watcher.filter.root.name}"
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        step_s = 5 * self.watcher.step_ms / 1000
        await asyncio.sleep(0)  # the task's first step puts the watches in place
        while not self._armed.is_set() and not self._task.done() and loop.time() < deadline:
            (self._probe_dir / PROBE).write_bytes(os.urandom(8))
            try:
                await asyncio.wait_for(self._armed.wait(), step_s)
            except TimeoutError:
                continue
        if self._task.done() and self._task.exception() is not None:
            raise self._task.exception()  # type: ignore[misc]

    async def stop(self) -> None:
        self._stop.set()  # the watch thread looks at it every step
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=2)
            if not self._task.done():
                self._task.cancel()
        shutil.rmtree(self._probe_dir, ignore_errors=True)

    def _accepts(self, change: Change, path: str) -> bool:
        if path.startswith(str(self._probe_dir)):
            self._armed.set()
            return False
        return self.name(path) is not None

    async def _run(self) -> None:
        w = self.watcher
        try:
            async for raw in awatch(
                *self.roots,
                self._probe_dir,
                watch_filter=self._accepts,
                debounce=w.debounce_ms,
                step=w.step_ms,
                stop_event=self._stop,
                recursive=self.recursive,
            ):
                named: dict[str, set[Change]] = {}
                for change, path in raw:
                    name = self.name(path)
                    if name is not None:
                        named.setdefault(name, set()).add(change)
                w._put(named)
        except Exception as exc:
            w._queue.put_nowait(exc)
            raise
        finally:
            if self.last:
                w._queue.put_nowait(None)
