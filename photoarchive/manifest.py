"""The manifest that accounts for every input file, and the list of failures (the HTML report is
photoarchive.report).

It reads what the stages left under results/, so it also works after a partial run: a photo whose
chain did not finish is listed as failed, naming the stage and its log file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from photoarchive.decisions import decision_text, effective_status
from photoarchive.imageio import write_atomic
from photoarchive.ingest import Source
from photoarchive.stages import PHOTO_CHAIN, STAGES, BatchRow, BatchTable, batch_index, read_record

log = logging.getLogger(__name__)

STATUS_MEANING = {
    "processed": "finished and passed every QA check: results/processed/",
    "review": "finished, but a QA check asks a person to look: results/review/ (reasons given)",
    "rejected": "a reviewer rejected the result: results/rejected/ (reviewer, time and note in the reason); "
                "the original stays the archive's copy",
    "duplicate": "same photo as another input (listed, not processed; the original stays where it is)",
    "failed": "could not be processed; the reason says why and what to do",
}


@dataclass
class ManifestRow:
    photo_id: str
    source: str
    sha256: str = ""
    status: str = "failed"
    duplicate_of: str = ""
    reason: str = ""
    faces: str = ""
    preset: str = ""
    damage: str = ""  # repaired share of pixels per damage type, e.g. "scratch 0.12%; dust 0.03%"
    damage_detector: str = ""  # what found the damage: "learned", or "classical (fallback)" without its weights
    restore_backend: str = ""
    restore_model: str = ""
    restore_model_sha256: str = ""
    matting_backend: str = ""
    face_detector: str = ""  # backend that found the faces ("(fallback)" when auto had to fall back)
    identity_distance: str = ""  # largest embedding distance scan → result over the faces (QA)
    face_records: str = ""  # JSON per face: detector, score, box, landmarks, strength, identity distance
    output: str = ""
    log: str = ""
    notes: str = ""  # what happened to the scan on the way in (multi-page, CMYK, catalogue values...)
    decision: str = ""  # a reviewer's decision (accept, reject, retune) from the decisions file


def _dedup_rows(results: Path) -> dict[str, dict]:
    table = results / "dedup" / "dedup.tsv"
    if not table.exists():
        return {}
    with open(table, encoding="utf-8", newline="") as fh:
        return {r["photo_id"]: r for r in csv.DictReader(fh, delimiter="\t")}


RETRY = "re-run snakemake to retry"  # in the reason of a photo that failed in a stage (not for bad input)


def retryable(row: dict[str, str]) -> bool:
    """A manifest row of a photo that failed in a stage, which the next run retries."""
    return row["status"] == "failed" and RETRY in row["reason"]


def _table_rows(results: Path, stage: str, batch: str) -> dict[str, BatchRow]:
    try:
        return {r.photo_id: r for r in BatchTable.read(STAGES[stage].table_path(results, batch)).rows}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def _first_missing(results: Path, logs: Path, pid: str, batch: str) -> tuple[str, str, Path] | None:
    """(stage label, what its batch table says, log) of the first stage of a unique photo's chain (before
    publishing) without a record, or None when the chain is complete."""
    for stage in PHOTO_CHAIN[:-1]:
        if not STAGES[stage].record_path(results, pid).exists():
            row = _table_rows(results, stage, batch).get(pid)
            said = row.reason if row is not None and row.status == "failed" else ""
            return STAGES[stage].label, said, logs / stage / f"{batch}.log"
    return None


def manifest_rows(results: Path, sources: list[Source], published: dict[str, tuple[str, str]],
                  logs: Path, decisions: dict[str, dict] | None = None) -> list[ManifestRow]:
    """One row per input file, from whatever the stages have written so far, with the reviewers'
    `decisions` (photoarchive.decisions.read_decisions) applied."""
    dedup = _dedup_rows(results)
    by_id = {s.photo_id: s for s in sources}
    chunks = batch_index(results, "ingest")
    rows = []
    for source in sorted(sources, key=lambda s: s.relpath):
        pid = source.photo_id
        row = ManifestRow(photo_id=pid, source=source.relpath)
        record = read_record(results, "ingest", pid)
        if record is None:
            row.reason = f"not checked yet: the ingest stage did not finish; {RETRY}"
            row.log = str(logs / "ingest" / f"{chunks[pid]}.log" if pid in chunks else logs / "ingest")
            rows.append(row)
            continue
        row.sha256 = record.get("sha256", "")
        stamp_notes = (read_record(results, "stamp", pid) or {}).get("notes")
        row.notes = "; ".join(stamp_notes if stamp_notes is not None else record.get("notes", []))
        if record["status"] != "ok":
            row.reason = record["reason"]
            row.log = str(logs / "ingest" / f"{chunks[pid]}.log" if pid in chunks else logs / "ingest")
            rows.append(row)
            continue
        entry = dedup.get(pid)
        if entry is None:
            row.reason = f"not compared yet: the dedup stage did not finish; {RETRY}"
            row.log = str(logs / "dedup" / "dedup.log")
            rows.append(row)
            continue
        if entry["status"] == "duplicate":
            canonical = by_id.get(entry["duplicate_of"])
            row.status, row.reason = "duplicate", entry["reason"]
            row.duplicate_of = canonical.relpath if canonical else entry["duplicate_of"]
            rows.append(row)
            continue
        _fill_unique(row, results, logs, entry["batch"], published.get(pid), (decisions or {}).get(pid))
        rows.append(row)
    return rows


def _fill_unique(row: ManifestRow, results: Path, logs: Path, batch: str,
                 published: tuple[str, str] | None, decision: dict | None = None) -> None:
    pid = row.photo_id
    enhance = read_record(results, "enhance", pid) or {}
    faces = read_record(results, "faces", pid) or {}
    matting = read_record(results, "matting", pid) or {}
    restore = read_record(results, "restore", pid) or {}
    verdict = read_record(results, "qa", pid) or {}
    row.preset = enhance.get("preset", "")
    repair = read_record(results, "repair", pid) or {}
    row.damage = repair.get("shares_text", "")
    row.damage_detector = {"learned": "learned", "classical": "classical (fallback)"}.get(repair.get("detector"), "")
    row.faces = str(len(faces["faces"])) if "faces" in faces else ""
    row.matting_backend = matting.get("backend", "")
    row.restore_backend = restore.get("backend", "")
    row.restore_model = Path(restore["model_file"]).name if restore.get("model_file") else ""
    row.restore_model_sha256 = restore.get("model_sha256") or ""
    row.face_detector = faces.get("detector", "") + (" (fallback)" if faces.get("fallback_reason") else "")
    _fill_faces(row, faces.get("faces", []), restore, verdict)
    missing = _first_missing(results, logs, pid, batch)
    if missing:
        stage, said, log_file = missing
        row.reason = f"stopped in {stage}{f' ({said})' if said else ''}: see {log_file}; {RETRY} this photo"
        row.log = str(log_file)
        return
    qa_status = verdict.get("status", "")
    if published is None or qa_status not in ("processed", "review"):
        row.reason = "QA verdict missing or unreadable"
        return
    status = effective_status(qa_status, decision)
    row.decision = (decision or {}).get("decision", "")
    relname, ext = published
    out = results / status / f"{relname}_restored.{ext}"
    if not out.exists():
        row.reason = f"not published yet: see {logs / 'publish' / f'{batch}.log'}; {RETRY}"
        return
    row.status, row.output = status, str(out)
    row.reason = "; ".join(verdict.get("reasons", [])) or "all QA checks passed"
    if decision:  # the reviewer's word first, QA's reasons kept
        row.reason = f"{decision_text(decision)}; QA: {row.reason}"


def _fill_faces(row: ManifestRow, faces: list[dict], restore: dict, verdict: dict) -> None:
    """The per-face columns from the face, restore and QA records."""
    restored = {entry["index"]: entry for entry in restore.get("faces", [])}
    checked = {check["index"]: check for check in verdict.get("metrics", {}).get("face_checks", [])}
    records = []
    for index, face in enumerate(faces):
        entry, check = restored.get(index, {}), checked.get(index, {})
        records.append({"index": index, "detector": face.get("detector"), "score": face.get("score"),
                        "box": face.get("box"), "landmarks": face.get("landmarks"),
                        "strength": entry.get("strength"), "identity": entry.get("identity"),
                        "identity_distance": check.get("identity_distance")})
    row.face_records = json.dumps(records, separators=(",", ":")) if records else ""
    distances = [r["identity_distance"] for r in records if r["identity_distance"] is not None]
    row.identity_distance = f"{max(distances):.3f}" if distances else ""


def write_manifest(results: Path, sources: list[Source], published: dict[str, tuple[str, str]],
                   logs: Path, decisions: dict[str, dict] | None = None) -> list[ManifestRow]:
    """Write results/manifest.csv and results/failed.txt (failed inputs with reason and log)."""
    rows = manifest_rows(results, sources, published, logs, decisions)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(ManifestRow)], lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(r) for r in rows)
    write_atomic(results / "manifest.csv", buffer.getvalue().encode("utf-8"))
    failed = [f"{r.source}\t{r.reason}\t{r.log}" for r in rows if r.status == "failed"]
    header = "# source\treason\tlog file  (re-run snakemake to retry; fix the input first if the reason says so)\n"
    write_atomic(results / "failed.txt", (header + "".join(f"{line}\n" for line in failed)).encode("utf-8"))
    counts = {s: sum(r.status == s for r in rows) for s in STATUS_MEANING}
    log.info("manifest: %d inputs: %s", len(rows), ", ".join(f"{n} {s}" for s, n in counts.items()))
    return rows


def read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))
