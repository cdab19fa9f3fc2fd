"""The dashboard's "submit a run" form: its fields, the RunSpec they make, and where each
validation error goes.

The form holds no rule of its own: it turns fields into the RunSpec JSON the API takes, and the
RunSpec's own validation (pydantic, then services.runs.submit_run's checks) decides. Each error is
shown next to the field its location names; one the form has no field for is shown above it.
A JSON textarea takes a whole spec instead of the fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from pydantic import ValidationError

from api.json_body import MAX_REPORTED, unstorable_values
from app.runspec import PERF_MODEL_NAMES, RunSpec
from app.sim.knowledge import Knowledge
from app.sim.policies import POLICY_NAMES, REGISTRY
from app.sim.policies.runtime import KERNEL_MODELS
from app.sim.ranking import RANK_METRICS

#: The workload kinds the fields describe (the others need data: use the JSON textarea).
FORM_KINDS = ("synthetic", "layered_dag")
#: The workload kinds that tag pydantic's error locations (`workload.synthetic.num_tasks`).
ALL_KINDS = (*FORM_KINDS, "tiled", "wfcommons", "stg", "inline", "explicit")
INTEGER_FIELDS = (
    "workload.num_tasks", "workload.seed", "cluster.cpus", "cluster.gpus", "seed", "priority",
)  # fmt: skip
FLOAT_FIELDS = ("workload.load",)
TEXT_FIELDS = ("workload.kind", "knowledge", "perf_model", "rank_by")
#: Where the whole-spec textarea's errors go.
SPEC_FIELD = "spec"
#: Groups of fields that show the errors about the whole group (e.g. a cluster without devices).
FIELDSETS = ("workload", "cluster")

DEFAULTS: dict[str, Any] = {
    "workload.kind": "synthetic",
    "workload.num_tasks": "2000",
    "workload.seed": "",
    "workload.load": "",
    "cluster.cpus": "8",
    "cluster.gpus": "4",
    "policies": ["round_robin", "random", "greedy", "heft", "learned", "oracle"],
    "knowledge": Knowledge.ESTIMATED.value,
    "perf_model": "history",
    "rank_by": "",
    "seed": "0",
    "priority": "5",
    SPEC_FIELD: "",
}

CHOICES = {
    "workload.kind": FORM_KINDS,
    "policies": POLICY_NAMES,
    "knowledge": tuple(k.value for k in Knowledge),
    "perf_model": PERF_MODEL_NAMES,
    "rank_by": RANK_METRICS,
}

#: Each policy's note in the form (its checkbox's tooltip): what it does, and its paper.
POLICY_NOTES = {
    name: policy.summary + (f". Paper: {policy.paper}" if policy.paper else "")
    for name, policy in REGISTRY.items()
}

#: Each kernel performance model's note (its option's tooltip).
MODEL_NOTES = {
    name: summary + (f". Paper: {paper}" if paper else "")
    for name, (summary, paper) in KERNEL_MODELS.items()
}


@dataclass
class RunForm:
    """What was entered (strings, as typed, to show again) and the errors by field."""

    values: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add_error(self, location: tuple[str | int, ...], message: str) -> None:
        place = self._field_of(location)
        if place in ("", SPEC_FIELD):
            message = f"{'.'.join(str(p) for p in location if p != 'body')}: {message}"
        self.errors.setdefault(place, []).append(message)

    def _field_of(self, location: tuple[str | int, ...]) -> str:
        """The form field an error location names: the longest field the location starts with
        or group of fields; the textarea when it was used; else "" (above the form)."""
        if self.values.get(SPEC_FIELD, "").strip():
            return SPEC_FIELD
        parts = [str(p) for p in location if p != "body"]
        if len(parts) > 1 and parts[0] == "workload" and parts[1] in ALL_KINDS:
            del parts[1]  # the discriminated union's tag
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[:end])
            if name in DEFAULTS or name in FIELDSETS:
                return name
        return ""


def read_form(fields: dict[str, Any], policies: list[str]) -> tuple[RunForm, RunSpec | None]:
    """The form as entered and its RunSpec, or None with the errors recorded on the form."""
    form = RunForm(values={**DEFAULTS, **fields, "policies": policies})
    try:
        document = _document(form)
    except json.JSONDecodeError as exc:
        form.add_error((SPEC_FIELD,), f"not JSON: {exc}")
        return form, None
    for location, (_, message), _ in islice(unstorable_values(document), MAX_REPORTED):
        form.add_error(location, message)  # a NUL or a lone surrogate the database cannot store
    if form.errors:
        return form, None
    try:
        return form, RunSpec.model_validate(document)
    except ValidationError as exc:
        for error in exc.errors():
            form.add_error(tuple(error["loc"]), error["msg"])
        return form, None


def _document(form: RunForm) -> Any:
    """The RunSpec JSON: the textarea's when given, else one built from the fields. Empty fields
    are left out (the spec's defaults apply); numbers that do not parse are passed on as typed,
    so the spec's validation names them."""
    text = str(form.values.get(SPEC_FIELD, "")).strip()
    if text:
        return json.loads(text)
    document: dict[str, Any] = {"policies": form.values["policies"]}
    for name in (*INTEGER_FIELDS, *FLOAT_FIELDS, *TEXT_FIELDS):
        raw = str(form.values.get(name, "")).strip()
        if raw == "":
            continue
        value: Any = raw
        if name in INTEGER_FIELDS or name in FLOAT_FIELDS:
            value = _number(raw, integer=name in INTEGER_FIELDS)
        if name == "workload.load" and form.values.get("workload.kind") != "synthetic":
            continue  # only synthetic workloads have an offered load
        _put(document, name.split("."), value)
    return document


def _number(raw: str, integer: bool) -> Any:
    try:
        return int(raw) if integer else float(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            return raw


def _put(document: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        document = document.setdefault(key, {})
    document[path[-1]] = value
