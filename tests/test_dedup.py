"""Tests for photoarchive.dedup: exact and near-duplicate groups, and stable restore batches."""

import shutil

import cv2
import numpy as np
import pytest

from photoarchive.dedup import assign_batches, close_pairs, dedup_groups, dedup_table, hamming, hash_words
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
# Grouping at scale: multi-index hashing / blocked popcount against a brute-force reference


def planted_hashes(n: int, bits: int, max_distance: int, seed: int) -> list[int]:
    """Random hashes with planted near copies (within and just beyond max_distance) and chains a–b–c."""
    rng = np.random.default_rng(seed)
    hashes = [int.from_bytes(rng.bytes(bits // 8), "big") for _ in range(n)]

    def flip(h: int, count: int) -> int:
        for bit in rng.choice(bits, size=count, replace=False):
            h ^= 1 << int(bit)
        return h

    link = max(max_distance, 0)
    for _ in range(n // 10):  # near copies, some just too far
        a, b = rng.integers(n, size=2)
        hashes[b] = flip(hashes[a], int(rng.integers(0, link + 3)))
    for _ in range(n // 50):  # chains: each link within max_distance, the ends usually further apart
        a, b, c = rng.integers(n, size=3)
        hashes[b] = flip(hashes[a], link)
        hashes[c] = flip(hashes[b], link)
    return hashes


def reference_groups(records: list[IngestRecord], max_distance: int) -> list[list[str]]:
    """Every pair compared (Python ints), joined transitively; groups as sorted source lists."""
    readable = [r for r in records if r.status == "ok"]
    parent = list(range(len(readable)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    values = [int(r.phash, 16) for r in readable]
    for i in range(len(readable)):
        for j in range(i + 1, len(readable)):
            if readable[i].sha256 == readable[j].sha256 or (values[i] ^ values[j]).bit_count() <= max_distance:
                parent[find(j)] = find(i)
    groups: dict[int, list[str]] = {}
    for i, r in enumerate(readable):
        groups.setdefault(find(i), []).append(r.source)
    return sorted(sorted(g) for g in groups.values())


def planted_records(n: int, bits: int, max_distance: int, seed: int) -> list[IngestRecord]:
    rng = np.random.default_rng(seed + 1)
    hashes = planted_hashes(n, bits, max_distance, seed)
    return [record(f"s{k:05d}.jpg", format(h, f"0{bits // 4}x"), sha=f"sha{rng.integers(n * 4)}",
                   width=int(rng.integers(1, 4))) for k, h in enumerate(hashes)]


@pytest.mark.parametrize(("n", "bits", "max_distance"),
                         [(1500, 64, 8), (1500, 64, 3), (1500, 64, 0), (400, 64, 20), (400, 256, 12), (300, 64, -1)])
def test_groups_equal_brute_force(n, bits, max_distance):
    records = planted_records(n, bits, max_distance, seed=n + bits + max_distance)
    groups = dedup_groups(records, max_distance)
    assert sorted(sorted(r.source for r in g) for g in groups) == reference_groups(records, max_distance)
    assert sum(len(g) > 1 for g in groups) > n // 20  # the planted copies were found, not only singletons
    firsts = [min(r.source for r in g) for g in groups]
    assert firsts == sorted(firsts)  # groups in order of their first path, as before


@pytest.mark.parametrize("small_run", [2, 32])
@pytest.mark.parametrize("max_distance", [0, 5, 8, 40])
def test_close_pairs_finds_every_close_pair(small_run, max_distance):
    # clumped hashes: few prototypes, so hash blocks repeat often (long runs) and many pairs are close
    rng = np.random.default_rng(max_distance)
    prototypes = rng.integers(0, 2**63, size=8, dtype=np.uint64)
    noise = np.zeros(600, dtype=np.uint64)
    for _ in range(6):
        noise |= np.uint64(1) << rng.integers(0, 64, size=600).astype(np.uint64)
    words = (prototypes[rng.integers(0, 8, size=600)] ^ noise)[:, None]
    words[550:] = words[:50]  # exact copies too
    i, j = close_pairs(words, max_distance, small_run=small_run)
    assert np.all(i < j)
    distance = np.bitwise_count(words[:, 0, None] ^ words[None, :, 0])
    expected = {(a, b) for a, b in zip(*np.nonzero(distance <= max_distance), strict=True) if a < b}
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected
    assert expected


def test_chains_are_joined_transitively():
    """a–b and b–c within the distance put a, b, c in one group even though a–c is further apart."""
    a = record("a.jpg", "0000000000000000", width=30)
    b = record("b.jpg", "00000000000000ff", width=20)  # 8 from a
    c = record("c.jpg", "000000000000ffff", width=10)  # 8 from b, 16 from a
    d = record("d.jpg", "00000000ffff0000")  # 16 from a, 24 from c: alone
    assert hamming(a.phash, c.phash) == 16
    assert [[r.source for r in g] for g in dedup_groups([c, d, b, a], 8)] == [["a.jpg", "b.jpg", "c.jpg"], ["d.jpg"]]
    rows = {r.photo_id: r for r in dedup_table([a, b, c, d], 8)}
    assert rows[c.photo_id].duplicate_of == a.photo_id
    assert rows[c.photo_id].reason == ("near-duplicate of b.jpg (perceptual-hash distance 8 ≤ 8), "
                                       "which is in the group of a.jpg, the canonical")
    assert [len(g) for g in dedup_groups([a, b, c, d], 7)] == [1, 1, 1, 1]


def test_hash_words_and_sizes():
    words = hash_words(["0123456789abcdef", "FFFFFFFFFFFFFFFF"])
    assert words.dtype == np.uint64 and words[:, 0].tolist() == [0x0123456789ABCDEF, 2**64 - 1]
    wide = "f" * 16 + "0" * 47 + "1"  # 256 bits: most significant word first
    assert hash_words([wide])[0].tolist() == [2**64 - 1, 0, 0, 1]
    assert hamming(wide, "0" * 64) == 65
    with pytest.raises(ValueError, match="different sizes"):
        hash_words(["0" * 16, "0" * 64])
    with pytest.raises(ValueError, match="different sizes"):
        hamming("0" * 16, "0" * 64)


# --------------------------------------------------------------------------------------------------
# assign_batches


def test_assign_batches_sizes_and_names():
    ids = [f"photo-{i:08x}" for i in range(100)]
    batches = assign_batches(ids, batch_size=8)
    assert set(batches) == set(ids)
    names = sorted(set(batches.values()))
    assert len(names) == 8 and all(n.startswith("b") and len(n) == 5 for n in names)  # 8 × 8 ≤ 100 < 16 × 8
    sizes = [list(batches.values()).count(n) for n in names]
    assert sum(sizes) == 100 and min(sizes) >= 4 and max(sizes) <= 24  # about 12 each: hash buckets
    assert assign_batches([], 8) == {} and set(assign_batches(ids[:15], 8).values()) == {"b0000"}


def test_assign_batches_is_stable_as_the_archive_grows():
    """A new photo joins an existing batch; the others stay where they were until the archive doubles."""
    ids = [f"photo-{i:08x}" for i in range(100)]
    before = assign_batches(ids, batch_size=8)
    after = assign_batches(ids + ["new-00000000"], batch_size=8)
    assert {pid: after[pid] for pid in ids} == before
    assert after["new-00000000"] in set(before.values())
    # from 128 photos on there are 16 batches: each old batch splits in two (b0003 into b0003 and b0011)
    grown = assign_batches(ids + [f"more-{i:08x}" for i in range(40)], batch_size=8)
    assert len(set(grown.values())) == 16
    assert all(int(grown[pid][1:]) % 8 == int(before[pid][1:]) for pid in ids)


def test_assign_batches_depends_on_the_ids_alone():
    ids = ["x", "y", "z", "w", "v"]
    assert assign_batches(ids, batch_size=2) == assign_batches(list(reversed(ids)), batch_size=2)


def test_assign_batches_caps_the_batch_count_at_max_batches():
    """scheduling.max_batches: above max_batches × batch_size photos the batches grow instead of splitting."""
    ids = [f"photo-{i:08x}" for i in range(1000)]
    assert len(set(assign_batches(ids, batch_size=8).values())) == 64  # 64 × 8 ≤ 1000 < 128 × 8
    capped = assign_batches(ids, batch_size=8, max_batches=16)
    assert len(set(capped.values())) == 16
    sizes = [list(capped.values()).count(n) for n in set(capped.values())]
    assert sum(sizes) == 1000 and min(sizes) > 16  # about 62 each, more than twice batch_size
    # not a power of two: rounded down (16); a cap above the count changes nothing; max_batches 1: one batch
    assert assign_batches(ids, batch_size=8, max_batches=31) == capped
    assert assign_batches(ids, batch_size=8, max_batches=64) == assign_batches(ids, batch_size=8)
    assert set(assign_batches(ids, batch_size=8, max_batches=1).values()) == {"b0000"}
    # the same hash buckets: a capped photo's batch is its uncapped batch modulo the cap
    uncapped = assign_batches(ids, batch_size=8)
    assert all(int(capped[pid][1:]) == int(uncapped[pid][1:]) % 16 for pid in ids)


def test_assign_batches_is_stable_once_capped():
    ids = [f"photo-{i:08x}" for i in range(1000)]
    before = assign_batches(ids, batch_size=8, max_batches=16)
    after = assign_batches(ids + [f"more-{i:08x}" for i in range(3000)], batch_size=8, max_batches=16)
    assert {pid: after[pid] for pid in ids} == before and len(set(after.values())) == 16

