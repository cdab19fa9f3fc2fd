"""The kernel profile JSON (schema_version 1): what one machine measured, validated once here
(pydantic), then turned into the core's plain `Profile` (app/sim/profile.py) by `to_profile`.

The format is documented field by field in docs/profiles.md; `hms profile measure` writes it and
the profiles shipped with the package (app/profiles/*.json) follow it. A refused profile is a
pydantic `ValidationError` whose locations name the field, e.g. ("timings", 3, "device"): the
API answers it with a 422 like any request body.
"""

from __future__ import annotations

import datetime
import json
from collections import defaultdict
from importlib import resources
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.errors import ProfileNotFound
from app.sim.profile import CONTENTIONS, KERNELS, Link, Profile, TimingCurve

SCHEMA_VERSION = 1
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
DEVICE_KIND_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
#: 9 kernels x 2 kinds of device x 2 contentions x 50 sizes is 1800: ten times that is room for
#: any real measurement and keeps a hostile body from costing seconds to validate.
MAX_TIMINGS = 20_000
MAX_DEVICES = 16
#: The package the shipped profiles are data files of.
SHIPPED_PACKAGE = "app.profiles"

Kernel = Literal[KERNELS]  # type: ignore[valid-type]
Contention = Literal[CONTENTIONS]  # type: ignore[valid-type]


def _field_error(location: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error at a nested location, for rules that span several fields."""
    error = PydanticCustomError("profile_rule", message)
    return ValidationError.from_exception_data(
        "ProfileSpec", [InitErrorDetails(type=error, loc=location, input=value)]
    )


class _Part(BaseModel):
    # strict: a JSON true is not 1, "5" is not 5; floats accept integers; no NaN or infinity.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class MachineSpec(_Part):
    cpu: str = Field(min_length=1, max_length=200, description="CPU model, and cores visible.")
    gpu: str | None = Field(default=None, max_length=200, description="GPU model, or null.")
    cores: int | None = Field(
        default=None, ge=1, le=100_000, description="CPU cores; null if unknown."
    )
    os: str | None = Field(
        default=None, max_length=200, description="Operating system; null if unknown."
    )


class ProvenanceSpec(_Part):
    source: Literal["measured", "published"]
    date: str = Field(
        pattern=r"^\d{4}(-\d{2}-\d{2})?$",
        description="When the numbers were taken (measured) or published: YYYY-MM-DD, or YYYY "
        "where only the year is known.",
    )
    machine: MachineSpec
    libraries: dict[str, str | None] = Field(
        default_factory=dict, max_length=32, description="Library name -> version (null: unknown)."
    )
    command: str | None = Field(
        default=None, max_length=1000, validate_default=True, description="How it was measured."
    )
    citation: str | None = Field(
        default=None, max_length=2000, validate_default=True, description="Where it was published."
    )

    @field_validator("date")
    @classmethod
    def _a_real_date(cls, value: str) -> str:
        if len(value) == 10:
            datetime.date.fromisoformat(value)  # ValueError: not a day of the calendar
        return value

    @field_validator("command")
    @classmethod
    def _measured_says_how(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("source") == "measured" and not value:
            raise ValueError("a measured profile needs the command that measured it")
        return value

    @field_validator("citation")
    @classmethod
    def _published_cites(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("source") == "published" and not value:
            raise ValueError("a published profile needs the citation of its source")
        return value


class DeviceSpec(_Part):
    kind: str = Field(pattern=DEVICE_KIND_PATTERN, description='The kind timings name: "cpu".')
    name: str = Field(min_length=1, max_length=200, description="What measured: a model name.")
    units: int = Field(default=1, ge=1, le=100_000, description="Cores or GPUs per timing.")
    note: str | None = Field(default=None, max_length=1000)


class QuantilesSpec(_Part):
    p05: float = Field(gt=0)
    p50: float = Field(gt=0)
    p95: float = Field(gt=0)

    @model_validator(mode="after")
    def _non_decreasing(self) -> QuantilesSpec:
        if self.p50 < self.p05:
            raise _field_error(("p50",), "p50 must be >= p05", self.p50)
        if self.p95 < self.p50:
            raise _field_error(("p95",), "p95 must be >= p50", self.p95)
        return self


class TimingSpec(_Part):
    kernel: Kernel
    device: str = Field(pattern=DEVICE_KIND_PATTERN, description="A kind listed in devices.")
    size: int = Field(ge=1, description="Tile edge b: the kernel works on b x b tiles.")
    contention: Contention = "alone"
    repeats: int | None = Field(ge=1, description="Timed calls (null: the source does not say).")
    mean_s: float = Field(gt=0, description="Mean time of one call, seconds.")
    std_s: float | None = Field(ge=0, description="Standard deviation, seconds (null: unknown).")
    quantiles_s: QuantilesSpec | None = Field(default=None, description="Seconds; null: unknown.")


class LinkSpec(_Part):
    source: str = Field(pattern=DEVICE_KIND_PATTERN)
    target: str = Field(pattern=DEVICE_KIND_PATTERN)
    latency_s: float = Field(ge=0, description="Time of an empty transfer, seconds.")
    bandwidth_bytes_per_s: float = Field(gt=0, description="Bytes per second of a large one.")


class MeasurementSpec(_Part):
    """How the timings were taken (optional; profiles written before December 2026 and
    published ones leave it out, which says nothing about where the operands were)."""

    operands: Literal["warm", "cold"] = Field(
        description='"warm": every call on the same operands, in the caches; "cold": each call '
        "on the next of a pool of distinct operand sets larger than the last-level cache, so "
        "its tiles start outside the caches, as a task's do inside a tiled factorization."
    )
    pool_bytes: int | None = Field(
        default=None, ge=1, description="Cold: bytes of the pool each process rotated over."
    )
    last_level_cache_bytes: int | None = Field(
        default=None, ge=1, description="The machine's last-level cache, bytes (null: unknown)."
    )


class ProfileSpec(_Part):
    """One machine's kernel timings and links, as the JSON file or request body gives them."""

    schema_version: int = Field(
        description=f"The format's version: {SCHEMA_VERSION}.",
        json_schema_extra={"const": SCHEMA_VERSION},
    )
    name: str = Field(pattern=NAME_PATTERN, description="The id clusters name the profile by.")
    description: str = Field(default="", max_length=5000)
    precision: Literal["double"] = "double"
    provenance: ProvenanceSpec
    measurement: MeasurementSpec | None = Field(
        default=None, description="How the timings were taken; null: not stated."
    )
    devices: list[DeviceSpec] = Field(min_length=1, max_length=MAX_DEVICES)
    timings: list[TimingSpec] = Field(min_length=1, max_length=MAX_TIMINGS)
    links: list[LinkSpec] = Field(default_factory=list, max_length=MAX_DEVICES**2)

    @field_validator("schema_version", mode="before")
    @classmethod
    def _known_version(cls, value: Any) -> Any:
        if type(value) is not int or value != SCHEMA_VERSION:
            raise PydanticCustomError(
                "schema_version",
                "this reader knows profile schema_version {known}, not {given}",
                {"known": SCHEMA_VERSION, "given": value},
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ProfileSpec:
        kinds: dict[str, int] = {}
        for i, device in enumerate(self.devices):
            if device.kind in kinds:
                raise _field_error(
                    ("devices", i, "kind"), "device kinds must be unique", device.kind
                )
            kinds[device.kind] = i
        seen: dict[tuple[str, str, int, str], int] = {}
        for i, timing in enumerate(self.timings):
            if timing.device not in kinds:
                raise _field_error(
                    ("timings", i, "device"),
                    f"device {timing.device!r} is not one of the devices' kinds {sorted(kinds)}",
                    timing.device,
                )
            key = (timing.kernel, timing.device, timing.size, timing.contention)
            if key in seen:
                raise _field_error(
                    ("timings", i),
                    f"timings[{seen[key]}] already has {key[0]} on {key[1]} at size {key[2]} "
                    f"({key[3]})",
                    list(key),
                )
            seen[key] = i
        pairs: set[tuple[str, str]] = set()
        for i, link in enumerate(self.links):
            for end in ("source", "target"):
                if getattr(link, end) not in kinds:
                    raise _field_error(
                        ("links", i, end),
                        "a link's ends must be listed device kinds",
                        getattr(link, end),
                    )
            if link.source == link.target or (link.source, link.target) in pairs:
                raise _field_error(
                    ("links", i), "one link per direction between two different kinds", link.source
                )
            pairs.add((link.source, link.target))
        return self

    def to_profile(self) -> Profile:
        """The core's view: one `TimingCurve` per (kernel, device, contention)."""
        groups: defaultdict[tuple[str, str, str], list[TimingSpec]] = defaultdict(list)
        for timing in self.timings:
            groups[timing.kernel, timing.device, timing.contention].append(timing)
        curves = {key: _curve(points) for key, points in groups.items()}
        links = tuple(
            Link(link.source, link.target, link.latency_s, link.bandwidth_bytes_per_s)
            for link in self.links
        )
        kinds = tuple(device.kind for device in self.devices)
        return Profile(name=self.name, devices=kinds, curves=curves, links=links)


def _curve(points: list[TimingSpec]) -> TimingCurve:
    nan = float("nan")
    quantiles = [
        (q.p05, q.p50, q.p95) if (q := point.quantiles_s) else (nan, nan, nan) for point in points
    ]
    return TimingCurve.from_points(
        sizes=[point.size for point in points],
        mean_s=[point.mean_s for point in points],
        std_s=[nan if point.std_s is None else point.std_s for point in points],
        quantiles_s=np.array(quantiles, dtype=np.float64).reshape(len(points), 3),
        repeats=[point.repeats or 0 for point in points],
    )


def shipped_profile_names() -> list[str]:
    """The names of the profiles shipped with the package (app/profiles/<name>.json)."""
    folder = resources.files(SHIPPED_PACKAGE)
    return sorted(
        entry.name.removesuffix(".json")
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    )


def load_shipped_profile(name: str) -> ProfileSpec:
    """A shipped profile by name; `ProfileNotFound` if there is none of that name."""
    if name not in shipped_profile_names():
        raise ProfileNotFound(name, shipped_profile_names())
    text = resources.files(SHIPPED_PACKAGE).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return ProfileSpec.model_validate(json.loads(text))
