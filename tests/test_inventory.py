"""The input folder's inventory: listed by the main invocation, cached in results/inventory.json, read by the
jobs Snakemake spawns (cluster jobs parse the workflow again) instead of walking the folder (issue #12)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from photoarchive.ingest import (
    Source,
    discover_sources,
    inventory_bytes,
    inventory_context,
    read_inventory,
    write_inventory,
)
from tests.workflow import REPO, planned_jobs, snakemake


def odd_archive(root: Path) -> Path:
    """Names that a careless cache would not carry back: spaces, quotes, non-ASCII, a newline, a name that
    is not UTF-8, ZIP members, an unreadable ZIP."""
    root.mkdir()
    for name in ["a b.jpg", 'q"uote.jpg', "caf\u00e9/\u5199\u771f.png", "line\nbreak.jpg", "sub/x.tif"]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (root / os.fsdecode(b"latin\xe9.jpg")).write_bytes(b"")
    with zipfile.ZipFile(root / "box.zip", "w") as zf:
        zf.writestr("inner/one.jpg", b"1")
        zf.writestr("inner/t\u00f6.jpg", b"2")
    (root / "broken.zip").write_bytes(b"not a zip")
    return root


def test_inventory_round_trips_every_source_exactly(tmp_path):
    scans = odd_archive(tmp_path / "scans")
    sources = discover_sources(scans, ignore=("*.md",))
    assert any(s.refusal for s in sources) and any(s.member for s in sources)
    context = inventory_context(scans, ignore=("*.md",))
    path = tmp_path / "results" / "inventory.json"
    assert write_inventory(path, sources, context)
    assert read_inventory(path, context) == sources
    assert all(isinstance(s, Source) for s in read_inventory(path, context))


def test_inventory_bytes_are_deterministic_and_rewritten_only_on_change(tmp_path):
    scans = odd_archive(tmp_path / "scans")
    context = inventory_context(scans)
    path = tmp_path / "inventory.json"
    first = discover_sources(scans)
    assert write_inventory(path, first, context)
    data, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert data == inventory_bytes(discover_sources(scans), context)
    assert not write_inventory(path, discover_sources(scans), context)
    assert path.stat().st_mtime_ns == mtime
    (scans / "new.jpg").write_bytes(b"")
    assert write_inventory(path, discover_sources(scans), context)
    assert len(read_inventory(path, context)) == len(first) + 1


def test_inventory_for_other_settings_or_damaged_is_not_used(tmp_path):
    scans = odd_archive(tmp_path / "scans")
    context = inventory_context(scans)
    path = tmp_path / "inventory.json"
    write_inventory(path, discover_sources(scans), context)
    assert read_inventory(path, inventory_context(scans, ignore=("*.tif",))) is None
    assert read_inventory(path, inventory_context(scans, skip=(scans / "a b.jpg",))) is None
    assert read_inventory(path, inventory_context(tmp_path)) is None
    path.write_bytes(path.read_bytes()[:-40])  # cut short
    assert read_inventory(path, context) is None
    path.write_text(json.dumps({"context": context, "sources": [["only-two", "fields"]]}))
    assert read_inventory(path, context) is None
    assert read_inventory(tmp_path / "missing.json", context) is None


def test_job_parse_reads_the_cached_inventory_and_the_main_parse_rewrites_it(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("one.jpg", "two.jpg"):
        (scans / name).write_bytes(b"")
    work = tmp_path / "work"
    chunks = tmp_path / "chunks.yaml"
    chunks.write_text("scheduling:\n  ingest_chunk_size: 1\n")  # one ingest job per file: jobs count files
    config = {"input_dir": str(scans)}

    def planned_ingest_jobs(*args):
        return planned_jobs(work, "--configfile", str(REPO / "config.yaml"), str(chunks), *args,
                            config=config)["ingest"]

    inventory = work / "results" / "inventory.json"
    # The main invocation (a dry run too) lists the folder and writes the inventory.
    assert planned_ingest_jobs() == 2
    written = inventory.read_bytes()
    (scans / "three.jpg").write_bytes(b"")
    # A job's parse (Snakemake's --mode remote, as in a SLURM job) trusts the cache: two files, not three.
    assert planned_ingest_jobs("--mode", "remote") == 2
    assert inventory.read_bytes() == written
    # The main invocation notices the new file and rewrites the cache.
    assert planned_ingest_jobs() == 3
    assert len(json.loads(inventory.read_text())["sources"]) == 3
    assert planned_ingest_jobs("--mode", "remote") == 3
    # Without a usable cache a job lists the folder itself (and writes nothing).
    (scans / "four.jpg").write_bytes(b"")
    inventory.write_text("{")
    result = snakemake(work, "--dry-run", "--mode", "remote", config=config)
    assert "listing" in result.stdout + result.stderr and inventory.read_text() == "{"
    assert planned_ingest_jobs("--mode", "remote") == 4
