"""How each kind of function is built: none (Python, Node), Go, Rust, or a command from config.

A build is a child process in its own session, its output streamed line by line onto the bus
(`LogLine(stream="build")`) as it happens; its own exit code decides success. Cancelling the
build (a newer save) kills its whole process group. Compiled functions land in
`<code_dir>/.workbench/build/bootstrap`, written beside and renamed into place: a failed build
leaves the last good binary untouched, and a running environment keeps the file it started.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.core.bus import BuildFinished, BuildStarted, Bus, LogLine
from workbench.core.config.function import BUILD_DIR, FunctionConfig
from workbench.core.engine import procs

TAIL_LINES = 40
GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class BuildError(Exception):
    """The build could not even start, or its artefact could not be installed."""


@dataclass(frozen=True, slots=True)
class BuildResult:
    ok: bool
    duration_ms: float
    artefact: Path | None = None
    output_tail: str = ""
    exit_code: int | None = None


class Builder:
    """Nothing to build: the next environment simply starts on the files as they are."""

    kind = "none"
    needed = False
    has_artefact = False  # a compiled bootstrap, installed by install()

    def __init__(self, cfg: FunctionConfig, bus: Bus) -> None:
        self.cfg = cfg
        self.bus = bus
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    async def build(self) -> BuildResult:
        if not self.needed:
            return BuildResult(True, 0.0)
        self._tail.clear()
        self.bus.emit(BuildStarted(self.cfg.name))
        t0 = time.monotonic()
        code: int | None = None
        artefact: Path | None = None
        try:
            argv, env = await self.command()
            code = await self._run(argv, env)
            if code == 0:
                artefact = await self.install()
            else:
                self.line(f"build failed: exit status {code}")
        except (BuildError, OSError) as exc:
            self.line(str(exc))  # it could not start, or its artefact could not be installed
            code, artefact = None, None
        except asyncio.CancelledError:
            ms = (time.monotonic() - t0) * 1000
            self.bus.emit(BuildFinished(self.cfg.name, False, ms, "", cancelled=True))
            raise
        ms = (time.monotonic() - t0) * 1000
        ok = code == 0 and (artefact is not None or not self.has_artefact)
        result = BuildResult(ok, ms, artefact, "\n".join(self._tail), code)
        self.bus.emit(BuildFinished(self.cfg.name, ok, ms, result.output_tail))
        return result

    # ---- for the kinds that build ----

    async def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    async def install(self) -> Path | None:
        return None

    def line(self, text: str) -> None:
        self._tail.append(text)
        self.bus.emit(LogLine(self.cfg.name, text, "build", None, time.time()))

    async def _run(self, argv: list[str], env: dict[str, str]) -> int:
        """Run one build step with its output on the bus; a cancel kills its process group."""
        loop = asyncio.get_running_loop()
        pipe = procs.OutputPipe(loop, "build", lambda text, _: self.line(text))
        stdin = procs.devnull()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=self.cfg.code_dir,
                env=env,
                stdin=stdin,
                stdout=pipe.write_fd,
                stderr=pipe.write_fd,
                start_new_session=True,
                preexec_fn=procs.die_with_parent,
            )
        except OSError as exc:
            pipe.close()
            raise BuildError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
        finally:
            os.close(stdin)
            pipe.close_write_end()
        try:
            return await proc.wait()
        finally:
            _kill_group(proc.pid)  # whatever it left running, or all of it when cancelled
            if proc.returncode is None:
                await asyncio.shield(proc.wait())
            pipe.drain(flush_partial=True)
            pipe.close()

    def _staging(self) -> Path:
        folder = self.cfg.code_dir / BUILD_DIR
        folder.mkdir(parents=True, exist_ok=True)
        return folder / "bootstrap.new"

    def _put_in_place(self, staged: Path) -> Path:
        final = self.cfg.built_bootstrap()
        os.replace(staged, final)  # atomic: a running process keeps its own inode
        return final


class CommandBuilder(Builder):
    """`build` from config (or a TypeScript project's own build), run with `sh -c`."""

    kind = "command"
    needed = True

    def __init__(self, cfg: FunctionConfig, bus: Bus, script: str) -> None:
        super().__init__(cfg, bus)
        self.script = script

    async def command(self) -> tuple[list[str], dict[str, str]]:
        self.line(f"$ {self.script}")
        return ["sh", "-c", self.script], dict(os.environ)


class GoBuilder(Builder):
    kind = "go"
    needed = True
    has_artefact = True

    async def command(self) -> tuple[list[str], dict[str, str]]:
        go = shutil.which("go")
        if go is None:
            raise BuildError(
                "go is not on PATH: install Go to build this function "
                "(https://go.dev/dl/, or apt-get install golang-go)"
            )
        arch = host_goarch()
        wanted = GOARCH.get(self.cfg.architecture, self.cfg.architecture)
        if wanted != arch:
            self.line(
                f"note: the function is configured for {self.cfg.architecture}; built "
                f"for this machine ({arch}) so that it runs here"
            )
        # lambda.norpc: aws-lambda-go without the legacy RPC mode, as for provided.al2023;
        # go1.x runs the binary over that RPC mode, so it must keep it
        staged = self._staging().relative_to(self.cfg.code_dir)
        tags = [] if self.cfg.go_rpc else ["-tags", "lambda.norpc"]
        argv = [go, "build", *tags, "-o", str(staged), "."]
        self.line("$ CGO_ENABLED=0 " + " ".join(["go", *argv[1:]]))
        return argv, {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": arch}

    async def install(self) -> Path | None:
        return self._put_in_place(self._staging())


class RustBuilder(Builder):
    kind = "rust"
    needed = True
    has_artefact = True

    def __init__(self, cfg: FunctionConfig, bus: Bus) -> None:
        super().__init__(cfg, bus)
        self._bin: tuple[str, Path] | None = None  # name, target directory

    async def command(self) -> tuple[list[str], dict[str, str]]:
        cargo = shutil.which("cargo")
        if cargo is None:
            raise BuildError(
                "cargo is not on PATH: install Rust (https://rustup.rs) to build this function"
            )
        self._bin = await self._find_bin(cargo)
        name = self._bin[0]
        argv = [cargo, "build", "--release", "--bin", name]
        self.line("$ " + " ".join(["cargo", *argv[1:]]))
        return argv, dict(os.environ)

    async def _find_bin(self, cargo: str) -> tuple[str, Path]:
        """The binary to run: the one the handler names, else the crate's first bin target."""
        proc = await asyncio.create_subprocess_exec(
            cargo,
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            cwd=self.cfg.code_dir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            for text in err.decode(errors="replace").splitlines():
                self.line(text)
            raise BuildError(f"cargo metadata failed (exit status {proc.returncode})")
        meta = json.loads(out)
        manifest = str((self.cfg.code_dir / "Cargo.toml").resolve())
        packages = sorted(
            meta.get("packages", []), key=lambda p: p.get("manifest_path") != manifest
        )
        bins = [
            t["name"] for p in packages for t in p.get("targets", []) if "bin" in t.get("kind", [])
        ]
        if not bins:
            raise BuildError(f"{self.cfg.code_dir}/Cargo.toml has no binary target to run")
        name = self.cfg.handler if self.cfg.handler in bins else bins[0]
        return name, Path(meta["target_directory"])

    async def install(self) -> Path | None:
        assert self._bin is not None
        name, target = self._bin
        staged = self._staging()
        try:
            shutil.copy2(target / "release" / name, staged)
        except OSError as exc:
            raise BuildError(f"cannot copy the built binary: {exc}") from exc
        return self._put_in_place(staged)


def host_goarch() -> str:
    machine = os.uname().machine.lower()
    return GOARCH.get(machine, machine)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _typescript_build(cfg: FunctionConfig) -> str | None:
    """A TypeScript Node function builds with its package's build script, or with tsc."""
    if cfg.family != "node" or not (cfg.code_dir / "tsconfig.json").is_file():
        return None
    try:
        scripts = json.loads((cfg.code_dir / "package.json").read_text()).get("scripts", {})
    except (OSError, ValueError, AttributeError):
        scripts = {}
    return (
        "npm run build"
        if isinstance(scripts, dict) and "build" in scripts
        else ("npx --no-install tsc")
    )


def builder_for(cfg: FunctionConfig, bus: Bus | None = None) -> Builder:
    """The `builder` setting when there is one ("none" builds nothing, not even a TypeScript
    project); else `build` from config; then what the folder says (go.mod, Cargo.toml,
    tsconfig.json)."""
    bus = bus or Bus()
    if cfg.builder == "none" or cfg.rpc_address:  # attached: the process is the user's
        return Builder(cfg, bus)
    if cfg.build:
        return CommandBuilder(cfg, bus, cfg.build)
    if cfg.builder == "go":
        return GoBuilder(cfg, bus)
    if cfg.builder == "rust":
        return RustBuilder(cfg, bus)
    script = _typescript_build(cfg)
    if script is not None:
        return CommandBuilder(cfg, bus, script)
    return Builder(cfg, bus)
