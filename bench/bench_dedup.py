"""Benchmark duplicate grouping (photoarchive.dedup) on synthetic perceptual hashes: time, peak memory, equality.

Synthetic archives of N records with 64-bit (or 256-bit) hashes:
  uniform   random hashes, plus planted near copies (0 … max_distance+2 bits away, so some just miss),
            chains a–b–c (each link max_distance bits, the ends usually further apart) and byte copies
  clumped   every hash is one of 50 prototypes with 12 random bits flipped: many similar scans, so the
            multi-index buckets are large (the hard case for it)

Methods, each (size, data, method) in a fresh subprocess so that its peak RSS is its own:
  new       photoarchive.dedup.dedup_table as it is now (multi-index hashing, dense fallback)
  dense     the same, forced to compare every pair (blocked XOR + popcount)
  old       dedup_table of commit 82698d2 (pairwise, hex parsed per pair), read with `git show`;
            about 90 µs a pair, so only run where --old-max allows (default 1,000: ~45 s)

The table has the wall time of `dedup_table` (records already in memory), the peak RSS during it
minus the RSS before, and a digest of the output table: equal digests = byte-identical tables
(same groups, canonicals and reasons). The load average is printed: the machine is shared.

    .venv/bin/python bench/bench_dedup.py                      # 1k/10k/100k, both data sets
    .venv/bin/python bench/bench_dedup.py --sizes 100000 --methods new --data uniform
    .venv/bin/python bench/bench_dedup.py --dense-max 100000   # the dense comparison at 100k too (~1 min)

Writes bench/out/bench_dedup.csv (bench/out is git-ignored).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
import types
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_CSV = REPO / "bench" / "out" / "bench_dedup.csv"
OLD_COMMIT = "82698d2"
FIELDS = ["n", "data", "bits", "max_distance", "method", "seconds", "peak_rss_delta_mib", "groups", "duplicates",
          "table_digest", "same_as_new", "load1_before", "load1_after"]


def synthetic_records(n: int, data: str, bits: int, max_distance: int, seed: int = 0) -> list:
    """IngestRecords with synthetic hashes, SHA-256 stand-ins (about 1 % byte copies) and sizes."""
    import numpy as np

    from photoarchive.ingest import IngestRecord

    rng = np.random.default_rng(seed)
    n_words = bits // 64
    if data == "uniform":
        words = rng.integers(0, 2**63, size=(n, n_words), dtype=np.uint64) * np.uint64(2) + rng.integers(
            0, 2, size=(n, n_words), dtype=np.uint64)
    else:
        prototypes = rng.integers(0, 2**63, size=(50, n_words), dtype=np.uint64)
        words = prototypes[rng.integers(0, 50, size=n)]
        for _ in range(12):
            bit = rng.integers(0, bits, size=n)
            words[np.arange(n), bit // 64] ^= np.uint64(1) << (bit % 64).astype(np.uint64)
    hashes = [int("".join(f"{w:016x}" for w in row), 16) for row in words.tolist()]

    def flip(h: int, count: int) -> int:
        for b in rng.choice(bits, size=count, replace=False):
            h ^= 1 << int(b)
        return h

    for _ in range(n // 20):
        a, b = rng.integers(n, size=2)
        hashes[b] = flip(hashes[a], int(rng.integers(0, max_distance + 3)))
    for _ in range(n // 100):
        a, b, c = rng.integers(n, size=3)
        hashes[b] = flip(hashes[a], max_distance)
        hashes[c] = flip(hashes[b], max_distance)
    sha = [f"{k:064x}" for k in range(n)]
    for _ in range(n // 100):
        a, b = rng.integers(n, size=2)
        sha[b] = sha[a]
    sides = rng.integers(500, 4000, size=(n, 2)).tolist()
    return [IngestRecord(f"p{k:06d}", f"scans/{rng.integers(100):02d}/s{k:06d}.jpg", "ok", sha256=sha[k],
                         width=w, height=h, phash=format(v, f"0{bits // 4}x"))
            for k, (v, (w, h)) in enumerate(zip(hashes, sides, strict=True))]


def _old_module() -> types.ModuleType:
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{OLD_COMMIT}:photoarchive/dedup.py"],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("dedup_old")
    sys.modules["dedup_old"] = module  # dataclasses look their module up there
    exec(compile(source, "dedup_old.py", "exec"), module.__dict__)  # noqa: S102 (our own history)
    return module


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(n: int, data: str, bits: int, max_distance: int, method: str) -> dict:
    import numpy as np

    from photoarchive import dedup

    records = synthetic_records(n, data, bits, max_distance)
    if method == "old":
        table = _old_module().dedup_table
    else:
        if method == "dense":
            dedup.close_pairs = lambda words, d: dedup._close_pairs_dense(words, np.arange(len(words)), d)
        table = dedup.dedup_table
    rss_before = _max_rss_mib()
    start = time.perf_counter()
    rows = table(records, max_distance)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256(json.dumps([asdict(r) for r in rows]).encode()).hexdigest()[:16]
    return {"seconds": seconds, "peak_rss_delta_mib": _max_rss_mib() - rss_before,
            "groups": sum(r.status == "unique" for r in rows), "duplicates": sum(r.status == "duplicate" for r in rows),
            "table_digest": digest}


def run_one(n: int, data: str, bits: int, max_distance: int, method: str) -> dict:
    load_before = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--child", str(n), data, str(bits), str(max_distance), method],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {n}/{data}/{method} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"n": n, "data": data, "bits": bits, "max_distance": max_distance, "method": method, **result,
            "load1_before": load_before, "load1_after": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--data", nargs="+", default=["uniform", "clumped"], choices=["uniform", "clumped"])
    parser.add_argument("--methods", nargs="+", default=["new", "dense", "old"], choices=["new", "dense", "old"])
    parser.add_argument("--bits", type=int, default=64, choices=[64, 256])
    parser.add_argument("--max-distance", type=int, default=8)
    parser.add_argument("--old-max", type=int, default=1000, help="largest size the old method runs on")
    parser.add_argument("--dense-max", type=int, default=10_000, help="largest size the dense method runs on")
    parser.add_argument("--out", type=Path, default=OUT_CSV)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        n, data, bits, max_distance, method = args.child
        print(json.dumps(child(int(n), data, int(bits), int(max_distance), method)))
        return 0

    limits = {"new": float("inf"), "dense": args.dense_max, "old": args.old_max}
    print(f"start: load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; "
          f"{args.bits}-bit hashes, max_distance {args.max_distance}")
    rows = []
    for n in args.sizes:
        for data in args.data:
            for method in args.methods:
                if n > limits[method]:
                    continue
                rows.append(run_one(n, data, args.bits, args.max_distance, method))
                print(f"  done {n} {data} {method}: {rows[-1]['seconds']:.2f} s", flush=True)
    new = {(r["n"], r["data"]): r["table_digest"] for r in rows if r["method"] == "new"}
    for r in rows:
        r["same_as_new"] = "" if (r["n"], r["data"]) not in new else r["table_digest"] == new[(r["n"], r["data"])]
    print(f"end: load average {os.getloadavg()[0]:.2f}\n")
    header = (f"{'n':>7} {'data':<8} {'method':<6} {'seconds':>9} {'peak +RSS MiB':>13} {'groups':>7} "
              f"{'dups':>6} {'same table as new':>17} {'load1 before/after':>18}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['n']:>7} {r['data']:<8} {r['method']:<6} {r['seconds']:>9.2f} {r['peak_rss_delta_mib']:>13.0f} "
              f"{r['groups']:>7} {r['duplicates']:>6} {str(r['same_as_new']):>17} "
              f"{r['load1_before']:>8.2f} / {r['load1_after']:<7.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
