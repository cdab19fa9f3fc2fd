"""The dashboard's "submit a run" form: its fields, the RunSpec they make, where each
validation error goes and what it says, and the address that shows the form again.

The form holds no rule of its own: it turns fields into the RunSpec JSON the API takes, and the
RunSpec's own validation (pydantic, then services.runs.check_submission) decides. Each error is
shown next to the field its location names, in the form's words: the field's label and what
the error's type says about it ("CPU cores must be a whole number"); one the form has no field
for is shown above it. A JSON textarea takes a whole spec instead of the fields; its errors name
their place in the JSON, as the API's do.

A failed submit redirects (303) to `/runs/new` with what was entered in the query string, and
that page finds the errors again: reloading it re-posts nothing (POST/redirect/GET).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from itertools import islice
from string import Formatter
from typing import Any
from urllib.parse import urlencode

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
#: Where the whole-spec textarea's errors go.
SPEC_FIELD = "spec"
#: Groups of fields that show the errors about the whole group (e.g. a cluster without devices).
FIELDSETS = ("workload", "cluster")
#: The page a failed submit redirects to, with what was entered in its query string.
FORM_PATH = "/runs/new"
#: The longest address that redirect may have (characters): nginx's default buffer for a
#: request line is 8 KB (large_client_header_buffers 4 8k), uvicorn's h11 reads 16 KiB.
#: A longer one (a long JSON spec) is answered with the form at once, as before PRG.
MAX_ADDRESS = 8000


class Kind(Enum):
    """What a field takes: how its text becomes JSON and what an error says it must be."""

    WHOLE = "a whole number"
    NUMBER = "a number"
    CHOICE = "one of its options"
    CHOICES = "some of its options"
    JSON = "a RunSpec as JSON"


@dataclass(frozen=True)
class FormField:
    """A field of the form: its label (shown, and named by its errors), what it takes, its
    initial value, and a hint shown after the label."""

    label: str
    kind: Kind
    default: str | tuple[str, ...] = ""
    hint: str = ""


FIELDS: dict[str, FormField] = {
    "workload.kind": FormField("workload kind", Kind.CHOICE, "synthetic"),
    "workload.num_tasks": FormField("tasks", Kind.WHOLE, "2000"),
    "workload.seed": FormField("workload seed", Kind.WHOLE),
    "workload.load": FormField("offered load", Kind.NUMBER, hint="synthetic"),
    "cluster.cpus": FormField("CPU cores", Kind.WHOLE, "8"),
    "cluster.gpus": FormField("GPUs", Kind.WHOLE, "4"),
    "policies": FormField(
        "policies", Kind.CHOICES, ("round_robin", "random", "greedy", "heft", "learned", "oracle")
    ),
    "knowledge": FormField("knowledge", Kind.CHOICE, Knowledge.ESTIMATED.value),
    "perf_model": FormField("performance model", Kind.CHOICE, "history"),
    "rank_by": FormField("rank by", Kind.CHOICE),
    "seed": FormField("seed", Kind.WHOLE, "0"),
    "priority": FormField("priority", Kind.WHOLE, "5", hint="0..9, 9 most urgent"),
    SPEC_FIELD: FormField("RunSpec", Kind.JSON),
}
#: The fields of one value each, in the order the RunSpec JSON gets them.
SINGLE_FIELDS = tuple(name for name, spec in FIELDS.items() if spec.kind is not Kind.CHOICES)
DEFAULTS: dict[str, Any] = {
    name: list(spec.default) if spec.kind is Kind.CHOICES else spec.default
    for name, spec in FIELDS.items()
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

#: The types of pydantic's "this is not a number" errors: a number field's text that does not
#: parse is sent on as typed (a string), a whole-number field's "2.5" as a float.
NOT_A_NUMBER = frozenset(
    {"number_type", "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"}
)
#: What an error of each other type says about a field; `label` is the field's, the other
#: names come from the error's context (its bound, the values allowed).
SENTENCES = {
    "greater_than_equal": "{label} must be at least {ge}",
    "greater_than": "{label} must be more than {gt}",
    "less_than_equal": "{label} must be at most {le}",
    "less_than": "{label} must be less than {lt}",
    "int_parsing_size": "{label} is too large a number",
    "finite_number": "{label} must be a finite number",
    "missing": "{label} is required",
    "too_short": "{label}: choose at least {min_length}",
    "literal_error": "{label} must be {expected}",
    "enum": "{label} must be {expected}",
    "union_tag_invalid": "{label} must be one of {expected_tags}",
    "string_nul": "{label} must not contain a NUL character",
    "string_surrogate": "{label} must not contain a lone surrogate",
}


def sentence(
    label: str, kind: Kind | None, error_type: str, message: str, context: Mapping[str, Any]
) -> str:
    """A validation error about a field (`kind`) or a group of fields (None), labelled `label`,
    in the form's words ("CPU cores must be a whole number"). A validator's own message
    (value_error) is already in the domain's words; a type without a sentence keeps pydantic's
    message after the label."""
    if kind is not None and error_type in NOT_A_NUMBER:
        text = f"{label} must be {kind.value}"
    elif error_type in SENTENCES and _has_names(SENTENCES[error_type], context):
        text = SENTENCES[error_type].format(label=label, **_plain(context))
    elif error_type == "value_error" and "error" in context:
        text = str(context["error"])
    else:
        text = f"{label}: {message}"
    return text[:1].upper() + text[1:]


def _has_names(template: str, context: Mapping[str, Any]) -> bool:
    """Whether the error's context names every value `template` shows besides the label."""
    names = {name for _, name, _, _ in Formatter().parse(template) if name}
    return names - {"label"} <= context.keys()


def _plain(context: Mapping[str, Any]) -> dict[str, Any]:
    """The error's context as people write it: a bound of 0.0 is 0."""
    return {
        key: int(value) if isinstance(value, float) and value.is_integer() else value
        for key, value in context.items()
    }


@dataclass
class RunForm:
    """What was entered (strings, as typed, to show again) and the errors by field."""

    values: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add_error(self, location: tuple[str | int, ...], message: str) -> None:
        """A message as it is, next to the field `location` names (above the form, and with
        the location, when no field is named or the textarea was used)."""
        place = self._field_of(location)
        path = ".".join(str(p) for p in location if p != "body")
        if place in ("", SPEC_FIELD) and path:
            message = f"{path}: {message}"
        self.errors.setdefault(place, []).append(message)

    def add_invalid(
        self,
        location: tuple[str | int, ...],
        error_type: str,
        message: str,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """A validation error, said in the form's words when it is about one of its fields."""
        context = context or {}
        if error_type == "union_tag_invalid" and "discriminator" in context:
            location = (*location, str(context["discriminator"]).strip("'"))  # e.g. its kind
        place = self._field_of(location)
        if place in ("", SPEC_FIELD):
            self.add_error(location, message)  # JSON's own words: its path and pydantic's
            return
        label, kind = (
            (FIELDS[place].label, FIELDS[place].kind) if place in FIELDS else (place, None)
        )
        self.errors.setdefault(place, []).append(
            sentence(label, kind, error_type, message, context)
        )

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
            if name in FIELDS or name in FIELDSETS:
                return name
        return ""


def read_form(fields: Mapping[str, Any], policies: list[str]) -> tuple[RunForm, RunSpec | None]:
    """The form as entered and its RunSpec, or None with the errors recorded on the form.
    `fields`: the single-valued fields' text by name (others are ignored)."""
    entered = {name: str(fields[name]) for name in SINGLE_FIELDS if name in fields}
    form = RunForm(values={**DEFAULTS, **entered, "policies": policies})
    try:
        document = _document(form)
    except json.JSONDecodeError as exc:
        form.add_error((SPEC_FIELD,), f"not JSON: {exc}")
        return form, None
    except RecursionError:  # json's decoder recurses per level of nesting
        form.add_error((SPEC_FIELD,), "nested more deeply than a RunSpec can be")
        return form, None
    for location, (rule, message), _ in islice(unstorable_values(document), MAX_REPORTED):
        form.add_invalid(location, rule, message)  # a NUL or a lone surrogate, NaN
    if form.errors:
        return form, None
    try:
        return form, RunSpec.model_validate(document)
    except ValidationError as exc:
        for error in exc.errors():
            form.add_invalid(tuple(error["loc"]), error["type"], error["msg"], error.get("ctx"))
        return form, None


def form_address(form: RunForm, refused: str = "") -> str | None:
    """The GET address that shows `form` again as entered (every single-valued field, empty
    ones too, so that an address with none of them is the blank form), with why a valid form
    was `refused`, if it was; None when that address would be longer than MAX_ADDRESS."""
    pairs = [(name, str(form.values.get(name, ""))) for name in SINGLE_FIELDS]
    pairs += [("policies", str(policy)) for policy in form.values["policies"]]
    if refused:
        pairs.append(("refused", refused))
    address = f"{FORM_PATH}?{urlencode(pairs)}"
    return address if len(address) <= MAX_ADDRESS else None


def entered_in(query: Mapping[str, Any]) -> bool:
    """Whether a query string holds an entered form (form_address), not a blank form's."""
    return any(name in query for name in SINGLE_FIELDS)


def _document(form: RunForm) -> Any:
    """The RunSpec JSON: the textarea's when given, else one built from the fields. Empty fields
    are left out (the spec's defaults apply); numbers that do not parse are passed on as typed,
    so the spec's validation names them."""
    text = str(form.values.get(SPEC_FIELD, "")).strip()
    if text:
        return json.loads(text)
    document: dict[str, Any] = {"policies": form.values["policies"]}
    for name in SINGLE_FIELDS:
        kind = FIELDS[name].kind
        raw = str(form.values.get(name, "")).strip()
        if raw == "" or kind is Kind.JSON:
            continue
        value: Any = raw
        if kind in (Kind.WHOLE, Kind.NUMBER):
            value = _number(raw, integer=kind is Kind.WHOLE)
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
