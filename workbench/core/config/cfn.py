"""CloudFormation values, worked out locally: short YAML tags and the intrinsic functions.

Only what a template can know without a deployed stack is computed: parameters, pseudo
parameters, mappings, conditions and string functions. Anything that needs the cloud (an
attribute of another resource, an export of another stack) raises Unresolvable, so the caller
can drop that one value and explain why instead of failing the whole template.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from workbench.core import protocol as P

# Short tag -> long form. !GetAtt's dotted string and !Condition need a little more (below).
SHORT_TAGS = (
    "Ref",
    "Sub",
    "GetAtt",
    "Join",
    "Select",
    "Split",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "Base64",
    "ImportValue",
    "GetAZs",
    "Condition",
    "Cidr",
)
PSEUDO = {
    "AWS::AccountId": P.DEFAULT_ACCOUNT,
    "AWS::StackName": "workbench",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class Unresolvable(Exception):
    """A value that only exists once deployed; the message says what it refers to."""


class _NoValue:
    """AWS::NoValue: the property (or list item) is removed, as if never written."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads `!Ref x` as `{"Ref": "x"}`, `!Sub s` as `{"Fn::Sub": s}`, ..."""


def _long_form(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    key = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        if tag == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)  # !GetAtt Table.Arn is ["Table", "Arn"]
        return {key: value}

    return construct


for _tag in SHORT_TAGS:
    CfnLoader.add_constructor(f"!{_tag}", _long_form(_tag))


def as_text(value: Any) -> str:
    """CloudFormation's view of a scalar as a string (YAML `true` is "true", not "True")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise Unresolvable(f"expected a string, got {type(value).__name__} {value!r}")


class Resolver:
    """Evaluates intrinsic functions over one template with fixed parameter values."""

    def __init__(
        self,
        doc: Mapping[str, Any],
        params: Mapping[str, Any],
        region: str,
        unset: Mapping[str, str] | None = None,
    ) -> None:
        self.resources: Mapping[str, Any] = doc.get("Resources") or {}
        self.mappings: Mapping[str, Any] = doc.get("Mappings") or {}
        self.conditions: Mapping[str, Any] = doc.get("Conditions") or {}
        self.params = params
        self.unset = unset or {}  # parameter -> why it has no value here
        self.region = region
        self._truths: dict[str, bool] = {}
        self._evaluating: set[str] = set()
        self._fns: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::Equals": self._equals,
            "Fn::Not": lambda a: not self.truth(a[0]),
            "Fn::And": lambda a: all(self.truth(c) for c in a),
            "Fn::Or": lambda a: any(self.truth(c) for c in a),
            "Condition": self.condition,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": self._base64,
            "Fn::GetAtt": self._get_att,
            "Fn::ImportValue": self._import_value,
            "Fn::GetAZs": self._get_azs,
            "Fn::Cidr": self._cidr,
        }

    def value(self, node: Any) -> Any:
        """The node with every intrinsic worked out; NO_VALUE where AWS::NoValue removes it."""
        if isinstance(node, list):
            return [v for v in map(self.value, node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key in ("Ref", "Condition") or key.startswith("Fn::"):
                fn = self._fns.get(key)
                if fn is None:
                    raise Unresolvable(f"{key} is not something workbench can work out locally")
                try:
                    return fn(arg)
                except (IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    # A malformed call is the template's bug; it costs this one value only.
                    raise Unresolvable(f"{key} is malformed ({exc})") from None
        resolved = ((k, self.value(v)) for k, v in node.items())
        return {k: v for k, v in resolved if v is not NO_VALUE}

    def text(self, node: Any) -> str:
        return as_text(self.value(node))

    def truth(self, node: Any) -> bool:
        result = self.value(node)
        if not isinstance(result, bool):
            raise Unresolvable(f"a condition must be true or false, got {result!r}")
        return result

    def condition(self, name: str) -> bool:
        if name not in self._truths:
            if name not in self.conditions:
                raise Unresolvable(f"condition {name} is not defined in Conditions")
            if name in self._evaluating:
                raise Unresolvable(f"condition {name} depends on itself")
            self._evaluating.add(name)
            try:
                self._truths[name] = self.truth(self.conditions[name])
            finally:
                self._evaluating.discard(name)
        return self._truths[name]

    def _ref(self, name: str, shown: str | None = None) -> Any:
        shown = shown or f"!Ref {name}"
        if name == "AWS::NoValue":
            return NO_VALUE
        if name == "AWS::Region":
            return self.region
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        if name in self.unset:
            raise Unresolvable(f"{shown}: {self.unset[name]}")
        if name in self.resources:
            kind = (self.resources[name] or {}).get("Type", "a resource")
            raise Unresolvable(f"{shown} refers to a cloud resource ({kind})")
        raise Unresolvable(f"{shown} names no parameter or resource of the template")

    def _sub(self, arg: Any) -> str:
        source, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {k: self.value(v) for k, v in variables.items()}

        def one(match: re.Match[str]) -> str:
            name = match[1]
            if name.startswith("!"):  # ${!Literal} is written out as ${Literal}
                return "${" + name[1:] + "}"
            if name in values:
                return as_text(values[name])
            if "." in name and not name.startswith("AWS::"):
                raise Unresolvable(f"${{{name}}} refers to an attribute of a cloud resource")
            return as_text(self._ref(name, shown=f"${{{name}}}"))

        return SUB_VARIABLE.sub(one, source)

    def _join(self, arg: list[Any]) -> str:
        return self.text(arg[0]).join(as_text(v) for v in self._list(arg[1]))

    def _select(self, arg: list[Any]) -> Any:
        index, items = int(self.text(arg[0])), self._list(arg[1])
        if not 0 <= index < len(items):
            raise Unresolvable(f"!Select index {index} is outside a list of {len(items)}")
        return items[index]

    def _split(self, arg: list[Any]) -> list[str]:
        return self.text(arg[1]).split(self.text(arg[0]))

    def _if(self, arg: list[Any]) -> Any:
        return self.value(arg[1] if self.condition(arg[0]) else arg[2])

    def _equals(self, arg: list[Any]) -> bool:
        return bool(self.text(arg[0]) == self.text(arg[1]))

    def _find_in_map(self, arg: list[Any]) -> Any:
        keys = [self.text(a) for a in arg]
        try:
            return self.value(self.mappings[keys[0]][keys[1]][keys[2]])
        except (KeyError, TypeError):
            raise Unresolvable(f"!FindInMap {' '.join(keys)} is not in Mappings") from None

    def _base64(self, arg: Any) -> str:
        return base64.b64encode(self.text(arg).encode()).decode()

    def _get_att(self, arg: list[Any]) -> Any:
        raise Unresolvable(f"!GetAtt {'.'.join(map(str, arg))} refers to a cloud resource")

    def _import_value(self, arg: Any) -> Any:
        raise Unresolvable(f"!ImportValue {self.value(arg)} comes from another stack")

    def _get_azs(self, arg: Any) -> list[str]:
        region = self.text(arg) or self.region
        return [f"{region}{zone}" for zone in "abc"]  # three zones, as most regions have

    def _cidr(self, arg: list[Any]) -> list[str]:
        block, count, bits = self.text(arg[0]), int(self.text(arg[1])), int(self.text(arg[2]))
        network = ipaddress.ip_network(block, strict=False)
        subnets = network.subnets(new_prefix=network.max_prefixlen - bits)
        return [str(s) for _, s in zip(range(count), subnets, strict=False)]

    def _list(self, node: Any) -> list[Any]:
        items = self.value(node)
        if not isinstance(items, list):
            raise Unresolvable(f"expected a list, got {items!r}")
        return items
