"""Tests for review decisions (photoarchive.decisions) and the review app's server (photoarchive.review)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from photoarchive import decisions as dec
from photoarchive.imageio import write_image
from photoarchive.metadata import exiftool_session, read_tags, write_review_tags
from photoarchive.package import read_decisions as package_read_decisions

PHOTO = "family__img001.jpg-0123abcd"
OTHER = "family__img002.jpg-89abcdef"


# ------------------------------------------------------------------------------------------------
# decisions file


def test_record_and_read_back(tmp_path):
    path = tmp_path / "results" / "decisions.json"
    entry = dec.record_decision(path, PHOTO, "accept", "Ann", note="fine", when="2026-12-01T00:20:00+00:00")
    assert entry["decision"] == "accept" and entry["reviewer"] == "Ann"
    data = json.loads(path.read_text())
    assert data[PHOTO]["time"] == "2026-12-01T00:20:00+00:00" and data[PHOTO]["note"] == "fine"
    assert dec.read_decisions(path)[PHOTO]["decision"] == "accept"
    # no temporary or half-written file is left beside it
    assert sorted(p.name for p in path.parent.iterdir()) == [".decisions.json.lock", "decisions.json"]


def test_time_defaults_to_iso_utc(tmp_path):
    entry = dec.record_decision(tmp_path / "d.json", PHOTO, "reject", "Bo")
    assert entry["time"].endswith("+00:00") and entry["time"][4] == "-" and "T" in entry["time"]


def test_later_decision_replaces_and_keeps_history_and_overrides(tmp_path):
    path = tmp_path / "d.json"
    dec.record_decision(path, PHOTO, "retune", "Ann", overrides={"restore_strength": 40, "enhance_preset": "Natural"})
    dec.record_decision(path, OTHER, "reject", "Ann")
    entry = dec.record_decision(path, PHOTO, "accept", "Bo")
    assert entry["decision"] == "accept" and entry["overrides"] == {"restore_strength": 40.0,
                                                                   "enhance_preset": "natural"}
    assert [h["decision"] for h in entry["history"]] == ["retune"]
    assert set(dec.read_decisions(path)) == {PHOTO, OTHER}  # the other photo's decision is kept


@pytest.mark.parametrize("overrides, words", [
    ({"restore_strenght": 50}, "unknown override"),
    ({"restore_strength": 101}, "from 0 to 100"),
    ({"restore_grain": 2}, "from 0 to 1"),
    ({"restore_degradation_scale": 0.5}, "from 1 to 16"),
    ({"restore_grain": "lots"}, "expected a number"),
    ({"restore_grain": float("nan")}, "from 0 to 1"),
    ({"enhance_preset": "vivid"}, "use one of"),
    ({"repair": "maybe"}, "true or false"),
    ({"restore_weight_nose": 0.5}, "unknown override"),
])
def test_overrides_checked_against_the_schema(tmp_path, overrides, words):
    with pytest.raises(dec.DecisionError, match=words):
        dec.record_decision(tmp_path / "d.json", PHOTO, "retune", "Ann", overrides=overrides)
    assert not (tmp_path / "d.json").exists()  # nothing written


def test_overrides_take_every_per_photo_column():
    values = dec.validate_overrides({"enhance_preset": "strong", "enhance_tone": "neutral", "repair": "no",
                                     "repair_sensitivity": "70", "restore_strength": 0, "restore_grain": 1,
                                     "restore_skin_protection": 0.2, "restore_degradation_scale": 16,
                                     "restore_weight_eyes": 0.5, "restore_grain_extra": None})
    assert values["repair"] is False and values["repair_sensitivity"] == 70.0
    assert dec.overrides_row({"overrides": values})["repair"] == "false"
    assert dec.overrides_row({"overrides": values})["restore_strength"] == "0"


def test_override_columns_are_those_the_stages_read():
    from photoarchive.repair import CATALOGUE_COLUMNS as REPAIR
    from photoarchive.restore import CATALOGUE_COLUMNS as RESTORE
    assert set(RESTORE) | set(REPAIR) | {"enhance_preset", "enhance_tone"} == set(dec.OVERRIDE_COLUMNS)


def test_overrides_row_is_read_by_the_stages():
    from photoarchive.enhance import catalogue_overrides as enhance_overrides
    from photoarchive.repair import catalogue_overrides as repair_overrides
    from photoarchive.restore import catalogue_overrides as restore_overrides
    from photoarchive.restore import resolve_controls
    row = dec.overrides_row({"overrides": dec.validate_overrides(
        {"enhance_preset": "detail", "repair": False, "repair_sensitivity": 20, "restore_strength": 35,
         "restore_weight_eyes": 0.25})})
    assert enhance_overrides(row) == {"preset": "detail"}
    assert repair_overrides(row) == {"enabled": False, "sensitivity": 20.0}
    controls = resolve_controls({}, restore_overrides(row))
    assert controls["strength"] == 35 and controls["region_weights"]["eyes"] == 0.25


@pytest.mark.parametrize("decision, reviewer, photo, words", [
    ("maybe", "Ann", PHOTO, "use one of"),
    ("accept", "  ", PHOTO, "reviewer"),
    ("accept", "Ann", "../etc/passwd", "not a photo id"),
    ("retune", "Ann", PHOTO, "at least one override"),
])
def test_bad_decisions_are_refused(tmp_path, decision, reviewer, photo, words):
    with pytest.raises(dec.DecisionError, match=words):
        dec.record_decision(tmp_path / "d.json", photo, decision, reviewer)


def test_a_broken_file_names_the_entry(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({PHOTO: {"decision": "acept", "reviewer": "Ann"}}))
    with pytest.raises(dec.DecisionError, match=f"{path}.*{PHOTO}.*acept"):
        dec.read_decisions(path)


def test_absent_file_changes_nothing(tmp_path):
    assert dec.read_decisions(tmp_path / "none.json") == {}
    assert dec.effective_status("review", None) == "review"


def test_csv_and_list_forms_are_read(tmp_path):
    csv_file = tmp_path / "d.csv"
    csv_file.write_text("photo_id,decision,reviewer,time,note\n"
                        f"{PHOTO},accepted,Ann,2026-11-30,ok\n{OTHER},reject,Bo,2026-11-30,\n")
    assert {k: v["decision"] for k, v in dec.read_decisions(csv_file).items()} == {PHOTO: "accept", OTHER: "reject"}
    list_file = tmp_path / "d.json"
    list_file.write_text(json.dumps([{"photo_id": PHOTO, "decision": "reject", "reviewer": "Ann"}]))
    assert dec.read_decisions(list_file)[PHOTO]["decision"] == "reject"


def test_package_reads_the_decisions_file(tmp_path):
    path = tmp_path / "decisions.json"
    dec.record_decision(path, PHOTO, "retune", "Ann", note="softer", overrides={"restore_strength": 40})
    dec.record_decision(path, PHOTO, "accept", "Bo", note="good now", when="2026-12-01T01:00:00+00:00")
    got = package_read_decisions(path)[PHOTO]
    assert got["decision"] == "accept" and got["reviewer"] == "Bo" and got["time"] == "2026-12-01T01:00:00+00:00"
    assert got["note"] == "good now" and "overrides" not in got and "history" not in got


@pytest.mark.parametrize("qa, decision, status", [
    ("review", "accept", "processed"), ("review", "reject", "rejected"), ("review", "retune", "review"),
    ("processed", "reject", "rejected"), ("processed", "accept", "processed"), ("failed", "accept", "failed"),
])
def test_effective_status(qa, decision, status):
    assert dec.effective_status(qa, {"decision": decision}) == status


def test_decision_text():
    text = dec.decision_text({"decision": "retune", "reviewer": "Ann", "time": "T", "note": "n",
                              "overrides": {"restore_strength": 40.0}})
    assert text == "retuned by Ann T (restore_strength=40.0): n"


def test_review_tags_written_on_a_published_file(tmp_path):
    target = tmp_path / "x_restored.jpg"
    write_image(target, np.full((8, 8, 3), 0.5, np.float32))
    with exiftool_session() as et:
        write_review_tags(et, target, *dec.XMP_TAGS["reject"])
        tags = read_tags(et, target)
    assert tags["XMP-xmp:Rating"] == -1 and tags["XMP-xmp:Label"] == "Rejected"
