"""Where finished photos go (results/processed, results/review, or results/rejected after a reviewer's
reject), under names people recognise."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from photoarchive.decisions import XMP_TAGS
from photoarchive.imageio import atomic_output, encode_image, load_working
from photoarchive.ingest import Source
from photoarchive.metadata import Provenance, stamp_published
from photoarchive.stages import file_path, read_record

log = logging.getLogger(__name__)

# Published format per source suffix: JPEG stays JPEG, TIFF stays TIFF, the rest becomes PNG.
_OUTPUT_SUFFIX = {".jpg": "jpg", ".jpeg": "jpg", ".tif": "tif", ".tiff": "tif", ".png": "png",
                  ".webp": "png", ".bmp": "png"}
STATUSES = ("processed", "review", "rejected")
# Characters a published name cannot keep: braces (Snakemake reads "{x}" as a wildcard) and control
# characters such as line breaks (no Snakemake output pattern matches them).
_BRACES = str.maketrans("{}", "()")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# A published file is `<stem>_restored.<ext>`, written as `.<that>.XXXXXXXX.part.<ext>` plus exiftool's
# `_exiftool_tmp`: 40 bytes more than the stem, and a file name may have 255 bytes.
MAX_STEM_BYTES = 180
MAX_FOLDER_BYTES = 200


def _shorten(part: str, limit: int, tag: str) -> str:
    """`part` cut to at most `limit` UTF-8 bytes (on a character boundary) plus '-<tag>' if it was cut."""
    if len(part.encode("utf-8", "surrogateescape")) <= limit:
        return part
    cut = part.encode("utf-8", "surrogateescape")[:limit - len(tag) - 1].decode("utf-8", "ignore")
    return f"{cut}-{tag}"


def _publishable(relname: str, tag: str) -> str:
    """relname with braces and control characters replaced and over-long names shortened (tagged)."""
    parts = _CONTROL.sub("_", relname.translate(_BRACES)).split("/")
    parts = [_shorten(p, MAX_FOLDER_BYTES, tag) for p in parts[:-1]] + [_shorten(parts[-1], MAX_STEM_BYTES, tag)]
    return "/".join(parts)


def published_names(sources: Iterable[Source]) -> dict[str, tuple[str, str]]:
    """{photo_id: (relname, ext)}: the published file is `<status>/<relname>_restored.<ext>`.

    relname keeps the input's sub-folders; a ZIP member lives under the archive's name without
    `.zip`. Where two sources would publish to the same name (img.png and img.bmp), both keep their
    original suffix and the photo id's hash digits in the name (img_png-3f2a1c9d_restored.png).
    Braces become parentheses, control characters (line breaks) underscores, and a name too long
    for the file system is shortened and tagged with the photo id's hash digits.
    """
    sources = [s for s in sources if s.is_image]
    by_id = {s.photo_id: s for s in sources}
    names: dict[str, tuple[str, str]] = {}
    for s in sources:
        path = PurePosixPath(s.relpath)
        if s.archive:
            archive = PurePosixPath(s.archive)
            inner = [p for p in (s.member or "").replace("\\", "/").split("/")
                     if p not in ("", ".", "..")]  # never a path outside the status folder
            path = archive.with_suffix("").joinpath(*inner)
        names[s.photo_id] = (_publishable(path.with_suffix("").as_posix(), s.photo_id[-8:]),
                             _OUTPUT_SUFFIX[s.suffix])
    # Names that would collide (also on case-insensitive file systems) get the photo id's
    # hash digits, which are unique: img.png → img_png-3f2a1c9d_restored.png
    clashes = Counter((rel.casefold(), ext) for rel, ext in names.values())
    for pid, (rel, ext) in list(names.items()):
        if clashes[(rel.casefold(), ext)] > 1:
            suffix = PurePosixPath(by_id[pid].relpath).suffix.lstrip(".").lower()
            names[pid] = (f"{rel}_{suffix}-{pid[-8:]}", ext)
    return names


def remove_stale(results_dir: Path, status: str, relname: str, ext: str) -> list[Path]:
    """Remove copies of this photo left in the other status folder by an earlier run."""
    removed = []
    for other in STATUSES:
        if other == status:
            continue
        for stale in published_paths(results_dir, other, relname, ext):
            if stale.exists():
                stale.unlink()
                removed.append(stale)
    return removed


def qa_summary(verdict: dict) -> dict:
    """What the published file's history records of QA: the verdict, its reasons, each face's identity distance."""
    checks = verdict.get("metrics", {}).get("face_checks", [])
    return {"status": verdict.get("status"), "reasons": verdict.get("reasons", []),
            "identity_distance": {str(c["index"]): round(c["identity_distance"], 4) for c in checks
                                  if c.get("identity_distance") is not None}}


def stage_provenance(results_dir: Path, photo: str, stages: tuple[str, ...]) -> list[Provenance]:
    """What each of `stages` recorded of making the photo's working file, in order."""
    return [Provenance.from_dict(read_record(results_dir, stage, photo)["provenance"]) for stage in stages]


def publish_image(et, results_dir: Path, photo: str, target: Path, jpeg_quality: int, verdict: dict | None = None,
                  decision: dict | None = None) -> None:
    """Write the restored working PNG as `target` (format from its suffix, 16-bit kept where it can be),
    with the scan's tags (from the working master), one history entry per stage that changed the pixels and
    a 'converted' entry with the QA `verdict`'s summary. A reviewer's `decision` (photoarchive.decisions) is
    written as xmp:Rating and xmp:Label. `et`: an exiftool session."""
    pixels, depth = load_working(file_path(results_dir, "restore", photo))
    parameters = {"format": target.suffix.lstrip("."), "jpeg_quality": jpeg_quality}
    if verdict:
        parameters["qa"] = qa_summary(verdict)
    review = XMP_TAGS.get((decision or {}).get("decision"))
    with atomic_output(target) as tmp:
        tmp.write_bytes(encode_image(pixels, target.suffix, depth, jpeg_quality=jpeg_quality))
        stamp_published(et, file_path(results_dir, "stamp", photo), tmp,
                        stage_provenance(results_dir, photo, ("repair", "enhance", "restore")), parameters,
                        review=review)


def publish_copy(et, results_dir: Path, photo: str, working: Path, target: Path, stages: tuple[str, ...],
                 keep_icc: bool) -> None:
    """Copy a working file (matte, cut-out, damage mask) to `target` with the scan's tags and the history of
    the `stages` that made it. `keep_icc=False` for what is not a colour picture."""
    with atomic_output(target) as tmp:
        tmp.write_bytes(Path(working).read_bytes())
        stamp_published(et, file_path(results_dir, "stamp", photo), tmp,
                        stage_provenance(results_dir, photo, stages), keep_icc=keep_icc)


def published_paths(results_dir: Path, status: str, relname: str, ext: str) -> list[Path]:
    """The four published files of a photo: restored image, matte, cut-out, damage mask."""
    base = Path(results_dir) / status / relname
    return [Path(f"{base}_restored.{ext}"), Path(f"{base}_matte.png"), Path(f"{base}_fg.png"),
            Path(f"{base}_damage.png")]


def publish_photo(et, results_dir: Path, photo: str, status: str, relname: str, ext: str, jpeg_quality: int,
                  decision: dict | None = None) -> list[Path]:
    """Publish one finished photo under `status`: the restored image in its scan's format (with QA's
    verdict and a reviewer's `decision` in its history), its matte, cut-out and damage mask; copies left
    in another status folder by an earlier verdict go. Returns the published files. `et`: an exiftool
    session."""
    results_dir = Path(results_dir)
    image, matte, foreground, damage = targets = published_paths(results_dir, status, relname, ext)
    verdict = json.loads(file_path(results_dir, "qa", photo).read_text(encoding="utf-8"))
    publish_image(et, results_dir, photo, image, jpeg_quality, verdict, decision)
    made_by_matting = ("repair", "enhance", "matting")
    publish_copy(et, results_dir, photo, file_path(results_dir, "matting", photo, 0), matte, made_by_matting,
                 keep_icc=False)
    publish_copy(et, results_dir, photo, file_path(results_dir, "matting", photo, 1), foreground, made_by_matting,
                 keep_icc=True)
    publish_copy(et, results_dir, photo, file_path(results_dir, "repair", photo, 1), damage, ("repair",),
                 keep_icc=False)
    for stale in remove_stale(results_dir, status, relname, ext):
        log.info("removed %s left by an earlier run with another QA verdict", stale)
    return targets
