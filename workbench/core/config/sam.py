"""Functions declared in a SAM or CloudFormation template, read the way a deploy would see them.

`Globals.Function` applies under each AWS::Serverless::Function: the function's own value wins,
Environment.Variables merge key by key, and Layers add up (globals first), as SAM does. Values
that only exist in the cloud are left out with a warning that says how to set them locally;
a function whose code is not a local folder carries a `problem` instead of failing the template.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workbench.core import protocol as P
from workbench.core.config.cfn import CfnLoader, Resolver, Unresolvable, as_text
from workbench.core.config.function import ConfigError
from workbench.core.config.sam_function import FunctionReader
from workbench.core.config.settings import display_path

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")


@dataclass(frozen=True)
class SamFunction:
    """One function of a template. `values` and `sources` share keys (handler, runtime, timeout,
    memory, architecture, layers, code_dir); a key that is absent was not in the template."""

    logical_id: str
    template: Path
    code_dir: Path | None  # None when the code is not local; `problem` says why
    values: Mapping[str, object] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    env_sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    problem: str | None = None
    absent: str | None = None  # set when its Condition is false: not deployed with these values


@dataclass(frozen=True)
class _Unset:
    why: str


class Template:
    """A parsed template; functions are resolved on request, so an unselected function's
    errors never get in the way."""

    def __init__(self, path: Path, doc: Mapping[str, Any]) -> None:
        self.path = path
        self.doc = doc
        self.shown = display_path(path)
        resources = doc.get("Resources") or {}
        self.parameter_names = list(doc.get("Parameters") or {})
        self.function_ids = [
            rid
            for rid, res in resources.items()
            if isinstance(res, dict) and res.get("Type") in FUNCTION_TYPES
        ]

    def functions(
        self,
        function: str | None = None,
        overrides: Mapping[str, str] | None = None,
        region: str = P.DEFAULT_REGION,
    ) -> list[SamFunction]:
        if function is not None:
            self.check_id(function)
        params, unset = self._parameters(overrides or {})
        resolver = Resolver(self.doc, params, region, unset)
        ids = [function] if function is not None else self.function_ids
        found = [self._function(rid, resolver) for rid in ids]
        if function is not None and found[0].absent:
            raise ConfigError(f"{self.shown}: {function} {found[0].absent}")
        return [f for f in found if not f.absent]

    def check_id(self, function: str) -> None:
        pick_id(self.function_ids, function, self.shown)

    def _function(self, logical_id: str, resolver: Resolver) -> SamFunction:
        resource = self.doc["Resources"][logical_id]
        condition = resource.get("Condition")
        try:
            if condition is not None and not resolver.condition(condition):
                return SamFunction(
                    logical_id,
                    self.path,
                    None,
                    absent=f"exists only when condition {condition} is true, and "
                    "it is false with these parameter values",
                )
        except Unresolvable:
            pass  # undecidable locally: keep the function rather than hide it
        glob = (self.doc.get("Globals") or {}).get("Function") or {}
        serverless = resource["Type"] == "AWS::Serverless::Function"
        reader = FunctionReader(self, resolver, logical_id, glob if serverless else {})
        return SamFunction(
            logical_id,
            self.path,
            reader.code_dir,
            reader.values,
            reader.sources,
            reader.env,
            reader.env_sources,
            tuple(reader.warnings),
            reader.problem,
        )

    def _parameters(self, overrides: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """(values, why a parameter has no value) after Defaults and the caller's overrides."""
        declared: Mapping[str, Any] = self.doc.get("Parameters") or {}
        check_overrides(overrides, list(declared), self.shown)
        values: dict[str, Any] = {}
        unset: dict[str, str] = {}
        for name, spec in declared.items():
            value = self._parameter(name, spec or {}, overrides)
            if isinstance(value, _Unset):
                unset[name] = value.why
            else:
                values[name] = value
        return values, unset

    def _parameter(
        self, name: str, spec: Mapping[str, Any], overrides: Mapping[str, str]
    ) -> str | list[str] | _Unset:
        kind = str(spec.get("Type", "String"))
        if name in overrides:
            raw = overrides[name]
        elif kind.startswith("AWS::SSM::Parameter"):
            return _Unset(f"parameter {name} is read from SSM Parameter Store when deployed")
        elif "Default" in spec and isinstance(spec["Default"], str | int | float | bool):
            raw = as_text(spec["Default"])
        elif "Default" in spec:
            raise ConfigError(
                f"{self.shown}: Parameters.{name}.Default must be a string; got {spec['Default']!r}"
            )
        else:
            return _Unset(
                f"parameter {name} has no Default (give it a value with a parameter override)"
            )
        self._check_allowed(name, spec, raw)
        listy = kind == "CommaDelimitedList" or kind.startswith("List<")
        return raw.split(",") if listy else raw

    def _check_allowed(self, name: str, spec: Mapping[str, Any], raw: str) -> None:
        allowed = [as_text(a) for a in spec.get("AllowedValues") or []]
        if allowed and raw not in allowed:
            raise ConfigError(
                f"{self.shown}: parameter {name} is {raw!r}, which is not one of "
                f"its AllowedValues: {', '.join(allowed)}"
            )


def check_overrides(overrides: Iterable[str], declared: list[str], shown: str) -> None:
    """CloudFormation refuses an override of a parameter the template does not declare."""
    for name in overrides:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            raise ConfigError(f'{shown}: no parameter "{name}" to override{hint}')


def pick_id(ids: list[str], wanted: str, shown: str) -> None:
    """Accept a known logical id; otherwise list the valid ones, closest first."""
    if wanted in ids:
        return
    if not ids:
        raise ConfigError(f"{shown}: declares no functions ({' or '.join(FUNCTION_TYPES)})")
    ranked = sorted(
        ids, key=lambda i: -difflib.SequenceMatcher(None, wanted.lower(), i.lower()).ratio()
    )
    raise ConfigError(f'{shown}: no function "{wanted}"; the functions are {", ".join(ranked)}')


def read_template(path: Path) -> Template:
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read it: {exc}") from None
    doc = _parse_json(text, shown) if path.suffix == ".json" else _parse_yaml(text, shown)
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise ConfigError(f"{shown}: not a CloudFormation template (no Resources section)")
    return Template(path.resolve(), doc)


def _parse_yaml(text: str, shown: str) -> Any:
    try:
        return yaml.load(text, Loader=CfnLoader)  # CfnLoader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{shown}: not valid YAML{where}: {problem}") from None


def _parse_json(text: str, shown: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{shown}: not valid JSON at line {exc.lineno}: {exc.msg}") from None


def load_template(
    path: Path,
    function: str | None = None,
    overrides: Mapping[str, str] | None = None,
    region: str = P.DEFAULT_REGION,
) -> list[SamFunction]:
    """Every function of the template (or the one named), resolved with these parameters."""
    return read_template(path).functions(function, overrides, region)
