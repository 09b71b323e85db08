"""Configuration as a user meets it on the command line: templates, --function, parameter
overrides, env files, doctor; and a two-function template served to boto3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, StartServer, builds_go, lambda_client, run_workbench

TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
Globals:
  Function:
    Timeout: 5
    MemorySize: 256
    Environment:
      Variables:
        STAGE: !Ref Stage
Resources:
  Greeter:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: greeter/
      Handler: app.handler
      Runtime: python3.11
      Environment:
        Variables:
          GREETING: !Sub "hello from ${Stage} in ${AWS::Region}"
  Counter:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: counter/
      Handler: index.handler
      Runtime: nodejs20.x
      MemorySize: 512
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "greeter").mkdir()
    (tmp_path / "greeter" / "app.py").write_text(
        "import os\n"
        "def handler(event, context):\n"
        "    return {'greeting': os.environ['GREETING'], 'stage': os.environ['STAGE'],\n"
        "            'memory': context.memory_limit_in_mb, 'name': context.function_name,\n"
        "            'secret': os.environ.get('SECRET')}\n"
    )
    (tmp_path / "counter").mkdir()
    (tmp_path / "counter" / "index.mjs").write_text(
        "let n = 0;\n"
        "export const handler = async (event, context) =>\n"
        "  ({ count: ++n, memory: context.memoryLimitInMB, stage: process.env.STAGE });\n"
    )
    return tmp_path


def test_two_function_template_served_to_boto3(serve: StartServer, app: Path) -> None:
    server = serve(str(app), "--port", "0", "--parameter-overrides", "Stage=prod")
    client = lambda_client(server.url)
    names = sorted(f["FunctionName"] for f in client.list_functions()["Functions"])
    assert names == ["Counter", "Greeter"]
    greeter = json.loads(client.invoke(FunctionName="Greeter")["Payload"].read())
    assert greeter == {
        "greeting": "hello from prod in us-east-1",
        "stage": "prod",
        "memory": "256",
        "name": "Greeter",
        "secret": None,
    }
    counts = [json.loads(client.invoke(FunctionName="Counter")["Payload"].read()) for _ in range(3)]
    assert [c["count"] for c in counts] == [1, 2, 3]  # warm: one environment kept
    assert counts[0]["memory"] == "512" and counts[0]["stage"] == "prod"
    assert client.get_function(FunctionName="Counter")["Configuration"]["Runtime"] == "nodejs20.x"


def test_invoke_needs_a_function_when_the_template_has_several(app: Path) -> None:
    done = run_workbench("invoke", str(app))
    assert done.returncode == 2
    assert "holds 2 functions (Greeter, Counter); pick one with --function" in (
        done.stderr.decode()
    )


def test_invoke_one_function_of_a_template_with_env_file(app: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "secrets.env"
    env_file.write_text("SECRET=s3cr3t\n")
    done = run_workbench(
        "invoke",
        str(app / "template.yaml"),
        "--function",
        "Greeter",
        "--env-file",
        str(env_file),
        "--memory",
        "1024",
    )
    assert done.returncode == 0, done.stderr.decode()
    body = json.loads(done.stdout)
    assert body["secret"] == "s3cr3t" and body["memory"] == "1024" and body["stage"] == "dev"


def test_unknown_logical_id_lists_the_valid_ones(app: Path) -> None:
    done = run_workbench("invoke", str(app), "--function", "Greter")
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "Greeter" in err and "Traceback" not in err


def test_bad_workbench_toml_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (tmp_path / "workbench.toml").write_text("timout = 10\n")
    done = run_workbench("invoke", str(tmp_path))
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "workbench.toml" in err and '"timout"' in err and '"timeout"' in err


def test_workbench_toml_settings_reach_the_function(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        "import os\ndef entry(event, context):\n"
        "    return [os.environ['COLOR'], context.memory_limit_in_mb]\n"
    )
    (tmp_path / "workbench.toml").write_text(
        'handler = "main.entry"\nmemory = 640\n[environment]\nCOLOR = "teal"\n'
    )
    done = run_workbench("invoke", str(tmp_path))
    assert json.loads(done.stdout) == ["teal", "640"]


def test_doctor_explains_each_value_and_checks_toolchains(app: Path) -> None:
    done = run_workbench("doctor", str(app), "--function", "Counter")
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "memory = 512 (" in out and "Resources.Counter.Properties.MemorySize" in out
    assert "timeout = 5 (" in out and "Globals.Function.Timeout" in out
    assert "toolchains:" in out
    assert "node: v" in out and "needed" in out.split("node: v", 1)[1].splitlines()[0]


@builds_go
def test_a_go_folder_is_built_then_invoked(tmp_path: Path) -> None:
    """No aws-lambda-go here (only PyPI, npm and Debian are reachable): a stdlib runtime loop
    in a folder with a go.mod, built by `workbench invoke` itself."""
    (tmp_path / "go.mod").write_text("module example.com/fn\n\ngo 1.19\n")
    (tmp_path / "main.go").write_text((FIXTURES / "rt-go" / "main.go").read_text())
    done = run_workbench("invoke", str(tmp_path), "-e", "-", stdin=b'{"n": 7}', timeout=180)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert json.loads(done.stdout)["event"] == {"n": 7}
    assert "$ CGO_ENABLED=0 go build -tags lambda.norpc -o .workbench/build/bootstrap" in err
    assert (tmp_path / ".workbench" / "build" / "bootstrap").is_file()

    (tmp_path / "main.go").write_text("package main\nfunc main() { undefinedName() }\n")
    failed = run_workbench("invoke", str(tmp_path), "-q", timeout=180)
    assert failed.returncode == 2 and failed.stdout == b""
    assert "undefined: undefinedName" in failed.stderr.decode()
    assert "the build failed" in failed.stderr.decode()
