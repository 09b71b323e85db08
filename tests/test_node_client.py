"""workbench's Node.js runtime client (workbench/core/runtimes/node/runtime.mjs) through the real
CLI and the real emulator: handler loading, context, results, error documents, init errors,
crashes and console logging, as Lambda's Node.js runtime produces them."""

from __future__ import annotations

import base64
import json
import re
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import EXAMPLES, FIXTURES, Server, run_workbench

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH"),
    pytest.mark.integration,  # a node process per case
]

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@dataclass
class Run:
    code: int
    stdout: str
    lines: list[str]  # stderr: platform lines and the function's output

    @property
    def response(self) -> Any:
        return json.loads(self.stdout)

    @property
    def request_id(self) -> str:
        m = re.search(rf"^START RequestId: ({UUID}) ", "\n".join(self.lines), re.MULTILINE)
        assert m, self.lines
        return m.group(1)

    def index(self, pattern: str) -> int:
        for i, line in enumerate(self.lines):
            if re.search(pattern, line):
                return i
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))

    def logs(self, level: str) -> list[str]:
        """Messages of the function's `console.*` records at `level`, for this invocation."""
        rid = self.request_id
        out = []
        for line in self.lines:
            m = re.fullmatch(rf"{TS}\t{rid}\t{level}\t(.*)", line)
            if m:
                out.append(m.group(1))
        return out


def invoke(folder: str, handler: str, *flags: str, event: object = None) -> Run:
    payload = json.dumps({} if event is None else event).encode()
    path = EXAMPLES / folder if folder.startswith("hello-") else FIXTURES / folder
    proc = run_workbench(
        "invoke",
        str(path),
        "--runtime",
        "nodejs20.x",
        "--handler",
        handler,
        *flags,
        "-e",
        "-",
        stdin=payload,
    )
    # split("\n"), not splitlines(): a record's own newlines arrive as \r and must stay inside it.
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode().split("\n"))


def error_log(run: Run, label: str, request_id: str) -> Any:
    """The JSON half of `<ts>\t<id>\tERROR\t<label> \t{...}`, the runtime's error record."""
    i = run.index(rf"^{TS}\t{re.escape(request_id)}\tERROR\t{label} \t\{{")
    return json.loads(run.lines[i].split(f"{label} \t", 1)[1])


# ---------------------------------------------------------------- handlers and results


def test_example_hello_node() -> None:
    run = invoke("hello-node", "index.handler", event={"name": "world"})
    assert run.code == 0
    assert run.response["statusCode"] == 200
    assert json.loads(run.response["body"]) == {
        "message": "Hello, world!",
        "requestId": run.request_id,
    }
    start, end = run.index("^START "), run.index("^END ")
    assert start < run.index(r"\tINFO\tgreeting world$") < end


def test_commonjs_callback_waits_for_the_event_loop() -> None:
    run = invoke("node-cjs-callback", "index.handler", event={"k": [1, 2]})
    assert run.code == 0
    assert run.response == {"echo": {"k": [1, 2]}, "waits": True}
    # The response is sent only once the timer left after callback() has run.
    assert run.index(r"\tINFO\ttimer ran before the response$") < run.index("^END ")


def test_callback_does_not_wait_when_told_not_to() -> None:
    run = invoke("node-cjs-callback", "index.noWait")
    assert run.code == 0
    assert run.response == {"waits": False}
    end = run.index("^END ")
    assert not any("late timer" in line for line in run.lines[:end])


def test_handler_that_never_answers_returns_null_when_the_loop_drains() -> None:
    run = invoke("node-cjs-callback", "index.silent")
    assert run.code == 0
    assert run.stdout.strip() == "null"
    assert run.index(r"\tINFO\tsilent handler timer$") < run.index("^END ")


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("index.legacySucceed", {"via": "succeed"}),
        ("index.legacyDone", {"via": "done"}),
    ],
)
def test_legacy_context_succeed_and_done(handler: str, expected: object) -> None:
    run = invoke("node-cjs-callback", handler)
    assert run.code == 0
    assert run.response == expected


def test_legacy_context_fail() -> None:
    run = invoke("node-cjs-callback", "index.legacyFail")
    assert run.code == 1
    assert run.response["errorType"] == "Error"
    assert run.response["errorMessage"] == "failed via context.fail"


def test_esm_with_top_level_await() -> None:
    run = invoke("node-esm-tla", "index.handler", event={"x": 1})
    assert run.code == 0
    assert run.response == {"config": {"loadedAt": "init"}, "event": {"x": 1}, "esm": True}
    # Init output carries no request id yet, exactly like Lambda's "undefined".
    assert run.index(rf"^{TS}\tundefined\tINFO\tconfig loaded$") < run.index("^START ")


def test_js_file_is_esm_when_package_json_says_module() -> None:
    run = invoke("node-js-type-module", "app.handler", event={"y": 2})
    assert run.code == 0
    assert run.response == {"esm": True, "platform": "string", "event": {"y": 2}}


def test_folder_whose_package_main_is_an_es_module() -> None:
    # require() of the folder fails with ERR_REQUIRE_ESM / ERR_REQUIRE_ASYNC_MODULE (top-level
    # await); the client falls back to import() of the file the folder resolves to.
    run = invoke("node-esm-package", "lib.handler")
    assert run.code == 0
    assert run.response == {"ready": "ready"}


def test_nested_module_path_and_export_path() -> None:
    run = invoke("node-nested", "src/api/routes.handlers.users.get", event={"id": 7})
    assert run.code == 0
    assert run.response == {"route": "users.get", "id": 7, "fn": "node-nested"}


def test_context_object() -> None:
    run = invoke("node-context", "index.handler", "--memory", "256", "--timeout", "3")
    assert run.code == 0
    out = run.response
    ctx = out["context"]
    assert ctx["awsRequestId"] == run.request_id
    assert ctx["functionName"] == "node-context"
    assert ctx["functionVersion"] == "$LATEST"
    assert ctx["memoryLimitInMB"] == "256"  # a string, from the environment
    assert ctx["invokedFunctionArn"].endswith(":function:node-context")
    assert ctx["invokedFunctionArn"].startswith("arn:aws:lambda:")
    assert ctx["logGroupName"] == "/aws/lambda/node-context"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", ctx["logStreamName"])
    assert ctx["callbackWaitsForEmptyEventLoop"] is True
    types = out["types"]
    for name in ("getRemainingTimeInMillis", "succeed", "fail", "done"):
        assert types[name] == "function"
    assert types["memoryLimitInMB"] == "string"
    # Present as keys, undefined without the matching headers (so absent from the JSON).
    assert out["hasIdentity"] and out["hasClientContext"]
    assert types["identity"] == types["clientContext"] == types["tenantId"] == "undefined"
    assert 0 < out["remaining"] <= 3000
    assert out["remaining"] - out["remainingLater"] >= 50
    # no trace header from the caller: the made-up one the service would send reaches the env
    assert re.fullmatch(
        r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", out["traceEnv"]
    )


def _post(url: str, headers: dict[str, str]) -> Any:
    req = urllib.request.Request(
        f"{url}/2015-03-31/functions/node-context/invocations",
        data=b"{}",
        headers=headers,
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


def test_context_from_invoke_headers_and_a_warm_second_invoke(serve: Callable[..., Server]) -> None:
    server = serve(
        str(FIXTURES / "node-context"),
        "--port",
        "0",
        "--runtime",
        "nodejs20.x",
        "--handler",
        "index.handler",
        "--env",
        "AWS_LAMBDA_LOG_FORMAT=JSON",
    )
    client_context = {"client": {"app_title": "t"}, "custom": {"k": "v"}, "env": {"e": "1"}}
    trace = "Root=1-5e7d7595-0123456789abcdef01234567;Parent=42ff0123456789ab;Sampled=1"
    first = _post(
        server.url,
        {
            "X-Amz-Client-Context": base64.b64encode(json.dumps(client_context).encode()).decode(),
            "X-Amzn-Trace-Id": trace,
            "X-Amz-Tenant-Id": "tenant-a",
        },
    )
    assert first["context"]["clientContext"] == client_context
    assert first["context"]["tenantId"] == "tenant-a"
    assert first["traceEnv"] == trace
    second = _post(server.url, {})
    assert second["pid"] == first["pid"]  # same process: the loop went back to /next
    assert second["context"]["awsRequestId"] != first["context"]["awsRequestId"]
    assert "clientContext" not in second["context"] and "tenantId" not in second["context"]
    # not the first one's: the runtime sets it per invoke, from a trace made for this one
    assert second["traceEnv"] != trace and second["traceEnv"].endswith(";Sampled=0")
    server.wait_for_line(second["context"]["awsRequestId"] + r'","message":"context dumped"')
    records = [json.loads(line) for line in server.lines if '"message":"context dumped"' in line]
    assert [r.get("tenantId") for r in records] == ["tenant-a", None]  # JSON logs carry it


# ---------------------------------------------------------------- invocation errors


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("index.thrown", "ValidationError", "name is required"),
        ("index.thrownSync", "TypeError", "sync failure"),
        ("index.rejected", "RangeError", "rejected on purpose"),
        ("index.callbackError", "Error", "callback failure"),
    ],
)
def test_error_document(handler: str, error_type: str, message: str) -> None:
    run = invoke("node-errors", handler)
    assert run.code == 1
    doc = run.response
    assert set(doc) == {"errorType", "errorMessage", "trace"}  # Node says trace, not stackTrace
    assert doc["errorType"] == error_type
    assert doc["errorMessage"] == message
    assert doc["trace"][0] == f"{error_type}: {message}"
    assert any("node-errors/index.js" in frame for frame in doc["trace"][1:])
    logged = error_log(run, "Invoke Error", run.request_id)
    assert logged["errorType"] == error_type and logged["errorMessage"] == message
    assert logged["stack"][0] == f"{error_type}: {message}"
    assert run.index("Invoke Error") < run.index("^END ")


def test_rejection_with_a_non_error_value() -> None:
    run = invoke("node-errors", "index.rejectedString")
    assert run.code == 1
    assert run.response == {
        "errorType": "string",
        "errorMessage": "plain string reason",
        "trace": [],
    }


def test_result_json_cannot_encode() -> None:
    run = invoke("node-errors", "index.circular")
    assert run.code == 1
    assert run.response["errorType"] == "Error"
    assert run.response["errorMessage"] == "Unable to stringify response body"


def test_response_over_the_limit_is_refused_and_the_runtime_carries_on() -> None:
    run = invoke("node-errors", "index.tooBig")
    assert run.code == 1
    assert run.response["errorType"] == "Function.ResponseSizeTooLarge"
    rid = re.escape(run.request_id)
    refused = run.index(
        rf"\t{rid}\tERROR\tPOST /2018-06-01/runtime/invocation/{rid}/response "
        r"answered 413: "
    )
    # END comes when the runtime is back on /next; a runtime that died instead gets ExitError.
    assert refused < run.index("^END ")
    assert not any("Runtime.ExitError" in line for line in run.lines)


def test_async_handler_whose_promise_never_settles() -> None:
    run = invoke("node-errors", "index.neverSettles")
    assert run.code == 1
    assert run.response["errorType"] == "Runtime.NodeJsExit"
    assert "Promise that was never settled" in run.response["errorMessage"]


def test_errors_do_not_end_the_runtime(serve: Callable[..., Server]) -> None:
    server = serve(
        str(FIXTURES / "node-errors"),
        "--port",
        "0",
        "--runtime",
        "nodejs20.x",
        "--handler",
        "index.thrown",
    )
    url = f"{server.url}/2015-03-31/functions/node-errors/invocations"
    for _ in range(2):
        req = urllib.request.Request(url, data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=30) as res:
            assert res.headers["X-Amz-Function-Error"] == "Unhandled"
            assert json.loads(res.read())["errorType"] == "ValidationError"
    server.wait_for_line(r"^REPORT ")
    assert sum(line.startswith("INIT_START") for line in server.lines) == 1


def test_uncaught_exception_fails_the_invoke() -> None:
    run = invoke("node-crash", "index.uncaught")
    assert run.code == 1
    assert run.response["errorType"] == "Error"
    assert run.response["errorMessage"] == "thrown from a timer"
    logged = error_log(run, "Uncaught Exception", run.request_id)
    assert logged["errorMessage"] == "thrown from a timer"


def test_unhandled_rejection_fails_the_invoke() -> None:
    run = invoke("node-crash", "index.unhandled")
    assert run.code == 1
    doc = run.response
    assert doc["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert doc["errorMessage"] == "Error: nobody awaited me"
    assert doc["trace"][0] == "Runtime.UnhandledPromiseRejection: Error: nobody awaited me"
    logged = error_log(run, "Unhandled Promise Rejection", run.request_id)
    assert logged["reason"]["errorMessage"] == "nobody awaited me"


# ---------------------------------------------------------------- init errors


def init_error(run: Run, error_type: str) -> Any:
    assert run.code == 1
    doc = run.response
    assert doc["errorType"] == error_type
    assert doc["trace"][0].startswith(f"{error_type}: ")
    # Posted to /init/error with the Lambda-Runtime-Function-Error-Type header the platform reports.
    run.index(rf"^INIT_REPORT .*\tPhase: init\tStatus: error\tError Type: {re.escape(error_type)}$")
    logged = error_log(run, "Uncaught Exception", "undefined")
    assert logged["errorType"] == error_type
    return doc


def test_missing_module() -> None:
    doc = init_error(invoke("node-missing-module", "index.handler"), "Runtime.ImportModuleError")
    assert doc["errorMessage"].startswith("Error: Cannot find module 'index'\nRequire stack:\n- ")
    assert doc["trace"][:2] == [
        "Runtime.ImportModuleError: Error: Cannot find module 'index'",
        "Require stack:",
    ]


def test_missing_dependency_of_the_module() -> None:
    doc = init_error(invoke("node-missing-module", "needsdep.handler"), "Runtime.ImportModuleError")
    assert doc["errorMessage"].startswith(
        "Error: Cannot find module 'some-package-that-is-not-installed'\nRequire stack:\n- "
    )
    assert "node-missing-module/needsdep.js" in doc["errorMessage"]


def test_handler_not_exported() -> None:
    doc = init_error(invoke("node-not-exported", "index.handler"), "Runtime.HandlerNotFound")
    assert doc["errorMessage"] == "index.handler is undefined or not exported"


def test_handler_not_a_function() -> None:
    doc = init_error(invoke("node-not-exported", "index.notAFunction"), "Runtime.HandlerNotFound")
    assert doc["errorMessage"] == "index.notAFunction is not a function"


def test_syntax_error() -> None:
    doc = init_error(invoke("node-syntax-error", "index.handler"), "Runtime.UserCodeSyntaxError")
    assert doc["errorMessage"].startswith("SyntaxError: Unexpected token")


@pytest.mark.parametrize("handler", ["index", "src/index"])
def test_malformed_handler_name(handler: str) -> None:
    doc = init_error(invoke("node-not-exported", handler), "Runtime.MalformedHandlerName")
    assert doc["errorMessage"] == "Bad handler"


def test_exception_thrown_at_import() -> None:
    run = invoke("node-init-throw", "index.handler")
    doc = init_error(run, "Error")
    assert doc["errorMessage"] == "configuration is missing"
    assert any("node-init-throw/index.mjs" in frame for frame in doc["trace"])
    assert run.index(rf"^{TS}\tundefined\tINFO\tstarting init$") < run.index("Uncaught Exception")


# ---------------------------------------------------------------- console


def test_console_levels_in_text_format() -> None:
    run = invoke("node-console", "index.handler")
    assert run.code == 0
    assert run.logs("INFO") == ["log line { n: 1 }", "info formatted", "first\rsecond"]
    assert run.logs("WARN") == ["warn line"]
    assert run.logs("ERROR") == ["error line"]
    assert run.logs("DEBUG") == ["debug line"]
    assert run.logs("TRACE") == ["trace line"]
    assert "raw stdout line" in run.lines  # process.stdout.write stays as written
    start, end = run.index("^START "), run.index("^END ")
    assert start < run.index(r"\tINFO\tlog line") < run.index("^raw stdout line$") < end


def test_log_level_filters_console() -> None:
    run = invoke("node-console", "index.handler", "--env", "AWS_LAMBDA_LOG_LEVEL=WARN")
    assert run.code == 0
    assert run.logs("WARN") == ["warn line"] and run.logs("ERROR") == ["error line"]
    assert run.logs("INFO") == run.logs("DEBUG") == run.logs("TRACE") == []


def test_console_in_json_format() -> None:
    run = invoke("node-console", "index.handler", "--env", "AWS_LAMBDA_LOG_FORMAT=JSON")
    assert run.code == 0
    records = [json.loads(line) for line in run.lines if line.startswith('{"timestamp"')]
    assert [(r["level"], r["message"]) for r in records] == [
        ("INFO", "log line { n: 1 }"),
        ("INFO", "info formatted"),
        ("WARN", "warn line"),
        ("ERROR", "error line"),
        ("DEBUG", "debug line"),
        ("TRACE", "trace line"),
        ("INFO", "first\nsecond"),
    ]
    for r in records:
        assert r["requestId"] == run.request_id
        assert re.fullmatch(TS, r["timestamp"])
    assert "raw stdout line" in run.lines


def test_json_format_logs_errors_as_objects() -> None:
    run = invoke("node-errors", "index.thrown", "--env", "AWS_LAMBDA_LOG_FORMAT=JSON")
    assert run.code == 1
    records = [json.loads(line) for line in run.lines if line.startswith('{"timestamp"')]
    assert len(records) == 1 and records[0]["level"] == "ERROR"
    assert records[0]["message"]["errorType"] == "ValidationError"
    assert records[0]["message"]["errorMessage"] == "name is required"
    assert records[0]["message"]["stackTrace"][0] == "ValidationError: name is required"
