"""Time and peak memory of `snakemake --dry-run` for archives of N placeholder inputs (issue #12).

For each size N, N empty stand-in scans (100 to a folder; bench/placeholders.py) and three dry runs:
  a. the fresh archive: parse (discover_sources over the input folder, metadata.csv, decisions) and
     every job up to dedup (the ingest chunks and the dedup checkpoint);
  b. after dedup (placeholder ingest records and chunk tables, a dedup.tsv with every photo unique,
     batches from photoarchive.dedup.assign_batches at config.yaml's batch size): every job after dedup
     is planned (per batch stamp … publish and thumbnails; triage, manifest, finished, report);
  c. the same with `--profile profiles/slurm` (its batch size, its `batch` group);
  j. a cluster job's parse: after (b)'s placeholders and a main invocation (`--list-rules`, which writes
     results/inventory.json), the dry run of one ingest chunk with `--mode remote`, as Snakemake runs it in a
     SLURM job: it reads the cached inventory instead of listing the input folder (checked: no "listing").
Goal (issue #12): 100,000 photos ≤ 5 min and ≤ 4 GB without the profile, ≤ 10 min with it.

Wall time is of the whole snakemake command (start-up and parse included); peak RSS is the largest
resident set of the snakemake process or any of its children (os.wait4's ru_maxrss). Each dry run is
killed after --timeout seconds (reported as a time-out). The output of each dry run is checked: (a) must
plan dedup, (b) and (c) must plan the report and nothing up to dedup.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_dryrun.py                       # 10,000 and 100,000
    PYTHONPATH=$PWD .venv/bin/python bench/bench_dryrun.py --sizes 10000 30000 --timeout 1200
    PYTHONPATH=$PWD .venv/bin/python bench/bench_dryrun.py --sizes 10000 --cases b --profile-only
    PYTHONPATH=$PWD .venv/bin/python bench/bench_dryrun.py --sizes 10000 100000 --cases j   # job parse

--cprofile runs the chosen cases once more under cProfile (`python -m cProfile -m snakemake ...`),
writes bench/out/dryrun_<N>_<case>.prof and prints the top functions (cumulative and own time).
Prints a table and writes bench/out/dryrun.csv (bench/out is git-ignored).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from placeholders import OUT, REPO, dry_run_args, fake_archive, photo_ids, place_dedup

CASES = {
    "a": ("fresh archive (up to dedup)", False, False),
    "b": ("after dedup, every batch planned", True, False),
    "c": ("after dedup, --profile profiles/slurm", True, True),
    "j": ("a cluster job's parse (--mode remote, one ingest chunk)", True, False),
}
JOB_ARGS = ["--mode", "remote", "--target-jobs", "ingest:chunk=c0000", "--allowed-rules", "ingest"]
TOTAL = re.compile(r"^total\s+(\d+)", re.MULTILINE)


def measure(args: list[str], log: Path, timeout: float) -> dict:
    """Run a command (output to `log`); its wall time, peak RSS (MB, largest process of its tree), exit status."""
    start = time.monotonic()
    with log.open("wb") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - start > timeout:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return {"seconds": round(time.monotonic() - start, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "rc": proc.returncode, "timed_out": timed_out}


def check(case: str, text: str) -> str:
    """'' when the dry run planned what the case expects, else what is wrong."""
    planned = set(re.findall(r"^\s*(?:rule|checkpoint) (\w+):", text, re.MULTILINE))
    if case == "a":
        return "" if "dedup" in planned else "dedup not planned"
    if case == "j":
        return "listed the input folder again" if "listing" in text else (
            "" if planned == {"ingest"} else f"planned {sorted(planned)}")
    wrong = planned & {"ingest", "dedup", "copy_source", "unpack_archive"}
    if wrong:
        return f"planned again: {sorted(wrong)}"
    return "" if {"report", "publish", "restore_faces"} <= planned else f"incomplete plan: {sorted(planned)}"


def prepare(root: Path, n: int, case: str, input_dir: Path) -> Path:
    workdir = root / f"work-{n}-{case}"
    workdir.mkdir()
    if CASES[case][1]:
        place_dedup(workdir / "results", input_dir, profile=CASES[case][2])
    if case == "j":  # the main invocation's parse writes the inventory the job reads
        args = [a for a in dry_run_args(workdir, input_dir, False) if a != "--dry-run"]
        subprocess.run([*args, "--list-rules"], cwd=REPO, check=True, capture_output=True)
    return workdir


def run_case(root: Path, n: int, case: str, input_dir: Path, timeout: float) -> dict:
    label, _, profile = CASES[case]
    t0 = time.monotonic()
    workdir = prepare(root, n, case, input_dir)
    setup = time.monotonic() - t0
    log = root / f"dryrun-{n}-{case}.log"
    result = measure(dry_run_args(workdir, input_dir, profile) + (JOB_ARGS if case == "j" else []), log, timeout)
    text = log.read_text(encoding="utf-8", errors="replace")
    jobs = TOTAL.findall(text)
    problem = "timed out" if result["timed_out"] else (
        f"exit {result['rc']}: {text[-300:]!r}" if result["rc"] else check(case, text))
    log.unlink()
    return {"files": n, "case": case, "what": label, "jobs": int(jobs[-1]) if jobs else "", **result,
            "setup_s": round(setup, 1), "problem": problem}


def cprofile_case(root: Path, n: int, case: str, input_dir: Path, timeout: float, top: int) -> None:
    _, _, profile = CASES[case]
    workdir = prepare(root, n, case, input_dir)
    prof = OUT / f"dryrun_{n}_{case}.prof"
    args = dry_run_args(workdir, input_dir, profile,
                        snakemake=[sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "snakemake"])
    args += JOB_ARGS if case == "j" else []
    result = measure(args, root / f"cprofile-{n}-{case}.log", timeout)
    print(f"\ncProfile of case {case}, {n} files: {result['seconds']} s under the profiler, rc {result['rc']}")
    if not prof.exists():
        print("  no profile written (timed out?)")
        return
    for key in ("cumulative", "tottime"):
        buffer = io.StringIO()
        pstats.Stats(str(prof), stream=buffer).sort_stats(key).print_stats(top)
        lines = buffer.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print(f"-- top {top} by {key} --")
        print("\n".join(lines[start:start + top + 1]))
    print(f"wrote {prof}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10000, 100000], help="numbers of input files")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a dry run is killed")
    parser.add_argument("--cprofile", action="store_true", help="also profile each case under cProfile")
    parser.add_argument("--profile-only", action="store_true", help="--cprofile without the timed runs")
    parser.add_argument("--top", type=int, default=30, help="functions listed from each profile")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the placeholder trees")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="photoarchive-dryrun-", dir=args.tmp) as tmp:
            root = Path(tmp)
            input_dir = fake_archive(root / "scans", n)
            t0 = time.perf_counter()
            count = len(photo_ids(input_dir))
            discover = time.perf_counter() - t0
            print(f"{n} files: discover_sources {discover:.1f} s for {count} sources", flush=True)
            for case in [] if args.profile_only else args.cases:
                load = os.getloadavg()[0]
                row = {**run_case(root, n, case, input_dir, args.timeout), "discover_s": round(discover, 1),
                       "load_avg": round(load, 2)}
                rows.append(row)
                print(f"  {case}: {row['seconds']} s, {row['peak_rss_mb']} MB peak, {row['cpu_s']} CPU-s, "
                      f"{row['jobs']} jobs, load {row['load_avg']} {row['problem']}", flush=True)
            if args.cprofile or args.profile_only:
                for case in args.cases:
                    cprofile_case(root, n, case, input_dir, args.timeout, args.top)
    if not rows:
        return 0
    print("\n| files | case | jobs | wall s | peak RSS MB | CPU s | load avg (1 min) at start | note |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['files']} | {r['case']}: {r['what']} | {r['jobs']} | {r['seconds']} | {r['peak_rss_mb']} | "
              f"{r['cpu_s']} | {r['load_avg']} | {r['problem']} |")
    with (OUT / "dryrun.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {OUT / 'dryrun.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
