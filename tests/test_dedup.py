"""Tests for photoarchive.dedup: exact and near-duplicate groups, and stable restore batches."""

import shutil

import cv2
import numpy as np
import pytest

from photoarchive.dedup import assign_batches, dedup_groups, dedup_table, hamming
from photoarchive.imageio import write_image
from photoarchive.ingest import IngestRecord, Source, inspect_file, photo_id

MAX_DISTANCE = 8


def texture(seed: int, size: int = 128) -> np.ndarray:
    """A smooth colour field with a little grain: structured enough for a perceptual hash."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.random((8, 8, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    img += 0.05 * rng.standard_normal((size, size, 3)).astype(np.float32)
    return np.clip(img, 0, 1)


def inspect(folder, name: str) -> IngestRecord:
    return inspect_file(Source(photo_id(name), name), folder / name, max_pixels=10**8, max_file_mb=100.0)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Records of a small archive: an original, its byte copy, a resized JPEG copy, an unrelated scan."""
    folder = tmp_path_factory.mktemp("scans")
    original = texture(0)
    write_image(folder / "b_original.png", original)
    shutil.copy(folder / "b_original.png", folder / "c_copy.png")
    small = cv2.resize(original, (80, 80), interpolation=cv2.INTER_AREA)
    write_image(folder / "a_small.jpg", small, jpeg_quality=70)  # sorts first, but has fewer pixels
    write_image(folder / "d_other.png", texture(1))
    (folder / "e_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return {r.source: r for r in (inspect(folder, n) for n in
                                  ("a_small.jpg", "b_original.png", "c_copy.png", "d_other.png", "e_broken.jpg"))}


def record(source: str, phash: str, sha: str = "", width: int = 10, height: int = 10) -> IngestRecord:
    return IngestRecord(photo_id(source), source, "ok", sha256=sha or f"sha-{source}", width=width,
                        height=height, phash=phash)


def test_hamming():
    assert hamming("0000000000000000", "0000000000000000") == 0
    assert hamming("0000000000000000", "00000000000000ff") == 8
    assert hamming("ffffffffffffffff", "0000000000000000") == 64


def test_generated_images_behave(archive):
    assert archive["e_broken.jpg"].status == "failed"
    assert hamming(archive["a_small.jpg"].phash, archive["b_original.png"].phash) <= MAX_DISTANCE
    assert hamming(archive["d_other.png"].phash, archive["b_original.png"].phash) > 2 * MAX_DISTANCE


def test_dedup_table(archive):
    rows = {r.photo_id: r for r in dedup_table(list(archive.values()), MAX_DISTANCE)}
    pid = {name: r.photo_id for name, r in archive.items()}
    assert len(rows) == 5  # one row per record, failed ones included
    canonical = rows[pid["b_original.png"]]
    assert canonical.status == "unique" and canonical.duplicate_of == ""

    copy = rows[pid["c_copy.png"]]
    assert copy.status == "duplicate" and copy.duplicate_of == pid["b_original.png"]
    assert copy.reason == "byte-identical copy of b_original.png"

    near = rows[pid["a_small.jpg"]]
    assert near.status == "duplicate" and near.duplicate_of == pid["b_original.png"]
    assert near.reason.startswith("near-duplicate of b_original.png") and "perceptual-hash distance" in near.reason

    assert rows[pid["d_other.png"]].status == "unique"  # unrelated image is not grouped
    broken = rows[pid["e_broken.jpg"]]
    assert broken.status == "failed" and broken.reason == archive["e_broken.jpg"].reason and broken.reason
    assert [r.photo_id for r in dedup_table(list(archive.values()), MAX_DISTANCE)] == sorted(rows)


def test_near_duplicates_need_distance(archive):
    """With max_distance -1 only byte-identical copies are grouped."""
    rows = {r.photo_id: r for r in dedup_table(list(archive.values()), -1)}
    assert rows[archive["a_small.jpg"].photo_id].status == "unique"
    assert rows[archive["c_copy.png"].photo_id].status == "duplicate"


def test_failed_records_stay_failed_even_with_equal_hash():
    good = record("a.jpg", "0" * 16, sha="same")
    bad = IngestRecord(photo_id("b.jpg"), "b.jpg", "failed", reason="damaged or truncated image", sha256="same")
    rows = {r.photo_id: r for r in dedup_table([good, bad], MAX_DISTANCE)}
    assert rows[bad.photo_id].status == "failed" and rows[bad.photo_id].reason == "damaged or truncated image"
    assert rows[good.photo_id].status == "unique"
    assert all(bad not in g for g in dedup_groups([good, bad], MAX_DISTANCE))


def test_distance_threshold_is_inclusive():
    a = record("a.jpg", "0000000000000000", width=20)
    b = record("b.jpg", "00000000000000ff")  # 8 bits away
    assert len(dedup_groups([a, b], 8)) == 1
    assert len(dedup_groups([a, b], 7)) == 2


def test_canonical_has_most_pixels_then_first_path():
    small_first = record("a.jpg", "0" * 16, width=10, height=10)
    big_last = record("z.jpg", "0" * 16, width=20, height=10)
    assert [r.source for r in dedup_groups([small_first, big_last], 0)[0]] == ["z.jpg", "a.jpg"]
    tie_b = record("b.jpg", "0" * 16, sha="x")
    tie_a = record("a.jpg", "0" * 16, sha="x")
    # input order does not matter: ties go to the first path in sort order
    assert [r.source for r in dedup_groups([tie_b, tie_a], 0)[0]] == ["a.jpg", "b.jpg"]
    rows = {r.photo_id: r for r in dedup_table([tie_b, tie_a], 0)}
    assert rows[tie_b.photo_id].duplicate_of == tie_a.photo_id


def test_groups_of_one_are_included():
    records = [record("a.jpg", "0000000000000000"), record("b.jpg", "ffffffffffffffff")]
    assert sorted(len(g) for g in dedup_groups(records, MAX_DISTANCE)) == [1, 1]


def test_near_duplicate_reason_never_contradicts_itself():
    a = record("a.jpg", "0000000000000000", width=30)  # canonical: most pixels
    b = record("b.jpg", "00000000000000ff", width=20)  # 8 from a
    c = record("c.jpg", "000000000000ffff", width=10)  # 8 from b, 16 from a
    rows = {r.photo_id: r for r in dedup_table([a, b, c], 8)}
    reason = rows[c.photo_id].reason
    assert rows[c.photo_id].status == "duplicate"
    assert "16 ≤ 8" not in reason


# --------------------------------------------------------------------------------------------------
# assign_batches


def test_assign_batches_fresh():
    ids = [f"p{i}" for i in range(5)]
    batches = assign_batches(ids, {}, batch_size=2)
    assert batches == {"p0": "b0000", "p1": "b0000", "p2": "b0001", "p3": "b0001", "p4": "b0002"}


def test_assign_batches_keeps_previous_and_opens_new_batches():
    previous = {"a": "b0000", "b": "b0000", "c": "b0001", "gone": "b0001"}
    unique = ["f", "a", "e", "b", "c", "d", "g"]
    batches = assign_batches(unique, previous, batch_size=2)
    assert set(batches) == set(unique)  # photos no longer unique are dropped
    for pid in ("a", "b", "c"):
        assert batches[pid] == previous[pid]
    new = {pid: batches[pid] for pid in ("d", "e", "f", "g")}
    # b0001 has room, but filling it would change an existing batch (and re-run it)
    assert set(new.values()) == {"b0002", "b0003"}
    assert [b for _, b in sorted(new.items())] == ["b0002", "b0002", "b0003", "b0003"]
    sizes = {b: list(batches.values()).count(b) for b in set(batches.values())}
    assert max(sizes.values()) <= 2


def test_assign_batches_is_idempotent():
    first = assign_batches(["x", "y", "z"], {}, batch_size=2)
    assert assign_batches(["x", "y", "z"], first, batch_size=2) == first
    grown = assign_batches(["x", "y", "z", "w"], first, batch_size=2)
    assert {k: grown[k] for k in first} == first and grown["w"] not in first.values()
