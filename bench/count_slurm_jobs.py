"""Count the SLURM submissions of a whole run, from dry runs, for archives of any size.

A dry run only sees the DAG up to a checkpoint that still has to run (dedup, then triage), so each
count is made in two dry runs (the procedure of tests/cluster/count_submissions.py):
  1. dry-run on the fresh archive: every job up to and including dedup;
  2. give ingest, dedup and triage placeholder outputs (for the empty stand-in files: every photo
     unique, batched the way the dedup job batches them; for the demo: a real local run up to dedup),
     every unique photo "processed", then dry-run again: every job after dedup.
The processed/review split and the duplicates only change file names or drop photos, not the shape
of the DAG, so an all-unique archive is the worst case for its size.

Counted with the SLURM profile (its groups and its workflow-config.yaml, restore batches of 32), and
as plain jobs with config.yaml alone (restore batches of 8; one submission per job on a cluster
without groups).

    .venv/bin/python bench/count_slurm_jobs.py                 # the demo archive and 1,000 files
    .venv/bin/python bench/count_slurm_jobs.py --sizes 10000 --no-demo   # ~30 min: Snakemake's group check
    .venv/bin/python bench/count_slurm_jobs.py --sizes 1000 --no-demo

Prints a table and writes bench/out/slurm_jobs.csv (bench/out is git-ignored). Empty files stand in
for scans: the dry runs never read them.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from photoarchive.dedup import assign_batches
from photoarchive.ingest import discover_sources

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
PROFILE = REPO / "profiles" / "slurm"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def _counter():
    path = REPO / "tests" / "cluster" / "count_submissions.py"
    spec = importlib.util.spec_from_file_location("count_submissions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.count


count_submissions = _counter()


def fake_archive(root: Path, n: int) -> Path:
    """n empty scan files, 100 to a folder, two hours old (older than the placeholders)."""
    old = time.time() - 7200
    for i in range(n):
        write(root / f"box{i // 100:03d}" / f"scan_{i:05d}.jpg", "", old)
    return root


def dry_run(workdir: Path, input_dir: Path, profile: bool) -> str:
    args = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--dry-run",
            "--configfile", str(REPO / "config.yaml")]
    if profile:
        args += [str(PROFILE / "workflow-config.yaml"), "--profile", str(PROFILE)]
    else:
        args += ["--cores", "2"]
    # the placeholders carry no provenance: modification times alone say what is done
    args += ["--rerun-triggers", "mtime", "--config", f"input_dir={input_dir}"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"dry run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout + out.stderr


def batch_size(profile: bool) -> int:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if profile:
        config["scheduling"].update(yaml.safe_load((PROFILE / "workflow-config.yaml").read_text())["scheduling"])
    return config["scheduling"]["batch_size"]


def write(path: Path, text: str, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def run_to_dedup(workdir: Path, input_dir: Path, profile: bool) -> list[str]:
    """Real scans: run the workflow locally up to dedup; the unique photos."""
    args = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2",
            "--configfile", str(REPO / "config.yaml")]
    if profile:
        args.append(str(PROFILE / "workflow-config.yaml"))
    args += ["--config", f"input_dir={input_dir}", "--", "ingest_only"]  # dedup and the ingest chunk lists
    subprocess.run(args, capture_output=True, text=True, cwd=REPO, check=True)
    with (workdir / "results" / "dedup" / "dedup.tsv").open() as fh:
        return [r["photo_id"] for r in csv.DictReader(fh, delimiter="\t") if r["status"] == "unique"]


def pass_checkpoints(workdir: Path, input_dir: Path, profile: bool, real: bool) -> int:
    """Outputs up to the triage checkpoint, each newer than what it is made from: placeholders for
    empty stand-in files, a real run up to dedup for real scans. Returns the number of unique photos."""
    stamp = time.time() - 3600
    results = workdir / "results"
    if real:
        ids = run_to_dedup(workdir, input_dir, profile)
    else:
        ids = place_dedup(results, sorted(s.photo_id for s in discover_sources(input_dir)), profile, stamp)
    write(results / "qa" / "triage.tsv", "photo_id\tstatus\n" + "".join(f"{pid}\tprocessed\n" for pid in ids),
          time.time())
    return len(ids)


def place_dedup(results: Path, ids: list[str], profile: bool, stamp: float) -> list[str]:
    """Placeholder ingest records, chunk lists and dedup table: every photo unique."""
    for pid in ids:
        write(results / "ingest" / f"{pid}.json", json.dumps({"width": 1000, "height": 1000}), stamp + 1)
    chunk = yaml.safe_load((REPO / "config.yaml").read_text())["scheduling"]["ingest_chunk_size"]
    for k in range(-(-len(ids) // chunk)):
        write(results / "ingest" / "chunks" / f"c{k:04d}.txt", "", stamp + 2)
    batches = assign_batches(ids, {}, batch_size(profile))
    rows = "".join(f"{pid}\tunique\t\t\t{batches[pid]}\n" for pid in ids)
    write(results / "dedup" / "dedup.tsv", "photo_id\tstatus\tduplicate_of\treason\tbatch\n" + rows, stamp + 3)
    write(results / "dedup" / "batches.json", json.dumps(batches), stamp + 3)
    return ids


def up_to_dedup(kind: str) -> bool:
    """Submissions the first dry run sees in full: the jobs up to and including dedup."""
    return kind.split()[-1] in {"copy_source", "unpack_archive", "ingest", "ingest_chunk", "intake", "dedup"}


def count_run(input_dir: Path, profile: bool, real: bool) -> tuple[Counter, int]:
    """(submissions by kind, unique photos) for a whole run over input_dir."""
    with tempfile.TemporaryDirectory(prefix="photoarchive-count-") as tmp:
        workdir = Path(tmp)
        before = count_submissions(dry_run(workdir, input_dir, profile))
        n = pass_checkpoints(workdir, input_dir, profile, real)
        after = count_submissions(dry_run(workdir, input_dir, profile))
    if any(up_to_dedup(kind) for kind in after):
        raise RuntimeError(f"the placeholders did not pass the dedup checkpoint: {dict(after)}")
    return Counter({k: v for k, v in before.items() if up_to_dedup(k)}) + after, n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000],
                        help="synthetic archive sizes (10000: about 30 min, 2 GB, see README)")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo archive")
    args = parser.parse_args()
    archives = [] if args.no_demo else [("demo", REPO / "demo")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="photoarchive-archive-") as tmp:
        for n in args.sizes:
            archives.append((f"{n} files", fake_archive(Path(tmp) / str(n), n)))
        for name, input_dir in archives:
            t0 = time.monotonic()
            real = name == "demo"
            grouped, unique = count_run(input_dir, profile=True, real=real)
            plain, _ = count_run(input_dir, profile=False, real=real)
            rows.append({
                "archive": name, "unique_photos": unique, "jobs": sum(plain.values()),
                "slurm_submissions": sum(grouped.values()),
                "by_kind": "; ".join(f"{k} {v}" for k, v in sorted(grouped.items())),
                "seconds": round(time.monotonic() - t0, 1),
            })
            print(f"{name}: {rows[-1]['jobs']} jobs, {rows[-1]['slurm_submissions']} SLURM submissions "
                  f"({rows[-1]['by_kind']}) [{rows[-1]['seconds']} s]", flush=True)
    print("\n| archive | unique photos | jobs (config.yaml, no profile) | SLURM submissions (profiles/slurm) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['archive']} | {r['unique_photos']} | {r['jobs']} | {r['slurm_submissions']} |")
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "slurm_jobs.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {OUT / 'slurm_jobs.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
