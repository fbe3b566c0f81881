"""Tests for photoarchive.stages: the batch runner's keys, kept work, failures, tables and retry markers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from photoarchive.imageio import OutputWriteError, write_atomic
from photoarchive.stages import (
    STAGES,
    BatchTable,
    RecordContractError,
    file_path,
    read_record,
    retry_marker,
    run_batch,
)

PHOTOS = ["a.jpg-00000001", "b.jpg-00000002", "c.jpg-00000003"]
# A faces record as photoarchive.records.FacesRecord declares it (the detector's name stands for the photo)
FACES = {"detector": "", "model_file": "", "model_sha256": "", "fallback_reason": None, "faces": [], "skipped": []}


def _upstream(results: Path, photos=PHOTOS, key: str = "k") -> None:
    """Records of the stages `faces` reads (stamp), as if they had run."""
    for photo in photos:
        write_atomic(STAGES["stamp"].record_path(results, photo), json.dumps({"key": f"{key}-{photo}"}).encode())


def _faces(results: Path, calls: list[str], fail: tuple[str, ...] = (), cfg: dict | None = None) -> BatchTable:
    def work(photo: str, key: str) -> dict:
        calls.append(photo)
        if photo in fail:
            raise RuntimeError(f"broken {photo}")
        return {**FACES, "detector": photo}

    return run_batch(results, "faces", "b0000", PHOTOS, lambda photo: cfg or {"size": 1}, work,
                     STAGES["faces"].table_path(results, "b0000"))


def test_done_photos_are_kept_and_a_change_redoes_only_what_it_touches(tmp_path):
    results = tmp_path / "results"
    _upstream(results)
    calls: list[str] = []
    first = _faces(results, calls)
    assert calls == PHOTOS and [r.status for r in first.rows] == ["done"] * 3
    assert read_record(results, "faces", PHOTOS[0])["detector"] == PHOTOS[0]
    assert first.rows[0].files == [f"faces/{PHOTOS[0]}.json"]
    times = {p: file_path(results, "faces", p).stat().st_mtime_ns for p in PHOTOS}

    calls.clear()
    again = _faces(results, calls)
    assert calls == [] and again.to_json() == first.to_json()  # nothing redone, the same table bytes
    assert {p: file_path(results, "faces", p).stat().st_mtime_ns for p in PHOTOS} == times

    _upstream(results, [PHOTOS[1]], key="new")  # one upstream record changed: its key changes
    file_path(results, "faces", PHOTOS[2]).unlink()  # one record deleted by hand
    _faces(results, calls)
    assert calls == [PHOTOS[1], PHOTOS[2]]

    calls.clear()
    _faces(results, calls, cfg={"size": 2})  # new settings: every photo again
    assert calls == PHOTOS


def test_a_failing_photo_is_listed_and_its_batch_mates_carry_on(tmp_path):
    results = tmp_path / "results"
    _upstream(results)
    calls: list[str] = []
    table = _faces(results, calls, fail=(PHOTOS[1],))
    assert calls == PHOTOS
    status = {r.photo_id: (r.status, r.reason) for r in table.rows}
    assert status[PHOTOS[1]] == ("failed", f"RuntimeError: broken {PHOTOS[1]}")
    assert status[PHOTOS[0]][0] == status[PHOTOS[2]][0] == "done"
    assert read_record(results, "faces", PHOTOS[1]) is None  # no record: the next stage waits for it
    assert BatchTable.read(STAGES["faces"].table_path(results, "b0000")) == table

    calls.clear()
    _faces(results, calls)  # the retry redoes the failed photo alone
    assert calls == [PHOTOS[1]]


def test_a_photo_without_its_upstream_record_waits(tmp_path):
    results = tmp_path / "results"
    _upstream(results, PHOTOS[:2])
    calls: list[str] = []
    table = _faces(results, calls)
    assert calls == PHOTOS[:2]
    assert (table.rows[2].status, table.rows[2].reason) == ("waiting", "waiting for stamp")


def test_a_full_disk_fails_the_whole_job(tmp_path):
    results = tmp_path / "results"
    _upstream(results)

    def work(photo: str, key: str) -> dict:
        raise OutputWriteError(f"cannot write {photo}: the disk is full")

    with pytest.raises(OutputWriteError):
        run_batch(results, "faces", "b0000", PHOTOS, lambda photo: {}, work,
                  STAGES["faces"].table_path(results, "b0000"))
    assert not STAGES["faces"].table_path(results, "b0000").exists()


def test_retry_marker_appears_for_a_failure_or_a_lost_file_and_settles(tmp_path):
    results = tmp_path / "results"
    _upstream(results)
    table_path = STAGES["faces"].table_path(results, "b0000")
    calls: list[str] = []
    _faces(results, calls)
    assert retry_marker(table_path, results) == []  # a finished batch: no marker, nothing to re-run

    file_path(results, "faces", PHOTOS[0]).unlink()  # deleted by hand
    [marker] = retry_marker(table_path, results)
    assert marker == table_path.with_suffix(".retry") and "is missing" in marker.read_text()
    assert marker.stat().st_mtime_ns > table_path.stat().st_mtime_ns  # newer than the output: Snakemake re-runs
    written = marker.read_bytes()
    assert retry_marker(table_path, results) == [marker] and marker.read_bytes() == written  # planned once

    _faces(results, calls)  # the re-run: the table is newer than the marker again, which stays an input
    os.utime(table_path, ns=(marker.stat().st_mtime_ns + 1,) * 2)
    assert retry_marker(table_path, results) == [marker] and marker.read_bytes() == written

    file_path(results, "faces", PHOTOS[2]).unlink()
    _faces(results, calls, fail=(PHOTOS[2],))  # redone and failed: the marker is written anew, other bytes
    os.utime(table_path, ns=(marker.stat().st_mtime_ns + 1,) * 2)
    assert retry_marker(table_path, results) == [marker] and marker.read_bytes() != written
    assert "RuntimeError: broken" in marker.read_text()


@pytest.mark.parametrize("record, problem", [
    ({**FACES, "photo": "x"}, "undeclared ['photo']"),
    ({k: v for k, v in FACES.items() if k != "skipped"}, "missing ['skipped']"),
])
def test_a_record_off_its_declared_type_fails_the_job_and_is_not_written(tmp_path, record, problem):
    results = tmp_path / "results"
    _upstream(results)
    with pytest.raises(RecordContractError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        run_batch(results, "faces", "b0000", PHOTOS, lambda photo: {}, lambda photo, key: record,
                  STAGES["faces"].table_path(results, "b0000"))
    assert read_record(results, "faces", PHOTOS[0]) is None


def test_optional_fields_may_be_left_out(tmp_path):
    results = tmp_path / "results"
    _upstream(results)
    table = run_batch(results, "faces", "b0000", PHOTOS, lambda photo: {},
                      lambda photo, key: {**FACES, "pyramid": [320]} if photo == PHOTOS[0] else FACES,
                      STAGES["faces"].table_path(results, "b0000"))
    assert [r.status for r in table.rows] == ["done"] * 3
    assert read_record(results, "faces", PHOTOS[0])["pyramid"] == [320]
