"""`workbench invoke` as a user runs it: stdout, stderr, exit codes and clear input errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import EXAMPLES, FIXTURES, processes_with_env, run_workbench, workbench_cmd

HELLO = EXAMPLES / "hello-python"
ECHO = str(FIXTURES / "api-echo")


def test_readme_example_invokes_and_prints_the_response() -> None:
    done = run_workbench("invoke", str(HELLO), "-e", str(HELLO / "events" / "hello.json"))
    assert done.returncode == 0, done.stderr.decode()
    body = json.loads(done.stdout)
    assert body["statusCode"] == 200
    assert json.loads(body["body"]) == {"message": "Hello, workbench!"}
    lines = done.stderr.decode().splitlines()
    assert lines[0].startswith("INIT_START Runtime Version: python:")
    starts = [i for i, line in enumerate(lines) if line.startswith("START RequestId: ")]
    ends = [i for i, line in enumerate(lines) if line.startswith("END RequestId: ")]
    reports = [i for i, line in enumerate(lines) if line.startswith("REPORT RequestId: ")]
    assert len(starts) == len(ends) == len(reports) == 1
    assert starts[0] < ends[0] < reports[0] == len(lines) - 1
    between = lines[starts[0] + 1 : ends[0]]
    assert any("greeting workbench" in line for line in between)


def test_event_from_stdin() -> None:
    done = run_workbench("invoke", ECHO, "-e", "-", stdin=b'{"piped": true}')
    assert done.returncode == 0
    assert json.loads(done.stdout)["event"] == {"piped": True}


def test_no_event_sends_an_empty_object() -> None:
    done = run_workbench("invoke", ECHO)
    assert json.loads(done.stdout)["event"] == {}


def test_function_error_exits_1_with_the_error_document_on_stdout() -> None:
    done = run_workbench("invoke", ECHO, "-e", "-", stdin=b'{"fail": "nope"}')
    assert done.returncode == 1
    assert json.loads(done.stdout)["errorType"] == "ValueError"


def test_malformed_event_is_refused_with_lambdas_error_and_a_clear_message() -> None:
    done = run_workbench("invoke", ECHO, "-e", "-", stdin=b'{"unterminated": ')
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "InvalidRequestContentException" in err
    assert "Could not parse payload into json" in err
    assert "Traceback" not in err
    assert done.stdout == b""


def test_oversized_event_is_refused() -> None:
    done = run_workbench("invoke", ECHO, "-e", "-", stdin=b'"' + b"x" * 6_291_456 + b'"')
    assert done.returncode == 2
    assert "RequestEntityTooLargeException" in done.stderr.decode()
    assert "(limit 6291456 bytes)" in done.stderr.decode()


def test_missing_event_file_and_missing_folder_are_clear(tmp_path: Path) -> None:
    done = run_workbench("invoke", ECHO, "-e", str(tmp_path / "nope.json"))
    assert done.returncode == 2 and "event file not found" in done.stderr.decode()
    done = run_workbench("invoke", str(tmp_path / "nofolder"))
    assert done.returncode == 2 and "no such file or folder" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_an_unrecognisable_folder_says_which_setting_to_add(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    done = run_workbench("invoke", str(tmp_path))
    assert done.returncode == 2
    assert "--runtime" in done.stderr.decode() and "--handler" in done.stderr.decode()


def test_flags_reach_the_function(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import os\n"
        "def handler(event, context):\n"
        "    return {'memory': context.memory_limit_in_mb, 'color': os.environ.get('COLOR'),\n"
        "            'remaining': context.get_remaining_time_in_millis(),\n"
        "            'region': os.environ['AWS_REGION']}\n"
    )
    done = run_workbench(
        "invoke",
        str(tmp_path),
        "--memory",
        "512",
        "--timeout",
        "7",
        "--env",
        "COLOR=blue",
        "--region",
        "eu-west-1",
    )
    body = json.loads(done.stdout)
    assert body["memory"] == "512" and body["color"] == "blue" and body["region"] == "eu-west-1"
    # the deadline is the timeout from the start: read during the invocation, the time left
    # is at least the timeout less the invocation's whole duration
    found = re.search(r"\tDuration: ([\d.]+) ms", done.stderr.decode())
    assert found, done.stderr.decode()
    assert 7000 - float(found.group(1)) - 1 <= body["remaining"] <= 7000
    assert "Memory Size: 512 MB" in done.stderr.decode()


def test_reserved_environment_variables_are_refused() -> None:
    done = run_workbench("invoke", ECHO, "--env", "AWS_REGION=mars-1")
    assert done.returncode == 2
    assert "AWS_REGION" in done.stderr.decode() and "reserves" in done.stderr.decode()


def test_quiet_prints_only_the_response() -> None:
    done = run_workbench("invoke", ECHO, "-q")
    assert done.stderr == b""
    assert json.loads(done.stdout)["event"] == {}


def _hanging_invoke(folder: Path, mark: str) -> subprocess.Popen[bytes]:
    """`workbench invoke` on a handler that sleeps, returned once the handler is running."""
    (folder / "app.py").write_text(
        "import time\ndef handler(event, context):\n    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        workbench_cmd("invoke", str(folder), "--timeout", "100", "--env", f"WB_MARK={mark}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    for raw in proc.stderr:
        if raw.startswith(b"START RequestId:"):
            break
    assert processes_with_env(f"WB_MARK={mark}")
    return proc


def _none_left(mark: str) -> bool:
    deadline = time.monotonic() + 60
    while processes_with_env(f"WB_MARK={mark}") and time.monotonic() < deadline:
        time.sleep(0.05)
    return processes_with_env(f"WB_MARK={mark}") == []


def test_sigterm_stops_a_hanging_function_and_leaves_nothing_behind(tmp_path: Path) -> None:
    proc = _hanging_invoke(tmp_path, "sigterm")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 130
    assert _none_left("sigterm")


def test_kill_9_of_the_workbench_takes_the_runtime_with_it(tmp_path: Path) -> None:
    proc = _hanging_invoke(tmp_path, "kill9")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert _none_left("kill9")


def test_serve_refuses_a_port_that_cannot_exist() -> None:
    done = run_workbench("serve", ECHO, "--port", "99999")
    assert done.returncode == 2
    assert "is not a port (0 to 65535" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()
