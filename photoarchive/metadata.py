"""Archival metadata with exiftool: stamping scans, inheriting tags on derivatives, XMP provenance.

exiftool is always driven through pyexiftool with argument lists (one persistent process per job),
never through a shell. Values are C-escaped (`-ec`), so newlines or option look-alikes inside a
title cannot become exiftool arguments; file paths are absolute, so a name starting with '-' is
never read as an option. A scan whose path exiftool would misread (a line break would split the
argument, '%d' or '%f' are -TagsFromFile format codes) is read through a symlink with a plain name.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import exiftool

from photoarchive import SOFTWARE

log = logging.getLogger(__name__)

CONFIG_FILE = Path(__file__).with_name("data") / "exiftool.config"
IPTC_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
SOURCE_PRINT = IPTC_SOURCE_TYPE + "print"
SOURCE_ENHANCED = IPTC_SOURCE_TYPE + "algorithmicallyEnhanced"
SOURCE_MODEL_COMPOSITE = IPTC_SOURCE_TYPE + "compositeWithTrainedAlgorithmicMedia"
MAX_VALUE_CHARS = 2000
MAX_FACES_CHARS = 20000  # XMP-photoarchive:Faces: about 200 characters a face, max_faces 50 and more
# metadata.csv, declared: column → kind of value. Only `file` is required; a missing column is left empty.
#   path   the scan's path relative to the input folder (`\\` and a leading `./` accepted); one row per path
#   date   YYYY, YYYY-MM or YYYY-MM-DD, optionally with a time (`parse_date`); empty allowed
#   text   free text, stored literally; beyond MAX_VALUE_CHARS shortened
#   names  `;`-separated names, each stored literally; each beyond MAX_VALUE_CHARS shortened
# read_metadata_csv reports what does not fit (once per catalogue, not per photo); values are kept as read.
METADATA_SCHEMA: dict[str, str] = {"file": "path", "date": "date", "title": "text", "description": "text",
                                   "people": "names", "archive_id": "text"}
METADATA_COLUMNS = tuple(METADATA_SCHEMA)


@contextmanager
def exiftool_session() -> Iterator[exiftool.ExifToolHelper]:
    """One persistent exiftool process that knows the XMP-photoarchive namespace."""
    # check_execute=False: `_run` checks the result itself and names the file and exiftool's message
    with exiftool.ExifToolHelper(config_file=str(CONFIG_FILE), common_args=["-G1", "-n", "-struct"],
                                 check_execute=False) as et:
        yield et


def utc_now() -> str:
    """The time now, as exiftool writes an XMP date."""
    return datetime.now(UTC).strftime("%Y:%m:%d %H:%M:%S+00:00")


@dataclass
class Provenance:
    """What made a derivative: recorded as an XMP-xmpMM History entry and XMP-photoarchive fields.

    A stage keeps it in its record (`to_dict`); publish writes it into the published files (`stamp_published`).
    """

    stage: str
    backend: str = ""
    fallback: bool = False  # True when an embedded classical method stood in for a missing model
    model_file: str = ""
    model_sha256: str = ""
    parameters: dict = field(default_factory=dict)
    source_type: str = SOURCE_ENHANCED
    # the other models the stage used, by role: {"detector": {"file": ..., "sha256": ...}, ...}
    models: dict = field(default_factory=dict)
    # per face: detector, score, box, landmarks, identity distance (restore stage)
    faces: list = field(default_factory=list)
    when: str = field(default_factory=utc_now)  # when the stage made it: the History entry's time

    def summary(self) -> str:
        parts = [f"stage={self.stage}"]
        if self.backend:
            parts.append(f"backend={self.backend}" + (" (classical fallback: model weights absent)"
                                                        if self.fallback else ""))
        if self.model_file:
            parts.append(f"model={Path(self.model_file).name} sha256={self.model_sha256}")
        for role, model in sorted(self.models.items()):
            parts.append(f"{role}={model['file']} sha256={model['sha256']}")
        parts.append("parameters=" + json.dumps(self.parameters, sort_keys=True, ensure_ascii=False))
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Provenance:
        return cls(**data)


def escape_value(value: object, max_chars: int = MAX_VALUE_CHARS) -> str:
    """A value safe on one exiftool argument line with `-ec`: backslashes and line breaks escaped."""
    text = str(value)
    if len(text) > max_chars:
        text = text[:max_chars] + "…"
    text = text.replace("\\", "\\\\").replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text)


def _escape_struct(value: str) -> str:
    """Escape the characters that end a field in exiftool's struct syntax."""
    return re.sub(r"([|,{}\[\]])", r"|\1", value)


def _path_arg(path: Path) -> str:
    text = str(Path(path).resolve())
    if "\n" in text or "\r" in text:
        raise ValueError(f"file path with a line break cannot be passed to exiftool: {text!r}")
    return text


# What exiftool reads literally in a -TagsFromFile argument: no '%' (format codes), no control
# characters (a line break ends the argument), nothing a terminal or argfile could mangle.
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9/._+ -]+$")


@contextmanager
def _readable_source(path: Path) -> Iterator[str]:
    """An exiftool argument naming `path` for reading: the path itself, or a plain-named symlink to it."""
    text = str(Path(path).resolve())
    if _PLAIN_PATH.match(text):
        yield text
        return
    with tempfile.TemporaryDirectory(prefix="photoarchive-exiftool-") as folder:
        link = Path(folder) / f"source{''.join(c for c in Path(text).suffix if c.isalnum() or c == '.')}"
        os.symlink(text, link)
        yield str(link)


def _run(et: exiftool.ExifToolHelper, args: list[str], target: Path, fast: bool = True) -> None:
    """Write `args` into `target`, a file this job has just encoded.

    With `fast` (exiftool's -fast), exiftool does not re-check the CRC of every PNG chunk of the target
    in Perl (2 CPU-s for an 8 MB PNG, 30–50 s for a 100 MP one): the target's pixels were encoded
    by this job a moment ago. Reading, -fast only skips the search for a JPEG trailer (AFCP, preview
    image) after the image data, so callers pass fast=False when the tags come from a JPEG that has one.
    """
    out = et.execute("-ec", "-overwrite_original", *(["-fast"] if fast else []), *args, _path_arg(target))
    if "1 image files updated" not in out:
        raise RuntimeError(f"exiftool did not update {target}: {out.strip()} {et.last_stderr.strip()}")


def history_arg(prov: Provenance, action: str = "edited") -> str:
    fields = {
        "Action": action,
        "SoftwareAgent": SOFTWARE,
        "Parameters": prov.summary(),
        "When": prov.when,
        "Changed": "/",
    }
    inner = ",".join(f"{k}={_escape_struct(escape_value(v))}" for k, v in fields.items())
    return f"-XMP-xmpMM:History+={{{inner}}}"


def _provenance_args(prov: Provenance) -> list[str]:
    values = {
        "Stage": prov.stage,
        "Software": SOFTWARE,
        "Backend": prov.backend,
        "Fallback": "True" if prov.fallback else "False",
        "ModelFile": Path(prov.model_file).name if prov.model_file else "",
        "ModelSHA256": prov.model_sha256,
        "Parameters": json.dumps(prov.parameters, sort_keys=True, ensure_ascii=False),
        "Models": json.dumps(prov.models, sort_keys=True, ensure_ascii=False) if prov.models else "",
        "Faces": json.dumps(prov.faces, sort_keys=True, ensure_ascii=False) if prov.faces else "",
    }
    args = [f"-XMP-photoarchive:{k}={escape_value(v, MAX_FACES_CHARS if k == 'Faces' else MAX_VALUE_CHARS)}"
            for k, v in values.items()]
    args.append(f"-XMP-iptcExt:DigitalSourceType={prov.source_type}")
    return args


def stamp_scan(et: exiftool.ExifToolHelper, source_file: Path, target: Path, *, photo_id: str,
               source: str, sha256: str, archival: dict[str, str] | None = None, keep_icc: bool = True) -> list[str]:
    """Give the working master `target` the scan's own tags plus archival fields and provenance.

    Copies every writable tag and (with `keep_icc`) the ICC profile from `source_file`, resets the orientation
    (pixels are already upright), writes the archival fields of `archival` (a metadata.csv row)
    and marks the image as a digitized print. Returns notes about values that could not be used.
    """
    notes: list[str] = []
    args = ["-all:all", "--IFD1:all", "-IFD0:Orientation#=1", "-XMP-tiff:Orientation="]
    if keep_icc:
        args.insert(1, "-ICC_Profile")
    if archival:
        tag_args, notes = archival_args(archival)
        args += tag_args
    args += [
        f"-XMP-photoarchive:PhotoID={escape_value(photo_id)}",
        f"-XMP-photoarchive:SourceFile={escape_value(source)}",
        f"-XMP-photoarchive:SourceSHA256={sha256}",
        f"-XMP-iptcExt:DigitalSourceType={SOURCE_PRINT}",
        history_arg(Provenance(stage="ingest", parameters={"source": source}), action="converted"),
    ]
    with _readable_source(source_file) as source_arg:
        _run(et, ["-TagsFromFile", source_arg, *args], target, fast=not _has_jpeg_trailer(Path(source_file)))
    return notes


def _has_jpeg_trailer(path: Path) -> bool:
    """Whether `path` is a JPEG with bytes after its end-of-image marker (a trailer exiftool may read tags from).

    Anything else (not a JPEG, unreadable) answers False only when the file is surely no JPEG; a JPEG
    that does not end with the EOI marker counts as having a trailer, so its tags are read the slow, full way.
    """
    try:
        with open(path, "rb") as fh:
            if fh.read(2) != b"\xff\xd8":
                return False
            fh.seek(-2, os.SEEK_END)
            return fh.read(2) != b"\xff\xd9"
    except OSError:
        return True


def stamp_published(et: exiftool.ExifToolHelper, master: Path, target: Path, steps: list[Provenance],
                    conversion: dict | None = None, keep_icc: bool = True,
                    review: tuple[int | None, str] | None = None) -> None:
    """Give a published file `target` its metadata, in one exiftool write: every tag of the working
    `master` (the scan's own, the catalogue's, the ingest entry), one 'edited' History entry per stage of
    `steps` (in order, with the time each stage ran), the XMP-photoarchive fields and DigitalSourceType of
    the last step, and, when `conversion` is given (format parameters), a 'converted' entry for publish.

    The working files between the stages carry no tags: their provenance is in their stage's record.
    `keep_icc=False` for images that are not colour pictures (an alpha matte, a damage mask). `review`: a
    reviewer's (xmp:Rating: 5 accepted, -1 rejected, None left; xmp:Label).
    """
    args = ["-TagsFromFile", _path_arg(master), "-all:all", "--IFD1:all"]
    if keep_icc:
        args.insert(3, "-ICC_Profile")
    args += _provenance_args(steps[-1])
    args += [history_arg(step) for step in steps]
    if conversion is not None:
        args.append(history_arg(Provenance(stage="publish", parameters=conversion), action="converted"))
    if review is not None:
        args += _review_args(*review)
    _run(et, args, target)


def _review_args(rating: int | None, label: str) -> list[str]:
    """A reviewer's decision: xmp:Label, and xmp:Rating unless it is None."""
    args = [f"-XMP-xmp:Label={escape_value(label)}"]
    return args + ([f"-XMP-xmp:Rating={int(rating)}"] if rating is not None else [])


def read_tags(et: exiftool.ExifToolHelper, path: Path) -> dict:
    """All tags of `path` as {"Group:Tag": value}, structs as nested dicts."""
    return et.get_metadata(_path_arg(path))[0]


# --------------------------------------------------------------------------------------------------
# metadata.csv


_DATE = re.compile(r"^(\d{4})(?:[-:/](\d{1,2}))?(?:[-:/](\d{1,2}))?(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def parse_date(text: str) -> tuple[str | None, str | None]:
    """Parse a catalogue date: ('YYYY:MM:DD HH:MM:SS' for EXIF or None, XMP date or None).

    Both come in exiftool's colon notation (the session passes -n, so values are written raw).

    A year or year-month is valid in XMP but not in EXIF, so it goes to XMP alone.
    """
    m = _DATE.match(text.strip())
    if not m:
        return None, None
    year, month, day, hh, mm, ss = (int(g) if g else None for g in m.groups())
    try:
        datetime(year, month or 1, day or 1, hh or 0, mm or 0, ss or 0)
    except ValueError:
        return None, None
    if month is None:
        return None, f"{year:04d}"
    if day is None:
        return None, f"{year:04d}:{month:02d}"
    exif = f"{year:04d}:{month:02d}:{day:02d} {hh or 0:02d}:{mm or 0:02d}:{ss or 0:02d}"
    xmp = exif if hh is not None else f"{year:04d}:{month:02d}:{day:02d}"
    return exif, xmp


def archival_args(row: dict[str, str]) -> tuple[list[str], list[str]]:
    """exiftool arguments for one metadata.csv row, and notes about values that were not usable."""
    args: list[str] = []
    notes: list[str] = []
    date = (row.get("date") or "").strip()
    if date:
        exif, xmp = parse_date(date)
        if xmp is None:
            notes.append(f"metadata.csv date {date!r} not understood (use YYYY, YYYY-MM or YYYY-MM-DD); not written")
        else:
            args.append(f"-XMP-photoshop:DateCreated={xmp}")
            if exif:
                args += [f"-ExifIFD:DateTimeOriginal={exif}", f"-XMP-exif:DateTimeOriginal={exif}"]
    for column, tag in (("title", "XMP-dc:Title"), ("description", "XMP-dc:Description"),
                        ("archive_id", "XMP-dc:Identifier")):
        value = (row.get(column) or "").strip()
        if value:
            if len(value) > MAX_VALUE_CHARS:
                notes.append(f"metadata.csv {column} longer than {MAX_VALUE_CHARS} characters; shortened")
            args.append(f"-{tag}={escape_value(value)}")
    for person in (p.strip() for p in (row.get("people") or "").split(";")):
        if person:
            args.append(f"-XMP-iptcExt:PersonInImage={escape_value(person)}")
    return args, notes


def _misfit_date(value: str) -> str | None:
    if parse_date(value)[1] is None:
        return "{column} not understood (use YYYY, YYYY-MM or YYYY-MM-DD); not written"
    return None


def _misfit_text(value: str) -> str | None:
    return f"{{column}} longer than {MAX_VALUE_CHARS} characters; shortened" if len(value) > MAX_VALUE_CHARS else None


def _misfit_names(value: str) -> str | None:
    if any(len(name.strip()) > MAX_VALUE_CHARS for name in value.split(";")):
        return f"a name in {{column}} longer than {MAX_VALUE_CHARS} characters; shortened"
    return None


# What each METADATA_SCHEMA kind checks in a non-empty value (`path` is checked while reading: empty, repeated).
_MISFIT = {"date": _misfit_date, "text": _misfit_text, "names": _misfit_names}


def _schema_problems(path: Path, columns: list[str], checked: list[tuple[int, dict[str, str]]]) -> list[str]:
    """Columns and values of a catalogue that do not fit METADATA_SCHEMA, one sentence per column and kind,
    with the first three lines as examples."""
    problems = []
    unknown = [c for c in columns if c and c not in METADATA_SCHEMA]
    if unknown:
        problems.append(f"{path}: columns not used: {', '.join(unknown)} (known: {', '.join(METADATA_COLUMNS)})")
    for column, kind in METADATA_SCHEMA.items():
        misfit = _MISFIT.get(kind)
        if misfit is None or column not in columns:
            continue
        if kind == "text" or kind == "names":  # only long values can misfit: skip the rest cheaply
            candidates = ((line, row[column]) for line, row in checked if len(row[column]) > MAX_VALUE_CHARS)
        else:
            candidates = ((line, row[column]) for line, row in checked if row[column].strip())
        verdicts: dict[str, str | None] = {}  # catalogues repeat values (dates above all): judge each once
        misfits: dict[str, list[str]] = {}
        for line, value in candidates:
            if value not in verdicts:
                verdicts[value] = misfit(value.strip())
            if verdicts[value]:
                misfits.setdefault(verdicts[value], []).append(f"line {line} {_shorten(value)!r}")
        for why, where in misfits.items():
            examples = ", ".join(where[:3]) + (", …" if len(where) > 3 else "")
            problems.append(f"{path}: {len(where)} row(s): {why.format(column=column)} ({examples})")
    return problems


def _shorten(value: str, chars: int = 40) -> str:
    return value if len(value) <= chars else value[:chars] + "…"


def read_metadata_csv(path: Path | None) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Rows of a metadata.csv keyed by the `file` column (path relative to the input folder).

    Returns (rows, problems); problems are sentences for the log (missing or unknown columns, duplicate
    rows, values that do not fit METADATA_SCHEMA, an encoding other than UTF-8, unreadable lines). A
    damaged catalogue never stops the pipeline: the rows that can be read are used, every value as read.
    Read with the csv module, not pandas: bench/bench_metadata_csv.py measured no gain and rows pandas
    cannot keep (an unclosed quote, a row with an extra field, physical line numbers).
    """
    if path is None or not Path(path).exists():
        return {}, []
    problems: list[str] = []
    raw_bytes = Path(path).read_bytes()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = raw_bytes.decode("cp1252", errors="replace")
        problems.append(f"{path}: not UTF-8 (byte {exc.start}); read as Windows-1252 — save it as UTF-8 "
                        "if accented letters look wrong")
    if "\0" in text:
        problems.append(f"{path}: contains NUL bytes (a binary file?); they were removed")
        text = text.replace("\0", "")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = [c.strip() for c in (reader.fieldnames or [])]
    except csv.Error as exc:
        return {}, [f"{path}: unreadable header ({exc}); catalogue ignored"]
    if "file" not in columns:
        return {}, [f"{path}: no 'file' column (expected columns: {', '.join(METADATA_COLUMNS)}); ignored"]
    missing = [c for c in METADATA_COLUMNS if c not in columns]
    if missing:
        problems.append(f"{path}: columns missing, left empty: {', '.join(missing)}")
    rows: dict[str, dict[str, str]] = {}
    checked: list[tuple[int, dict[str, str]]] = []
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"{path}: line {reader.line_num} unreadable ({exc}); the rest of the catalogue ignored")
            break
        row = {(k or "").strip(): v if isinstance(v, str) else "" for k, v in raw.items() if k}
        key = row.get("file", "").strip().replace("\\", "/").removeprefix("./")
        if not key:
            problems.append(f"{path}:{reader.line_num}: empty 'file' value; row ignored")
        elif key in rows:
            problems.append(f"{path}:{reader.line_num}: second row for {key}; the first one is used")
        else:
            rows[key] = row
            checked.append((reader.line_num, row))
    return rows, problems + _schema_problems(path, columns, checked)
