"""Shared helpers: real `workbench` processes, started the way a user starts them.

Also what the whole run shares, set up when this file is first imported (in pytest's main
process, before it starts the xdist workers, which inherit the environment):

- a scratch folder for the run (WORKBENCH_TEST_SESSION), removed when the run ends;
- one Go build cache for the run (GOCACHE, GOPATH), so only the first Go build compiles
  Go's standard library; Go's cache is safe to share between concurrent builds;
- a private copy of tests/fixtures/functions and examples/ per worker: running a function
  writes into its folder (history in .workbench/, bytecode), and no test may write into
  the source tree; FIXTURES and EXAMPLES point at the copies.

The layers (pytest -m quick / integration / ui / e2e) are given in pytest_collection_modifyitems.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

ROOT = Path(__file__).resolve().parent.parent
SOURCE_FIXTURES = ROOT / "tests" / "fixtures" / "functions"
SOURCE_EXAMPLES = ROOT / "examples"
# what tests must never write into (compared before and after the run)
GUARDED = (ROOT / "examples", ROOT / "tests" / "fixtures")

SESSION_VAR = "WORKBENCH_TEST_SESSION"
_OWNS_SESSION = SESSION_VAR not in os.environ


def _session_dir() -> Path:
    known = os.environ.get(SESSION_VAR)
    if known:
        return Path(known)
    path = Path(tempfile.mkdtemp(prefix="workbench-tests-")).resolve()
    os.environ[SESSION_VAR] = str(path)
    return path


SESSION = _session_dir()
os.environ["GOCACHE"] = str(SESSION / "go-cache")
os.environ["GOPATH"] = str(SESSION / "go-path")


def _private_copy(source: Path, name: str) -> Path:
    """This process's copy of `source` (one per xdist worker), made once."""
    target = SESSION / os.environ.get("PYTEST_XDIST_WORKER", "main") / name
    if not target.exists():
        partial = target.with_name(f"{name}.partial-{os.getpid()}")
        shutil.copytree(
            source,
            partial,
            symlinks=True,
            ignore=shutil.ignore_patterns(".workbench", "__pycache__"),
        )
        partial.rename(target)
    return target


FIXTURES = _private_copy(SOURCE_FIXTURES, "functions")
EXAMPLES = _private_copy(SOURCE_EXAMPLES, "examples")


def _listing(folders: tuple[Path, ...]) -> set[str]:
    found: set[str] = set()
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in [*dirnames, *filenames]:
                found.add(os.path.relpath(os.path.join(dirpath, name), ROOT))
    return found


_BEFORE = _listing(GUARDED)

# ---- layers --------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test gets exactly one layer: tests/ui is `ui`, tests/e2e is `e2e`; a test or
    module marked `integration` (it builds Go or Rust, or runs many processes) keeps that;
    the rest are `quick`."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT).parts
        if parts[:2] == ("tests", "ui"):
            item.add_marker(pytest.mark.ui)
        elif parts[:2] == ("tests", "e2e"):
            item.add_marker(pytest.mark.e2e)
        elif item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.quick)


# ---- Go ------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def builds_go(test: F) -> F:
    """For a test that compiles Go: the integration layer, the warm cache, and room for the
    run's first build of Go's standard library on a loaded machine."""
    for mark in (
        pytest.mark.integration,
        pytest.mark.usefixtures("go_cache"),
        pytest.mark.timeout(600),
    ):
        test = mark(test)
    return test


@pytest.fixture(scope="session")
def go_cache() -> Path:
    """The run's GOCACHE with the standard library compiled into it. One worker compiles it
    while the others wait on the lock, so it is compiled once, not once per worker at the
    same time."""
    go = shutil.which("go")
    assert go, "the Go toolchain is required (apt-get install golang-go); .ci/run installs it"
    cache = Path(os.environ["GOCACHE"])
    built = SESSION / "go-std-built"
    with open(SESSION / "go-std.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not built.exists():
            env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "", "GOPROXY": "off"}
            env["GOTOOLCHAIN"] = "local"
            done = subprocess.run(
                [go, "build", "-o", str(SESSION / "go-warm-up"), "."],
                cwd=FIXTURES / "rt-go",
                env=env,
                capture_output=True,
                text=True,
                timeout=540,
            )
            assert done.returncode == 0, done.stderr
            built.touch()
    return cache


# ---- the source tree stays as it was -------------------------------------------------------

_WRITTEN: list[str] = []


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # the main process looks, once every worker is done
    _WRITTEN[:] = sorted(_listing(GUARDED) - _BEFORE)
    if _WRITTEN:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _WRITTEN:
        terminalreporter.section("tests wrote into the source tree", sep="=", red=True)
        for path in _WRITTEN:
            terminalreporter.line(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWNS_SESSION and not hasattr(config, "workerinput"):

        def writable_again(func: object, path: str, exc: object) -> None:
            os.chmod(os.path.dirname(path), 0o700)  # Go leaves its module cache read-only
            shutil.rmtree(path, ignore_errors=True)

        shutil.rmtree(SESSION, onerror=writable_again)


def workbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "workbench", *args]


def run_workbench(
    *args: str, stdin: bytes | None = None, timeout: float = 100, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        workbench_cmd(*args), input=stdin, capture_output=True, timeout=timeout, env=env
    )


class Server:
    """A `workbench serve` child process; its stderr is collected as it arrives."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            workbench_cmd("serve", *args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(90) or not self.url:
            self.stop()
            raise RuntimeError("serve did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            m = re.search(r"serving the Lambda Invoke API on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                self._ready.set()
        self._ready.set()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def wait_for_line(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


StartServer = Callable[..., Server]
"""The `serve` fixture: starts `workbench serve ARGS...`, stopped when the test ends."""


@pytest.fixture
def serve() -> Iterator[StartServer]:
    started: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def lambda_client(url: str) -> LambdaClient:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 0}, read_timeout=120, connect_timeout=30),
    )


def processes_with_env(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (KEY=VALUE)."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    with open(f"/proc/{entry}/stat", "rb") as st:
                        if st.read().split(b") ")[-1][:1] != b"Z":
                            found.append(int(entry))
        except OSError:
            continue
    return found
