"""One template function's settings: Globals merged under its Properties, intrinsics resolved,
each value checked like the same key in workbench.toml, and where each came from recorded."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from workbench.core.config.cfn import NO_VALUE, Resolver, Unresolvable
from workbench.core.config.function import ConfigError
from workbench.core.config.settings import KEYS, RUNTIMES, Invalid, display_path


class TemplateDoc(Protocol):
    """What a function's reader needs of its template (sam.Template has it), named here so the
    reader does not import the module that imports it."""

    @property
    def path(self) -> Path: ...
    @property
    def doc(self) -> Mapping[str, Any]: ...
    @property
    def shown(self) -> str: ...


# CloudFormation property -> (our setting, the flag that sets it locally, if any).
SCALARS = {
    "Handler": ("handler", "--handler"),
    "Runtime": ("runtime", "--runtime"),
    "Timeout": ("timeout", "--timeout"),
    "MemorySize": ("memory", "--memory"),
    "Architectures": ("architecture", None),
    "EphemeralStorage": ("ephemeral_storage", None),
}
LAYER_CONTENT = {
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Lambda::LayerVersion": "Content",
}
NUMBER = re.compile(r"-?\d+(\.\d+)?")
LAYER_HINT = "add a local copy of the layer to `layers` in workbench.toml"


def _intrinsic(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and len(node) == 1
        and (next(iter(node)) in ("Ref", "Condition") or next(iter(node)).startswith("Fn::"))
    )


class FunctionReader:
    def __init__(
        self, template: TemplateDoc, resolver: Resolver, logical_id: str, glob: Mapping[str, Any]
    ) -> None:
        self.template, self.resolver, self.id = template, resolver, logical_id
        self.folder = template.path.parent
        resource = template.doc["Resources"][logical_id]
        self.serverless = resource["Type"] == "AWS::Serverless::Function"
        own = resource.get("Properties") or {}
        base = f"Resources.{logical_id}.Properties"
        self.layers: list[tuple[str, Any, str]] = []  # (shown key, raw, location)
        self.merged: dict[str, tuple[Any, str]] = {}
        self.raw_env: dict[str, tuple[Any, str]] = {}
        self.values: dict[str, object] = {}
        self.sources: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.env_sources: dict[str, str] = {}
        self.warnings: list[str] = []
        self.problem: str | None = None
        for props, where in ((glob, "Globals.Function"), (own, base)):
            self._merge(props, where)
        self.code_dir = self._code_dir()
        self._read_scalars()
        self._read_env()
        self._read_layers()

    def _merge(self, props: Mapping[str, Any], where: str) -> None:
        for key, raw in props.items():
            if key == "Environment":
                self._merge_env(raw, f"{where}.Environment")
            elif key == "Layers":
                items = self._branch(raw, "Layers", LAYER_HINT)
                start = len(self.layers)
                self.layers += [
                    (f"Layers[{start + i}]", item, f"{where}.Layers[{i}]")
                    for i, item in enumerate(items if isinstance(items, list) else [])
                ]
            else:
                self.merged[key] = (raw, f"{where}.{key}")

    def _merge_env(self, raw: Any, where: str) -> None:
        fix = "set the variables with --env or in workbench.toml"
        env = self._branch(raw, "Environment", fix)
        variables = (
            self._branch(env.get("Variables"), "Environment.Variables", fix)
            if (isinstance(env, dict))
            else None
        )
        for name, value in (variables if isinstance(variables, dict) else {}).items():
            self.raw_env[str(name)] = (value, f"{where}.Variables.{name}")

    def _branch(self, raw: Any, key: str, fix: str) -> Any:
        """Follow !If and AWS::NoValue around a table or list without resolving what is inside,
        so one cloud-only entry costs that entry, not its neighbours."""
        while _intrinsic(raw):
            if "Fn::If" in raw and isinstance(raw["Fn::If"], list) and len(raw["Fn::If"]) == 3:
                cond, yes, no = raw["Fn::If"]
                try:
                    raw = yes if self.resolver.condition(cond) else no
                except Unresolvable as exc:
                    self.warnings.append(f"{self.id}: {key} is left out: {exc}; {fix}")
                    return NO_VALUE
            else:
                return self._resolved(raw, key, fix)
        return raw

    def _resolved(self, raw: Any, key: str, fix: str) -> Any:
        try:
            return self.resolver.value(raw)
        except Unresolvable as exc:
            self.warnings.append(f"{self.id}: {key} is left out: {exc}; {fix}")
            return NO_VALUE

    def _at(self, where: str) -> str:
        return f"{self.template.shown}: {where}"

    def _code_dir(self) -> Path | None:
        found = self._locate_code()
        if isinstance(found, str):
            self._cannot(found)
            return None
        return found

    def _locate_code(self) -> Path | str:
        """The code folder, or why there is none on this machine."""
        if self.merged.get("PackageType", ("Zip", ""))[0] == "Image":
            return "it is a container image function (PackageType: Image)"
        if "InlineCode" in self.merged:
            return "its code is inline (InlineCode); move it into a folder and point CodeUri at it"
        key = "CodeUri" if self.serverless else "Code"
        raw, where = self.merged.get(key, (None if key == "Code" else ".", "default"))
        if raw is None:
            return "it has no Code"
        try:
            code = self.resolver.value(raw)
        except Unresolvable as exc:
            return f"its {key} cannot be worked out locally: {exc}"
        if not isinstance(code, str) or code.startswith("s3://"):
            return f"its {key} is not a local folder ({code!r}); workbench runs code from a folder"
        path = (self.folder / code).resolve()
        if not path.is_dir():
            return f"its {key} {code} is not a folder ({display_path(path)})"
        self.sources["code_dir"] = (
            self._at(where)
            if where != "default"
            else (f"{self.template.shown}: no CodeUri, so the template's folder")
        )
        return path

    def _cannot(self, why: str) -> None:
        self.problem = self.problem or f"{self.id} cannot run locally: {why}"

    def _read_scalars(self) -> None:
        for prop, (setting, flag) in SCALARS.items():
            if prop not in self.merged:
                continue
            raw, where = self.merged[prop]
            fix = (
                f"set {setting} with {flag} or in workbench.toml"
                if flag
                else (f"set {setting} in workbench.toml")
            )
            value = self._resolved(raw, prop, fix)
            if value is not NO_VALUE:
                self.values[setting] = self._checked(setting, value, where)
                self.sources[setting] = self._at(where)

    def _checked(self, setting: str, value: Any, where: str) -> object:
        if setting == "architecture" and isinstance(value, list) and len(value) == 1:
            value = value[0]  # Lambda takes a list, but it holds exactly one architecture
        if setting == "ephemeral_storage" and isinstance(value, dict):
            value = value.get("Size")  # EphemeralStorage: {Size: MB}
        if isinstance(value, str) and NUMBER.fullmatch(value):
            value = float(value) if "." in value else int(value)  # parameters are strings
        if setting == "runtime" and value not in RUNTIMES:
            # not refused here: a nearer layer (--runtime, workbench.toml) may replace it, and
            # resolve refuses it only if none does
            return value
        try:
            return KEYS[setting](value, self.folder)
        except Invalid as exc:
            raise ConfigError(f"{self._at(where)} must be {exc}; got {value!r}") from None

    def _read_env(self) -> None:
        for name, (raw, where) in self.raw_env.items():
            key = f"Environment.Variables.{name}"
            value = self._resolved(raw, key, f"set {name} with --env or in workbench.toml")
            if value is NO_VALUE:
                continue
            if isinstance(value, list | dict):
                self.warnings.append(
                    f"{self.id}: {key} is left out: Lambda needs a string, "
                    f"not {type(value).__name__}"
                )
                continue
            self.env[name] = "true" if value is True else "false" if value is False else str(value)
            self.env_sources[name] = self._at(where)

    def _read_layers(self) -> None:
        paths: list[Path] = []
        wheres: list[str] = []  # Globals and the function can both add layers
        for key, raw, where in self.layers:
            path = self._layer(key, raw)
            if path is not None:
                paths.append(path)
                wheres += [w for w in [where.rsplit("[", 1)[0]] if w not in wheres]
        if paths:
            self.values["layers"] = tuple(paths)
            self.sources["layers"] = self._at(" + ".join(wheres))

    def _layer(self, key: str, raw: Any) -> Path | None:
        resources = self.template.doc["Resources"]
        name = raw.get("Ref") if isinstance(raw, dict) and set(raw) == {"Ref"} else None
        if isinstance(name, str) and (resources.get(name) or {}).get("Type") in LAYER_CONTENT:
            return self._local_layer(key, name, resources[name])
        value = self._resolved(raw, key, LAYER_HINT)
        if isinstance(value, str) and value.startswith("arn:"):
            self._layer_warning(
                key, f"{value} is a published layer, which workbench does not download"
            )
        elif value is not NO_VALUE:
            self._layer_warning(key, f"{value!r} is not a layer workbench can find")
        return None

    def _local_layer(self, key: str, name: str, resource: Mapping[str, Any]) -> Path | None:
        prop = LAYER_CONTENT[resource["Type"]]
        raw = (resource.get("Properties") or {}).get(prop)
        content = self._resolved(raw, key, LAYER_HINT)
        if content is NO_VALUE:
            return None
        if not isinstance(content, str) or content.startswith("s3://"):
            self._layer_warning(key, f"layer {name} has its {prop} in S3, not in a local folder")
            return None
        path = (self.folder / content).resolve()
        if not path.is_dir():
            self._layer_warning(
                key, f"layer {name}'s {prop} {content} is not a folder ({display_path(path)})"
            )
            return None
        return path

    def _layer_warning(self, key: str, why: str) -> None:
        self.warnings.append(f"{self.id}: {key} is left out: {why}; {LAYER_HINT}")
