"""Whole-pipeline benchmark on a synthetic archive of aged photos.

    python bench/bench_pipeline.py [N] [--cores 2] [--out bench/out/pipeline] [--scans DIR] [--gpen-random]

Builds N synthetic scans (default 50), runs the workflow on them in a scratch folder, and prints
per-stage wall time (from Snakemake's benchmark: files), photos per minute, peak RSS, the per-job
startup overhead (process start → script ready, logged by every job) and the share of the restore
stage spent outside the restorer itself. Writes the table to <out>/pipeline.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from photoarchive.synthetic import synthetic_archive  # noqa: E402

STARTUP = re.compile(r"job startup ([0-9.]+) s")


def random_gpen_models(folder: Path) -> Path:
    """GPEN-BFR-512.pth with random weights of the official 512 architecture: same compute as the real
    model, for timing only (its faces are noise)."""
    import torch

    from photoarchive.models.gpen import GPEN, GPEN_CONFIGS

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(GPEN(**GPEN_CONFIGS[512]).state_dict(), folder / "GPEN-BFR-512.pth")
    return folder


def run_pipeline(scans: Path, work: Path, cores: int, extra_config: list[str]) -> float:
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--configfile", str(REPO / "config.yaml"),
           "--directory", str(work), "--cores", str(cores), "--resources", "gpu=1", "--quiet", "progress",
           "--config", f"input_dir={scans}", *extra_config]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(REPO / ".numba_cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - started


def stage_table(work: Path) -> list[dict]:
    """Per rule: jobs, summed wall seconds and peak RSS from benchmark files, summed startup from logs."""
    wall: dict[str, float] = defaultdict(float)
    jobs: dict[str, int] = defaultdict(int)
    rss: dict[str, float] = defaultdict(float)
    for tsv in (work / "benchmarks").rglob("*.tsv"):
        rule = tsv.relative_to(work / "benchmarks").parts[0]
        with open(tsv) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        wall[rule] += float(row["s"])
        jobs[rule] += 1
        if row["max_rss"] not in ("-", "NA", ""):
            rss[rule] = max(rss[rule], float(row["max_rss"]))
    startup: dict[str, float] = defaultdict(float)
    for log in (work / "logs").rglob("*.log"):
        rule = log.relative_to(work / "logs").parts[0]
        match = STARTUP.search(log.read_text(encoding="utf-8", errors="replace"))
        if match and rule in wall:
            startup[rule] += float(match.group(1))
    return [{"stage": r, "jobs": jobs[r], "wall_s": round(wall[r], 2), "mean_s": round(wall[r] / jobs[r], 3),
             "startup_s": round(startup[r], 2), "startup_share": round(startup[r] / wall[r], 3) if wall[r] else 0,
             "peak_rss_mb": round(rss[r], 1)} for r in sorted(wall)]


def restore_model_seconds(work: Path) -> float:
    total = 0.0
    for record in (work / "results" / "restore").glob("*/*.json"):
        faces = json.loads(record.read_text()).get("faces", [])
        total += sum(f.get("seconds", 0.0) for f in faces)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=50, help="photos in the synthetic archive")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "pipeline")
    parser.add_argument("--scans", type=Path, help="use this folder of scans instead of a synthetic archive")
    parser.add_argument("--gpen-random", action="store_true",
                        help="restore with a random-weight GPEN-512 (real compute, meaningless faces)")
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    scans, work = args.out / "scans", args.out / "work"
    work.mkdir(parents=True)
    if args.scans:
        scans = args.scans.resolve()
    else:
        synthetic_archive(scans, args.n, seed=0)
    extra = []
    if args.gpen_random:
        models = random_gpen_models(args.out / "models")
        extra = [f"models_dir={models}", "restore={backend: gpen, model: 512}"]
    load_before = os.getloadavg()[0]
    total = run_pipeline(scans, work, args.cores, extra)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    rows = stage_table(work)
    job_wall = sum(r["wall_s"] for r in rows)
    startup = sum(r["startup_s"] for r in rows)
    restore_wall = sum(r["wall_s"] for r in rows if r["stage"] == "restore_faces")
    model = restore_model_seconds(work)
    with open(work / "results" / "manifest.csv", encoding="utf-8") as fh:
        statuses = [r["status"] for r in csv.DictReader(fh)]
    photos = sum(s in ("processed", "review") for s in statuses)

    what = f"scans from {args.scans}" if args.scans else f"{args.n} synthetic scans"
    restorer = "GPEN-512 (random weights)" if args.gpen_random else "auto"
    print(f"\nphotoarchive pipeline benchmark: {what}, --cores {args.cores}, restore {restorer}, "
          f"load average before {load_before:.1f}")
    header = f"{'stage':<16}{'jobs':>6}{'wall s':>10}{'mean s':>9}{'startup s':>11}{'startup %':>11}{'peak MB':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['stage']:<16}{r['jobs']:>6}{r['wall_s']:>10.1f}{r['mean_s']:>9.2f}{r['startup_s']:>11.1f}"
              f"{100 * r['startup_share']:>10.0f}%{r['peak_rss_mb']:>9.0f}")
    summary = {
        "pipeline_wall_s": round(total, 1),
        "photos_finished": photos,
        "photos_per_minute": round(60 * photos / total, 2),
        "sum_job_wall_s": round(job_wall, 1),
        "job_startup_share": round(startup / job_wall, 3) if job_wall else 0,
        "restore_outside_model_share": round(1 - model / restore_wall, 3) if restore_wall else 0,
        "peak_rss_mb": round(peak_rss_mb, 0),
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
    }
    print()
    for key, value in summary.items():
        print(f"{key:<30}{value}")
    with open(args.out / "pipeline.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {args.out / 'pipeline.csv'} and summary.json")


if __name__ == "__main__":
    main()
