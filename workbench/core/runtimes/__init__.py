"""How each kind of function starts: the command line and the runtime's own identity."""

from __future__ import annotations

import hashlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench.core.config.function import ConfigError, FunctionConfig

HERE = Path(__file__).resolve().parent
PYTHON_BOOTSTRAP = HERE / "pyric" / "bootstrap.py"
NODE_RUNTIME = HERE / "node" / "runtime.mjs"


@dataclass(frozen=True, slots=True)
class Launch:
    argv: list[str]
    runtime_dir: Path  # LAMBDA_RUNTIME_DIR
    execution_env: str | None  # AWS_EXECUTION_ENV; unset for provided runtimes
    runtime_version: str  # for INIT_START

    def runtime_arn(self, region: str) -> str:
        digest = hashlib.sha256(" ".join(self.argv[:2]).encode()).hexdigest()
        return f"arn:aws:lambda:{region}::runtime:{digest}"


def launch_for(cfg: FunctionConfig) -> Launch:
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
        node = shutil.which("node")
        if node is None:
            raise ConfigError(f"runtime {cfg.runtime} needs `node` on PATH; none was found.")
        return Launch(
            [node, str(NODE_RUNTIME)],
            NODE_RUNTIME.parent,
            f"AWS_Lambda_{cfg.runtime}",
            _version_tag(cfg.runtime),
        )
    bootstrap = cfg.code_dir / "bootstrap"
    if cfg.builder in ("go", "rust") and not cfg.build:
        # built by workbench before any environment starts (builders.py); a `build` command
        # from config replaces the compile step and leaves its own bootstrap in the folder
        bootstrap = cfg.built_bootstrap()
    return Launch([str(bootstrap)], cfg.code_dir, None, _version_tag(cfg.runtime))


def _python(cfg: FunctionConfig) -> Launch:
    # -u: output written before the response is posted must already be in the pipe, so the
    # log lines land between START and END as they do in the service.
    if cfg.runtime_client == "awslambdaric":
        argv = [sys.executable, "-u", "-m", "awslambdaric", cfg.handler]
    else:
        argv = [sys.executable, "-u", str(PYTHON_BOOTSTRAP)]
    return Launch(
        argv, PYTHON_BOOTSTRAP.parent, f"AWS_Lambda_{cfg.runtime}", _version_tag(cfg.runtime)
    )


def _version_tag(runtime: str) -> str:
    """INIT_START names the runtime release (`python:3.13.v43`); ours is the local toolchain."""
    if runtime.startswith("python"):
        return f"python:{runtime[len('python') :]}.local"
    if runtime.startswith("nodejs"):
        return f"nodejs:{runtime[len('nodejs') :].removesuffix('.x')}.local"
    return f"{runtime.replace('.', ':', 1)}.local"
