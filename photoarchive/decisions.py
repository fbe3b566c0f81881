"""Review decisions: the one file a reviewer's accept / reject / retune goes into, read by the next run.

The file (`review.decisions` in config, default ``results/decisions.json``) is a JSON object keyed by
photo id, which `photoarchive.package.read_decisions` reads as it is::

    {"<photo_id>": {"photo_id": "...", "decision": "accept" | "reject" | "retune",
                    "reviewer": "ann", "time": "2026-12-01T00:20:00+00:00", "note": "free text",
                    "overrides": {"restore_strength": 60, "enhance_preset": "natural"},
                    "history": [<earlier decisions on this photo, oldest first>]}}

- accept: the photo is published under processed/ (status ``processed``), its reason starting with
  "accepted by <reviewer> <time>" and keeping QA's reasons; XMP Rating 5, Label "Accepted".
- reject: status ``rejected``, published under rejected/ (so review/ holds only undecided photos); the
  original stays the archive's copy and is never touched; XMP Rating -1, Label "Rejected".
- retune: ``overrides`` (metadata.csv override columns, `OVERRIDE_COLUMNS`) are merged over the photo's
  catalogue row, so its per-photo jobs run again with them; QA then decides again. Overrides stay in
  force when a later accept/reject on the same photo replaces the decision.

Writes are atomic (`photoarchive.imageio.write_atomic`) under an exclusive lock file beside it, so two
reviewers (or the app and a script) never lose each other's decisions.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import re
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from photoarchive.imageio import write_atomic
from photoarchive.settings import schema_property

DEFAULT_PATH = "results/decisions.json"
DECISIONS = ("accept", "reject", "retune")
_SYNONYMS = {"accepted": "accept", "approve": "accept", "approved": "accept", "ok": "accept",
             "rejected": "reject", "retuned": "retune"}
# XMP written on the published file: (xmp:Rating, xmp:Label); retune keeps the rating unset
XMP_TAGS = {"accept": (5, "Accepted"), "reject": (-1, "Rejected"), "retune": (None, "Retuned")}
# Per-photo override columns (the metadata.csv columns that `catalogue_overrides` of enhance, repair and
# restore read) and the config.schema.yaml property that gives each its type and range.
REGIONS = ("eyes", "lips", "cheeks", "forehead", "other")
OVERRIDE_COLUMNS: dict[str, tuple[str, ...]] = {
    "enhance_preset": ("enhance", "preset"),
    "enhance_tone": ("enhance", "tone"),
    "repair": ("repair", "enabled"),
    "repair_sensitivity": ("repair", "sensitivity"),
    "restore_strength": ("restore", "strength"),
    "restore_skin_protection": ("restore", "skin_protection"),
    "restore_grain": ("restore", "grain"),
    "restore_degradation_scale": ("restore", "degradation_scale"),
    **{f"restore_weight_{r}": ("restore", "region_weights", r) for r in REGIONS},
}
MAX_NOTE_CHARS = 2000
MAX_REVIEWER_CHARS = 100
_PHOTO_ID = re.compile(r"^[A-Za-z0-9._-]+-[0-9a-f]{8}$")


class DecisionError(ValueError):
    """A decision (or the decisions file) that cannot be used; the message says which and why."""


def override_spec(column: str) -> dict:
    """The schema property of an override column: type, bounds, enum, default."""
    if column not in OVERRIDE_COLUMNS:
        raise DecisionError(f"unknown override {column!r}; known: {', '.join(OVERRIDE_COLUMNS)}")
    return schema_property(*OVERRIDE_COLUMNS[column])


def _check_value(column: str, value: Any) -> Any:
    spec = override_spec(column)
    kind = spec.get("type")
    if "enum" in spec:
        text = str(value).strip().lower()
        if text not in [str(e) for e in spec["enum"]]:
            raise DecisionError(f"{column}={value!r}: use one of {', '.join(map(str, spec['enum']))}")
        return text
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise DecisionError(f"{column}={value!r}: expected true or false")
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(str(value).strip())
    except ValueError:
        raise DecisionError(f"{column}={value!r}: expected a number") from None
    low, high = spec.get("minimum", -math.inf), spec.get("maximum", math.inf)
    if not math.isfinite(number) or not low <= number <= high:
        raise DecisionError(f"{column}={value!r}: expected a number from {low:g} to {high:g}")
    return number


def validate_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Overrides checked against the schema: known columns only, values in range; empty values dropped."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise DecisionError(f"overrides must be an object of column: value, got {type(overrides).__name__}")
    out = {}
    for column, value in overrides.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        out[str(column)] = _check_value(str(column), value)
    return out


def normalise_decision(value: Any) -> str:
    text = str(value or "").strip().lower()
    text = _SYNONYMS.get(text, text)
    if text not in DECISIONS:
        raise DecisionError(f"decision {value!r}: use one of {', '.join(DECISIONS)}")
    return text


def validate_entry(photo_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    """One decision checked and normalised; raises DecisionError naming the photo."""
    if not isinstance(entry, dict):
        raise DecisionError(f"decision for {photo_id}: expected an object")
    try:
        out = {"photo_id": photo_id, "decision": normalise_decision(entry.get("decision")),
               "reviewer": str(entry.get("reviewer") or "")[:MAX_REVIEWER_CHARS],
               "time": str(entry.get("time") or entry.get("date") or ""),
               "note": str(entry.get("note") or "")[:MAX_NOTE_CHARS]}
        overrides = entry.get("overrides")
        if isinstance(overrides, str):  # from a CSV: a JSON object in a cell
            overrides = json.loads(overrides) if overrides.strip() else {}
        out["overrides"] = validate_overrides(overrides)
    except (DecisionError, ValueError) as exc:
        raise DecisionError(f"decision for {photo_id}: {exc}") from None
    if out["decision"] == "retune" and not out["overrides"]:
        raise DecisionError(f"decision for {photo_id}: retune needs at least one override")
    if isinstance(entry.get("history"), list):
        out["history"] = [h for h in entry["history"] if isinstance(h, dict)]
    return out


def read_decisions(path: Path | str | None) -> dict[str, dict[str, Any]]:
    """{photo_id: decision} from the decisions file (JSON object or list, or CSV); {} when it is absent.

    Raises DecisionError naming the file and the bad entry.
    """
    if path is None or not Path(path).is_file():
        return {}
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".csv":
            items = list(csv.DictReader(io.StringIO(text, newline="")))
        else:
            data = json.loads(text) if text.strip() else {}
            if isinstance(data, dict):
                items = [{**v, "photo_id": k} if isinstance(v, dict) else {"photo_id": k, "bad": v}
                         for k, v in data.items()]
            elif isinstance(data, list):
                items = data
            else:
                raise DecisionError("expected a JSON object keyed by photo id")
        out = {}
        for item in items:
            if not isinstance(item, dict) or not item.get("photo_id"):
                raise DecisionError(f"an entry without photo_id: {str(item)[:80]!r}")
            pid = str(item["photo_id"])
            out[pid] = validate_entry(pid, item)
        return out
    except (DecisionError, ValueError) as exc:
        raise DecisionError(f"{path}: {exc}; fix or remove that entry") from None


@contextmanager
def _locked(path: Path):
    lock = path.with_name(f".{path.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def record_decision(path: Path | str, photo_id: str, decision: str, reviewer: str, note: str = "",
                    overrides: dict[str, Any] | None = None, when: str | None = None) -> dict[str, Any]:
    """Add or replace the decision on one photo (the earlier one goes into its history); returns it.

    Overrides of an earlier retune stay in force unless new ones are given.
    """
    path = Path(path)
    if not _PHOTO_ID.match(photo_id or ""):
        raise DecisionError(f"not a photo id: {photo_id!r}")
    if not str(reviewer or "").strip():
        raise DecisionError("a decision needs the reviewer's name (--reviewer NAME)")
    with _locked(path):
        decisions = read_decisions(path)
        previous = decisions.get(photo_id)
        entry = {"photo_id": photo_id, "decision": decision, "reviewer": str(reviewer).strip(),
                 "time": when or now_iso(), "note": note or "",
                 "overrides": overrides if overrides is not None else (previous or {}).get("overrides", {})}
        entry = validate_entry(photo_id, entry)
        if previous:
            entry["history"] = [*previous.pop("history", []), previous]
        decisions[photo_id] = entry
        body = json.dumps(decisions, indent=1, ensure_ascii=False, sort_keys=True)
        write_atomic(path, (body + "\n").encode("utf-8"))
    return entry


def effective_status(qa_status: str, decision: dict[str, Any] | None) -> str:
    """Where a photo goes: QA's status, unless a reviewer accepted (processed) or rejected (rejected) it."""
    if qa_status not in ("processed", "review") or not decision:
        return qa_status
    return {"accept": "processed", "reject": "rejected"}.get(decision.get("decision", ""), qa_status)


def decision_text(decision: dict[str, Any]) -> str:
    """'accepted by ann 2026-12-01T00:20:00+00:00 (note)' for reasons and logs."""
    verb = {"accept": "accepted", "reject": "rejected", "retune": "retuned"}[decision["decision"]]
    text = f"{verb} by {decision.get('reviewer') or 'unnamed reviewer'} {decision.get('time', '')}".rstrip()
    if decision["decision"] == "retune":
        text += " (" + ", ".join(f"{k}={v}" for k, v in sorted(decision.get("overrides", {}).items())) + ")"
    if decision.get("note"):
        text += f": {decision['note']}"
    return text


def overrides_row(decision: dict[str, Any] | None, stage: str | None = None) -> dict[str, str]:
    """A decision's overrides as metadata.csv cells (strings), to merge over the photo's catalogue row;
    with `stage` (enhance, repair, restore) only that stage's columns, so a retune re-runs no more than it must."""
    out = {}
    for column, value in ((decision or {}).get("overrides") or {}).items():
        if stage is not None and OVERRIDE_COLUMNS.get(column, ("",))[0] != stage:
            continue
        if isinstance(value, bool):
            out[column] = "true" if value else "false"
        elif isinstance(value, float):
            out[column] = f"{value:g}"
        else:
            out[column] = str(value)
    return out


def params_view(decision: dict[str, Any] | None) -> dict[str, Any]:
    """What of a decision changes a published file (a Snakemake params value): no history, no note."""
    if not decision:
        return {}
    return {k: decision[k] for k in ("decision", "reviewer", "time") if k in decision}
