# Validation first, then the archive's inventory (read once, at start-up) and input functions.
import csv
import functools
import json
import os
from collections import namedtuple
from pathlib import Path

from snakemake.io import contains_wildcard
from snakemake.utils import validate

from photoarchive.decisions import DecisionError, effective_status, overrides_row, read_decisions
from photoarchive.ingest import archive_id, discover_sources, photo_id
from photoarchive.manifest import write_manifest
from photoarchive.metadata import read_metadata_csv
from photoarchive.publish import publish_finished, published_names
from photoarchive.resources import memory_mb, runtime_minutes


validate(config, "../config.schema.yaml")

INPUT_DIR = Path(config["input_dir"])
MODELS_DIR = Path(config["models_dir"])


def metadata_csv_path():
    """The catalogue CSV: config's metadata_csv, else <input_dir>/metadata.csv when present."""
    if config["metadata_csv"]:
        path = Path(config["metadata_csv"])
        if not path.exists():
            raise WorkflowError(f"metadata_csv {path} does not exist; fix the path or set metadata_csv=''")
        return path
    default = INPUT_DIR / "metadata.csv"
    return default if default.exists() else None


METADATA_CSV = metadata_csv_path()
SOURCES = {
    s.photo_id: s
    for s in discover_sources(
        INPUT_DIR,
        skip=(METADATA_CSV,) if METADATA_CSV else (),
        ignore=tuple(config["ingest"]["ignore"]),
    )
}
if not SOURCES:
    raise WorkflowError(
        f"no files found under input_dir={INPUT_DIR}; point it at a folder of scans "
        "(--config input_dir=/path/to/scans)"
    )
ARCHIVES = {archive_id(s.archive): s.archive for s in SOURCES.values() if s.archive}
# Input files whose path Snakemake would read as a wildcard pattern ("scan {1}.jpg"): rules use a
# private copy under results/sources/ instead (rule copy_source).
COPIED = {
    photo_id(rel): rel
    for rel in sorted({s.archive or s.relpath for s in SOURCES.values() if not s.refusal})
    if contains_wildcard(str(INPUT_DIR / rel))
}
METADATA_ROWS, METADATA_PROBLEMS = read_metadata_csv(METADATA_CSV)
for problem in METADATA_PROBLEMS:
    logger.warning(problem)
for name in sorted(set(METADATA_ROWS) - {s.relpath for s in SOURCES.values()}):
    logger.warning(f"metadata.csv names {name!r}, which is not in {INPUT_DIR}; row ignored")
PUBLISHED = published_names(SOURCES.values())
# Ingest chunks: the input files in sorted order, scheduling.ingest_chunk_size at a time. A cluster runs a chunk
# as one job (rule ingest_chunk ties its records together); a local run does not see them.
_SIZE = config["scheduling"]["ingest_chunk_size"]
INGEST_CHUNKS = {f"c{k // _SIZE:04d}": sorted(SOURCES)[k:k + _SIZE] for k in range(0, len(SOURCES), _SIZE)}
PHOTO_OF_RELNAME = {relname: pid for pid, (relname, _ext) in PUBLISHED.items()}
# Review decisions (python -m photoarchive.review): accept/reject move a photo, retune overrides its controls.
DECISIONS_FILE = config["review"]["decisions"]
try:
    DECISIONS = read_decisions(DECISIONS_FILE)
except DecisionError as exc:
    raise WorkflowError(str(exc))
for name in sorted(set(DECISIONS) - set(SOURCES)):
    logger.warning(f"{DECISIONS_FILE} names photo {name!r}, which is not in {INPUT_DIR}; decision ignored")


def input_file(relpath):
    """An input-folder file as rules see it: its own path, or its copy when the path has "{...}"."""
    key = photo_id(relpath)
    return f"results/sources/{key}" if key in COPIED else str(INPUT_DIR / relpath)


def source_stamp(wildcards):
    """Size and mtime of a copied input file: a params value, so a changed original is copied again."""
    info = (INPUT_DIR / COPIED[wildcards.source]).stat()
    return f"{info.st_size} {info.st_mtime_ns}"


def photo_pixels(photo):
    """The photo's pixel count from its ingest record; 0 before ingest has run."""
    try:
        record = json.loads(Path(f"results/ingest/{photo}.json").read_text())
        return record["width"] * record["height"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def photo_mem_mb(bytes_per_pixel, floor_mb):
    """A resources function: memory for one photo from its pixel count, doubled on each retry.

    The bytes per pixel of each rule are measured with bench/bench_memory.py (peak RSS of the stage on a
    108 MP JPEG and a 48 MP 16-bit TIFF, less the interpreter), plus a margin.
    """
    return lambda wildcards, attempt: memory_mb(photo_pixels(wildcards.photo), bytes_per_pixel, floor_mb, attempt)


def published_mem_mb(bytes_per_pixel, floor_mb):
    """`photo_mem_mb` for the publish rules, whose wildcards name the published file, not the photo."""
    return lambda wildcards, attempt: memory_mb(
        photo_pixels(PHOTO_OF_RELNAME[wildcards.relname]), bytes_per_pixel, floor_mb, attempt
    )


def photo_runtime(minutes_per_megapixel, floor_minutes=1):
    """A resources function: wall time (minutes, for cluster executors) for one photo from its pixel
    count, doubled on each retry."""
    return lambda wildcards, attempt: runtime_minutes(
        photo_pixels(wildcards.photo), minutes_per_megapixel, floor_minutes, attempt
    )


def source_of(wildcards):
    """Input of ingest/stamp: the scan itself, or the unpack folder of the ZIP holding it."""
    source = SOURCES[wildcards.photo]
    if source.refusal:
        return []  # refused by its name alone (not valid UTF-8): never handed to Snakemake
    if source.archive:
        return f"results/unpacked/{archive_id(source.archive)}"
    return input_file(source.relpath)


def catalogue_row(photo):
    """The photo's metadata.csv row, {} when it has none."""
    return METADATA_ROWS.get(SOURCES[photo].relpath, {})


def metadata_row(wildcards):
    """A params value: editing one catalogue row re-stamps that photo alone."""
    return catalogue_row(wildcards.photo)


def tuned_row(photo, stage):
    """The photo's catalogue row with a reviewer's retune overrides for `stage` merged over it."""
    return {**catalogue_row(photo), **overrides_row(DECISIONS.get(photo), stage)}


def tuned_metadata_row(stage):
    """A params function of a per-photo stage: a retune of that stage's controls re-runs that photo alone."""
    return lambda wildcards: tuned_row(wildcards.photo, stage)


def decisions_input(wildcards):
    """The decisions file as an input of the jobs that read it, when it exists (absent: nothing changes)."""
    return [DECISIONS_FILE] if Path(DECISIONS_FILE).is_file() else []


def review_decision(wildcards):
    """A params value of publish: the reviewer's decision on the photo behind a published name."""
    decision = DECISIONS.get(PHOTO_OF_RELNAME[wildcards.relname])
    return {k: decision[k] for k in ("decision", "reviewer", "time")} if decision else {}


@functools.lru_cache(maxsize=4)
def read_table(path, version):
    """A checkpoint's TSV table as a tuple of rows; `version` (size, mtime) keys the cache, so that
    input functions, called once per job, read each table once per version rather than per call."""
    with open(path, encoding="utf-8", newline="") as fh:
        return tuple(csv.DictReader(fh, delimiter="\t"))


def checkpoint_table(checkpoint):
    """(path, version) of a finished checkpoint's table."""
    path = str(checkpoint.get().output.table)
    info = os.stat(path)
    return path, (info.st_size, info.st_mtime_ns)


DedupIndex = namedtuple("DedupIndex", "unique members batch_of")  # sorted ids, {batch: ids}, {id: batch}


@functools.lru_cache(maxsize=4)
def dedup_index(path, version):
    members, batch_of = {}, {}
    for row in read_table(path, version):
        if row["batch"]:  # only unique photos have a batch
            members.setdefault(row["batch"], []).append(row["photo_id"])
            batch_of[row["photo_id"]] = row["batch"]
    return DedupIndex(sorted(batch_of), {b: sorted(ids) for b, ids in members.items()}, batch_of)


def dedup_batches():
    return dedup_index(*checkpoint_table(checkpoints.dedup))


def unique_photos():
    return dedup_batches().unique


def restore_batches():
    return sorted(dedup_batches().members)


def batch_members(wildcards):
    return dedup_batches().members.get(wildcards.batch, [])


def batch_catalogue_rows(wildcards):
    """Catalogue rows of a batch (with retune overrides): they carry per-photo overrides of the restore controls."""
    return {photo: tuned_row(photo, "restore") for photo in batch_members(wildcards)}


def restore_dir(photo):
    """The restore batch folder holding this photo's restored image."""
    return f"results/restore/{dedup_batches().batch_of[photo]}"


def restore_batch_of(wildcards):
    return restore_dir(wildcards.photo)


def publish_inputs(wildcards):
    """What publish copies for the photo behind a published name."""
    photo = PHOTO_OF_RELNAME[wildcards.relname]
    return {
        "verdict": f"results/qa/{photo}.json",
        "restored": restore_dir(photo),
        "matte": f"results/matting/{photo}_matte.png",
        "foreground": f"results/matting/{photo}_fg.png",
        "damage": f"results/repair/{photo}_damage.png",
    }


def triage_rows():
    return read_table(*checkpoint_table(checkpoints.triage))


def published_files(wildcards):
    """Every file publish makes, under the status QA gave each photo."""
    return published_files_of(triage_rows())


def batch_published_files(wildcards):
    """The files publish makes for the photos of one restore batch."""
    members = set(batch_members(wildcards))
    return published_files_of(row for row in triage_rows() if row["photo_id"] in members)


def published_status(row):
    """A triage row's status with the decisions file of this run applied: right even while the table is
    the previous run's (the checkpoint re-runs because the decisions file changed, but the published
    files are listed before it has)."""
    qa_status = row.get("qa_status") or row["status"]
    return effective_status(qa_status, DECISIONS.get(row["photo_id"]))


def published_files_of(rows):
    files = []
    for row in rows:
        relname, ext = PUBLISHED[row["photo_id"]]
        base = f"results/{published_status(row)}/{relname}"
        files += [f"{base}_restored.{ext}", f"{base}_matte.png", f"{base}_fg.png", f"{base}_damage.png"]
    return files


def write_partial_manifest():
    """After a failed run: publish every photo that finished, then account for every input."""
    try:
        done = publish_finished(Path("results"), PUBLISHED, config["publish"]["jpeg_quality"], DECISIONS)
        if done:
            logger.warning(f"published {len(done)} photo(s) that finished despite the failure")
    except Exception as exc:  # the run already failed: report, don't mask the original error
        logger.error(f"could not publish the finished photos: {exc}")
    try:
        write_manifest(Path("results"), list(SOURCES.values()), PUBLISHED, Path("logs"), DECISIONS)
        logger.warning("results/manifest.csv and results/failed.txt written for this partial run")
    except Exception as exc:  # the run already failed: report, don't mask the original error
        logger.error(f"could not write the partial manifest: {exc}")


def package_originals(wildcards):
    """The originals a package bag holds as masters: input files (or their ZIP's unpack folder)."""
    files = set()
    for s in SOURCES.values():
        if s.refusal:
            continue
        if s.archive:
            files.add(f"results/unpacked/{archive_id(s.archive)}")
        elif "\n" not in s.relpath and "\r" not in s.relpath and s.relpath.isprintable():
            try:
                s.relpath.encode("utf-8")
            except UnicodeEncodeError:
                continue
            files.add(input_file(s.relpath))
    return sorted(files)
