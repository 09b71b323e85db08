"""How each kind of function starts: the command line and the runtime's own identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from workbench.core.config.function import ConfigError, FunctionConfig
from workbench.core.config.settings import rpc_address
from workbench.core.runtimes import isolation
from workbench.core.runtimes.interpreters import Choice, choose
from workbench.core.vocab import EnvironmentKind

HERE = Path(__file__).resolve().parent
PYTHON_BOOTSTRAP = HERE / "pyric" / "bootstrap.py"
NODE_RUNTIME = HERE / "node" / "runtime.mjs"


@dataclass(frozen=True, slots=True)
class Launch:
    argv: list[str]
    runtime_dir: Path  # LAMBDA_RUNTIME_DIR
    execution_env: str | None  # AWS_EXECUTION_ENV; unset for provided runtimes
    runtime_version: str  # for INIT_START
    # the interpreter found for the runtime (None for a custom runtime or a `start` command)
    choice: Choice | None = None
    # appended to PYTHONPATH after the layers, where Lambda's /var/runtime comes
    python_path: tuple[str, ...] = ()
    kind: EnvironmentKind = "runtime-api"
    # go1.x attached to a process the user runs: (host, port); nothing is started
    attach: tuple[str, int] | None = None

    @property
    def note(self) -> str | None:
        """Why the function does not run on the version its runtime names, if it does not."""
        return self.choice.note if self.choice is not None else None

    def runtime_arn(self, region: str) -> str:
        digest = hashlib.sha256(" ".join(self.argv[:2]).encode()).hexdigest()
        return f"arn:aws:lambda:{region}::runtime:{digest}"


def launch_for(cfg: FunctionConfig) -> Launch:
    if cfg.go_rpc:
        return _go_rpc(cfg)
    if cfg.start:
        # the user's own start command stands in for the runtime client (a custom bootstrap)
        return Launch(
            list(cfg.start),
            cfg.code_dir,
            None if cfg.family == "provided" else f"AWS_Lambda_{cfg.runtime}",
            _version_tag(cfg.runtime),
        )
    if cfg.family == "python":
        return _python(cfg)
    if cfg.family == "node":
        choice = choose(cfg.runtime, cfg.node, _where(cfg, "node") if cfg.node else "")
        return Launch(
            [choice.interpreter.path, str(NODE_RUNTIME)],
            NODE_RUNTIME.parent,
            f"AWS_Lambda_{cfg.runtime}",
            choice.version_tag,
            choice,
        )
    # built by workbench before any environment starts (builders.py); a `build` command
    # from config replaces the compile step and leaves its own bootstrap in the folder
    bootstrap = cfg.executable()
    return Launch([str(bootstrap)], cfg.code_dir, None, _version_tag(cfg.runtime))


def _go_rpc(cfg: FunctionConfig) -> Launch:
    """go1.x: the binary (or the `start` command) serves net/rpc on _LAMBDA_SERVER_PORT."""
    attach = parse_address(cfg.rpc_address) if cfg.rpc_address else None
    argv = list(cfg.start) if cfg.start else [str(cfg.executable())]
    if attach is not None:
        argv = [f"{attach[0]}:{attach[1]}"]  # nothing runs; named for the runtime's ARN
    return Launch(
        argv, cfg.code_dir, "AWS_Lambda_go1.x", "go:1.local", kind="go-rpc", attach=attach
    )


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (as the `rpc` setting checked it)."""
    host, _, port = rpc_address(text).rpartition(":")
    return host.strip("[]"), int(port)


def _python(cfg: FunctionConfig) -> Launch:
    choice = choose(cfg.runtime, cfg.python, _where(cfg, "python") if cfg.python else "")
    interp = choice.interpreter
    # a venv's interpreter would bring the venv's packages (workbench's, when it is ours)
    exe = isolation.base_interpreter(interp.path)
    ric = cfg.runtime_client == "awslambdaric"
    if ric and not isolation.ric_installed(interp):
        raise ConfigError(
            f"runtime_client awslambdaric: awslambdaric is not installed for {interp.shown} "
            f"({exe}), which runs {cfg.runtime}; install it there (`{exe} -m pip install "
            "awslambdaric`), or leave runtime_client unset to use workbench's bundled client"
        )
    packages = isolation.runtime_packages(interp, with_ric=ric)
    # -u: output written before the response is posted must already be in the pipe, so the
    # log lines land between START and END as they do in the service. -s: no user
    # site-packages (~/.local), which Lambda does not have.
    if ric:
        argv = [exe, "-s", "-u", "-m", "awslambdaric", cfg.handler]
    else:
        argv = [exe, "-s", "-u", str(PYTHON_BOOTSTRAP)]
    return Launch(
        argv,
        PYTHON_BOOTSTRAP.parent,
        f"AWS_Lambda_{cfg.runtime}",
        choice.version_tag,
        choice,
        (str(packages),) if packages is not None else (),
    )


def _where(cfg: FunctionConfig, key: str) -> str:
    """Where a configured interpreter was set, for messages."""
    files = [p for p in cfg.config_files if p.name in ("workbench.toml", "pyproject.toml")]
    existing = [p for p in files if p.is_file()]
    return existing[0].name if existing else f"the `{key}` setting"


def _version_tag(runtime: str) -> str:
    """INIT_START names the runtime release (`python:3.13.v43`); ours is the local toolchain."""
    if runtime.startswith("python"):
        return f"python:{runtime[len('python') :]}.local"
    if runtime.startswith("nodejs"):
        return f"nodejs:{runtime[len('nodejs') :].removesuffix('.x')}.local"
    return f"{runtime.replace('.', ':', 1)}.local"
