"""The environment is held to its memory size as Lambda holds it: past it the runtime is
killed, the invoke fails with Runtime.OutOfMemory, the REPORT line never says more than the
memory size was used, and the next invoke starts a fresh environment. --no-memory-limit (or
`memory_limit = false`) lifts it. Where there is no memory cgroup, the memory sampler kills."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_workbench
from tests.rt_helpers import Harness, cli
from workbench.core.engine import containment

pytestmark = pytest.mark.integration
HOG = FIXTURES / "py-hog"


def report(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if line.startswith("REPORT ")]
    return line


def test_400_mb_with_128_mb_is_killed_and_reported_as_lambda_does() -> None:
    done = cli(HOG, "--timeout", "120", "--memory", "128", event=b'{"mb": 400}', timeout=240)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["errorType"] == "Runtime.OutOfMemory"
    assert re.fullmatch(
        r"RequestId: [0-9a-f-]{36} Error: Runtime exited with error: signal: killed",
        doc["errorMessage"],
    )
    line = report(done.stderr)
    assert "Memory Size: 128 MB\tMax Memory Used: 128 MB" in line
    assert line.rstrip().endswith("Status: error\tError Type: Runtime.OutOfMemory")
    assert "\nRuntime.OutOfMemory\n" in done.stderr


def test_without_the_limit_the_same_function_succeeds() -> None:
    done = cli(
        HOG,
        "--timeout",
        "120",
        "--memory",
        "128",
        "--no-memory-limit",
        event=b'{"mb": 400}',
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"touched_mb": 400}
    used = int(re.search(r"Max Memory Used: (\d+) MB", report(done.stderr)).group(1))  # type: ignore[union-attr]
    assert used > 128  # measured, not capped: nothing held it


def test_memory_limit_false_in_workbench_toml(tmp_path: Path) -> None:
    folder = tmp_path / "hog"
    folder.mkdir()
    (folder / "app.py").write_text((HOG / "app.py").read_text())
    (folder / "workbench.toml").write_text("memory = 128\nmemory_limit = false\ntimeout = 120\n")
    done = cli(folder, event=b'{"mb": 300}', timeout=240)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"touched_mb": 300}
    doctor = run_workbench("doctor", str(folder))
    assert re.search(rb"memory_limit = False \(\S*workbench.toml: memory_limit\)", doctor.stdout)


def test_after_a_kill_for_memory_the_next_invoke_starts_afresh() -> None:
    async def body() -> None:
        async with Harness(HOG, overrides={"memory_mb": 128, "timeout_s": 120.0}) as h:
            killed = await h.invoke({"mb": 400})
            assert killed.status == "crash" and killed.error_type == "Runtime.OutOfMemory"
            assert killed.max_memory_mb == 128
            fine = await h.invoke({"mb": 1})
            assert fine.status == "ok" and fine.cold  # a fresh environment, a fresh init

    asyncio.run(body())


@pytest.fixture
def no_cgroups() -> Iterator[None]:
    """This process as on a machine where no cgroup can be made: the fallbacks run."""
    saved = containment._shared
    bare = containment.Containment()
    bare._tried = True  # nothing set up: no root, no memory root
    containment._shared = bare
    try:
        yield
    finally:
        containment._shared = saved


def test_without_a_memory_cgroup_the_sampler_kills(no_cgroups: None) -> None:
    async def body() -> None:
        async with Harness(HOG, overrides={"memory_mb": 128, "timeout_s": 120.0}) as h:
            assert not containment.shared().limits_memory
            killed = await h.invoke({"mb": 400, "hold": 30})
            assert killed.status == "crash" and killed.error_type == "Runtime.OutOfMemory"
            assert killed.max_memory_mb == 128

    asyncio.run(body())
