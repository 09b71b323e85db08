"""The size of an environment's /tmp: `ephemeral_storage` in workbench.toml or a template's
`EphemeralStorage: {Size: N}`, 512 MB by default; a /tmp that holds more is said once (in
Lambda the writes past it fail)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.rt_helpers import cli
from workbench.core.config.resolve import resolve_functions

# a sparse file of event["mb"] MB in /tmp: its size counts, its blocks cost nothing
FILL = (
    "import os, tempfile\n\n\ndef handler(event, context):\n"
    "    with open(os.path.join(tempfile.gettempdir(), 'big'), 'wb') as fh:\n"
    "        fh.truncate(int(event['mb']) * 1024 * 1024)\n"
    "    return {'ok': True}\n"
)
TEMPLATE = """AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Fill:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Runtime: python3.11
      EphemeralStorage:
        Size: 2048
"""


def folder_with(tmp_path: Path, toml: str = "") -> Path:
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "app.py").write_text(FILL)
    if toml:
        (folder / "workbench.toml").write_text(toml)
    return folder


def test_the_size_comes_from_workbench_toml_or_the_template(tmp_path: Path) -> None:
    (default,) = resolve_functions([folder_with(tmp_path)])
    assert default.config.ephemeral_storage_mb == 512
    (tmp_path / "fn" / "workbench.toml").write_text("ephemeral_storage = 1024\n")
    (toml,) = resolve_functions([tmp_path / "fn"])
    assert toml.config.ephemeral_storage_mb == 1024
    assert toml.sources["ephemeral_storage"].endswith("workbench.toml: ephemeral_storage")
    (tmp_path / "fn" / "workbench.toml").unlink()
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (sam,) = resolve_functions([tmp_path / "template.yaml"])
    assert sam.config.ephemeral_storage_mb == 2048
    assert "EphemeralStorage" in sam.sources["ephemeral_storage"]


def test_a_tmp_past_its_size_is_said_once(tmp_path: Path) -> None:
    folder = folder_with(tmp_path)
    over = cli(folder, "--handler", "app.handler", event=json.dumps({"mb": 600}).encode())
    assert over.returncode == 0, over.stderr
    assert "/tmp holds 600 MB, more than the function's ephemeral storage of 512 MB" in (
        over.stderr
    )
    within = cli(folder, "--handler", "app.handler", event=json.dumps({"mb": 100}).encode())
    assert within.returncode == 0 and "ephemeral storage" not in within.stderr
