"""Count the SLURM submissions of a whole run, from dry runs, for archives of any size.

A dry run only sees the DAG up to the dedup checkpoint while dedup still has to run, so each count is
made in two dry runs (the procedure of tests/cluster/count_submissions.py):
  1. dry-run on the fresh archive: every job up to and including dedup (the ingest chunks and dedup);
  2. give ingest and dedup their outputs (for the empty stand-in files: placeholder ingest records,
     chunk tables and a dedup.tsv with every photo unique, batched by photoarchive.dedup.assign_batches
     as the dedup job batches them, see bench/placeholders.py; for the demo: a real local run up to
     dedup), then dry-run again: every job after dedup (per batch: stamp, detect_faces, repair, enhance,
     matte, restore_faces, qa, publish, thumbnails; then triage, manifest, finished, report).
Duplicates only drop photos, not change the shape of the DAG, so an all-unique archive is the worst case
for its size.

Counted with the SLURM profile (its `batch` group and its workflow-config.yaml, batches of 32), and as
plain jobs with config.yaml alone (batches of 8; one submission per job on a cluster without groups).

    PYTHONPATH=$PWD .venv/bin/python bench/count_slurm_jobs.py                 # the demo and 1,000 files
    PYTHONPATH=$PWD .venv/bin/python bench/count_slurm_jobs.py --sizes 10000 --no-demo

Prints a table and writes bench/out/slurm_jobs.csv (bench/out is git-ignored). Empty files stand in
for scans: the dry runs never read them.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from placeholders import OUT, PROFILE, REPO, SNAKEMAKE, UP_TO_DEDUP, dry_run, fake_archive, place_dedup


def _counter():
    path = REPO / "tests" / "cluster" / "count_submissions.py"
    spec = importlib.util.spec_from_file_location("count_submissions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.count


count_submissions = _counter()


def run_to_dedup(workdir: Path, input_dir: Path, profile: bool) -> list[str]:
    """Real scans: run the workflow locally up to dedup; the unique photos."""
    args = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2",
            "--configfile", str(REPO / "config.yaml")]
    if profile:
        args.append(str(PROFILE / "workflow-config.yaml"))
    args += ["--config", f"input_dir={input_dir}", "--", "ingest_only"]  # the ingest chunks and dedup
    subprocess.run(args, capture_output=True, text=True, cwd=REPO, check=True)
    with (workdir / "results" / "dedup" / "dedup.tsv").open() as fh:
        return [r["photo_id"] for r in csv.DictReader(fh, delimiter="\t") if r["status"] == "unique"]


def pass_dedup(workdir: Path, input_dir: Path, profile: bool, real: bool) -> int:
    """Outputs up to the dedup checkpoint, each newer than what it is made from: placeholders for empty
    stand-in files, a real run up to dedup for real scans. Returns the number of unique photos."""
    if real:
        return len(run_to_dedup(workdir, input_dir, profile))
    return len(place_dedup(workdir / "results", input_dir, profile))


def up_to_dedup(kind: str) -> bool:
    """Submissions the first dry run sees in full: the jobs up to and including dedup."""
    return kind.split()[-1] in UP_TO_DEDUP


def count_run(input_dir: Path, profile: bool, real: bool) -> tuple[Counter, int]:
    """(submissions by kind, unique photos) for a whole run over input_dir."""
    with tempfile.TemporaryDirectory(prefix="photoarchive-count-") as tmp:
        workdir = Path(tmp)
        before = count_submissions(dry_run(workdir, input_dir, profile))
        n = pass_dedup(workdir, input_dir, profile, real)
        after = count_submissions(dry_run(workdir, input_dir, profile))
    if any(up_to_dedup(kind) for kind in after):
        raise RuntimeError(f"the placeholders did not pass the dedup checkpoint: {dict(after)}")
    if not any(kind.endswith("report") for kind in after):
        raise RuntimeError(f"the second dry run did not plan the jobs after dedup: {dict(after)}")
    return Counter({k: v for k, v in before.items() if up_to_dedup(k)}) + after, n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000],
                        help="synthetic archive sizes (files)")
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
