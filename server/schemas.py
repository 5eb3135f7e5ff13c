"""What participants and admins may send, declared once with bounds.

Every header, query and JSON body the API reads is parsed here, through pydantic, before
any other code sees it: whole numbers are ASCII digits within declared limits (never past
64 bits), floats are finite and bounded, JSON has bounded depth and size. The same
declarations give the readable 400s and the schemas in ``/api/openapi.json``.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Mapping, TypeVar

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter,
                      ValidationError)

from .errors import APIError
from .taskconfig import BoundedScalar, Identifier, describe_errors

MAX_JSON_BYTES = 256 * 1024        # admin and join bodies
MAX_METRICS_BYTES = 4096           # the X-WebFL-Metrics header
MAX_VERSION = 2**53 - 1            # versions are counters: far below, but JSON-safe
MAX_SAMPLES_CLAIM = 10**9          # an update may claim at most this many images
MAX_ABS_PARAMETER = 1e4            # |value| above this in an update is absurd for any model here

_DIGITS = re.compile(r"[0-9]{1,18}", re.ASCII)

M = TypeVar("M", bound=BaseModel)


class Invalid(APIError):
    status = 400


def _whole_number(raw: Any) -> Any:
    """ASCII digits only (no signs, spaces, underscores or other scripts' digits)."""
    if isinstance(raw, str):
        if not _DIGITS.fullmatch(raw.strip()):
            raise ValueError("must be a whole number written with the digits 0-9 (at most 18 of them)")
        return int(raw.strip())
    return raw


HeaderInt = Annotated[int, BeforeValidator(_whole_number)]
# Short lower-case identifiers: names carry meaning, not data (an extension once hid an
# image in metric names). A hostile extension can still encode a little in names and values.
MetricName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]{0,31}$")]
MetricValue = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-1e15, le=1e15)]
Metrics = Annotated[dict[MetricName, MetricValue], Field(max_length=32)]
_METRICS = TypeAdapter(Metrics)


class UpdateHeaders(BaseModel):
    """The headers of ``POST /api/tasks/{id}/updates``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    base_version: HeaderInt = Field(alias="X-WebFL-Base-Version", ge=0, le=MAX_VERSION, description=(
        "the global version the update started from"))
    num_samples: HeaderInt = Field(alias="X-WebFL-Samples", ge=1, le=MAX_SAMPLES_CLAIM, description=(
        "how many labelled images the update was trained on (the task caps the weight it earns)"))
    idempotency_key: Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,128}$")] = Field(
        alias="Idempotency-Key", description="a fresh random key per update; the same key when retrying it")
    encoding: Literal["f32", "q8-delta"] = Field("f32", alias="X-WebFL-Encoding", description=(
        "f32: the body is the new parameters (float32 LE); q8-delta: the change from the base "
        "version, one float32 scale per 256 values then one int8 per value (browser_py/update_encoding.py)"))
    metrics: Annotated[str, StringConstraints(max_length=MAX_METRICS_BYTES)] = Field(
        "{}", alias="X-WebFL-Metrics", description=(
            "JSON object of at most 32 finite numbers keyed by short lower-case names (at most 32 "
            "characters), e.g. {\"loss\": 0.3}"))

    def metric_values(self) -> dict[str, float]:
        try:
            return _METRICS.validate_json(self.metrics)
        except ValidationError as exc:
            message, problems = describe_errors(exc, "X-WebFL-Metrics.")
            raise Invalid(f"header {message}", problems) from None


DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=80,
                                               pattern=r"^[^\x00-\x1f\x7f]*$")]


class JoinBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32,
                                           pattern=r"^[A-Za-z0-9]+$")] = Field(
        description="the join code from the link or QR code")
    name: DisplayName = Field("", description="a display name the organiser sees (optional)")


class RenameBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: DisplayName = Field(description="the display name the organiser sees; empty: a generated one")


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                         pattern=r"^[^\x00-\x1f\x7f]+$")]


class TaskCreateBody(BaseModel):
    """``{title, config}``; the config is checked against :class:`TaskConfig` after merging."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: Title
    config: dict[str, Any] = Field(default_factory=dict)


class TaskEditBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    title: Title | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class VersionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: HeaderInt | None = Field(None, ge=0, le=MAX_VERSION)


class SinceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    since: Annotated[int, BeforeValidator(lambda raw: -1 if raw == "-1" else _whole_number(raw))] = Field(
        -1, ge=-1, le=MAX_VERSION)


# What a user study records, in plain words (the export and the docs show these).
STUDY_ACTIONS = {
    "reload": "opened the page again (the participant had joined before)",
    "add": "added images (count, how many came labelled, rejected, duplicates)",
    "suggestion": "the model suggested a label for an image (label, confidence)",
    "accept": "accepted a suggested label",
    "correct": "chose a label by hand (suggested: what the model had said, if anything)",
    "delete": "deleted an image",
    "undo": "brought back an image just deleted",
    "explain": "asked why the model suggested a label (the heatmap over the photo)",
    "train": "started a training round (labelled images, epochs)",
    "round": "a round ended and the update was sent (status, seconds)",
    "cancel": "cancelled training (seconds into the round)",
    "test": "tested the models on their test images (accuracy, images)",
}


class ConsentBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    agreed: bool = Field(description="true: record my actions for the study; false: take part without it "
                                     "(withdraws an earlier yes and deletes what was recorded)")


class StudyEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        description="chosen by the participant's page, unique per participant: a resent event is stored once")
    at: float = Field(ge=0, le=1e11, allow_inf_nan=False, description="when it happened (unix seconds)")
    action: str = Field(pattern="^(" + "|".join(STUDY_ACTIONS) + ")$", description=", ".join(STUDY_ACTIONS))
    version: int | None = Field(None, ge=0, le=MAX_VERSION, description="the global version the page held")
    detail: dict[Identifier, BoundedScalar] = Field(default_factory=dict, max_length=16, description=(
        "a few named values (counts, a label, a confidence); never image data"))


class StudyEventsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    events: list[StudyEvent] = Field(min_length=1, max_length=500)


class StudyExportQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: Annotated[str, StringConstraints(pattern=r"^(csv|jsonl)$")] = Field(
        "csv", description="csv (one row per event, detail as JSON) or jsonl (JSON Lines)")


def parse(model: type[M], data: Mapping[str, Any], where: str) -> M:
    """``model`` from headers or a query (``where`` names them in the error)."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        message, problems = describe_errors(exc)
        raise Invalid(f"{where} {message}", problems) from None


def parse_json(model: type[M], body: bytes) -> M:
    """``model`` from a JSON body of at most :data:`MAX_JSON_BYTES` (pydantic's parser
    bounds nesting depth, so deep JSON is a 400, never a crash)."""
    if len(body) > MAX_JSON_BYTES:
        raise APIError(f"the JSON body is larger than {MAX_JSON_BYTES} bytes", status=413)
    if not body.strip():
        raise Invalid("the request body must be a JSON object", "send Content-Type: application/json")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        message, problems = describe_errors(exc)
        if exc.errors()[0]["type"] in ("json_invalid", "model_type"):
            message = f"the request body must be a JSON object ({problems[0]['problem']})"
        raise Invalid(message, problems) from None
