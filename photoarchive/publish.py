"""Where finished photos go (results/processed or results/review), under names people recognise."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from photoarchive.imageio import write_atomic
from photoarchive.ingest import Source

# Published format per source suffix: JPEG stays JPEG, TIFF stays TIFF, the rest becomes PNG.
_OUTPUT_SUFFIX = {".jpg": "jpg", ".jpeg": "jpg", ".tif": "tif", ".tiff": "tif", ".png": "png",
                  ".webp": "png", ".bmp": "png"}
STATUSES = ("processed", "review")


def published_names(sources: Iterable[Source]) -> dict[str, tuple[str, str]]:
    """{photo_id: (relname, ext)}: the published file is `<status>/<relname>_restored.<ext>`.

    relname keeps the input's sub-folders; a ZIP member lives under the archive's name without
    `.zip`. Where two sources would publish to the same name (img.png and img.bmp), both keep their
    original suffix and the photo id's hash digits in the name (img_png-3f2a1c9d_restored.png).
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
        names[s.photo_id] = (path.with_suffix("").as_posix(), _OUTPUT_SUFFIX[s.suffix])
    # Names that would collide (also on case-insensitive file systems) get the photo id's
    # hash digits, which are unique: img.png → img_png-3f2a1c9d_restored.png
    clashes = Counter((rel.casefold(), ext) for rel, ext in names.values())
    for pid, (rel, ext) in list(names.items()):
        if clashes[(rel.casefold(), ext)] > 1:
            suffix = PurePosixPath(by_id[pid].relpath).suffix.lstrip(".").lower()
            names[pid] = (f"{rel}_{suffix}-{pid[-8:]}", ext)
    return names


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy a finished file into place atomically (the source stays where it is)."""
    write_atomic(dst, Path(src).read_bytes())


def remove_stale(results_dir: Path, status: str, relname: str, ext: str) -> list[Path]:
    """Remove copies of this photo left in the other status folder by an earlier run."""
    removed = []
    for other in STATUSES:
        if other == status:
            continue
        for name in (f"{relname}_restored.{ext}", f"{relname}_matte.png", f"{relname}_fg.png"):
            stale = Path(results_dir) / other / name
            if stale.exists():
                stale.unlink()
                removed.append(stale)
    return removed
