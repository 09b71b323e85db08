"""Local layers (workbench.toml `layers`) are where Lambda's runtimes would find /opt."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_workbench


def _layer(root: Path, name: str, shared: str) -> Path:
    layer = root / name
    (layer / "python" / "shared").mkdir(parents=True)
    (layer / "python" / "shared" / "__init__.py").write_text(f"WHO = {shared!r}\n")
    (layer / "nodejs" / "node_modules" / "shared").mkdir(parents=True)
    (layer / "nodejs" / "node_modules" / "shared" / "index.js").write_text(
        f"module.exports = {{ who: {shared!r} }};\n"
    )
    (layer / "bin").mkdir()
    tool = layer / "bin" / f"{name}-tool"
    tool.write_text(f"#!/bin/sh\necho {name}\n")
    tool.chmod(0o755)
    return layer


def test_python_finds_modules_and_tools_in_layers_the_last_layer_winning(tmp_path: Path) -> None:
    _layer(tmp_path, "one", "first")
    _layer(tmp_path, "two", "second")
    fn = tmp_path / "fn"
    fn.mkdir()
    (fn / "app.py").write_text(
        "import shared, subprocess\n"
        "def handler(event, context):\n"
        "    run = lambda t: subprocess.run([t], capture_output=True, text=True).stdout.strip()\n"
        "    return [shared.WHO, run('one-tool'), run('two-tool')]\n"
    )
    (fn / "workbench.toml").write_text('layers = ["../one", "../two"]\n')
    done = run_workbench("invoke", str(fn), "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == ["second", "one", "two"]


def test_node_requires_modules_from_a_layer(tmp_path: Path) -> None:
    _layer(tmp_path, "one", "node-layer")
    fn = tmp_path / "fn"
    fn.mkdir()
    (fn / "index.js").write_text(
        "const shared = require('shared');\nexports.handler = async () => shared.who;\n"
    )
    (fn / "workbench.toml").write_text('layers = ["../one"]\n')
    done = run_workbench("invoke", str(fn), "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == "node-layer"


def test_without_the_layer_the_import_fails(tmp_path: Path) -> None:
    fn = tmp_path / "fn"
    fn.mkdir()
    (fn / "app.py").write_text("import shared\ndef handler(event, context):\n    return 1\n")
    done = run_workbench("invoke", str(fn), "-q")
    assert done.returncode == 1
    assert json.loads(done.stdout)["errorType"] == "Runtime.ImportModuleError"
