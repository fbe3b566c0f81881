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


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _dedup_rows(results: Path) -> dict[str, dict]:
    table = results / "dedup" / "dedup.tsv"
    if not table.exists():
        return {}
    with open(table, encoding="utf-8", newline="") as fh:
        return {r["photo_id"]: r for r in csv.DictReader(fh, delimiter="\t")}


# (stage, output that proves it finished, log) in chain order, for a unique photo
def _chain(results: Path, logs: Path, pid: str, batch: str) -> list[tuple[str, Path, Path]]:
    return [
        ("stamp", results / "stamp" / f"{pid}.png", logs / "stamp" / f"{pid}.log"),
        ("face detection", results / "faces" / f"{pid}.json", logs / "detect_faces" / f"{pid}.log"),
        ("repair", results / "repair" / f"{pid}.json", logs / "repair" / f"{pid}.log"),
        ("enhance", results / "enhance" / f"{pid}.json", logs / "enhance" / f"{pid}.log"),
        ("matting", results / "matting" / f"{pid}.json", logs / "matte" / f"{pid}.log"),
        ("face restoration", results / "restore" / batch / f"{pid}.json",
         logs / "restore_faces" / f"{batch}.log"),
        ("QA", results / "qa" / f"{pid}.json", logs / "qa" / f"{pid}.log"),
    ]


def finished_photos(results: Path, decisions: dict[str, dict] | None = None) -> dict[str, tuple[str, str]]:
    """{photo_id: (status, restore batch)} of the unique photos whose whole chain finished: QA's status,
    or the reviewer's (`decisions`, see photoarchive.decisions)."""
    finished = {}
    for pid, entry in _dedup_rows(results).items():
        if entry["status"] != "unique":
            continue
        if not all(proof.exists() for _stage, proof, _log in _chain(results, Path("logs"), pid, entry["batch"])):
            continue
        status = (_json(results / "qa" / f"{pid}.json") or {}).get("status", "")
        if status in ("processed", "review"):
            finished[pid] = (effective_status(status, (decisions or {}).get(pid)), entry["batch"])
    return finished


def manifest_rows(results: Path, sources: list[Source], published: dict[str, tuple[str, str]],
                  logs: Path, decisions: dict[str, dict] | None = None) -> list[ManifestRow]:
    """One row per input file, from whatever the stages have written so far, with the reviewers'
    `decisions` (photoarchive.decisions.read_decisions) applied."""
    dedup = _dedup_rows(results)
    by_id = {s.photo_id: s for s in sources}
    blockers = _batch_blockers(results, logs, dedup, by_id)
    rows = []
    for source in sorted(sources, key=lambda s: s.relpath):
        pid = source.photo_id
        row = ManifestRow(photo_id=pid, source=source.relpath)
        record = _json(results / "ingest" / f"{pid}.json")
        if record is None:
            row.reason = "not checked yet: the ingest stage did not finish"
            row.log = str(logs / "ingest" / f"{pid}.log")
            rows.append(row)
            continue
        row.sha256 = record.get("sha256", "")
        stamp_notes = (_json(results / "stamp" / f"{pid}.json") or {}).get("notes")
        row.notes = "; ".join(stamp_notes if stamp_notes is not None else record.get("notes", []))
        if record["status"] != "ok":
            row.reason, row.log = record["reason"], str(logs / "ingest" / f"{pid}.log")
            rows.append(row)
            continue
        entry = dedup.get(pid)
        if entry is None:
            row.reason, row.log = "not compared yet: the dedup stage did not finish", str(logs / "dedup" / "dedup.log")
            rows.append(row)
            continue
        if entry["status"] == "duplicate":
            canonical = by_id.get(entry["duplicate_of"])
            row.status, row.reason = "duplicate", entry["reason"]
            row.duplicate_of = canonical.relpath if canonical else entry["duplicate_of"]
            rows.append(row)
            continue
        _fill_unique(row, results, logs, entry["batch"], published.get(pid), blockers.get(entry["batch"], []),
                     (decisions or {}).get(pid))
        rows.append(row)
    return rows


def _first_missing(results: Path, logs: Path, pid: str, batch: str) -> tuple[str, Path] | None:
    """(stage, log) of the first stage of a unique photo's chain that has not finished, or None."""
    for stage, proof, log_file in _chain(results, logs, pid, batch):
        if not proof.exists():
            return stage, log_file
    return None


def _batch_blockers(results: Path, logs: Path, dedup: dict[str, dict], by_id: dict[str, Source],
                    ) -> dict[str, list[tuple[str, str, Path]]]:
    """{batch: [(photo id, source, log)]} of photos that stopped before face restoration.

    Face restoration runs per batch, so such a photo holds back the other photos of its batch.
    """
    early = {"stamp", "repair", "enhance", "face detection", "matting"}
    blockers: dict[str, list[tuple[str, str, Path]]] = {}
    for pid, entry in dedup.items():
        if entry["status"] != "unique":
            continue
        missing = _first_missing(results, logs, pid, entry["batch"])
        if missing and missing[0] in early:
            source = by_id[pid].relpath if pid in by_id else pid
            blockers.setdefault(entry["batch"], []).append((pid, source, missing[1]))
    return blockers


def _fill_unique(row: ManifestRow, results: Path, logs: Path, batch: str,
                 published: tuple[str, str] | None, blockers: list[tuple[str, str, Path]] = (),
                 decision: dict | None = None) -> None:
    pid = row.photo_id
    enhance = _json(results / "enhance" / f"{pid}.json") or {}
    faces = _json(results / "faces" / f"{pid}.json") or {}
    matting = _json(results / "matting" / f"{pid}.json") or {}
    restore = _json(results / "restore" / batch / f"{pid}.json") or {}
    verdict = _json(results / "qa" / f"{pid}.json") or {}
    row.preset = enhance.get("preset", "")
    row.damage = (_json(results / "repair" / f"{pid}.json") or {}).get("shares_text", "")
    row.faces = str(len(faces["faces"])) if "faces" in faces else ""
    row.matting_backend = matting.get("backend", "")
    row.restore_backend = restore.get("backend", "")
    row.restore_model = Path(restore["model_file"]).name if restore.get("model_file") else ""
    row.restore_model_sha256 = restore.get("model_sha256") or ""
    row.face_detector = faces.get("detector", "") + (" (fallback)" if faces.get("fallback_reason") else "")
    _fill_faces(row, faces.get("faces", []), restore, verdict)
    missing = _first_missing(results, logs, pid, batch)
    if missing:
        stage, log_file = missing
        others = [(source, blocker_log) for blocker, source, blocker_log in blockers if blocker != pid]
        if stage == "face restoration" and others and not (logs / "restore_faces" / f"{batch}.log").exists():
            names = ", ".join(source for source, _ in others)
            row.reason = (f"waiting for face restoration of batch {batch}, which could not start because "
                          f"{names} (same batch) stopped earlier; re-run snakemake to retry")
            row.log = str(others[0][1])
            return
        row.reason = f"stopped in {stage}: see {log_file}; re-run snakemake to retry this photo"
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
        row.reason = f"not published yet: see {logs / 'publish'}; re-run snakemake"
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
