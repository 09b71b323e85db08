"""`workbench TARGET` is the TUI; what it says when it cannot start, as a user sees it."""

from __future__ import annotations

from tests.conftest import EXAMPLES, run_workbench


def test_without_a_terminal_it_points_to_the_headless_commands() -> None:
    out = run_workbench(str(EXAMPLES / "hello-python"))
    assert out.returncode == 2
    assert b"needs a terminal" in out.stderr and b"workbench invoke" in out.stderr


def test_a_mistyped_command_is_not_taken_for_a_folder() -> None:
    out = run_workbench("serv", str(EXAMPLES / "hello-python"))
    assert out.returncode == 2
    assert b"did you mean `workbench serve`" in out.stderr


def test_a_missing_folder_is_named() -> None:
    out = run_workbench("/no/such/function")
    assert out.returncode == 2
    assert b"/no/such/function" in out.stderr and b"Traceback" not in out.stderr


def test_help_lists_the_tui_options() -> None:
    out = run_workbench(str(EXAMPLES / "hello-python"), "--help")
    assert out.returncode == 0
    for flag in (b"--no-watch", b"--port", b"--no-api", b"--theme", b"--handler"):
        assert flag in out.stdout
