"""Placeholder archives and results for the dry-run benches (count_slurm_jobs.py, bench_dryrun.py).

A dry run only sees the DAG up to the dedup checkpoint until dedup.tsv exists. To let a dry run plan
every job after dedup without running anything, `place_dedup` writes what ingest and dedup would have
written for empty stand-in scans, every photo ok and unique:

    results/ingest/<photo>.json            ingest record (ok, 1000×1000)
    results/ingest/batches/<chunk>.json    ingest chunk table (photoarchive.stages.BatchTable, all "done")
    results/dedup/dedup.tsv                photo_id, status, duplicate_of, reason, batch, pixels;
                                           batches from photoarchive.dedup.assign_batches
                                           (scheduling's batch_size and max_batches)

each newer than what it is made from (inputs two hours old, records, then tables, then dedup.tsv), so
that with `--rerun-triggers mtime` nothing up to dedup is planned again. Empty files stand in for scans:
a dry run never reads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import yaml

from photoarchive.dedup import assign_batches
from photoarchive.ingest import IngestRecord, discover_sources
from photoarchive.stages import STAGES, BatchRow, BatchTable

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
PROFILE = REPO / "profiles" / "slurm"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
UP_TO_DEDUP = {"copy_source", "unpack_archive", "ingest", "dedup"}


def write(path: Path, text: str, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))


def fake_archive(root: Path, n: int) -> Path:
    """n empty scan files, 100 to a folder, two hours old (older than the placeholders)."""
    old = time.time() - 7200
    for i in range(n):
        write(root / f"box{i // 100:03d}" / f"scan_{i:06d}.jpg", "", old)
    return root


def workflow_config(profile: bool) -> dict:
    """config.yaml, with the SLURM profile's workflow-config.yaml on top when `profile`."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if profile:
        extra = yaml.safe_load((PROFILE / "workflow-config.yaml").read_text())
        for section, values in extra.items():
            config.setdefault(section, {}).update(values)
    return config


def batch_size(profile: bool) -> int:
    return workflow_config(profile)["scheduling"]["batch_size"]


def photo_ids(input_dir: Path) -> list[str]:
    """The photo ids the workflow finds in input_dir (as rules/common.smk lists them), sorted."""
    ignore = tuple(workflow_config(False)["ingest"]["ignore"])
    return sorted(s.photo_id for s in discover_sources(input_dir, ignore=ignore))


def place_dedup(results: Path, input_dir: Path, profile: bool, stamp: float | None = None) -> list[str]:
    """Placeholder ingest records, ingest chunk tables and dedup table (every photo ok and unique), each
    newer than its inputs; returns the unique photo ids."""
    stamp = time.time() - 3600 if stamp is None else stamp
    config = workflow_config(profile)
    sources = {s.photo_id: s for s in discover_sources(input_dir, ignore=tuple(config["ingest"]["ignore"]))}
    ids = sorted(sources)
    ingest = STAGES["ingest"]
    for pid in ids:
        record = IngestRecord(pid, sources[pid].relpath, "ok", width=1000, height=1000, bit_depth=8, mode="RGB",
                              phash="0" * 16)
        write(ingest.record_path(results, pid), json.dumps({**asdict(record), "key": "placeholder"}), stamp + 1)
    size = config["scheduling"]["ingest_chunk_size"]
    for k in range(0, len(ids), size):
        chunk = f"c{k // size:04d}"
        rows = [BatchRow(pid, "done", "", "placeholder", [f"ingest/{pid}.json"]) for pid in ids[k:k + size]]
        table = BatchTable("ingest", chunk, rows, f"placeholder{k // size}")
        write(ingest.table_path(results, chunk), table.to_json(), stamp + 2)
    schema = yaml.safe_load((REPO / "config.schema.yaml").read_text())
    defaults = {k: v["default"] for k, v in schema["properties"]["scheduling"]["properties"].items()}
    scheduling = {**defaults, **config["scheduling"]}
    batches = assign_batches(ids, scheduling["batch_size"], scheduling["max_batches"])
    rows = "".join(f"{pid}\tunique\t\t\t{batches[pid]}\t{1000 * 1000}\n" for pid in ids)
    write(results / "dedup" / "dedup.tsv", "photo_id\tstatus\tduplicate_of\treason\tbatch\tpixels\n" + rows,
          stamp + 3)
    return ids


def dry_run_args(workdir: Path, input_dir: Path, profile: bool, snakemake: list[str] | None = None) -> list[str]:
    """The command line of a dry run over input_dir in workdir (config.yaml; with the SLURM profile)."""
    args = [*(snakemake or [str(SNAKEMAKE)]), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--dry-run", "--configfile", str(REPO / "config.yaml")]
    if profile:
        args += [str(PROFILE / "workflow-config.yaml"), "--profile", str(PROFILE)]
    else:
        args += ["--cores", "2"]
    # the placeholders carry no provenance: modification times alone say what is done
    return args + ["--rerun-triggers", "mtime", "--config", f"input_dir={input_dir}"]


def dry_run(workdir: Path, input_dir: Path, profile: bool) -> str:
    """A dry run's output (stdout and stderr); raises when it fails."""
    out = subprocess.run(dry_run_args(workdir, input_dir, profile), capture_output=True, text=True, cwd=REPO,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"dry run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout + out.stderr
