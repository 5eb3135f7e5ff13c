"""A task's configuration, declared once with its bounds.

:class:`TaskConfig` validates what admins send (readable errors name the field), fills the
defaults, documents the API (its JSON schema goes into ``/api/openapi.json``) and builds
the admin's form (``server.forms``). Which fields change the bundle is declared here too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from export import BundleError
from export.bundle import validate_args

from .errors import APIError
from .strategies import AggregatorConfig
from .strategies.fedasync import FedAsyncParams

# Changing any of these changes the bundle (and with it the parameter layout).
BUNDLE_FIELDS = ("model", "classes", "lr", "train_blocks")

ClassName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                             pattern=r"^[^\x00-\x1f\x7f]+$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
# An extension parameter or a study event detail: a short string, a flag, or a finite number of sane size.
BoundedScalar = (Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] | bool
                  | Annotated[int, Field(ge=-(2**53), le=2**53)]
                  | Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15)] | None)


class ConfigError(APIError):
    status = 400


class ExtensionRef(BaseModel):
    """A client extension the task runs, with its parameters (code the admin trusts)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Identifier
    params: dict[Identifier, BoundedScalar] = Field(default_factory=dict, max_length=32)


StudyNotice = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000,
                                               pattern=r"^[^\x00-\x09\x0b-\x1f\x7f]+$")]
DEFAULT_STUDY_NOTICE = (
    "This task is part of a study of how people label images and train models together. If you agree, "
    "this page records what you do here (adding images, accepting or changing labels, deleting, training, "
    "testing) with the time and a code that stands for you instead of your name. Your images never leave "
    "this device and are never recorded. You can take part without being recorded, and you can change "
    "your mind later on this page: what was recorded about you is then deleted.")


class TaskConfig(BaseModel):
    """Everything a task is configured with. ``title`` and ``help`` feed the admin form."""

    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=())

    classes: list[ClassName] = Field(min_length=2, max_length=1000, description=(
        "the labels participants choose from, in order"))
    model: str = Field("digits_cnn", max_length=64, description="which network the participants train")
    train_blocks: int = Field(0, ge=0, le=1000, title="Trainable blocks", description=(
        "0 trains only the new classifier on features computed once per image (fast); "
        "more blocks adapt more of the network and cost more per step"))
    lr: float = Field(0.003, gt=0, le=1.0, title="Learning rate", description=(
        "how big a step each training batch takes on a participant's device "
        "(the advice under Model suggests a value)"))
    update_encoding: Literal["f32", "q8-delta"] = Field("f32", title="How updates travel", description=(
        "f32 sends the full parameters; q8-delta sends the change in 8 bits (about a quarter of the bytes, "
        "with the rounding error carried into the next update)"))
    batch_size: int = Field(32, ge=1, le=4096, title="Batch size",
                            description="images per training step on a participant's device")
    local_epochs: int = Field(1, ge=1, le=1000, title="Local epochs",
                              description="passes over a participant's images per round")
    min_labelled: int = Field(10, ge=1, le=10**6, title="Minimum labelled images",
                              description="how many labelled images a participant needs before training")
    max_staleness: int = Field(50, ge=0, le=10**6, title="Maximum staleness", description=(
        "updates that started this many versions ago or more are refused"))
    keep_versions: int = Field(200, ge=1, le=10**6, title="Versions kept", description=(
        "parameter files of older versions are deleted (must exceed the maximum staleness)"))
    max_samples: int = Field(1000, ge=1, le=10**9, title="Most images one update counts for", description=(
        "a participant's claimed image count weighs its update only up to this many"))
    max_change_ratio: float | None = Field(1.0, gt=0, le=1000, title="Largest change per update", description=(
        "an update that changes the model by more than this multiple of the model's size (L2) is refused, "
        "and no update moves the shared model further than that (empty: no limit)"))
    max_change_vs_recent: float | None = Field(3.0, gt=0, le=1000, title="Largest move vs recent updates",
                                               description=(
        "no update moves the shared model further than this multiple of the typical (median) change of the "
        "last 20 merged updates, so one odd update cannot drag it far (empty: no limit)"))
    direction_guard: bool = Field(True, title="Drop updates that pull backwards", description=(
        "an update whose change points against the shared model's progress over the last few versions "
        "(negative cosine) is acknowledged but not merged: it would undo others' work"))
    max_update_norm: float | None = Field(None, gt=0, le=1e9, title="Largest change (absolute L2)", description=(
        "refuse updates whose change is larger than this (empty: no absolute limit)"))
    max_updates_per_minute: int = Field(30, ge=1, le=10**4, title="Updates per participant per minute",
                                        description="more are refused with 'try again later'")
    aggregator: AggregatorConfig = Field(default_factory=FedAsyncParams, description=(
        "how updates are merged into the shared model"))
    extensions: list[ExtensionRef] = Field(default_factory=list, max_length=16, description=(
        "client extensions (code the admin trusts) with their parameters"))
    user_study: bool = Field(False, title="User study", description=(
        "participants first read the study notice; for those who agree, what they do on the page (adding, "
        "labelling, training, testing; never their images) is recorded for research and can be exported"))
    study_notice: StudyNotice = Field(DEFAULT_STUDY_NOTICE, title="Study notice", description=(
        "what participants read before they choose whether to take part in the study"))

    @model_validator(mode="after")
    def _consistent(self) -> "TaskConfig":
        if self.keep_versions <= self.max_staleness:
            raise ValueError("keep_versions must exceed max_staleness "
                             "(a stale update needs the version it started from)")
        try:
            self.classes = validate_args(self.model, self.classes, self.lr, self.train_blocks)[1]
        except BundleError as exc:
            raise ValueError(str(exc)) from None
        return self


def defaults() -> dict:
    """Every field's default (classes empty): what a new task starts from."""
    return TaskConfig.model_construct(classes=[]).model_dump(mode="json") | {
        "aggregator": FedAsyncParams().model_dump(mode="json")}


def available_extensions(directory: str | Path) -> dict[str, Path]:
    """Extension name -> its module file or package directory."""
    root = Path(directory)
    if not root.is_dir():
        return {}
    found = {p.stem: p for p in root.glob("*.py") if not p.name.startswith("_")}
    found |= {p.name: p for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return found


def describe_errors(exc: ValidationError, prefix: str = "") -> tuple[str, list[dict]]:
    """A one-line message and a list of ``{field, problem}`` from pydantic's errors."""
    problems = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"] if not str(p).endswith("Params]"))
        field = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body"
        problem = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        problems.append({"field": field, "problem": problem})
    head = f"{problems[0]['field']}: {problems[0]['problem']}"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return head + more, problems


def validate(config: Any, base: dict | None = None, extensions_dir: str | Path | None = None) -> dict:
    """Merge ``config`` over ``base`` (a stored config), check every field, return it in full."""
    if not isinstance(config, dict):
        raise ConfigError("task config must be a JSON object")
    merged = dict(base or {}) | config
    try:
        checked = TaskConfig.model_validate(merged)
    except ValidationError as exc:
        message, problems = describe_errors(exc, "config.")
        raise ConfigError(message, problems) from None
    if extensions_dir is not None:
        from .extension_catalog import check_parameters, missing_dependencies

        known = available_extensions(extensions_dir)
        for ext in checked.extensions:
            if ext.name not in known:
                raise ConfigError(f"unknown extension {ext.name!r}", {"available": sorted(known)})
            problem = check_parameters(ext.name, known[ext.name], ext.params)
            if problem:
                raise ConfigError(f"config.extensions: {problem}")
            missing = missing_dependencies(known[ext.name])
            if missing:
                raise ConfigError(f"config.extensions: extension {ext.name} needs {', '.join(missing)}, which this "
                                  "server does not carry (add it to EXTENSION_DEPENDENCIES in server/vendor.py)")
    return checked.model_dump(mode="json")


def needs_new_bundle(old: dict, new: dict) -> bool:
    return any(old.get(f) != new.get(f) for f in BUNDLE_FIELDS)
