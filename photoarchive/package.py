"""Hand-off to the archive: BagIt bags in Archivematica's transfer layout, with PREMIS provenance.

One bag per run (or per collection: per top-level input folder) under `results/package/<bag>/`:

    bagit.txt, bag-info.txt, manifest-sha256.txt, tagmanifest-sha256.txt   (BagIt, RFC 8493)
    data/objects/<original relative path>            masters: the scans, byte-identical (hard link or copy)
    data/objects/service/<relative dir>/<stem>.<ext>  production master: the restored image (same base name)
    data/objects/service/<relative dir>/<stem>_matte.png, _fg.png, _damage.png   further derivatives
    data/metadata/metadata.csv                       Dublin Core + pipeline fields, `filename` first
    data/metadata/checksum.sha256                    every file under objects/ (`../objects/...` paths)
    data/metadata/premis.xml                         PREMIS 3: objects, events, agents

Originals are never moved or written: a master is a hard link to the original (when the file system
allows it and `link` is not `copy`) or a copy. A bag is built in a hidden folder beside its final
place and renamed into place whole; a bag whose plan (files, sizes, modification times, manifest,
options) is unchanged and whose Payload-Oxum still holds is left alone.

What a photo went through is read from the stages' per-photo records (photoarchive.stages); its
derivatives are the published files its publish record lists.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import logging
import mimetypes
import os
import re
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import bagit
from lxml import etree

from photoarchive import __version__
from photoarchive.imageio import atomic_directory, write_atomic
from photoarchive.ingest import Source, archive_id, file_sha256, is_utf8, locate_source
from photoarchive.stages import STAGES, read_record

log = logging.getLogger(__name__)

LAYOUTS = ("run", "collection")
LINK_MODES = ("auto", "hardlink", "copy")
PREMIS_NS = "http://www.loc.gov/premis/v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_P = f"{{{PREMIS_NS}}}"
PLAN_FIELD = "Photoarchive-Plan-SHA256"  # bag-info field: digest of what the bag was built from
DERIVATIVE_SUFFIXES = ("_matte.png", "_fg.png", "_damage.png")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NAMESPACE = uuid.UUID("8f0f6a52-3c4e-4d55-9a55-6b1c0d7e2f10")  # event/agent ids are uuid5 under this

# Stage records under results/ and the PREMIS event type (Library of Congress vocabulary) for each.
STAGE_EVENTS = {
    "stamp": ("metadata modification", "upright working master with the scan's tags, catalogue fields, provenance"),
    "repair": ("modification", "dust, scratch and crack repair"),
    "enhance": ("modification", "enhancement: colour cast, denoise, contrast, sharpening"),
    "faces": ("metadata extraction", "face detection"),
    "matting": ("creation", "person matting: alpha matte and foreground cut-out"),
    "restore": ("modification", "face restoration"),
    "qa": ("validation", "QA triage: processed or review"),
}
DC_COLUMNS = {"title": "dc.title", "date": "dc.date", "description": "dc.description", "people": "dc.subject",
              "archive_id": "dc.identifier"}
_SKIP_MANIFEST_COLUMNS = {"photo_id", "source", "output", "log"}


@dataclass(frozen=True)
class PackageOptions:
    """What `config["package"]` sets."""

    layout: str = "run"
    link: str = "auto"
    source_organization: str = ""
    external_identifier: str = "photoarchive"
    processes: int = 1

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"package.layout must be one of {LAYOUTS}, not {self.layout!r}")
        if self.link not in LINK_MODES:
            raise ValueError(f"package.link must be one of {LINK_MODES}, not {self.link!r}")


@dataclass
class PayloadFile:
    """One file of a bag's objects/ folder and where it comes from."""

    dest: str  # path below data/, e.g. "objects/family/img001.jpg"
    src: Path
    role: str  # "master", "restored", "matte", "fg", "damage"
    photo_id: str
    original_name: str  # where it was found: the input's relative path, or results/... for derivatives
    sha256: str = ""
    size: int = 0


@dataclass
class Entry:
    """One input (one manifest row) with its payload files."""

    row: dict[str, str]
    source: Source | None
    files: list[PayloadFile] = field(default_factory=list)

    @property
    def master(self) -> PayloadFile | None:
        return next((f for f in self.files if f.role == "master"), None)


@dataclass
class BagResult:
    name: str
    path: Path
    built: bool  # False: an unchanged bag was left alone
    files: int
    bytes: int
    links: int  # masters that are hard links to the originals


def read_rows(path: Path) -> list[dict[str, str]]:
    """A CSV's rows as dicts by column name (extra columns kept, missing ones read as "")."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: v or "" for k, v in row.items() if k} for row in csv.DictReader(fh)]


def read_decisions(path: Path | None) -> dict[str, dict[str, str]]:
    """Review decisions by photo id, from a CSV or JSON file (list of objects, or {photo_id: object}).

    Each decision may carry `decision`, `reviewer`, `time` (or `date`) and `note`; a missing file gives {}.
    """
    if path is None or not Path(path).is_file():
        return {}
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix.lower() == ".json":
        data = json.loads(text)
        items = [{"photo_id": k, **v} for k, v in data.items()] if isinstance(data, dict) else list(data)
    else:
        items = list(csv.DictReader(io.StringIO(text, newline="")))
    # nested values (a retune's overrides, earlier decisions) are not PREMIS fields: left out
    return {str(d["photo_id"]): {k: str(v) for k, v in d.items() if v is not None and not isinstance(v, (dict, list))}
            for d in items if d.get("photo_id")}


def collection_of(relpath: str) -> str:
    """The collection of an input: its top-level folder (or ZIP), "_top" for files at the top."""
    parts = PurePosixPath(relpath).parts
    return parts[0] if len(parts) > 1 else "_top"


def _bag_name(options: PackageOptions, collection: str | None) -> str:
    base = _UNSAFE.sub("_", options.external_identifier).strip("._-") or "bag"
    if collection is None:
        return base
    return f"{base}_{_UNSAFE.sub('_', collection).strip('._-') or 'collection'}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _original_path(source: Source, input_dir: Path, results: Path) -> Path | None:
    """The original file behind a source (a ZIP member: its unpacked copy), or None if unreadable."""
    if source.refusal or not is_utf8(source.relpath):
        return None
    if source.archive:
        unpack = results / "unpacked" / archive_id(source.archive)
        if not (unpack / "members.json").is_file():
            return None
        path, _why = locate_source(source, unpack)
    else:
        path = input_dir / source.relpath
    return path if path is not None and path.is_file() and not path.is_symlink() else None


def published_files(results: Path, photo: str) -> dict[str, Path]:
    """{role: path} of the files the publish stage's record lists for a photo ("restored", "matte", "fg",
    "damage"); {} when it has no record (not published, or its publishing failed)."""
    record = read_record(results, "publish", photo) or {}
    found: dict[str, Path] = {}
    for name in record.get("files", []):
        role = next((s[1:-4] for s in DERIVATIVE_SUFFIXES if name.endswith(s)),
                    "restored" if PurePosixPath(name).stem.endswith("_restored") else "")
        if role:
            found.setdefault(role, Path(results) / name)
        else:
            log.warning("%s: the publish record lists %s, which is no known derivative: not packaged", photo, name)
    return found


def plan_entries(results: Path, input_dir: Path, manifest: Path, sources: list[Source]) -> list[Entry]:
    """Every manifest row with its payload: the master (when the original can be read) and derivatives.

    The derivatives are the files the photo's publish record lists (those still there). Duplicates and
    failed inputs keep their original as a master when it is readable (the archive gets every file it
    was given; PREMIS says what happened to each); they have no derivatives.
    """
    by_relpath = {s.relpath: s for s in sources}
    entries = []
    taken: set[str] = set()
    for row in read_rows(manifest):
        source = by_relpath.get(row.get("source", ""))
        entry = Entry(row=row, source=source)
        entries.append(entry)
        if source is None:
            continue
        original = _original_path(source, input_dir, results)
        if original is None:
            continue
        rel = PurePosixPath(_CONTROL.sub("_", source.relpath))  # a line break in a name: "_" in the bag
        if rel.parts[0].casefold() in ("service", "access"):  # the input's own folder, not Archivematica's
            rel = PurePosixPath(f"_{rel.parts[0]}", *rel.parts[1:])
        entry.files.append(PayloadFile(f"objects/{rel}", original, "master", source.photo_id, source.relpath))
        status = row.get("status", "")
        published = published_files(results, source.photo_id)
        # a photo a reviewer rejected hands over its original alone (PREMIS records the decision)
        if status not in ("processed", "review") or "restored" not in published:
            continue
        ext = published["restored"].suffix
        stem = rel.parent / rel.stem
        dest = f"objects/service/{stem}{ext}"
        if dest.casefold() in taken:  # a.webp and a.png both restore to a.png: keep them apart
            stem = rel.parent / f"{rel.stem}_{rel.suffix.lstrip('.')}"
            dest = f"objects/service/{stem}{ext}"
        derivatives = [(dest, published["restored"], "restored")]
        derivatives += [(f"objects/service/{stem}{suffix}", published[suffix[1:-4]], suffix[1:-4])
                        for suffix in DERIVATIVE_SUFFIXES if suffix[1:-4] in published]
        for dest, src, role in derivatives:
            if src.is_file():
                taken.add(dest.casefold())
                entry.files.append(PayloadFile(dest, src, role, source.photo_id,
                                               f"results/{src.relative_to(results).as_posix()}"))
    return entries


def _place(src: Path, dst: Path, link: str) -> bool:
    """Hard-link or copy `src` to `dst` (never move); True when a hard link was made."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link != "copy":
        try:
            os.link(src, dst)
            return True
        except OSError as exc:
            if link == "hardlink":
                raise OSError(exc.errno, f"cannot hard-link {src} into the bag ({exc.strerror}); set "
                                         "package.link: auto (copy when links are impossible) or copy") from exc
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES,
                                 errno.EOPNOTSUPP):
                raise
    shutil.copy2(src, dst)
    return False


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _format_name(path: str) -> str:
    kind, _ = mimetypes.guess_type(path)
    return kind or "application/octet-stream"


# ---------------------------------------------------------------------------------------- metadata.csv
def metadata_csv(entries: list[Entry], catalogue: dict[str, dict[str, str]]) -> bytes:
    """Archivematica's metadata.csv: `filename` first (objects/... paths), Dublin Core, then the pipeline's fields.

    One row per master; the pipeline's fields are the manifest's columns (by name, extra ones too)
    prefixed `photoarchive.`, plus the master's derivatives in `photoarchive.derivatives`.
    """
    extra: list[str] = []
    for entry in entries:
        extra += [c for c in entry.row if c not in _SKIP_MANIFEST_COLUMNS and c not in extra]
    header = ["filename", *DC_COLUMNS.values(), "dc.type", "dc.format", "dc.source",
              *(f"photoarchive.{c}" for c in extra), "photoarchive.derivatives"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for entry in entries:
        master = entry.master
        if master is None:
            continue
        cat = catalogue.get(entry.source.relpath if entry.source else "", {})
        writer.writerow([master.dest, *(cat.get(k, "").strip() for k in DC_COLUMNS), "StillImage",
                         _format_name(master.dest), master.original_name, *(entry.row.get(c, "") for c in extra),
                         "; ".join(f.dest for f in entry.files if f.role != "master")])
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------------------- PREMIS
@dataclass
class _Agent:
    key: str
    name: str
    kind: str  # "software" or "person"
    version: str = ""
    note: str = ""


@dataclass
class _Event:
    key: str
    type: str
    date: str
    detail: str
    outcome: str
    outcome_note: str = ""
    agents: list[str] = field(default_factory=list)
    objects: list[tuple[str, str]] = field(default_factory=list)  # (object id, role)


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{_P}{tag}", **attrs)
    if text is not None:
        element.text = text
    return element


class _Provenance:
    """Collects PREMIS events and agents while walking the stage records."""

    def __init__(self) -> None:
        self.events: list[_Event] = []
        self.agents: dict[str, _Agent] = {}

    def agent(self, name: str, version: str = __version__, model_file: str | None = None,
              model_sha256: str | None = None, kind: str = "software", note: str = "") -> str:
        if kind == "software" and not note:
            note = (f"model file {Path(model_file).name}; sha256 {model_sha256}" if model_file
                    else "model file: none (classical method, no trained model); sha256: none")
        key = str(uuid.uuid5(_NAMESPACE, f"agent|{kind}|{name}|{version}|{note}"))
        self.agents.setdefault(key, _Agent(key, name, kind, version if kind == "software" else "", note))
        return key

    def event(self, photo: str, stage: str, type_: str, date: str, detail: str, outcome: str,
              agents: list[str], objects: list[tuple[str, str]], outcome_note: str = "") -> None:
        key = str(uuid.uuid5(_NAMESPACE, f"event|{photo}|{stage}"))
        self.events.append(_Event(key, type_, date, detail, outcome, outcome_note, agents, objects))


def _models_in(record: dict) -> list[tuple[str, str]]:
    """Every (model file, SHA-256) a stage record names, at any depth (`*model_file` + `*model_sha256`
    keys, or {"file", "sha256"} objects), e.g. restore's GPEN weights and its identity guard's models."""
    found: list[tuple[str, str]] = []
    if isinstance(record, dict):
        if isinstance(record.get("file"), str) and record.get("sha256"):
            found.append((record["file"], str(record["sha256"])))
        for key, value in record.items():
            if key.endswith("model_file") and isinstance(value, str) and value:
                found.append((value, str(record.get(key[:-len("file")] + "sha256") or "not recorded")))
            elif isinstance(value, dict) and key != "faces":
                found += _models_in(value)
    return list(dict.fromkeys(found))


def _stage_agent(prov: _Provenance, stage: str, record: dict) -> str:
    """The software agent of a stage record: photoarchive + stage + backend, with its model files and hashes."""
    backend = record.get("backend") or record.get("detector") or ""
    name = f"photoarchive {stage}" + (f" ({backend})" if backend else "")
    notes = [f"model file {Path(f).name}; sha256 {h}" for f, h in _models_in(record)]
    return prov.agent(name, note="; ".join(notes)) if notes else prov.agent(name)


def _entry_events(prov: _Provenance, entry: Entry, results: Path, decisions: dict[str, dict[str, str]],
                  dedup_date: str) -> None:
    row, source = entry.row, entry.source
    pid = row.get("photo_id", "")
    master = entry.master
    master_ref = [(master.dest, "source")] if master else []
    outcome_refs = {f.role: (f.dest, "outcome") for f in entry.files if f.role != "master"}
    pipeline = prov.agent("photoarchive")
    ingest_path = STAGES["ingest"].record_path(results, pid)
    ingest = read_record(results, "ingest", pid) or {}
    ingest_date = _iso(ingest_path.stat().st_mtime) if ingest_path.exists() else dedup_date
    if source is not None and source.archive:
        prov.event(pid, "unpack", "unpacking", ingest_date,
                   f"member {source.member!r} of {source.archive} unpacked into results/unpacked/", "success",
                   [pipeline], master_ref)
    ok = ingest.get("status") == "ok"
    keys = ("width", "height", "bit_depth", "mode", "phash", "notes")
    facts = json.dumps({k: ingest.get(k) for k in keys if k in ingest}, ensure_ascii=False)
    prov.event(pid, "ingest", "ingestion", ingest_date,
               f"ingest of {row.get('source', '')!r}: decoded once and checked; {facts}",
               "success" if ok else "failure", [pipeline], master_ref,
               "" if ok else (ingest.get("reason") or row.get("reason", "not ingested")))
    if ingest.get("sha256") or row.get("sha256"):
        recorded = ingest.get("sha256") or row.get("sha256")
        same = master is None or master.sha256 == recorded
        prov.event(pid, "digest", "message digest calculation", ingest_date, f"SHA-256 at ingest: {recorded}",
                   "success" if same else "failure", [prov.agent("photoarchive (hashlib SHA-256)")], master_ref,
                   "" if same else f"the original's SHA-256 is now {master.sha256}: it changed after ingest")
    status = row.get("status", "")
    if status == "duplicate":
        prov.event(pid, "dedup", "appraisal", dedup_date,
                   "duplicate detection (SHA-256 and perceptual hash)", "duplicate", [pipeline], master_ref,
                   f"duplicate of {row.get('duplicate_of', '')}: {row.get('reason', '')}; not processed, "
                   "the original is kept as a master")
        return
    if ok:
        prov.event(pid, "dedup", "appraisal", dedup_date, "duplicate detection (SHA-256 and perceptual hash)",
                   "unique", [pipeline], master_ref)
    for stage, (type_, what) in STAGE_EVENTS.items():
        path = STAGES[stage].record_path(results, pid)
        record = read_record(results, stage, pid)
        if record is None:
            if stage == "repair" and "damage" in outcome_refs:  # a published mask without its record
                prov.event(pid, stage, type_, dedup_date, what, "success", [pipeline],
                           master_ref + [outcome_refs["damage"]])
            continue
        objects = list(master_ref)
        objects += [outcome_refs[r] for r in {"repair": ["damage"], "matting": ["matte", "fg"],
                                              "restore": ["restored"]}.get(stage, []) if r in outcome_refs]
        outcome = record.get("status", "success") if stage == "qa" else "success"
        note = "; ".join(record.get("reasons", [])) if stage == "qa" else "; ".join(
            str(n) for n in record.get("notes", []) or [])
        if stage == "restore" and record.get("fallback_reason"):
            note = f"{note}; {record['fallback_reason']}".strip("; ")
        # the record's key (photoarchive.stages) digests these parameters and the upstream keys: not one itself
        params = {k: v for k, v in record.items() if k not in ("notes", "reasons", "faces", "metrics", "key")}
        prov.event(pid, stage, type_, _iso(path.stat().st_mtime),
                   f"{what}; parameters: {json.dumps(params, ensure_ascii=False, sort_keys=True, default=str)}",
                   outcome, [_stage_agent(prov, stage, record)], objects, note)
    if status == "failed":
        prov.event(pid, "failure", "ingestion" if not ok else "modification", dedup_date,
                   "the pipeline could not finish this input", "failure", [pipeline], master_ref,
                   f"{row.get('reason', '')}" + (f" (log: {row['log']})" if row.get("log") else ""))
    decision = decisions.get(pid)
    if decision:
        reviewer = prov.agent(decision.get("reviewer") or "unnamed reviewer", kind="person",
                              note="reviewer of the QA review queue")
        refs = master_ref + [outcome_refs[r] for r in ("restored",) if r in outcome_refs]
        prov.event(pid, "review", "appraisal", decision.get("time") or decision.get("date") or dedup_date,
                   "review decision on the QA review queue", decision.get("decision", "recorded"), [reviewer],
                   refs, decision.get("note", ""))


def premis_xml(entries: list[Entry], results: Path, decisions: dict[str, dict[str, str]]) -> bytes:
    """PREMIS 3 for a bag's payload: one object per file, events per stage, agents for software and reviewers."""
    dedup = results / "dedup" / "dedup.tsv"
    dedup_date = _iso(dedup.stat().st_mtime) if dedup.exists() else _iso(datetime.now(UTC).timestamp())
    prov = _Provenance()
    for entry in entries:
        _entry_events(prov, entry, results, decisions, dedup_date)
    by_object: dict[str, list[str]] = {}
    for event in prov.events:
        for obj, _role in event.objects:
            by_object.setdefault(obj, []).append(event.key)
    root = etree.Element(f"{_P}premis", nsmap={"premis": PREMIS_NS, "xsi": XSI_NS}, version="3.0")
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{PREMIS_NS} http://www.loc.gov/standards/premis/v3/premis.xsd")
    for entry in entries:
        masters = [f for f in entry.files if f.role == "master"]
        for pf in entry.files:
            obj = _sub(root, "object")
            obj.set(f"{{{XSI_NS}}}type", "premis:file")
            ident = _sub(obj, "objectIdentifier")
            _sub(ident, "objectIdentifierType", "local")
            _sub(ident, "objectIdentifierValue", pf.dest)
            chars = _sub(obj, "objectCharacteristics")
            _sub(chars, "compositionLevel", "0")
            fixity = _sub(chars, "fixity")
            _sub(fixity, "messageDigestAlgorithm", "SHA-256")
            _sub(fixity, "messageDigest", pf.sha256)
            _sub(fixity, "messageDigestOriginator", f"photoarchive {__version__}")
            _sub(chars, "size", str(pf.size))
            fmt = _sub(chars, "format")
            designation = _sub(fmt, "formatDesignation")
            _sub(designation, "formatName", _format_name(pf.dest))
            _sub(fmt, "formatNote", "archival master (unaltered scan)" if pf.role == "master"
                 else f"derivative: {pf.role}")
            _sub(obj, "originalName", pf.original_name)
            if pf.role != "master" and masters:
                rel = _sub(obj, "relationship")
                _sub(rel, "relationshipType", "derivation")
                _sub(rel, "relationshipSubType", "has source")
                related = _sub(rel, "relatedObjectIdentifier")
                _sub(related, "relatedObjectIdentifierType", "local")
                _sub(related, "relatedObjectIdentifierValue", masters[0].dest)
            for key in by_object.get(pf.dest, []):
                link = _sub(obj, "linkingEventIdentifier")
                _sub(link, "linkingEventIdentifierType", "UUID")
                _sub(link, "linkingEventIdentifierValue", key)
    for event in prov.events:
        ev = _sub(root, "event")
        ident = _sub(ev, "eventIdentifier")
        _sub(ident, "eventIdentifierType", "UUID")
        _sub(ident, "eventIdentifierValue", event.key)
        _sub(ev, "eventType", event.type)
        _sub(ev, "eventDateTime", event.date)
        _sub(_sub(ev, "eventDetailInformation"), "eventDetail", event.detail)
        outcome = _sub(ev, "eventOutcomeInformation")
        _sub(outcome, "eventOutcome", event.outcome)
        if event.outcome_note:
            _sub(_sub(outcome, "eventOutcomeDetail"), "eventOutcomeDetailNote", event.outcome_note)
        for key in event.agents:
            link = _sub(ev, "linkingAgentIdentifier")
            _sub(link, "linkingAgentIdentifierType", "UUID")
            _sub(link, "linkingAgentIdentifierValue", key)
            _sub(link, "linkingAgentRole", "executing program" if prov.agents[key].kind == "software"
                 else "authorizer")
        for obj, role in event.objects:
            link = _sub(ev, "linkingObjectIdentifier")
            _sub(link, "linkingObjectIdentifierType", "local")
            _sub(link, "linkingObjectIdentifierValue", obj)
            _sub(link, "linkingObjectRole", role)
    for agent in prov.agents.values():
        ag = _sub(root, "agent")
        ident = _sub(ag, "agentIdentifier")
        _sub(ident, "agentIdentifierType", "UUID")
        _sub(ident, "agentIdentifierValue", agent.key)
        _sub(ag, "agentName", agent.name)
        _sub(ag, "agentType", agent.kind)
        if agent.version:
            _sub(ag, "agentVersion", agent.version)
        if agent.note:
            _sub(ag, "agentNote", agent.note)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# ---------------------------------------------------------------------------------------- bags
def _plan_digest(entries: list[Entry], manifest: Path, decisions: Path | None, options: PackageOptions) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([__version__, options.layout, options.link, options.source_organization,
                              options.external_identifier]).encode())
    digest.update(manifest.read_bytes())
    if decisions is not None and decisions.is_file():
        digest.update(decisions.read_bytes())
    for entry in entries:
        for pf in entry.files:
            info = pf.src.stat()
            digest.update(f"{pf.dest}\0{pf.src}\0{info.st_size}\0{info.st_mtime_ns}\n".encode("utf-8",
                                                                                             "surrogateescape"))
    return digest.hexdigest()


def _unchanged(bag_dir: Path, plan: str) -> bool:
    if not (bag_dir / "bag-info.txt").is_file():
        return False
    try:
        bag = bagit.Bag(str(bag_dir))
        if bag.info.get(PLAN_FIELD) != plan:
            return False
        bag.validate(fast=True)
    except (bagit.BagError, OSError):
        return False
    return True


def build_bag(bag_dir: Path, entries: list[Entry], results: Path, catalogue: dict[str, dict[str, str]],
              decisions: dict[str, dict[str, str]], options: PackageOptions, external_identifier: str,
              plan: str) -> BagResult:
    """Build one bag atomically: payload and metadata in a hidden folder, bagit, then rename into place."""
    files = [pf for entry in entries for pf in entry.files]
    links = 0
    with atomic_directory(bag_dir) as tmp:
        for pf in files:
            linked = _place(pf.src, tmp / pf.dest, options.link)
            links += int(linked and pf.role == "master")
        with ThreadPoolExecutor(max(1, options.processes)) as pool:
            for pf, digest in zip(files, pool.map(lambda f: file_sha256(tmp / f.dest), files), strict=True):
                pf.sha256, pf.size = digest, (tmp / pf.dest).stat().st_size
        meta = tmp / "metadata"
        meta.mkdir()
        (meta / "metadata.csv").write_bytes(metadata_csv(entries, catalogue))
        (meta / "checksum.sha256").write_bytes("".join(
            f"{pf.sha256}  ../{pf.dest}\n" for pf in sorted(files, key=lambda f: f.dest)).encode("utf-8"))
        (meta / "premis.xml").write_bytes(premis_xml(entries, results, decisions))
        info = {"Source-Organization": options.source_organization or "unnamed organization",
                "External-Identifier": external_identifier,
                "Bag-Software-Agent": f"photoarchive {__version__} with bagit {bagit.VERSION}",
                PLAN_FIELD: plan}
        bagit.make_bag(str(tmp), bag_info=info, processes=max(1, options.processes), checksums=["sha256"])
    count, size = _oxum(bag_dir)
    return BagResult(bag_dir.name, bag_dir, True, count, size, links)


def _oxum(bag_dir: Path) -> tuple[int, int]:
    """(files, bytes) of a bag's payload, from its Payload-Oxum."""
    size, count = bagit.Bag(str(bag_dir)).info["Payload-Oxum"].split(".")
    return int(count), int(size)


def package(results: Path, input_dir: Path, manifest: Path, sources: list[Source], out_dir: Path,
            options: PackageOptions, catalogue: dict[str, dict[str, str]] | None = None,
            decisions_file: Path | None = None) -> list[BagResult]:
    """Build (or keep, when unchanged) the bags under `out_dir`; returns one result per bag."""
    results, input_dir, out_dir = Path(results), Path(input_dir), Path(out_dir)
    entries = plan_entries(results, input_dir, Path(manifest), sources)
    decisions = read_decisions(decisions_file)
    groups: dict[str | None, list[Entry]] = {}
    for entry in entries:
        key = None if options.layout == "run" else collection_of(entry.row.get("source", ""))
        groups.setdefault(key, []).append(entry)
    out = []
    for collection, members in sorted(groups.items(), key=lambda kv: kv[0] or ""):
        name = _bag_name(options, collection)
        ext_id = options.external_identifier if collection is None else f"{options.external_identifier}/{collection}"
        plan = _plan_digest(members, Path(manifest), decisions_file, options)
        bag_dir = out_dir / name
        if _unchanged(bag_dir, plan):
            log.info("bag %s unchanged: left alone", bag_dir)
            out.append(BagResult(name, bag_dir, False, *_oxum(bag_dir), -1))
            continue
        log.info("building bag %s (%d inputs)", bag_dir, len(members))
        out.append(build_bag(bag_dir, members, results, catalogue or {}, decisions, options, ext_id, plan))
    return out


def write_index(path: Path, bags: list[BagResult]) -> None:
    """The package rule's output: one line per bag (name, files, payload bytes, built or kept)."""
    lines = ["bag\tfiles\tbytes\tmaster_links\taction"]
    lines += [f"{b.name}\t{b.files}\t{b.bytes}\t{b.links if b.links >= 0 else ''}\t{'built' if b.built else 'kept'}"
              for b in bags]
    write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
