"""The stage contract: which files each stage leaves for a photo, the batch table that stands for them,
and the runner that takes a batch of photos through one stage.

Every per-photo stage runs as one job per batch of photos (an ingest chunk before dedup, a restore batch
after it), so a model is loaded and a process started once per batch, not once per photo. Under results/:

    <folder>/<photo>...               the stage's files for one photo; the last is its record (JSON)
    <folder>/batches/<batch>.json     the batch table: one row per photo, the job's declared output

A photo's record carries a key: the SHA-256 of the stage, the software version, the photo's parameters
and the keys of the upstream records it was made from. The runner skips a photo whose record has the
current key and whose files are all there, so a re-run job redoes only what changed or is missing. A
photo that raises is logged and listed as failed in the table; its batch mates carry on and the job
succeeds (a full or read-only disk still fails it). `retry_marker` (an input of every batch rule) makes
the next run retry a batch whose table lists a failure or a file that has gone, and only then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path

from photoarchive import __version__
from photoarchive.imageio import OutputWriteError, write_atomic
from photoarchive.ingest import IngestRecord
from photoarchive.records import (
    EnhanceRecord,
    FacesRecord,
    MattingRecord,
    PublishRecord,
    QARecord,
    RepairRecord,
    RestoreRecord,
    StampRecord,
)

log = logging.getLogger(__name__)


class RecordContractError(TypeError):
    """A stage returned a record that its declared type does not describe: a bug, not a photo's problem."""


def check_record(stage: str, record: dict) -> None:
    """Raise RecordContractError unless `record` has every required field of the stage's record type and
    no undeclared one."""
    kind = STAGES[stage].record
    if is_dataclass(kind):  # as its constructor: a field with a default may be left out
        required = {f.name for f in fields(kind) if f.default is MISSING and f.default_factory is MISSING}
        optional = {f.name for f in fields(kind)} - required
    else:
        required, optional = kind.__required_keys__, kind.__optional_keys__
    missing = sorted(required - record.keys())
    unknown = sorted(record.keys() - required - optional)
    if missing or unknown:
        raise RecordContractError(f"{stage} record does not fit {kind.__name__}: missing {missing}, "
                                  f"undeclared {unknown} (photoarchive/stages.py declares the records)")


@dataclass(frozen=True)
class Stage:
    name: str  # folder under results/
    label: str  # in words, for reasons
    files: tuple[str, ...]  # per photo, relative to results/; "{photo}" filled in; the record last
    record: type  # the record's type: a TypedDict (a dataclass for ingest)
    upstream: tuple[str, ...] = ()  # stages whose records this stage reads (their keys enter this key)

    def paths(self, results: Path, photo: str) -> list[Path]:
        return [Path(results) / f.format(photo=photo) for f in self.files]

    def record_path(self, results: Path, photo: str) -> Path:
        return Path(results) / self.files[-1].format(photo=photo)

    def table_path(self, results: Path, batch: str) -> Path:
        return Path(results) / self.name / "batches" / f"{batch}.json"


# In chain order. Rules, scripts, manifest, publish, report, review and package take paths from here.
STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("ingest", "ingest", ("ingest/{photo}.json",), IngestRecord),
    Stage("stamp", "stamp", ("stamp/{photo}.png", "stamp/{photo}.json"), StampRecord, ("ingest",)),
    Stage("faces", "face detection", ("faces/{photo}.json",), FacesRecord, ("stamp",)),
    Stage("repair", "repair", ("repair/{photo}.png", "repair/{photo}_damage.png", "repair/{photo}.json"),
          RepairRecord, ("stamp", "faces")),
    Stage("enhance", "enhance", ("enhance/{photo}.png", "enhance/{photo}.json"), EnhanceRecord, ("repair",)),
    Stage("matting", "matting", ("matting/{photo}_matte.png", "matting/{photo}_fg.png", "matting/{photo}.json"),
          MattingRecord, ("enhance", "faces")),
    Stage("restore", "face restoration", ("restore/{photo}.png", "restore/{photo}.json"), RestoreRecord,
          ("enhance", "faces", "matting")),
    Stage("qa", "QA", ("qa/{photo}.json",), QARecord, ("stamp", "enhance", "faces", "matting", "restore")),
    # the published files themselves are listed in the record ("files"): their names depend on the status
    Stage("publish", "publishing", ("publish/{photo}.json",), PublishRecord, ("qa",)),
)}
# After dedup, in the order a unique photo goes through them
PHOTO_CHAIN = ("stamp", "faces", "repair", "enhance", "matting", "restore", "qa", "publish")


def file_path(results: Path, stage: str, photo: str, index: int = 0) -> Path:
    """The stage's `index`-th file for a photo, e.g. ``file_path(results, "restore", pid)`` (the image)."""
    return STAGES[stage].paths(results, photo)[index]


def read_record(results: Path, stage: str, photo: str) -> dict | None:
    """A photo's record of a stage (its type is `STAGES[stage].record`, plus "key"), None when it has none
    (not run, failed, or unreadable)."""
    try:
        return json.loads(STAGES[stage].record_path(results, photo).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class UpstreamMissingError(Exception):
    """An upstream record the photo needs is missing: it failed or has not run."""


@dataclass
class BatchRow:
    photo_id: str
    status: str  # done (now, or before with the same key), failed, waiting (an upstream record is missing)
    reason: str = ""
    key: str = ""
    files: list[str] = field(default_factory=list)  # relative to results/


@dataclass
class BatchTable:
    stage: str
    batch: str
    rows: list[BatchRow]
    token: str  # the hash of the rows: the same when a job that ran again changed nothing

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)

    @classmethod
    def read(cls, path: Path) -> BatchTable:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{**data, "rows": [BatchRow(**r) for r in data["rows"]]})

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts


def photo_key(results: Path, stage: str, photo: str, parameters: Callable[[str], object]) -> str:
    """The key of a photo's record: stage, version, its `parameters(photo)` and its upstream records' keys.

    Raises UpstreamMissingError when an upstream record is missing (before `parameters` is called, so that
    it may read them)."""
    upstream = []
    for name in STAGES[stage].upstream:
        record = read_record(results, name, photo)
        if record is None or "key" not in record:
            raise UpstreamMissingError(f"waiting for {STAGES[name].label}")
        upstream.append(record["key"])
    text = json.dumps([stage, __version__, parameters(photo), upstream], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _relative(results: Path, paths: Iterable[Path]) -> list[str]:
    return [os.path.relpath(p, results) for p in paths]


def run_batch(results: Path, stage: str, batch: str, photos: Iterable[str],
              parameters: Callable[[str], object], work: Callable[[str, str], dict],
              table: Path) -> BatchTable:
    """Take a batch of photos through `stage`; write and return its table (photos done before with the same
    key are kept, not redone).

    `parameters(photo)` is what, besides upstream records, decides the photo's result (it enters the key).
    `work(photo, key)` writes the photo's files (atomically) and returns its record; the runner writes the
    record last, with the key. A record may list more files in "files" (paths relative to the working
    folder, e.g. published files).
    """
    results = Path(results)
    spec = STAGES[stage]
    rows, made = [], 0
    photos = list(photos)
    for n, photo in enumerate(photos, start=1):
        try:
            key = photo_key(results, stage, photo, parameters)
        except UpstreamMissingError as waiting:
            rows.append(BatchRow(photo, "waiting", str(waiting)))
            log.warning("[%d/%d] %s: %s", n, len(photos), photo, waiting)
            continue
        record = read_record(results, stage, photo)
        files = spec.paths(results, photo)
        if record is not None and record.get("key") == key:
            extra = [results / f for f in record.get("files", [])]
            if all(p.exists() for p in files + extra):
                rows.append(BatchRow(photo, "done", "", key, _relative(results, files + extra)))
                log.info("[%d/%d] %s: unchanged, kept", n, len(photos), photo)
                continue
        spec.record_path(results, photo).unlink(missing_ok=True)  # no stale record while the photo is redone
        try:
            record = work(photo, key)
        except OutputWriteError:  # a full or read-only disk fails the whole job: its message says what to do
            raise
        except Exception as exc:  # one photo's failure is recorded; its batch mates carry on
            log.exception("[%d/%d] %s: %s failed", n, len(photos), photo, spec.label)
            rows.append(BatchRow(photo, "failed", f"{type(exc).__name__}: {exc}", key))
            continue
        check_record(stage, record)  # a record off its type is a bug: the job fails, saying which fields
        record = {**record, "key": key}
        write_atomic(spec.record_path(results, photo),
                     json.dumps(record, indent=1, default=float, ensure_ascii=False).encode("utf-8"))
        extra = [results / f for f in record.get("files", [])]
        rows.append(BatchRow(photo, "done", "", key, _relative(results, files + extra)))
        made += 1
        log.info("[%d/%d] %s: done", n, len(photos), photo)
    # Same rows, same bytes: a batch job that ran again and changed nothing leaves its table's content as it
    # was, so Snakemake (which compares the checksums of small inputs) does not re-run the next stage.
    token = hashlib.sha256(json.dumps([asdict(r) for r in rows]).encode("utf-8")).hexdigest()[:16]
    result = BatchTable(stage, batch, rows, token)
    write_atomic(Path(table), result.to_json().encode("utf-8"))
    log.info("%s %s: %s (%d made now)", stage, batch,
             ", ".join(f"{v} {k}" for k, v in sorted(result.counts().items())), made)
    return result


def retry_marker(table: Path, results: Path) -> list[Path]:
    """An input of a batch rule: ``<batch>.retry`` beside its table, when there is one.

    Where the table lists a failed photo, or a file it lists has gone (deleted by hand), and the marker is
    not newer than the table, the marker is written anew (with the table's token and the problems, so its
    bytes change too). Being newer than the rule's output, it makes Snakemake run the batch again, which
    redoes just those photos; a job that succeeds leaves the marker older than its new table, and a
    finished batch is left alone. Called while Snakemake builds its plan, dry runs included: the only file
    this workflow writes then.
    """
    marker = Path(table).with_suffix(".retry")
    try:
        data = BatchTable.read(table)
    except (OSError, ValueError, TypeError, KeyError):
        return [marker] if marker.exists() else []
    results = Path(results)
    problems = [f"{row.photo_id}: {row.reason}" for row in data.rows if row.status == "failed"]
    problems += [f"{row.photo_id}: {f} is missing" for row in data.rows for f in row.files
                 if not (results / f).exists()]
    if problems and (not marker.exists() or marker.stat().st_mtime_ns <= Path(table).stat().st_mtime_ns):
        write_atomic(marker, json.dumps({"table": data.token, "noticed": time.time(), "problems": problems},
                                        indent=1, ensure_ascii=False).encode("utf-8"))
    return [marker] if marker.exists() else []


def batch_index(results: Path, stage: str) -> dict[str, str]:
    """{photo: batch} from a stage's tables (ingest: the chunk of each input file)."""
    index = {}
    for table in sorted((Path(results) / stage / "batches").glob("*.json")):
        try:
            index.update((row.photo_id, table.stem) for row in BatchTable.read(table).rows)
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return index
