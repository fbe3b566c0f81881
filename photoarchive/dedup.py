"""Exact and near-duplicate groups of scans, and stable restore batches for the unique ones.

Nothing here deletes or moves a file: duplicates are only listed.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from photoarchive.ingest import IngestRecord


@dataclass
class DedupRow:
    photo_id: str
    status: str  # "unique" | "duplicate" | "failed"
    duplicate_of: str = ""  # canonical photo_id of the group
    reason: str = ""
    batch: str = ""  # batch of a unique photo (the unit of work of every later stage)
    pixels: int = 0  # width × height of a unique photo (sizes its jobs' memory)


def hamming(a: str, b: str) -> int:
    """Bit distance between two hex perceptual hashes of the same size."""
    if len(a) != len(b):
        raise ValueError(f"perceptual hashes of different sizes: {a!r}, {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def hash_words(hashes: list[str]) -> np.ndarray:
    """Hex hashes of one size as an N×W uint64 array (W = bits / 64, rounded up), most significant word first."""
    lengths = {len(h) for h in hashes}
    if len(lengths) > 1:
        raise ValueError(f"perceptual hashes of different sizes: {sorted(lengths)} hex digits")
    digits = lengths.pop() if lengths else 16
    width = max(1, -(-digits // 16))
    words = np.zeros((len(hashes), width), dtype=np.uint64)
    for w in range(width):
        # word w holds hex digits [digits - 16 (width - w), digits - 16 (width - w - 1)) of the number
        lo, hi = max(0, digits - 16 * (width - w)), digits - 16 * (width - w - 1)
        if hi > lo:
            words[:, w] = np.array([int(h[lo:hi], 16) for h in hashes], dtype=np.uint64)
    return words


def _distances(words: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Hamming distances between rows[k] and cols[k] (uint64 words, XOR + popcount)."""
    total = np.zeros(len(rows), dtype=np.uint16)
    for w in range(words.shape[1]):
        total += np.bitwise_count(words[rows, w] ^ words[cols, w])
    return total


def _close_pairs_dense(words: np.ndarray, members: np.ndarray, max_distance: int,
                       chunk: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Every pair i < j of ``members`` (indices into ``words``) within ``max_distance``: all pairs, in blocks.

    A block of rows is compared with every later member; blocks stay small enough that the
    temporaries hold about ``chunk`` elements and that little of the lower triangle is computed.
    """
    n = len(members)
    sub = words[members]  # n×W
    rows_per_block = max(1, min(chunk // max(n, 1), -(-n // 8)))
    found_i, found_j = [np.empty(0, np.intp)], [np.empty(0, np.intp)]
    for r0 in range(0, n, rows_per_block):
        r1 = min(r0 + rows_per_block, n)
        dist = np.bitwise_count(sub[r0:r1, 0, None] ^ sub[None, r0:, 0])  # rows × later members
        if sub.shape[1] > 1:
            dist = dist.astype(np.uint16)
            for w in range(1, sub.shape[1]):
                dist += np.bitwise_count(sub[r0:r1, w, None] ^ sub[None, r0:, w])
        close = dist <= max_distance
        if close.any():
            i, j = np.nonzero(close)
            later = j > i  # column j is member r0 + j
            found_i.append(members[i[later] + r0])
            found_j.append(members[j[later] + r0])
    return np.concatenate(found_i), np.concatenate(found_j)


def _block_keys(words: np.ndarray, blocks: int) -> list[np.ndarray]:
    """Split the hash bits into ``blocks`` contiguous runs of near-equal width; one uint64 key per hash and run.

    Equal runs give equal keys. A run wider than 64 bits is folded into its key by multiplication, so
    different runs can (rarely) share a key: that only adds candidates, which are checked in full.
    """
    n_words = words.shape[1]
    bits = 64 * n_words
    edges = np.linspace(0, bits, blocks + 1).round().astype(int)
    keys = []
    for lo, hi in itertools.pairwise(edges):
        key = np.zeros(len(words), dtype=np.uint64)
        for w in range(n_words):  # bit b of the hash is bit (b % 64) of word n_words - 1 - b // 64
            w_lo, w_hi = max(lo, 64 * w), min(hi, 64 * (w + 1))
            if w_hi <= w_lo:
                continue
            mask = np.uint64(((1 << (w_hi - w_lo)) - 1) << (w_lo - 64 * w))
            key = key * np.uint64(0x9E3779B97F4A7C15) + (words[:, n_words - 1 - w] & mask)
        keys.append(key)
    return keys


def _runs(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort order of ``key``, and start and length of every run of equal keys in that order."""
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    lengths = np.diff(np.r_[starts, len(key)])
    return order, starts, lengths


def close_pairs(words: np.ndarray, max_distance: int, small_run: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j), i < j, of hashes within ``max_distance`` bits (N×W uint64 words).

    Multi-index hashing: cut the bits into ``max_distance + 1`` runs; two hashes within
    ``max_distance`` agree exactly on at least one run (pigeonhole), so only hashes sharing a run's
    value are compared, in full. When the hashes are too few, too alike or the distance too large for
    that to save work (counted exactly from the run sizes), every pair is compared instead. Pairs
    can repeat.
    """
    n = len(words)
    if n < 2 or max_distance < 0:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    all_pairs = n * (n - 1) // 2
    blocks = max_distance + 1
    if blocks > 64 * words.shape[1] // 2:  # runs of one bit or less: nothing to gain
        return _close_pairs_dense(words, np.arange(n), max_distance)
    runs = [_runs(key) for key in _block_keys(words, blocks)]
    candidates = sum(int((lengths * (lengths - 1) // 2).sum()) for _, _, lengths in runs)
    if candidates * 4 > all_pairs:  # a candidate costs several dense comparisons (gathers); rough factor
        return _close_pairs_dense(words, np.arange(n), max_distance)
    found_i, found_j = [np.empty(0, np.intp)], [np.empty(0, np.intp)]
    for order, starts, lengths in runs:
        # Short runs, all at once: compare each sorted position with the one `lag` places later.
        run_of = np.repeat(np.arange(len(starts)), lengths)
        short = np.repeat(lengths <= small_run, lengths)
        for lag in range(1, min(small_run, int(lengths.max()))):
            same = (run_of[:-lag] == run_of[lag:]) & short[:-lag]
            i, j = order[:-lag][same], order[lag:][same]
            close = _distances(words, i, j) <= max_distance
            found_i.append(i[close])
            found_j.append(j[close])
        # Long runs one by one, every pair inside.
        for start, length in zip(starts[lengths > small_run], lengths[lengths > small_run], strict=True):
            i, j = _close_pairs_dense(words, order[start:start + length], max_distance)
            found_i.append(i)
            found_j.append(j)
    i, j = np.concatenate(found_i), np.concatenate(found_j)
    return np.minimum(i, j), np.maximum(i, j)


@dataclass
class _Grouping:
    readable: list[IngestRecord]  # readable records, sorted by path
    words: np.ndarray  # their hashes, N×W uint64
    groups: list[list[int]]  # indices into readable, canonical first; groups in order of first path
    neighbours: list[np.ndarray]  # per record: the records within max_distance (pHash)


def _grouping(records: list[IngestRecord], max_distance: int) -> _Grouping:
    """Connected components of "same SHA-256 or pHash within max_distance", canonical first."""
    readable = sorted((r for r in records if r.status == "ok"), key=lambda r: r.source)
    n = len(readable)
    words = hash_words([r.phash for r in readable])
    i, j = close_pairs(words, max_distance)
    _, sha_id = np.unique(np.array([r.sha256 for r in readable], dtype=object), return_inverse=True)
    first_of_sha = np.full(n, n, dtype=np.intp)
    np.minimum.at(first_of_sha, sha_id, np.arange(n))
    rows = np.concatenate([i, first_of_sha[sha_id]])
    cols = np.concatenate([j, np.arange(n)])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels.tolist()):
        by_label.setdefault(label, []).append(index)
    groups = [sorted(g, key=lambda k: (-readable[k].width * readable[k].height, readable[k].source))
              for g in by_label.values()]
    ends, others = np.concatenate([i, j]), np.concatenate([j, i])
    order = np.argsort(ends, kind="stable")
    neighbours = np.split(others[order], np.searchsorted(ends[order], np.arange(1, n)))
    return _Grouping(readable, words, groups, neighbours)


def dedup_groups(records: list[IngestRecord], max_distance: int) -> list[list[IngestRecord]]:
    """Group readable scans that are byte-identical (SHA-256) or look the same (pHash distance).

    Two scans are in one group when a chain of such matches links them: a–b and b–c put a and c
    together even when a and c are further apart than ``max_distance``. Each group is ordered
    canonical first: the scan with the most pixels; ties go to the first path in sort order.
    Groups of one are included, in the order of their first path.
    """
    grouping = _grouping(records, max_distance)
    return [[grouping.readable[k] for k in g] for g in grouping.groups]


def dedup_table(records: list[IngestRecord], max_distance: int) -> list[DedupRow]:
    """One row per record: unique, duplicate (with the canonical and why) or failed (unreadable)."""
    rows = [DedupRow(r.photo_id, "failed", reason=r.reason) for r in records if r.status != "ok"]
    grouping = _grouping(records, max_distance)
    for members in grouping.groups:
        canonical = grouping.readable[members[0]]
        rows.append(DedupRow(canonical.photo_id, "unique"))
        if len(members) == 1:
            continue
        to_canonical = np.bitwise_count(grouping.words[members] ^ grouping.words[members[0]]).sum(axis=1)
        position = {k: p for p, k in enumerate(members)}
        for p in range(1, len(members)):
            dup = grouping.readable[members[p]]
            rows.append(DedupRow(dup.photo_id, "duplicate", duplicate_of=canonical.photo_id,
                                 reason=_duplicate_reason(grouping, members, position, p, int(to_canonical[p]),
                                                          max_distance)))
    return sorted(rows, key=lambda r: r.photo_id)


def _duplicate_reason(grouping: _Grouping, members: list[int], position: dict[int, int], p: int,
                      to_canonical: int, max_distance: int) -> str:
    """Why member ``p`` joined the group of member 0 (the canonical), naming the member it actually matches."""
    dup, canonical = grouping.readable[members[p]], grouping.readable[members[0]]
    if dup.sha256 == canonical.sha256:
        return f"byte-identical copy of {canonical.source}"
    if to_canonical <= max_distance:
        return (f"near-duplicate of {canonical.source} (perceptual-hash distance {to_canonical} ≤ {max_distance}; "
                "the canonical has more pixels or comes first)")
    # The closest other member (first in group order on ties): among its pHash neighbours if it has
    # any, else (joined through a byte-identical copy only) among the whole group.
    near = grouping.neighbours[members[p]]
    if len(near):
        candidates = np.unique(near)
        distances = np.bitwise_count(grouping.words[candidates] ^ grouping.words[members[p]]).sum(axis=1)
        distance, closest = min(zip(distances.tolist(), (position[k] for k in candidates.tolist()), strict=True))
    else:
        distances = np.bitwise_count(grouping.words[members] ^ grouping.words[members[p]]).sum(axis=1)
        distances[p] = np.iinfo(distances.dtype).max  # not itself
        closest = int(np.argmin(distances))  # first of the closest, in group order
        distance = int(distances[closest])
    return (f"near-duplicate of {grouping.readable[members[closest]].source} (perceptual-hash distance {distance} "
            f"≤ {max_distance}), which is in the group of {canonical.source}, the canonical")


def assign_batches(unique_ids: list[str], batch_size: int, max_batches: int | None = None) -> dict[str, str]:
    """Batches of `batch_size` to twice as many photos, from each photo id's hash alone (no state to keep).

    There are 2^k batches, k the largest with 2^k × batch_size ≤ the number of photos (one batch for fewer
    than twice `batch_size`) and, when `max_batches` is given, 2^k ≤ max_batches (then, above
    max_batches × batch_size photos, the batches hold more than twice `batch_size`); a photo's batch is its
    hash modulo 2^k. A new photo joins an existing batch (whose other photos are then skipped as done); the
    batches split in two only when the archive doubles, and never once there are max_batches.
    """
    if not unique_ids:
        return {}
    k = max(0, math.floor(math.log2(len(unique_ids) / batch_size)))
    if max_batches is not None:
        k = min(k, max(0, math.floor(math.log2(max_batches))))
    count = 1 << k
    return {pid: f"b{int(hashlib.sha256(pid.encode('utf-8')).hexdigest()[:12], 16) % count:04d}"
            for pid in unique_ids}
