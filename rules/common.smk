# Validation first, then the archive's inventory (listed once per run: list_sources) and input functions.
import csv
import functools
import json
import os
from collections import namedtuple
from pathlib import Path

from snakemake.io import contains_wildcard
from snakemake.utils import validate

from photoarchive.decisions import DecisionError, effective_status, overrides_row, read_decisions
from photoarchive.faces import detector_model_files
from photoarchive.ingest import (
    archive_id,
    discover_sources,
    inventory_context,
    photo_id,
    read_inventory,
    write_inventory,
)
from photoarchive.manifest import write_manifest
from photoarchive.matting import matting_model_files
from photoarchive.metadata import METADATA_COLUMNS, read_metadata_csv
from photoarchive.publish import published_names
from photoarchive.repair import DETECTOR_FILE as DAMAGE_DETECTOR_FILE
from photoarchive.restore import restore_model_files
from photoarchive.resources import memory_mb, runtime_minutes
from photoarchive.stages import STAGES, retry_marker


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
INVENTORY = Path("results/inventory.json")


def list_sources():
    """The input folder's files (and ZIP members), listed once per run.

    The main invocation walks the folder (a new scan is noticed by every run, dry runs included) and
    writes results/inventory.json when it changed; a job Snakemake spawned (a cluster job, which parses
    the workflow again) reads that file instead of walking the folder and opening every ZIP again, and
    walks only when the file is missing, unreadable or was listed with other settings."""
    skip = (METADATA_CSV,) if METADATA_CSV else ()
    ignore = tuple(config["ingest"]["ignore"])
    context = inventory_context(INPUT_DIR, skip, ignore)
    if not workflow.is_main_process:
        cached = read_inventory(INVENTORY, context)
        if cached is not None:
            return cached
        logger.warning(f"{INVENTORY} is missing, unreadable or for other settings; listing {INPUT_DIR} again")
    sources = discover_sources(INPUT_DIR, skip=skip, ignore=ignore)
    if workflow.is_main_process and sources:
        try:
            write_inventory(INVENTORY, sources, context)
        except OSError as exc:  # a cache only: jobs then list the folder themselves
            logger.warning(f"could not write {INVENTORY}: {exc}")
    return sources


SOURCES = {s.photo_id: s for s in list_sources()}
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
# Ingest chunks: the input files in sorted order, scheduling.ingest_chunk_size at a time, one ingest job each.
_SIZE = config["scheduling"]["ingest_chunk_size"]
INGEST_CHUNKS = {f"c{k // _SIZE:04d}": sorted(SOURCES)[k:k + _SIZE] for k in range(0, len(SOURCES), _SIZE)}
CHUNK_OF = {photo: chunk for chunk, photos in INGEST_CHUNKS.items() for photo in photos}
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


def batch_pixels(wildcards):
    """Pixel counts of a batch's photos (from the dedup table); none before dedup has run."""
    try:
        index = dedup_batches()
    except Exception:  # the checkpoint has not run yet
        return []
    return [index.pixels.get(photo, 0) for photo in index.members.get(wildcards.batch, [])]


def batch_mem_mb(bytes_per_pixel, floor_mb):
    """A resources function of a batch rule: memory for the batch's largest photo (photos are worked on
    one at a time), doubled on each retry.

    The bytes per pixel of each rule are measured with bench/bench_memory.py (peak RSS of the stage on a
    108 MP JPEG and a 48 MP 16-bit TIFF, less the interpreter), plus a margin.
    """
    return lambda wildcards, attempt: memory_mb(max(batch_pixels(wildcards), default=0), bytes_per_pixel,
                                                floor_mb, attempt)


def batch_runtime(minutes_per_megapixel, floor_minutes=1):
    """A resources function: wall time (minutes, for cluster executors) of a batch from its pixel count,
    doubled on each retry."""
    return lambda wildcards, attempt: runtime_minutes(sum(batch_pixels(wildcards)), minutes_per_megapixel,
                                                      floor_minutes, attempt)


def retry(stage):
    """An input function of every batch rule: the batch's retry marker, when its table lists a failed photo
    or misses a file (the next run then retries just those; photoarchive.stages.retry_marker)."""
    return lambda wildcards: retry_marker(
        STAGES[stage].table_path(Path("results"), wildcards.get("batch") or wildcards.chunk), Path("results"))


@functools.cache
def model_files(stage):
    """The weights files in models_dir that a stage's jobs would load, those present: an input of its rule,
    so that weights placed in models/ (or replaced) re-run the stage; each photo's key holds their SHA-256,
    so the photos are redone. The packaged models change only with the installation."""
    found = {
        "faces": lambda: detector_model_files(config["faces"], MODELS_DIR),
        "repair": lambda: [MODELS_DIR / DAMAGE_DETECTOR_FILE],
        "matting": lambda: matting_model_files(config["matting"], MODELS_DIR),
        "restore": lambda: restore_model_files(config["restore"], MODELS_DIR),
    }[stage]()
    return [str(path) for path in found if path.is_file()]


def models_dir(wildcards):
    """models_dir, as a param of the rules that load weights: given by a function, since `snakemake --lint`
    takes a plain string that prefixes the rule's inputs (the weights there) for a hardcoded path."""
    return config["models_dir"]


def stage_log(stage):
    return f"logs/{stage}/{{batch}}.log"


def stage_table(stage):
    """The batch table of a stage: a batch rule's output, the next stage's input."""
    return f"results/{stage}/batches/{{batch}}.json"


def ingest_tables(photos):
    """The ingest tables holding these photos' records, as `ancient` inputs: a new scan elsewhere in a chunk
    changes its table but not these photos (a changed scan is an input of its own)."""
    return [ancient(f"results/ingest/batches/{chunk}.json") for chunk in sorted({CHUNK_OF[p] for p in photos})]


def sources_of(photos):
    """Inputs of a batch of photos (ingest, stamp): their scans and the unpack folders of their ZIPs."""
    return sorted(set(filter(None, map(source_of_photo, photos))))


def source_of_photo(photo):
    source = SOURCES[photo]
    if source.refusal:
        return ""
    if source.archive:
        return f"results/unpacked/{archive_id(source.archive)}"
    return input_file(source.relpath)


def catalogue_row(photo):
    """The photo's metadata.csv row, {} when it has none."""
    return METADATA_ROWS.get(SOURCES[photo].relpath, {})


def archival_row(photo):
    """The photo's archival catalogue fields, which stamp writes (the other columns are per-stage controls)."""
    row = catalogue_row(photo)
    return {column: row[column] for column in METADATA_COLUMNS if column in row}


def tuned_row(photo, stage):
    """The photo's catalogue cells for `stage` (columns `<stage>` and `<stage>_...`) with a reviewer's retune
    overrides for it merged over them."""
    row = {k: v for k, v in catalogue_row(photo).items() if k == stage or k.startswith(f"{stage}_")}
    return {**row, **overrides_row(DECISIONS.get(photo), stage)}


def tuned_rows(stage):
    """A params function of a batch rule: each photo's catalogue row with its retune overrides for `stage`
    (a photo's key includes its row, so a retune redoes that photo alone)."""
    return lambda wildcards: {photo: tuned_row(photo, stage) for photo in batch_members(wildcards)}


def decisions_input(wildcards):
    """The decisions file as an input of the jobs that read it, when it exists (absent: nothing changes)."""
    return [DECISIONS_FILE] if Path(DECISIONS_FILE).is_file() else []


def batch_decisions(wildcards):
    """A params value of publish: the reviewers' decisions on a batch's photos (xmp:Rating and xmp:Label)."""
    return {photo: {k: DECISIONS[photo][k] for k in ("decision", "reviewer", "time")}
            for photo in batch_members(wildcards) if photo in DECISIONS}


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


DedupIndex = namedtuple("DedupIndex", "members pixels")  # {batch: sorted ids}, {id: pixel count}


@functools.lru_cache(maxsize=4)
def dedup_index(path, version):
    members, pixels = {}, {}
    for row in read_table(path, version):
        if row["batch"]:  # only unique photos have a batch
            members.setdefault(row["batch"], []).append(row["photo_id"])
            pixels[row["photo_id"]] = int(row.get("pixels") or 0)
    return DedupIndex({b: sorted(ids) for b, ids in members.items()}, pixels)


def dedup_batches():
    return dedup_index(*checkpoint_table(checkpoints.dedup))


def restore_batches():
    return sorted(dedup_batches().members)


def batch_members(wildcards):
    return dedup_batches().members.get(wildcards.batch, [])


def batch_tables(stage):
    """Input function: the tables of every batch of a stage (triage, manifest, report)."""
    return lambda wildcards: expand(stage_table(stage), batch=restore_batches())


def write_partial_manifest():
    """After a failed run (a whole job failed, e.g. killed for memory): account for every input."""
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
