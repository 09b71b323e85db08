"""The configuration layer: workbench.toml / [tool.workbench], SAM templates, env files and the
layering that turns command-line targets into FunctionConfigs, each value with its source.

Messages are asserted in full: they are the feature. Paths in messages are relative to the
working folder, so each test runs from the folder its files live in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.core.config.function import ConfigError, detect
from workbench.core.config.resolve import ResolvedFunction, resolve_functions
from workbench.core.config.sam import load_template
from workbench.core.config.settings import load_settings

CONFIGS = Path(__file__).resolve().parent / "fixtures" / "configs"
RUNTIME_LIST = (
    "python3.9, python3.10, python3.11, python3.12, python3.13, python3.14, nodejs18.x, "
    "nodejs20.x, nodejs22.x, nodejs24.x, provided, provided.al2, provided.al2023, go1.x"
)


@pytest.fixture
def in_configs(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(CONFIGS)
    return CONFIGS


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty function folder with a Python handler, as the working folder."""
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return event\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one(targets: list[Path], **kwargs: object) -> ResolvedFunction:
    resolved = resolve_functions(targets, **kwargs)  # type: ignore[arg-type]
    assert len(resolved) == 1, [r.origin for r in resolved]
    return resolved[0]


# ---- workbench.toml and [tool.workbench] ------------------------------------------------------


def test_every_workbench_toml_key_reaches_the_function_config(in_configs: Path) -> None:
    r = one([Path("toml-full")])
    c = r.config
    assert (c.name, c.handler, c.runtime, c.timeout_s, c.memory_mb, c.architecture) == (
        "orders",
        "app.handler",
        "python3.12",
        10.0,
        512,
        "arm64",
    )
    assert (c.build, c.start, c.concurrency, c.events_dir, r.theme, c.runtime_client) == (
        "make build",
        ("python", "-X", "dev", "app.py"),
        4,
        "samples",
        "dracula",
        "awslambdaric",
    )
    assert c.layers == (CONFIGS / "toml-full" / "layers" / "vendor",)
    assert (c.watch_include, c.watch_exclude) == (("*.py", "lib/**"), ("tests/**",))
    # Lambda only holds strings: numbers and booleans are written as CloudFormation would.
    assert c.env == {"TABLE": "orders", "RETRIES": "3", "RATIO": "0.5", "DEBUG": "true"}
    assert r.sources["timeout"] == "toml-full/workbench.toml: timeout"
    assert r.sources["watch.include"] == "toml-full/workbench.toml: watch.include"
    assert r.env_sources["RETRIES"] == "toml-full/workbench.toml: environment.RETRIES"
    assert r.warnings == ()


def test_tool_workbench_in_pyproject_is_read(in_configs: Path) -> None:
    r = one([Path("pyproject-fn")])
    assert (r.config.handler, r.config.memory_mb, r.config.start) == (
        "main.lambda_handler",
        1024,
        ("python", "-u", "main.py"),
    )
    assert r.config.env == {"FROM_PYPROJECT": "yes"}
    assert r.sources["memory"] == "pyproject-fn/pyproject.toml: tool.workbench.memory"
    assert r.sources["name"] == "the folder's name" and r.config.name == "pyproject-fn"


def test_workbench_toml_wins_over_pyproject_and_says_so(folder: Path) -> None:
    (folder / "workbench.toml").write_text("memory = 256\n")
    (folder / "pyproject.toml").write_text("[tool.workbench]\nmemory = 1024\n")
    r = one([folder])
    assert r.config.memory_mb == 256
    assert r.warnings == (
        "pyproject.toml: [tool.workbench] is ignored because workbench.toml is in the same folder",
    )


def test_a_folder_without_settings_has_none(folder: Path) -> None:
    settings = load_settings(folder)
    assert (settings.file, dict(settings.values)) == (None, {})


BAD_SETTINGS = [
    (
        "workbench.toml",
        "timout = 10",
        'workbench.toml: unknown key "timout"; did you mean "timeout"?',
    ),
    (
        "workbench.toml",
        "[watch]\ninlude = ['*.py']",
        'workbench.toml: unknown key "watch.inlude"; did you mean "watch.include"?',
    ),
    (
        "workbench.toml",
        "[wacth]\ninclude = ['*.py']",
        'workbench.toml: unknown key "wacth"; did you mean "watch"?',
    ),
    (
        "pyproject.toml",
        "[tool.workbench]\nhandlr = 'app.handler'",
        'pyproject.toml: unknown key "tool.workbench.handlr"; did you mean '
        '"tool.workbench.handler"?',
    ),
    (
        "workbench.toml",
        "zzzzzz = 1",
        'workbench.toml: unknown key "zzzzzz"; valid keys: name, handler, runtime, timeout, memory, memory_limit, ephemeral_storage, '
        "architecture, environment, env_files, build, start, concurrency, layers, events_dir, "
        "theme, runtime_client, python, node, builder, rpc, history_max_records, history_max_mb, "
        "log_max_mb, watch.include, watch.exclude, watch",
    ),
    (
        "workbench.toml",
        "timeout = 'ten'",
        'workbench.toml: "timeout" must be a number of seconds from 1 to 900; got "ten"',
    ),
    (
        "workbench.toml",
        "timeout = 0",
        'workbench.toml: "timeout" must be a number of seconds from 1 to 900; got 0',
    ),
    (
        "workbench.toml",
        "timeout = 900.5",
        'workbench.toml: "timeout" must be a number of seconds from 1 to 900; got 900.5',
    ),
    (
        "workbench.toml",
        "timeout = true",
        'workbench.toml: "timeout" must be a number of seconds from 1 to 900; got true',
    ),
    (
        "workbench.toml",
        "memory = 64",
        'workbench.toml: "memory" must be a whole number of MB from 128 to 10240; got 64',
    ),
    (
        "workbench.toml",
        "memory = 256.5",
        'workbench.toml: "memory" must be a whole number of MB from 128 to 10240; got 256.5',
    ),
    (
        "workbench.toml",
        "runtime = 'python3.15'",
        f'workbench.toml: "runtime" must be one of {RUNTIME_LIST} (did you mean "python3.14"?); '
        'got "python3.15"',
    ),
    (
        "workbench.toml",
        "architecture = 'arm'",
        'workbench.toml: "architecture" must be one of x86_64, arm64 (did you mean "arm64"?); '
        'got "arm"',
    ),
    (
        "workbench.toml",
        "runtime_client = 7",
        'workbench.toml: "runtime_client" must be one of builtin, awslambdaric; got 7',
    ),
    (
        "workbench.toml",
        "name = 'my function'",
        'workbench.toml: "name" must be a function name of 1 to 64 letters, digits, - and _; '
        'got "my function"',
    ),
    (
        "workbench.toml",
        "handler = ''",
        'workbench.toml: "handler" must be a non-empty string; got ""',
    ),
    (
        "workbench.toml",
        "concurrency = 0",
        'workbench.toml: "concurrency" must be a whole number of at least 1; got 0',
    ),
    (
        "workbench.toml",
        "env_files = '.env.local'",
        'workbench.toml: "env_files" must be a list of non-empty strings; got ".env.local"',
    ),
    (
        "workbench.toml",
        "layers = ['vendor']",
        'workbench.toml: "layers" must be a list of existing folders; got "vendor", which is not '
        "a folder (vendor)",
    ),
    (
        "workbench.toml",
        "start = []",
        'workbench.toml: "start" must be a command: a string or a list of strings; got a list',
    ),
    ("workbench.toml", "watch = 'src'", 'workbench.toml: "watch" must be a table; got "src"'),
    (
        "workbench.toml",
        "[environment]\nHOSTS = ['a', 'b']",
        'workbench.toml: "environment.HOSTS" must be a string (numbers and booleans are '
        "converted); got a list",
    ),
    (
        "workbench.toml",
        "environment = 'A=1'",
        'workbench.toml: "environment" must be a table of names to strings; got "A=1"',
    ),
    (
        "pyproject.toml",
        "[tool]\nworkbench = 3",
        'pyproject.toml: "tool.workbench" must be a table; got 3',
    ),
    (
        "pyproject.toml",
        "[tool.workbench]\nmemory = 99",
        'pyproject.toml: "tool.workbench.memory" must be a whole number of MB from 128 to 10240; '
        "got 99",
    ),
]


@pytest.mark.parametrize(
    ("file", "text", "message"),
    BAD_SETTINGS,
    ids=[m.split(":", 1)[1][:40] for _, _, m in BAD_SETTINGS],
)
def test_bad_settings_name_the_file_the_key_and_what_was_expected(
    folder: Path, file: str, text: str, message: str
) -> None:
    (folder / file).write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        resolve_functions([folder])
    assert str(caught.value) == message


def test_a_toml_syntax_error_names_the_file_and_line(folder: Path) -> None:
    (folder / "workbench.toml").write_text("timeout = 10\nmemory = \n")
    with pytest.raises(ConfigError) as caught:
        load_settings(folder)
    assert str(caught.value) == (
        "workbench.toml: not valid TOML: Invalid value (at line 2, column 10)"
    )


# ---- layering: flags > workbench.toml > template > detection > defaults -------------------


LAYERS = [
    # (Timeout in template.yaml, timeout in workbench.toml, --timeout, value, source)
    (None, None, None, 3.0, "default"),
    (5, None, None, 5.0, "template.yaml: Resources.Fn.Properties.Timeout"),
    (5, 10, None, 10.0, "workbench.toml: timeout"),
    (None, 10, None, 10.0, "workbench.toml: timeout"),
    (5, 10, 20, 20.0, "--timeout"),
    (5, None, 2.5, 2.5, "--timeout"),
]


@pytest.mark.parametrize(("template", "toml", "flag", "value", "source"), LAYERS)
def test_the_nearest_layer_wins(
    folder: Path,
    template: int | None,
    toml: int | None,
    flag: float | None,
    value: float,
    source: str,
) -> None:
    props = f"      Timeout: {template}\n" if template is not None else ""
    (folder / "template.yaml").write_text(
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      Handler: app.handler\n      Runtime: python3.12\n" + props
    )
    if toml is not None:
        (folder / "workbench.toml").write_text(f"timeout = {toml}\n")
    r = one([folder], overrides={"timeout": flag})
    assert (r.config.timeout_s, r.sources["timeout"]) == (value, source)


def test_handler_and_runtime_come_from_flags_then_toml_then_detection(folder: Path) -> None:
    (folder / "worker.py").write_text("def main(event, context):\n    return 1\n")
    detected = one([folder])
    assert (detected.config.handler, detected.sources["handler"]) == (
        "app.handler",
        "detected from the folder's files",
    )
    (folder / "workbench.toml").write_text('handler = "worker.main"\nruntime = "python3.11"\n')
    toml = one([folder])
    assert (toml.config.handler, toml.config.runtime) == ("worker.main", "python3.11")
    assert toml.sources["runtime"] == "workbench.toml: runtime"
    flagged = one(
        [folder],
        overrides={
            "handler": "app.handler",
            "runtime": "python3.13",
            "memory": 2048,
            "region": "eu-west-1",
        },
    )
    assert (
        flagged.config.handler,
        flagged.config.runtime,
        flagged.config.memory_mb,
        flagged.config.region,
    ) == ("app.handler", "python3.13", 2048, "eu-west-1")
    assert [flagged.sources[k] for k in ("handler", "runtime", "memory", "region")] == [
        "--handler",
        "--runtime",
        "--memory",
        "--region",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timeout": 0}, "--timeout must be a number of seconds from 1 to 900; got 0"),
        ({"memory": 100}, "--memory must be a whole number of MB from 128 to 10240; got 100"),
        ({"runtime": "java21"}, f"--runtime must be one of {RUNTIME_LIST}; got 'java21'"),
        (
            {"runtime_client": "ric"},
            "--runtime-client must be one of builtin, awslambdaric; got 'ric'",
        ),
    ],
)
def test_bad_flags_name_the_flag(folder: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_functions([folder], overrides=overrides)
    assert str(caught.value) == message


def test_awslambdaric_is_refused_for_node_naming_its_source(in_configs: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_functions(
            [Path("sam-app")], function="Worker", overrides={"runtime_client": "awslambdaric"}
        )
    assert str(caught.value) == (
        "runtime_client awslambdaric (--runtime-client) is for Python "
        "functions; Worker runs nodejs20.x"
    )


# ---- SAM templates ----------------------------------------------------------------------------


def sam_app(**kwargs: object) -> dict[str, ResolvedFunction]:
    return {r.config.name: r for r in resolve_functions([Path("sam-app")], **kwargs)}  # type: ignore[arg-type]


def test_a_template_folder_gives_every_function_whose_condition_holds(in_configs: Path) -> None:
    assert list(sam_app()) == ["Api", "Worker", "Legacy"]  # ProdOnly needs Stage=prod


API_ENV = {
    "STAGE": "dev",
    "LOG_LEVEL": "INFO",  # Globals
    "SHARED": "from-function",  # the function's own value wins over Globals, key by key
    "URL": "https://us-east-1.example.com/dev/${Literal}",  # !Sub with pseudo and ${!...}
    "URL_MAP": "https://dev.example.com/012345678912",  # !Sub map form with !FindInMap
    "JOINED": "workbench-dev-aws",
    "SECOND_ZONE": "b",
    "THIRD_PART": "z",
    "MODE": "development",
    "BOTH": "no",
    "NEITHER": "no",
    "NOT_PROD": "true",
    "ENCODED": "aGVsbG8=",
    "SUFFIX": "amazonaws.com",
    "COUNT": "3",
    "ENABLED": "true",
}  # OPTIONAL is !If [IsProd, ..., !Ref AWS::NoValue]: removed


def test_sam_intrinsics_resolve_and_globals_merge(in_configs: Path) -> None:
    api = sam_app()["Api"]
    assert api.config.env == API_ENV
    assert (api.config.code_dir, api.config.handler, api.config.runtime) == (
        CONFIGS / "sam-app" / "src" / "api",
        "app.handler",
        "python3.12",
    )
    # Timeout: !Ref of a Number parameter; MemorySize: !FindInMap in Globals.
    assert (api.config.timeout_s, api.config.memory_mb, api.config.architecture) == (
        10.0,
        256,
        "arm64",
    )
    assert api.sources["timeout"] == "sam-app/template.yaml: Resources.Api.Properties.Timeout"
    assert api.sources["memory"] == "sam-app/template.yaml: Globals.Function.MemorySize"
    assert api.sources["runtime"] == "sam-app/template.yaml: Globals.Function.Runtime"
    assert api.sources["name"] == "logical id in sam-app/template.yaml"
    assert api.env_sources["STAGE"] == (
        "sam-app/template.yaml: Globals.Function.Environment.Variables.STAGE"
    )
    assert api.env_sources["SHARED"] == (
        "sam-app/template.yaml: Resources.Api.Properties.Environment.Variables.SHARED"
    )


def test_cloud_only_values_are_dropped_with_a_warning_each(in_configs: Path) -> None:
    assert sam_app()["Api"].warnings == (
        "Api: Environment.Variables.TABLE_NAME is left out: !GetAtt Table.Arn refers to a cloud "
        "resource; set TABLE_NAME with --env or in workbench.toml",
        "Api: Environment.Variables.QUEUE is left out: !Ref Queue refers to a cloud resource "
        "(AWS::SQS::Queue); set QUEUE with --env or in workbench.toml",
        "Api: Environment.Variables.TABLE_URL is left out: ${Table.Arn} refers to an attribute "
        "of a cloud resource; set TABLE_URL with --env or in workbench.toml",
        "Api: Environment.Variables.IMPORTED is left out: !ImportValue shared-bucket comes from "
        "another stack; set IMPORTED with --env or in workbench.toml",
        "Api: Environment.Variables.NEEDS_SECRET is left out: !Ref Secret: parameter Secret has "
        "no Default (give it a value with a parameter override); set NEEDS_SECRET with --env or "
        "in workbench.toml",
        "Api: Layers[2] is left out: arn:aws:lambda:us-east-1:123456789012:layer:published:3 is "
        "a published layer, which workbench does not download; add a local copy of the layer "
        "to `layers` in workbench.toml",
    )


def test_local_layers_add_up_globals_first(in_configs: Path) -> None:
    functions = sam_app()
    layers = CONFIGS / "sam-app" / "layers"
    assert functions["Api"].config.layers == (layers / "common", layers / "shared")
    assert functions["Api"].sources["layers"] == (
        "sam-app/template.yaml: Globals.Function.Layers + Resources.Api.Properties.Layers"
    )
    assert functions["Worker"].config.layers == (layers / "common",)


def test_no_value_removes_a_global_variable_and_globals_skip_plain_lambda(in_configs: Path) -> None:
    functions = sam_app()
    assert functions["Worker"].config.env == {"STAGE": "dev", "SHARED": "from-globals"}
    assert (functions["Worker"].config.timeout_s, functions["Worker"].config.memory_mb) == (
        5.0,
        512,
    )
    legacy = functions["Legacy"]  # AWS::Lambda::Function: Globals do not apply
    assert (legacy.config.env, legacy.config.memory_mb, legacy.config.timeout_s) == ({}, 128, 30.0)
    assert legacy.config.code_dir == CONFIGS / "sam-app" / "src" / "legacy"
    assert legacy.sources["code_dir"] == "sam-app/template.yaml: Resources.Legacy.Properties.Code"


def test_parameter_overrides_flip_conditions_and_mappings(in_configs: Path) -> None:
    functions = sam_app(
        parameter_overrides={"Stage": "prod", "LogLevel": "DEBUG", "Secret": "s3cr3t"}
    )
    assert list(functions) == ["Api", "Worker", "Legacy", "ProdOnly"]
    env = functions["Api"].config.env
    assert (env["MODE"], env["OPTIONAL"], env["BOTH"], env["NEITHER"], env["NOT_PROD"]) == (
        "production",
        "set-in-prod",
        "yes",
        "yes",
        "false",
    )
    assert (env["NEEDS_SECRET"], env["URL_MAP"], env["LOG_LEVEL"]) == (
        "s3cr3t",
        "https://example.com/012345678912",
        "DEBUG",
    )
    assert functions["Api"].config.memory_mb == 1024


def test_region_reaches_pseudo_parameters(in_configs: Path) -> None:
    api = sam_app(overrides={"region": "eu-central-1"})["Api"]
    assert api.config.env["URL"] == "https://eu-central-1.example.com/dev/${Literal}"
    assert api.config.region == "eu-central-1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"function": "Apii"},
            'sam-app/template.yaml: no function "Apii"; the functions are Api, Legacy, ProdOnly, '
            "Worker",
        ),
        (
            {"function": "ProdOnly"},
            "sam-app/template.yaml: ProdOnly exists only when condition IsProd is true, and it is "
            "false with these parameter values",
        ),
        (
            {"parameter_overrides": {"Stagee": "prod"}},
            'sam-app/template.yaml: no parameter "Stagee" to override; did you mean "Stage"?',
        ),
        (
            {"parameter_overrides": {"Stage": "qa"}},
            "sam-app/template.yaml: parameter Stage is 'qa', which is not one of its AllowedValues: "
            "dev, prod",
        ),
    ],
)
def test_template_selection_errors(
    in_configs: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        sam_app(**kwargs)
    assert str(caught.value) == message


def test_function_selects_one_by_logical_id(in_configs: Path) -> None:
    assert list(sam_app(function="Legacy")) == ["Legacy"]
    picked = load_template(CONFIGS / "sam-app" / "template.yaml", function="Worker")
    assert [f.logical_id for f in picked] == ["Worker"]


def test_a_missing_handler_module_is_a_warning_naming_the_file(in_configs: Path) -> None:
    r = one([Path("sam-missing-handler/template.yaml")], function="Fn")
    assert r.warnings == (
        "Fn: handler app.handler (sam-missing-handler/template.yaml: "
        "Resources.Fn.Properties.Handler) needs sam-missing-handler/src/app.py, which does not "
        "exist; the first invoke will fail with Runtime.ImportModuleError",
    )


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (
            "Remote",
            "sam-missing-handler/template.yaml: Remote cannot run locally: its CodeUri is "
            "not a local folder ('s3://my-bucket/code.zip'); workbench runs code from a "
            "folder",
        ),
        (
            "Java",
            f"sam-missing-handler/template.yaml: Java cannot run locally: runtime java21 is "
            f"not one workbench runs ({RUNTIME_LIST})",
        ),
        (
            None,
            "sam-missing-handler/template.yaml: Remote cannot run locally: its CodeUri is not a "
            "local folder ('s3://my-bucket/code.zip'); workbench runs code from a folder; to "
            "run the template's other functions, name one with --function",
        ),
    ],
)
def test_functions_that_cannot_run_locally_say_why(
    in_configs: Path, function: str | None, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_functions([Path("sam-missing-handler")], function=function)
    assert str(caught.value) == message


EDGE_TEMPLATE = """
Parameters:
  Flag: {Type: String, Default: "on"}
  FromSsm: {Type: "AWS::SSM::Parameter::Value<String>", Default: /app/key}
Conditions:
  FlagOn: !Equals [!Ref Flag, "on"]
Resources:
  Layer: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: s3://b/layer.zip}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.12
      Layers: !If [FlagOn, [!Ref Layer], []]
      Environment: !If
        - FlagOn
        - Variables: VARIABLES
        - !Ref AWS::NoValue
"""

EDGE_CASES = [
    # (the variable's YAML, its value or None, the warning or None)
    ("!GetAZs ''", None, "Lambda needs a string, not list"),
    ("!Select [0, !GetAZs '']", "us-east-1a", None),
    ("!Select [1, !Cidr [10.0.0.0/16, 4, 8]]", "10.0.1.0/24", None),
    ("!Select [5, [a, b]]", None, "!Select index 5 is outside a list of 2"),
    ("!Join [',']", None, "Fn::Join is malformed (list index out of range)"),
    ("{Fn::Length: [a, b]}", None, "Fn::Length is not something workbench can work out locally"),
    (
        "!Ref FromSsm",
        None,
        "!Ref FromSsm: parameter FromSsm is read from SSM Parameter Store when deployed",
    ),
    ("!Ref Nothing", None, "!Ref Nothing names no parameter or resource of the template"),
    ("!If [Missing, a, b]", None, "condition Missing is not defined in Conditions"),
    ("!FindInMap [M, a, b]", None, "!FindInMap M a b is not in Mappings"),
    ("!Sub ['${A}-${B}', {A: !Ref Flag, B: !Ref AWS::Partition}]", "on-aws", None),
    ("'007'", "007", None),
]


@pytest.mark.parametrize(("expr", "value", "why"), EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_intrinsic_edge_cases(folder: Path, expr: str, value: str | None, why: str | None) -> None:
    (folder / "template.yaml").write_text(EDGE_TEMPLATE.replace("VARIABLES", f"{{VAR: {expr}}}"))
    r = one([folder])
    assert r.config.env.get("VAR") == value
    layer = (
        "Fn: Layers[0] is left out: layer Layer has its ContentUri in S3, not in a local "
        "folder; add a local copy of the layer to `layers` in workbench.toml"
    )
    expected = ([f"Fn: Environment.Variables.VAR is left out: {why}"] if why else []) + [layer]
    assert [w.split("; set VAR with")[0] for w in r.warnings] == expected


@pytest.mark.parametrize(
    ("props", "why"),
    [
        (
            "PackageType: Image\n      ImageUri: repo:tag",
            "it is a container image function (PackageType: Image)",
        ),
        (
            "InlineCode: 'def handler(e, c): pass'",
            "its code is inline (InlineCode); move it into a folder and point CodeUri at it",
        ),
        ("CodeUri: nowhere", "its CodeUri nowhere is not a folder (nowhere)"),
        (
            "CodeUri: !GetAtt Bucket.Arn",
            "its CodeUri cannot be worked out locally: !GetAtt Bucket.Arn refers to a cloud resource",
        ),
        (
            "CodeUri: {Bucket: b, Key: k}",
            "its CodeUri is not a local folder ({'Bucket': 'b', 'Key': 'k'}); workbench runs code "
            "from a folder",
        ),
    ],
)
def test_code_that_is_not_a_local_folder(folder: Path, props: str, why: str) -> None:
    (folder / "template.yaml").write_text(
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        f"      Handler: app.handler\n      Runtime: python3.12\n      {props}\n"
    )
    with pytest.raises(ConfigError) as caught:
        resolve_functions([folder], function="Fn")
    assert str(caught.value) == f"template.yaml: Fn cannot run locally: {why}"


def test_environment_and_layers_decided_by_a_condition_can_vanish(folder: Path) -> None:
    (folder / "template.yaml").write_text(EDGE_TEMPLATE.replace("VARIABLES", "{VAR: x}"))
    r = one([folder], parameter_overrides={"Flag": "off"})
    assert (r.config.env, r.config.layers, r.warnings) == ({}, (), ())


def test_a_json_template_and_string_numbers(in_configs: Path) -> None:
    r = one([Path("json-template/template.json")], overrides={"region": "ap-south-1"})
    assert (r.config.name, r.config.runtime, r.config.memory_mb) == ("JsonFn", "nodejs22.x", 256)
    assert r.config.env == {"GREETING": "hi from ap-south-1"}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "template.yaml",
            "Resources:\n  Fn: [unclosed\n",
            "template.yaml: not valid YAML at line 3: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "template.json",
            '{"Resources": {,}}',
            "template.json: not valid JSON at line 1: Expecting property name enclosed in double "
            "quotes",
        ),
        (
            "template.yaml",
            "Description: nothing\n",
            "template.yaml: not a CloudFormation template (no Resources section)",
        ),
        (
            "template.yaml",
            "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n",
            "template.yaml: declares no function that exists with these parameter values",
        ),
    ],
)
def test_broken_templates_name_the_file(folder: Path, name: str, text: str, message: str) -> None:
    (folder / name).write_text(text)
    with pytest.raises(ConfigError) as caught:
        resolve_functions([folder / name])
    assert str(caught.value) == message


# ---- env files and the environment's layering ------------------------------------------------


def test_environment_layers_in_the_documented_order(in_configs: Path) -> None:
    # Each source sets its own key and every key after it; the last source to set a key wins.
    r = one(
        [Path("env-layers")],
        env_files=[Path("env-layers/extra1.env"), Path("env-layers/extra2.env")],
        env={"FF": "flag"},
    )
    assert r.config.env == {
        "AA": "template",
        "BB": "toml",
        "CC": "conf",
        "DD": "dotenv",
        "EE": "extra2",
        "FF": "flag",
    }
    assert r.env_sources == {
        "AA": "env-layers/template.yaml: Resources.Fn.Properties.Environment.Variables.AA",
        "BB": "env-layers/workbench.toml: environment.BB",
        "CC": "env-layers/conf.env",
        "DD": "env-layers/.env",
        "EE": "env-layers/extra2.env",
        "FF": "--env",
    }


@pytest.mark.parametrize(
    ("files", "env_files", "env", "message"),
    [
        ({}, ["nope.env"], {}, "nope.env: env file not found (from --env-file)"),
        (
            {"bare.env": "A=1\nTOKEN\n"},
            ["bare.env"],
            {},
            'bare.env: "TOKEN" has no value; write TOKEN= for an empty one',
        ),
        (
            {".env": "AWS_REGION=mars-1\n"},
            [],
            {},
            "Lambda reserves the environment variable AWS_REGION and does not let a function set it; "
            "it is set in .env",
        ),
        (
            {},
            [],
            {"1BAD": "x"},
            "--env: '1BAD' is not a name Lambda accepts for an environment variable (a letter, then "
            "letters, digits and _; two characters at least)",
        ),
        (
            {"workbench.toml": "[environment]\nX = '1'\n"},
            [],
            {},
            "workbench.toml: environment.X: 'X' is not a name Lambda accepts for an environment "
            "variable (a letter, then letters, digits and _; two characters at least)",
        ),
        (
            {"workbench.toml": 'env_files = ["missing.env"]\n'},
            [],
            {},
            "missing.env: env file not found (from workbench.toml: env_files)",
        ),
    ],
)
def test_env_file_errors(
    folder: Path, files: dict[str, str], env_files: list[str], env: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (folder / name).write_text(text)
    with pytest.raises(ConfigError) as caught:
        resolve_functions([folder], env_files=[Path(f) for f in env_files], env=env)
    assert str(caught.value) == message


# ---- detection --------------------------------------------------------------------------------


GO_NOTE = "Go module: built with `go build -tags lambda.norpc` into .workbench/build/bootstrap"
RUST_NOTE = "Rust crate: built with `cargo build --release` into .workbench/build/bootstrap"


@pytest.mark.parametrize(
    ("name", "runtime", "builder", "notes"),
    [
        ("go-fn", None, "go", (GO_NOTE,)),
        ("go-fn", "provided.al2", "go", (GO_NOTE,)),
        ("rust-fn", None, "rust", (RUST_NOTE,)),
    ],
)
def test_go_and_rust_folders_are_built_custom_runtimes(
    name: str, runtime: str | None, builder: str, notes: tuple[str, ...]
) -> None:
    cfg = detect(CONFIGS / name, runtime=runtime)
    assert (cfg.runtime, cfg.handler, cfg.builder, cfg.notes) == (
        runtime or "provided.al2023",
        "bootstrap",
        builder,
        notes,
    )


def test_a_bootstrap_wins_over_go_mod(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module x\n")
    (tmp_path / "bootstrap").write_text("#!/bin/sh\n")
    (tmp_path / "bootstrap").chmod(0o755)
    cfg = detect(tmp_path)
    assert (cfg.runtime, cfg.builder) == ("provided.al2023", None)
    assert cfg.notes == ("found an executable `bootstrap`: custom runtime (provided.al2023)",)


def test_two_candidate_handlers_say_which_setting_to_add() -> None:
    cfg = detect(CONFIGS / "two-handlers", runtime="python3.12")
    assert cfg.handler == "app.handler"
    assert cfg.notes == (
        "handler app.handler: found def handler() in app.py",
        "also found worker.lambda_handler; to use another handler, set it in "
        'workbench.toml, e.g. handler = "worker.lambda_handler"',
    )


def test_a_handler_in_workbench_toml_silences_the_guess(tmp_path: Path) -> None:
    for file in ("app.py", "worker.py"):
        (tmp_path / file).write_text((CONFIGS / "two-handlers" / file).read_text())
    (tmp_path / "workbench.toml").write_text('handler = "worker.lambda_handler"\n')
    r = one([tmp_path])
    assert (r.config.handler, r.config.notes) == (
        "worker.lambda_handler",
        (
            f"found Python code: runtime python{sys.version_info.major}.{sys.version_info.minor} "
            "(from this interpreter)",
        ),
    )


# ---- several targets --------------------------------------------------------------------------


def test_targets_mix_folders_and_templates(in_configs: Path) -> None:
    names = [
        r.config.name
        for r in resolve_functions(
            [Path("toml-full"), Path("sam-app/template.yaml"), Path("go-fn")], function="Api"
        )
    ]
    assert names == ["orders", "Api", "go-fn"]  # in the order given


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (
            ["a/fn", "b/fn"],
            'two functions are named "fn": a/fn and b/fn; set a different `name` in '
            "one's workbench.toml",
        ),
        (["x", "missing"], "missing: no such file or folder"),
    ],
)
def test_target_errors(folder: Path, layout: list[str], message: str) -> None:
    targets = []
    for name in layout:
        if name != "missing":
            (folder / name).mkdir(parents=True)
            (folder / name / "app.py").write_text("def handler(e, c):\n    return e\n")
        targets.append(Path(name))
    with pytest.raises(ConfigError) as caught:
        resolve_functions(targets)
    assert str(caught.value) == message


def test_function_needs_a_template_and_a_known_id_across_templates(in_configs: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_functions([Path("toml-full")], function="Api")
    assert str(caught.value) == (
        "--function Api: picks a function of a SAM template, and none of the targets is a template"
    )
    with pytest.raises(ConfigError) as caught:
        resolve_functions([Path("sam-app"), Path("env-layers")], function="Fm")
    assert str(caught.value) == (
        "sam-app/template.yaml, env-layers/template.yaml: no function "
        '"Fm"; the functions are Fn, Api, Worker, Legacy, ProdOnly'
    )


def test_parameter_overrides_go_to_the_templates_that_declare_them(in_configs: Path) -> None:
    names = {
        r.config.name: r
        for r in resolve_functions(
            [Path("sam-app"), Path("env-layers")], parameter_overrides={"Stage": "prod"}
        )
    }
    assert names["Api"].config.env["MODE"] == "production" and "Fn" in names
    with pytest.raises(ConfigError) as caught:
        resolve_functions(
            [Path("sam-app"), Path("env-layers")], parameter_overrides={"LogLevl": "DEBUG"}
        )
    assert str(caught.value) == (
        "sam-app/template.yaml, env-layers/template.yaml: no parameter "
        '"LogLevl" to override; did you mean "LogLevel"?'
    )


def test_describe_explains_every_value(in_configs: Path) -> None:
    text = one([Path("env-layers")], env={"FF": "flag"}).describe()
    lines = text.splitlines()
    assert lines[0] == "Fn (env-layers/template.yaml: Resources.Fn)"
    for line in (
        "  runtime = python3.12 (env-layers/template.yaml: Resources.Fn.Properties.Runtime)",
        "  timeout = 3 (default)",
        "  memory = 128 (default)",
        "  code_dir = env-layers (env-layers/template.yaml: no CodeUri, so the template's folder)",
        "  environment:",
        "    CC = conf (env-layers/conf.env)",
        "    FF = flag (--env)",
    ):
        assert line in lines, text


# ---- the split: configuration never loads the UI toolkit -------------------------------------


@pytest.mark.parametrize(
    "module", ["config.settings", "config.sam", "config.envfiles", "config.resolve"]
)
def test_configuration_modules_import_no_ui_toolkit(module: str) -> None:
    probe = (
        f"import workbench.core.{module}, sys; "
        "print(','.join(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('textual', 'rich'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(CONFIGS.parents[2])},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
