"""What a participant should do next, in plain words: the step bar's one main action.

Pure logic (no DOM), so the page, tests and headless tools agree on it. The four steps
are the participant's whole job: add photos, check their labels, train, test.
"""
from __future__ import annotations

from dataclasses import dataclass

STEPS = ("add", "review", "train", "test")
STEP_TITLES = {"add": "Add photos", "review": "Check labels", "train": "Train", "test": "Test"}
# What the main button does (the page maps each to a handler).
ACTIONS = ("pick-files", "label-first", "check-first", "suggest", "train", "test")


@dataclass(frozen=True)
class Situation:
    """What the guide needs to know about a participant's images and rounds."""

    total: int
    unlabelled: int
    suggested: int
    labelled_train: int
    labelled_test: int
    min_labelled: int
    version: int | None  # the shared model's version (0: it has learned nothing yet)
    trained_on: int | None = None  # labelled training photos in the last round sent (None: never)
    tested_version: int | None = None  # the shared model version last tested


@dataclass(frozen=True)
class Step:
    key: str  # one of STEPS
    hint: str
    action: str  # the main button's words
    does: str  # one of ACTIONS

    @property
    def number(self) -> int:
        return STEPS.index(self.key) + 1


def _photos(n: int) -> str:
    return f"{n} photo{'s' if n != 1 else ''}"


def next_step(s: Situation) -> Step:
    """The one thing to do now, with the words for its button."""
    if s.total == 0:
        return Step("add", "Add photos of each class from this device: files, a folder, a zip or the camera.",
                    "Add photos", "pick-files")
    if s.labelled_train < s.min_labelled:
        need = s.min_labelled - s.labelled_train
        if s.suggested:
            return Step("review", f"Check the {_photos(s.suggested)} with a suggested label: accept the right "
                                  f"ones, correct the rest. {need} more labelled before you can train.",
                        "Check the suggestions", "check-first")
        if s.unlabelled and not s.version:
            return Step("review", "The shared model has not learned anything yet, so label photos yourself: "
                                  f"pick a photo and press its class key. {need} more before you can train.",
                        "Label the first photo", "label-first")
        if s.unlabelled:
            return Step("review", f"Let the shared model suggest labels for your {_photos(s.unlabelled)} "
                                  f"without one; {need} more labelled before you can train.",
                        "Suggest labels", "suggest")
        return Step("add", f"Training needs {_photos(s.min_labelled)} with a label; you have {s.labelled_train}. "
                           "Add a few more.", "Add photos", "pick-files")
    if s.trained_on != s.labelled_train:
        extra = (f" {s.suggested} suggestions are still waiting for you." if s.suggested
                 else f" {_photos(s.unlabelled)} without a label can wait." if s.unlabelled else "")
        return Step("train", f"Train on your {_photos(s.labelled_train)}. They stay on this device: only what "
                             f"the model learned is sent.{extra}", f"Train on {_photos(s.labelled_train)}", "train")
    if s.labelled_test and s.tested_version != s.version:
        return Step("test", f"See how well the shared model does on your {_photos(s.labelled_test)} kept aside "
                            "for testing.", "Test the model", "test")
    if s.unlabelled and not s.suggested:
        return Step("review", "Your update is in. Let the improved model suggest labels for the photos still "
                              "without one.", "Suggest labels", "suggest")
    if s.suggested:
        return Step("review", f"Check the {_photos(s.suggested)} with a suggested label, then train again.",
                    "Check the suggestions", "check-first")
    return Step("add", "Done for now. More photos (or a later round, once others have trained) improve the "
                       "model further.", "Add more photos", "pick-files")
