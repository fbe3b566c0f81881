"""Before/after thumbnails (one folder per batch of photos) and the static HTML report.

The report is a light page that works from the file system, without a server:

- ``report.html`` holds the counts per status and per reason, the filter and sort controls, a compact
  index of every row (status, reasons, size, identity distance: a few bytes a photo) and a small script;
- ``report-data/rows-NNNN.js`` hold the rows themselves, ``ROWS_PER_CHUNK`` at a time in manifest order;
  the page loads only the chunks of the rows it shows (a ``<script>`` element, which works from
  ``file://`` where ``fetch`` does not);
- thumbnails are the files of ``results/thumbs/<batch>/`` (rule thumbnails), linked with
  ``loading="lazy"`` and their width and height;
- a photo's published files are those its publish record lists, its QA verdict is the qa stage's record
  (photoarchive.stages: the report builds no stage path itself).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import cv2
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from photoarchive.imageio import atomic_directory, encode_image, read_scan, write_atomic
from photoarchive.manifest import STATUS_MEANING, read_manifest
from photoarchive.stages import file_path, read_record

log = logging.getLogger(__name__)

ROWS_PER_CHUNK = 50  # rows per report-data file: one default page
PAGE_SIZE = 50  # rows the page shows at once
STATUS_CODES = {"processed": "p", "review": "r", "duplicate": "d", "failed": "f"}  # one letter a row in the index
ATTENTION_FIRST = ("review", "failed")  # sorting by status puts these first


def status_codes(statuses: Iterable[str]) -> dict[str, str]:
    """A letter for each status: the known ones' letters, then the next free letter for any other
    (a status added later, e.g. a reviewer's decision), so the index never confuses two statuses."""
    codes = dict(STATUS_CODES)
    free = (c for c in "abceghijklmnoqstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in codes.values())
    for status in statuses:
        if status not in codes:
            codes[status] = next(free)
    return codes
# A published file's label from the end of its name (before the suffix), in the order the report lists them.
OUTPUT_KINDS = (("restored", "_restored"), ("matte", "_matte"), ("foreground", "_fg"), ("damage mask", "_damage"))


# --- thumbnails -------------------------------------------------------------------------------------

def thumbnail_bytes(path: Path, long_side: int = 320, quality: int = 85) -> tuple[bytes, int, int]:
    """(JPEG bytes, width, height) of an image this pipeline wrote (8- or 16-bit PNG, JPEG, TIFF),
    shrunk to `long_side` (never enlarged). Raises OSError or ValueError when it cannot be read."""
    # decoded at twice the long side at most (read_scan shrinks before its float conversion)
    pixels = read_scan(Path(path), max_pixels=10**10, max_side=2 * long_side).pixels
    h, w = pixels.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size != (w, h):
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return encode_image(pixels, ".jpg", 8, jpeg_quality=quality), size[0], size[1]


def write_thumbnails(pairs: Mapping[str, tuple[Path, Path]], out_dir: Path, long_side: int = 320,
                     quality: int = 85) -> list[str]:
    """Write ``<photo>_before.jpg`` and ``<photo>_after.jpg`` for each photo of a batch into `out_dir`.

    `pairs` maps a photo id to (stamped scan, restored image). The folder appears complete or not at
    all (atomic). A photo whose scan or result is missing or unreadable (it failed in a stage) gets no
    thumbnail and does not fail the others. Returns the ids that got both thumbnails.
    """
    done = []
    with atomic_directory(Path(out_dir)) as tmp:
        for photo, (before, after) in sorted(pairs.items()):
            try:
                thumbs = {side: thumbnail_bytes(Path(src), long_side, quality)[0]
                          for side, src in (("before", before), ("after", after))}
            except (OSError, ValueError) as exc:  # missing, or ImageRejected: not a readable image
                log.warning("%s: no thumbnails (%s)", photo, exc)
                continue
            for side, data in thumbs.items():
                (tmp / f"{photo}_{side}.jpg").write_bytes(data)
            done.append(photo)
    log.info("%d of %d photos got thumbnails in %s", len(done), len(pairs), out_dir)
    return done


# --- rows -------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?(?:e[-+]?\d+)?")


def reason_kind(reason: str) -> str:
    """A reason without its particulars (numbers, file names, face index): what the filter groups by.

    "face 1: identity distance 0.52 from the scan > 0.45: ..." → "identity distance # from the scan > #"
    """
    text = re.sub(r"^face \d+:\s*", "", reason.strip())
    for sep in (": ", "; ", " of ", " (", ", "):
        head = text.split(sep, 1)[0]
        if head and (sep != " of " or head.startswith(("byte-identical", "near-duplicate", "duplicate"))):
            text = head
    return _NUMBER.sub("#", text).strip() or "(none)"


def split_reasons(row: Mapping[str, str]) -> list[str]:
    """The manifest row's reasons, one per QA check ("; " joins them in the manifest)."""
    if row["status"] in ("processed", "review"):
        return [r for r in row["reason"].split("; ") if r] or ["all QA checks passed"]
    return [row["reason"]] if row["reason"] else []


@dataclass
class Link:
    label: str
    path: Path


def output_label(path: str) -> str:
    """"restored", "matte", "foreground" or "damage mask" from a published file's name; else the name."""
    stem = PurePosixPath(path).stem
    return next((label for label, end in OUTPUT_KINDS if stem.endswith(end)), PurePosixPath(path).name)


def output_links(row: Mapping[str, str], results: Path) -> list[Link]:
    """The photo's published files and its QA verdict, as paths under `results`' parent (the work dir)
    or absolute.

    The published files are those the photo's publish record lists (relative to `results`), when that
    record is for the manifest's status; otherwise (published before the record existed, or since
    moved by a decision) just the manifest's ``output``.
    """
    links = []
    pid = row["photo_id"]
    if row["output"]:
        published = read_record(results, "publish", pid) if pid else None
        if published and published.get("status") == row["status"] and published.get("files"):
            order = {label: n for n, (label, _end) in enumerate(OUTPUT_KINDS)}
            files = sorted(published["files"], key=lambda f: order.get(output_label(f), len(order)))
            links += [Link(output_label(f), results / f) for f in files]
        else:
            links.append(Link("restored", Path(row["output"])))
    if row["status"] in ("processed", "review", "rejected") and pid:  # finished photos: QA judged them
        links.append(Link("QA verdict", file_path(results, "qa", pid)))
    return links


def thumbnail_index(thumb_dirs: Iterable[Path]) -> dict[str, tuple[Path, Path]]:
    """{photo: (before, after)} of the photos with both thumbnails in the batch folders."""
    found = {}
    for folder in thumb_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for before in folder.glob("*_before.jpg"):
            photo = before.name.removesuffix("_before.jpg")
            after = folder / f"{photo}_after.jpg"
            if after.exists():
                found[photo] = (before, after)
    return found


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:  # reads the header only
        return im.size


def _rel(path: Path, base: Path) -> str:
    """`path` relative to the report's folder, as a URL path (forward slashes, %-escaped)."""
    return quote(Path(os.path.relpath(Path(path).absolute(), Path(base).absolute())).as_posix())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def build_rows(rows: list[dict[str, str]], results: Path, out_dir: Path,
               thumbs: Mapping[str, tuple[Path, Path]], letters: Mapping[str, str] = STATUS_CODES,
               ) -> tuple[list[list], dict]:
    """(row records for the data files, column index for report.html), in manifest order.

    Paths in the manifest are relative to the work dir (results' parent), or absolute.
    """
    work = results.parent
    kinds: dict[str, int] = {}
    index = {"s": "", "r": [], "z": [], "d": []}
    records = []
    for row in rows:
        reasons = split_reasons(row)
        codes = [kinds.setdefault(reason_kind(r), len(kinds)) for r in reasons]
        links = []
        total = 0
        for link in output_links(row, results):
            path = link.path if link.path.is_absolute() else work / link.path
            size = _size(path)
            total += max(size, 0)
            links.append([link.label, _rel(path, out_dir), size])
        thumb = []
        if row["photo_id"] in thumbs:
            for side_path in thumbs[row["photo_id"]]:
                w, h = _image_size(side_path)
                thumb += [_rel(side_path, out_dir), w, h]
        details = []
        if row["duplicate_of"]:
            details.append(f"duplicate of {row['duplicate_of']}")
        if row["faces"]:
            details.append(f"faces: {row['faces']} ({row['face_detector']})")
        for label, key in (("preset", "preset"), ("damage", "damage"), ("damage detector", "damage_detector"),
                           ("restore", "restore_backend"),
                           ("matting", "matting_backend"), ("largest identity distance", "identity_distance")):
            if row.get(key):
                details.append(f"{label}: {row[key]}")
        if row["log"]:
            details.append(f"log: {row['log']}")
        records.append([row["source"], row["status"], reasons, thumb, links, "; ".join(details)])
        index["s"] += letters[row["status"]]
        index["r"].append(".".join(map(str, codes)))
        index["z"].append(total)
        try:
            index["d"].append(round(float(row["identity_distance"]) * 1000))
        except (KeyError, ValueError):
            index["d"].append(-1)
    index["kinds"] = list(kinds)
    return records, index


# --- the page ---------------------------------------------------------------------------------------

def _environment() -> Environment:
    env = Environment(loader=PackageLoader("photoarchive", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    # JSON inside <script>: "</" and "<!--" must not end or confuse the script element
    env.filters["script_json"] = lambda value: (json.dumps(value, ensure_ascii=False, separators=(",", ":"))
                                                .replace("</", "<\\/").replace("<!--", "<\\!--"))
    return env


def _chunk_js(number: int, records: list[list]) -> bytes:
    payload = json.dumps(records, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return f"REPORT_CHUNK({number},{payload});\n".encode()


def _index_js(index: dict) -> bytes:
    payload = json.dumps(index, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return f"REPORT_INDEX({payload});\n".encode()


def write_report(manifest: Path, results: Path, out: Path, thumb_dirs: Iterable[Path] = (),
                 data_dir: Path | None = None, rows_per_chunk: int = ROWS_PER_CHUNK,
                 page_size: int = PAGE_SIZE) -> dict:
    """Write `out` (report.html) and its row files in `data_dir` (default: ``report-data`` beside it).

    Returns a summary: {"rows": n, "html_bytes": size of report.html, "chunks": number of row files}.
    """
    out = Path(out)
    data_dir = Path(data_dir) if data_dir is not None else out.parent / "report-data"
    rows = read_manifest(manifest)
    statuses = list(dict.fromkeys([*STATUS_MEANING, *(r["status"] for r in rows)]))
    codes = status_codes(statuses)
    records, index = build_rows(rows, Path(results), out.parent, thumbnail_index(thumb_dirs), codes)
    counts = Counter(r["status"] for r in rows)
    reason_counts: Counter[tuple[str, int]] = Counter()
    for status, kinds in zip(index["s"], index["r"], strict=True):
        for code in filter(None, kinds.split(".")):
            reason_counts[(status, int(code))] += 1
    status_names = {code: name for name, code in codes.items()}
    by_reason = sorted(((status_names[s], index["kinds"][k], n) for (s, k), n in reason_counts.items()),
                       key=lambda t: (statuses.index(t[0]), -t[2], t[1]))
    ranked = [*ATTENTION_FIRST, *(s for s in statuses if s not in ATTENTION_FIRST)]
    chunks = [records[k:k + rows_per_chunk] for k in range(0, len(records), rows_per_chunk)]
    with atomic_directory(data_dir) as tmp:
        for number, chunk in enumerate(chunks):
            (tmp / f"rows-{number:04d}.js").write_bytes(_chunk_js(number, chunk))
        # a few bytes a photo, loaded only when the view is filtered or sorted: the page stays light
        (tmp / "index.js").write_bytes(_index_js(index))
    page = _environment().get_template("report.html.j2").render(
        total=len(rows), counts=[(s, counts.get(s, 0), STATUS_MEANING.get(s, "")) for s in statuses],
        by_reason=by_reason, kinds=index["kinds"], status_codes=codes,
        status_order={codes[s]: rank for rank, s in enumerate(ranked)},
        data_href=_rel(data_dir, out.parent), manifest_href=_rel(Path(manifest), out.parent),
        rows_per_chunk=rows_per_chunk, page_size=page_size,
    )
    data = page.encode("utf-8")
    write_atomic(out, data)
    log.info("report: %d rows, %d bytes of HTML, %d row files", len(rows), len(data), len(chunks))
    return {"rows": len(rows), "html_bytes": len(data), "chunks": len(chunks)}


def sample_photos(rows: list[dict[str, str]], thumbs: Mapping[str, tuple[Path, Path]], n: int) -> list[str]:
    """Up to `n` photos with thumbnails for ``snakemake --report``: review photos first (what a person
    should look at), then processed ones, each in manifest order."""
    order = [r["photo_id"] for status in ("review", "processed") for r in rows
             if r["status"] == status and r["photo_id"] in thumbs]
    return order[:n]


def write_sample(manifest: Path, thumb_dirs: Iterable[Path], out_dir: Path, n: int) -> list[str]:
    """Copy the before/after thumbnails of `sample_photos` into `out_dir` (atomic folder)."""
    thumbs = thumbnail_index(thumb_dirs)
    chosen = sample_photos(read_manifest(manifest), thumbs, n)
    with atomic_directory(Path(out_dir)) as tmp:
        for photo in chosen:
            for side, src in zip(("before", "after"), thumbs[photo], strict=True):
                (tmp / f"{photo}_{side}.jpg").write_bytes(Path(src).read_bytes())
    return chosen
