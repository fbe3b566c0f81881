"""Exact and near-duplicate groups of scans, and stable restore batches for the unique ones.

Nothing here deletes or moves a file: duplicates are only listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import imagehash

from photoarchive.ingest import IngestRecord


@dataclass
class DedupRow:
    photo_id: str
    status: str  # "unique" | "duplicate" | "failed"
    duplicate_of: str = ""  # canonical photo_id of the group
    reason: str = ""
    batch: str = ""  # restore batch of a unique photo


def hamming(a: str, b: str) -> int:
    """Bit distance between two hex perceptual hashes of the same size."""
    return imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b)


def dedup_groups(records: list[IngestRecord], max_distance: int) -> list[list[IngestRecord]]:
    """Group readable scans that are byte-identical (SHA-256) or look the same (pHash distance).

    Each group is ordered canonical first: the scan with the most pixels; ties go to the first
    path in sort order. Groups of one are included.
    """
    readable = sorted((r for r in records if r.status == "ok"), key=lambda r: r.source)
    parent = list(range(len(readable)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(readable):
        for j in range(i + 1, len(readable)):
            b = readable[j]
            if a.sha256 == b.sha256 or hamming(a.phash, b.phash) <= max_distance:
                parent[find(j)] = find(i)
    groups: dict[int, list[IngestRecord]] = {}
    for i, record in enumerate(readable):
        groups.setdefault(find(i), []).append(record)
    return [sorted(g, key=lambda r: (-r.width * r.height, r.source)) for g in groups.values()]


def dedup_table(records: list[IngestRecord], max_distance: int) -> list[DedupRow]:
    """One row per record: unique, duplicate (with the canonical and why) or failed (unreadable)."""
    rows = [DedupRow(r.photo_id, "failed", reason=r.reason) for r in records if r.status != "ok"]
    for group in dedup_groups(records, max_distance):
        canonical = group[0]
        rows.append(DedupRow(canonical.photo_id, "unique"))
        for dup in group[1:]:
            rows.append(DedupRow(dup.photo_id, "duplicate", duplicate_of=canonical.photo_id,
                                 reason=_duplicate_reason(dup, group, max_distance)))
    return sorted(rows, key=lambda r: r.photo_id)


def _duplicate_reason(dup: IngestRecord, group: list[IngestRecord], max_distance: int) -> str:
    """Why `dup` joined the group of `group[0]`, naming the member it actually matches."""
    canonical = group[0]
    if dup.sha256 == canonical.sha256:
        return f"byte-identical copy of {canonical.source}"
    distance = hamming(dup.phash, canonical.phash)
    if distance <= max_distance:
        return (f"near-duplicate of {canonical.source} (perceptual-hash distance {distance} ≤ {max_distance}; "
                "the canonical has more pixels or comes first)")
    closest = min((m for m in group if m is not dup), key=lambda m: hamming(dup.phash, m.phash))
    return (f"near-duplicate of {closest.source} (perceptual-hash distance {hamming(dup.phash, closest.phash)} "
            f"≤ {max_distance}), which is in the group of {canonical.source}, the canonical")


def assign_batches(unique_ids: list[str], previous: dict[str, str], batch_size: int) -> dict[str, str]:
    """Restore batches that stay put as the archive grows.

    Photos keep the batch they had in `previous`; new photos go into new batches only, so adding
    a scan never changes the membership (and so never re-runs) an existing batch.
    """
    kept = {pid: previous[pid] for pid in unique_ids if pid in previous}
    new = sorted(pid for pid in unique_ids if pid not in previous)
    used = [int(b[1:]) for b in set(previous.values()) if b[1:].isdigit()]
    start = max(used, default=-1) + 1
    for k in range(math.ceil(len(new) / batch_size)):
        for pid in new[k * batch_size:(k + 1) * batch_size]:
            kept[pid] = f"b{start + k:04d}"
    return kept
