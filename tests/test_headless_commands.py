"""The headless commands never load the UI toolkit while they *run*, not only when imported:
each command module's run() is called in a fresh interpreter on a real function (copied into
tmp_path, since commands write their history next to the code), and afterwards no textual or
rich module may be in sys.modules (nor aiohttp, which only the benchmark uses). The import-only
probe in test_core_split.py cannot see an import placed inside a run(), or in a helper that
run() calls; this one does."""

from __future__ import annotations

import json
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import IO, Any

import pytest

from workbench.commands import discover

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

FORBIDDEN = ("textual", "rich", "aiohttp")

# Parses ARGV with the module's own add_parser (so the arguments are exactly what the CLI would
# give it), calls run(), then reports the exit code and the forbidden modules loaded into a
# JSON file: the command's own stdout and stderr stay free for it to use.
PROBE = f"""
import argparse, importlib, json, sys

module_name, report, *argv = sys.argv[1:]
module = importlib.import_module(module_name)
parser = argparse.ArgumentParser(prog="workbench")
module.add_parser(parser.add_subparsers(dest="command"))
code = module.run(parser.parse_args(argv))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})
with open(report, "w") as f:
    json.dump({{"exit": int(code), "loaded": loaded}}, f)
"""


def _copy_example(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(
        EXAMPLES / name, dest, ignore=shutil.ignore_patterns("__pycache__", ".workbench")
    )
    return dest


def _probe_cmd(module: str, report: Path, *argv: str | Path) -> list[str]:
    return [sys.executable, "-c", PROBE, module, str(report), *map(str, argv)]


def _probe(
    tmp_path: Path, module: str, *argv: str | Path
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    report = tmp_path / "report.json"
    done = subprocess.run(
        _probe_cmd(module, report, *argv),
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,  # `python -c` puts it first on sys.path: a module written there imports
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(report.read_text())
    return result, done


def _record_an_invocation(fn: Path) -> None:
    """History to read: one invocation, made in another process so the probe stays clean."""
    subprocess.run(
        [sys.executable, "-m", "workbench", "invoke", str(fn), "-q"],
        check=True,
        capture_output=True,
        timeout=60,
    )


# Each case: the command's argv (with {fn} for the copied example), the exit code it must give
# (a command that refused its input early would prove nothing), and what its stdout must hold.
CASES: dict[str, tuple[list[str], int, str]] = {
    "doctor": (["doctor", "{fn}"], 0, "toolchains:"),
    "invoke": (["invoke", "{fn}", "-e", "{fn}/events/hello.json"], 0, '"statusCode": 200'),
    "events list": (["events", "list"], 0, "s3"),
    "events new": (["events", "new", "s3/put"], 0, '"Records"'),
    "events saved": (["events", "saved", "{fn}"], 0, "hello"),
    "history": (["history", "{fn}"], 0, "cli"),
    "history --json": (["history", "{fn}", "--json"], 0, '"request_id"'),
    "replay": (["replay", "{fn}", "--check"], 0, "hello"),
}
NEEDS_HISTORY = {"history", "history --json"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_headless_command_runs_without_the_ui_toolkit(case: str, tmp_path: Path) -> None:
    argv, want_exit, want_out = CASES[case]
    fn = _copy_example(tmp_path, "hello-python")
    if case in NEEDS_HISTORY:
        _record_an_invocation(fn)
    command, *rest = (a.replace("{fn}", str(fn)) for a in argv)
    result, done = _probe(tmp_path, f"workbench.commands.{command}", command, *rest)
    assert result["exit"] == want_exit, done.stderr
    assert want_out in done.stdout, done.stdout + done.stderr
    assert result["loaded"] == [], f"{case} loaded {result['loaded']}"


def test_serve_runs_answers_and_stops_without_the_ui_toolkit(tmp_path: Path) -> None:
    fn = _copy_example(tmp_path, "hello-python")
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        _probe_cmd("workbench.commands.serve", report, "serve", fn, "--port", "0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read(stream: IO[str]) -> None:
        for line in stream:
            lines.put(line)

    assert proc.stderr is not None
    threading.Thread(target=read, args=(proc.stderr,), daemon=True).start()
    seen: list[str] = []
    try:
        url = None
        while url is None:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                pytest.fail("serve did not start:\n" + "".join(seen))
            seen.append(line)
            m = re.search(r"serving the Lambda Invoke API on (http://\S+)", line)
            url = m.group(1) if m else None
        # One invocation through the API, so the request path is probed too, not only startup.
        request = urllib.request.Request(
            f"{url}/2015-03-31/functions/hello-python/invocations", data=b"{}", method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["statusCode"] == 200
        proc.send_signal(signal.SIGINT)  # serve's own way to stop: it closes the function
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    result = json.loads(report.read_text())
    assert result["exit"] == 0
    assert result["loaded"] == [], f"serve loaded {result['loaded']}"


def test_every_headless_command_is_probed() -> None:
    """A new command gets a case here, or this fails: the TUI is the only one not probed (it is
    not among the discovered commands)."""
    probed = {case.split()[0] for case in CASES} | {"serve"}
    assert probed == set(discover())


def test_the_probe_notices_a_ui_import_inside_run(tmp_path: Path) -> None:
    """The same harness, on a command that imports Textual only once it runs (as a careless
    serve.run() might): the report must name it."""
    (tmp_path / "careless_command.py").write_text(
        "def add_parser(sub):\n"
        "    sub.add_parser('careless')\n"
        "\n"
        "def run(args):\n"
        "    import textual.app\n"
        "    return 0\n"
    )
    result, _ = _probe(tmp_path, "careless_command", "careless")
    assert result["exit"] == 0
    assert "textual" in result["loaded"]


def test_help_loads_neither_the_ui_toolkit_nor_aiohttp() -> None:
    """`workbench --help` imports every command module to list them: none may pull in more."""
    probe = (
        "import sys\n"
        "from workbench.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "invoke" in done.stdout and "serve" in done.stdout
    assert done.stderr.strip() == "[]"
