"""`snakemake ingest_only` on N small files: wall time, CPU, jobs, and the share of job start-up.

    python bench/bench_ingest.py [--files 1000] [--size 400x300] [--cores 2] [--out bench/out]

Writes N small JPEGs (default 400×300, different noise each, so no two are duplicates), runs the workflow up to
dedup (`ingest_only`) in a scratch folder, and prints one row: wall seconds, CPU seconds of Snakemake and
its jobs, ingest jobs, summed job start-up (process start → script ready, logged by every job) against
summed job time (benchmark files). Writes <out>/ingest.csv. Issue #12's goal: 1,000 files ≤ 2 min.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
STARTUP = re.compile(r"job startup ([0-9.]+) s")


def small_files(folder: Path, n: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for i in range(n):
        field = np.clip(base.astype(int) + rng.integers(-60, 60, base.shape), 0, 255).astype(np.uint8)
        image = Image.fromarray(field).resize(size, Image.BICUBIC)
        (folder / f"box{i // 250:02d}").mkdir(parents=True, exist_ok=True)
        image.save(folder / f"box{i // 250:02d}" / f"scan{i:05d}.jpg", quality=85)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", default="400x300", help="width x height of each file")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scans, work = Path(tmp) / "scans", Path(tmp) / "work"
        small_files(scans, args.files, tuple(int(v) for v in args.size.split("x")))
        snakemake = Path(sys.executable).with_name("snakemake")
        cmd = [str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--configfile", str(REPO / "config.yaml"),
               "--directory", str(work), "--cores", str(args.cores), "--quiet", "progress",
               "--config", f"input_dir={scans}", "--", "ingest_only"]
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        logs = list((work / "logs" / "ingest").glob("*.log"))
        startup = sum(float(m.group(1)) for log in logs for m in STARTUP.finditer(log.read_text()))
        job_seconds = 0.0
        for bench in (work / "benchmarks" / "ingest").glob("*.tsv"):
            with open(bench) as fh:
                job_seconds += float(next(csv.DictReader(fh, delimiter="\t"))["s"])
        records = len(list((work / "results" / "ingest").glob("*.json")))
    row = {"files": args.files, "size": args.size, "cores": args.cores, "wall_s": round(wall, 1),
           "cpu_s": round(cpu, 1),
           "ingest_jobs": len(logs), "records": records, "job_startup_s": round(startup, 1),
           "job_s": round(job_seconds, 1), "startup_share": round(startup / job_seconds, 3) if job_seconds else 0,
           "load": os.getloadavg()[0]}
    print(" | ".join(f"{k}={v}" for k, v in row.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "ingest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)


if __name__ == "__main__":
    main()
