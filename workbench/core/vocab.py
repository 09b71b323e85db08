"""The core's closed sets of names, in one place.

Each is a `Literal`, so mypy refuses a name outside the set wherever one is passed (a log line's
stream spelt "workbench" went unnoticed while these were bare strings), and each has a tuple of
its members for code that must list them at run time (filters, validation, help texts).
"""

from __future__ import annotations

from typing import Literal, get_args

# Where a log line came from: the function's own pipes, the platform's START / END / REPORT
# lines, a builder's output, or workbench itself speaking in the log (a reload's summary).
Stream = Literal["stdout", "stderr", "platform", "build", "workbench"]
STREAMS: tuple[Stream, ...] = get_args(Stream)

# How one invocation ended, as history and REPORT lines tell it. "unfinished": workbench
# stopped (was killed) after the invocation was answered, or accepted, and before it ended;
# history has it from its journal, without END, REPORT and their figures.
Status = Literal["ok", "error", "timeout", "crash", "unfinished"]
STATUSES: tuple[Status, ...] = get_args(Status)

# When an environment initialises: at start ("init"), or again inside the first invoke after an
# init failure ("invoke", Lambda's suppressed init).
Phase = Literal["init", "invoke"]

# How an environment's init ended (INIT_REPORT's status).
InitStatus = Literal["success", "error", "timeout"]

# Why an environment was shut down.
ShutdownReason = Literal["spindown", "timeout", "failure"]

# What a function is doing now, as the status line and the function picker show it.
FunctionState = Literal["starting", "building", "reloading", "ready", "failed", "init failed"]

# A replay's or a pinned event's verdict against its expected response.
CheckStatus = Literal["pass", "diff", "new", "error"]

# The Invoke API's invocation types.
InvocationType = Literal["RequestResponse", "Event", "DryRun"]
INVOCATION_TYPES: tuple[InvocationType, ...] = get_args(InvocationType)

# A function's kind of runtime, which decides how it starts and where its handler lives.
Family = Literal["python", "node", "provided"]

# How an environment reaches its runtime: the Runtime API (the runtime asks for events), or
# Go's net/rpc on _LAMBDA_SERVER_PORT (go1.x: workbench calls the function).
EnvironmentKind = Literal["runtime-api", "go-rpc"]

# Which Python runtime client runs the handler.
RuntimeClient = Literal["builtin", "awslambdaric"]
RUNTIME_CLIENTS: tuple[RuntimeClient, ...] = get_args(RuntimeClient)

# How a function is built before it starts: "none" never builds (even with go.mod or
# tsconfig.json); "command" runs the `build` setting.
BuilderKind = Literal["none", "go", "rust", "command"]
BUILDER_KINDS: tuple[BuilderKind, ...] = get_args(BuilderKind)

Architecture = Literal["x86_64", "arm64"]

# Who asked for an invocation: shown in history when the event has no saved name.
Source = Literal["cli", "tui", "replay", "invoke-api", "pinned"]
SOURCES: tuple[Source, ...] = get_args(Source)
