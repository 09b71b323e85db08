"""The offline library of sample events (`sample_events/` in the source tree, shipped in the wheel
as `workbench/_data/sample_events`).

Layout: `sample_events/<service>/<event>.json` is the template, plain JSON with `{{name}}`
placeholders; `sample_events/<service>/<event>.meta.json` beside it says

    {"title": "...", "description": "...",
     "aliases": ["kinesis/kinesis-firehose"],          # other names it answers to (SAM's)
     "params": {"bucket": {"default": "example-bucket", "help": "...", "type": "string"}},
     "derived": {"request_id": {"fn": "uuid"}, "md5": {"fn": "md5", "of": "body"}},
     "transforms": [{"path": "awslogs.data", "fn": "gzip_base64"}]}

Parameter types: string (default), integer, number, boolean, json. Derived functions and
transforms are documented in events_render. Names are `service/event`, as SAM CLI's
`sam local generate-event SERVICE EVENT` spells them where such a pair exists.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from workbench.core.saved_events.render import (
    TYPES,
    EventError,
    apply_transforms,
    convert,
    derive,
    now_utc,
    substitute,
)


@dataclass(frozen=True)
class Param:
    name: str
    default: str
    help: str = ""
    type: str = "string"


@dataclass(frozen=True)
class Sample:
    name: str  # service/event
    title: str
    description: str
    template_path: Path
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    derived: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    transforms: tuple[Mapping[str, Any], ...] = ()

    @property
    def service(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def event(self) -> str:
        return self.name.split("/", 1)[1]

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def template(self) -> Any:
        return json.loads(self.template_path.read_text(encoding="utf-8"))


def sample_root(package_dir: Path | None = None) -> Path:
    """Where the samples are: inside the installed package (the wheel puts them in
    workbench/_data/sample_events), else at the top of a source checkout."""
    package = package_dir or Path(__file__).resolve().parents[2]
    for candidate in (package / "_data" / "sample_events", package.parent / "sample_events"):
        if candidate.is_dir():
            return candidate
    raise EventError(
        f"the sample events are missing: looked in {package / '_data'} and {package.parent}"
    )


def _name(text: str) -> str:
    return text.strip().lower().replace(" ", "/")


def _load_sample(service: str, template: Path) -> Sample:
    name = f"{service}/{template.name.removesuffix('.json')}"
    meta_path = template.with_name(template.name.removesuffix(".json") + ".meta.json")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise EventError(f"{meta_path}: not valid JSON: {exc}") from None
    params = []
    for pname, spec in dict(meta.get("params", {})).items():
        default = spec.get("default", "")
        kind = spec.get("type", "string")
        if kind not in TYPES:
            raise EventError(f"{meta_path}: parameter {pname} has unknown type {kind!r}")
        params.append(
            Param(
                pname,
                default if isinstance(default, str) else json.dumps(default),
                str(spec.get("help", "")),
                kind,
            )
        )
    return Sample(
        name=name,
        title=str(meta.get("title", name)),
        description=str(meta.get("description", "")),
        template_path=template,
        params=tuple(params),
        aliases=tuple(_name(a) for a in meta.get("aliases", [])),
        derived=dict(meta.get("derived", {})),
        transforms=tuple(meta.get("transforms", [])),
    )


@lru_cache(maxsize=4)
def _catalog(root: Path) -> dict[str, Sample]:
    samples: dict[str, Sample] = {}
    for service_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for template in sorted(service_dir.glob("*.json")):
            if not template.name.endswith(".meta.json"):
                sample = _load_sample(service_dir.name, template)
                samples[sample.name] = sample
    return dict(sorted(samples.items()))


def catalog(root: Path | None = None) -> dict[str, Sample]:
    """Every sample by name, in name order."""
    return _catalog(root or sample_root())


def _aliases(samples: Mapping[str, Sample]) -> dict[str, Sample]:
    return {alias: s for s in samples.values() for alias in s.aliases if alias not in samples}


def services(root: Path | None = None) -> list[str]:
    return sorted({s.service for s in catalog(root).values()})


def list_samples(service: str | None = None, root: Path | None = None) -> list[Sample]:
    """All samples, or those of one service (a SAM service name such as `kinesis` also finds
    the samples that answer to it through an alias)."""
    samples = catalog(root)
    if service is None:
        return list(samples.values())
    wanted = _name(service)
    found = [
        s
        for s in samples.values()
        if s.service == wanted or any(a.split("/")[0] == wanted for a in s.aliases)
    ]
    if not found:
        known = sorted(set(services(root)) | {a.split("/")[0] for a in _aliases(samples)})
        raise EventError(
            f"no sample events for service {service!r}{_closest(wanted, known)}; "
            f"services: {', '.join(known)}"
        )
    return found


def get_sample(name: str, root: Path | None = None) -> Sample:
    """A sample by `service/event` (or `service event`, or one of its aliases)."""
    samples = catalog(root)
    wanted = _name(name)
    if wanted in samples:
        return samples[wanted]
    aliases = _aliases(samples)
    if wanted in aliases:
        return aliases[wanted]
    names = sorted([*samples, *aliases])
    service = wanted.split("/")[0]
    same = [n for n in names if n.split("/")[0] == service]
    hint = (
        f"{_closest(wanted, same)}; {service} has: {', '.join(same)}"
        if same
        else _closest(wanted, names)
    )
    raise EventError(f"no sample event named {name!r}{hint}; see `workbench events list`")


def _closest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.5)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def resolve_params(sample: Sample, given: Mapping[str, str] | None) -> dict[str, Any]:
    """The sample's parameters with `given` over the defaults, each as its declared type.
    Names may use - for _ (account-id = account_id)."""
    values: dict[str, str] = {p.name: p.default for p in sample.params}
    valid = [p.name for p in sample.params]
    for key, raw in (given or {}).items():
        name = key.strip().replace("-", "_")
        if name not in values:
            listed = ", ".join(valid) if valid else "none"
            raise EventError(
                f"{sample.name} has no parameter {key!r}"
                f"{_closest(name, valid)}; its parameters: {listed}"
            )
        values[name] = raw
    return {p.name: convert(p.name, values[p.name], p.type) for p in sample.params}


def render(
    sample: Sample, params: Mapping[str, str] | None = None, now: datetime | None = None
) -> dict[str, Any]:
    values = derive(sample.derived, resolve_params(sample, params), now or now_utc())
    try:
        event = substitute(sample.template(), values)
        event = apply_transforms(event, list(sample.transforms))
    except EventError as exc:
        raise EventError(f"{sample.name}: {exc}") from None
    if not isinstance(event, dict):
        raise EventError(f"{sample.name}: the template is not a JSON object")
    return event


def render_sample(
    name: str, params: Mapping[str, str] | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The named sample as an event: `params` (text, as typed on a command line) over the
    defaults, fresh ids and timestamps, derived values consistent with the parameters."""
    return render(get_sample(name), params, now)
