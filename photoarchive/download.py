"""Explicit model-download step: fetch weight files, verify their SHA-256, install them atomically.

This is the only code in photoarchive that touches the network, and nothing calls it implicitly: the
pipeline reads weights from ``models/`` and fails with a hint to run this step when one is missing.

    python -m photoarchive.download --list
    python -m photoarchive.download [NAME ...] --models-dir models [--sha256 NAME=HEX ...]
    python -m photoarchive.download NAME --print-sha256

Checksums: `MODEL_FILES` records a file's SHA-256 only where a public source confirms it. None of
the four could be confirmed when this table was written (their publishers list no checksums), so
every entry holds ``sha256=None``. For such an entry the CLI **refuses** to install the file unless
you pass ``--sha256 NAME=HEX``, a value you have checked yourself. ``--print-sha256`` downloads the
file to a temporary file, prints its SHA-256 and installs nothing, so that you can check that value
against a second source before you trust it.

`download_model` downloads with pooch (``pooch.retrieve`` with ``known_hash="sha256:…"``, no progress
bar): it streams to a temporary file next to the destination, checks the SHA-256, and only then moves
it over the destination (a rename, atomic on one file system). A failed, truncated or mismatching
download leaves no partial file behind and never touches an existing file (only a kill -9 can leave
pooch's ``tmp…`` file in the folder, as it could leave the hidden ``.part`` file before pooch; the
next download does not reuse it, delete it). pooch is imported only when a download is asked for; the
pipeline itself imports just `sha256_of_file` and `model_fingerprints` (the SHA-256 of the model files a
stage would load, part of each photo's key, so that weights placed after a run redo the photos).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import os
import re
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from photoarchive import __version__

__all__ = ["MODEL_FILES", "ChecksumError", "DownloadError", "ModelFile", "download_model", "fetch_sha256",
           "main", "model_fingerprint", "model_fingerprints", "sha256_of_file"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20  # bytes per read
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ModelFile:
    """One downloadable weight file: where it comes from and what it is called in ``models/``."""

    url: str
    sha256: str | None  # lowercase hex, or None when no public source confirms it
    filename: str
    about: str  # what it is, who publishes it, licence


MODEL_FILES: dict[str, ModelFile] = {
    "GPEN-BFR-512": ModelFile(
        url="https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/GPEN-BFR-512.pth",
        sha256=None,
        filename="GPEN-BFR-512.pth",
        about="GPEN face restorer, 512 px (official GPEN README link; academic and non-commercial use only)",
    ),
    "GPEN-BFR-1024": ModelFile(
        url="https://modelscope.cn/api/v1/models/damo/cv_gpen_image-portrait-enhancement-hires/repo"
        "?Revision=master&FilePath=pytorch_model.pt",
        sha256=None,
        filename="GPEN-BFR-1024.pth",
        about="GPEN face restorer, 1024 px (ModelScope damo/cv_gpen_image-portrait-enhancement-hires, "
        "pytorch_model.pt; academic and non-commercial use only)",
    ),
    "detection_Resnet50_Final": ModelFile(
        url="https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",
        sha256=None,
        filename="detection_Resnet50_Final.pth",
        about="RetinaFace-ResNet50 face detector, facexlib release v0.1.0 (the name facexlib looks for)",
    ),
    "parsing_parsenet": ModelFile(
        url="https://github.com/xinntao/facexlib/releases/download/v0.2.2/parsing_parsenet.pth",
        sha256=None,
        filename="parsing_parsenet.pth",
        about="ParseNet face parsing, facexlib release v0.2.2 (the name facexlib looks for)",
    ),
}


class DownloadError(RuntimeError):
    """A download failed (network, HTTP status, truncated body); nothing was installed."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected SHA-256; nothing was installed."""


def sha256_of_file(path: str | Path) -> str:
    """Lowercase hex SHA-256 of a file, read in chunks."""
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def model_fingerprint(path: str | Path) -> str | None:
    """SHA-256 of a model file the pipeline would load; None when there is no such regular file.

    The whole file is hashed (a changed file with the same size and time is still noticed by the next job),
    once per process for each (path, size, mtime_ns, inode): a job asks for it once per photo, for the
    photo's key, and reads the file once.
    """
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return _sha256_once(str(Path(path).resolve()), info.st_size, info.st_mtime_ns, info.st_ino)


@functools.lru_cache(maxsize=64)
def _sha256_once(path: str, size: int, mtime_ns: int, inode: int) -> str:
    return sha256_of_file(path)


def model_fingerprints(paths: Sequence[str | Path]) -> dict[str, str]:
    """{file name: SHA-256} of those of `paths` that exist (for a photo's key: a model file placed, replaced
    or removed changes the key of every photo of the stages that load it)."""
    out = {}
    for path in paths:
        digest = model_fingerprint(path)
        if digest is not None:
            out[Path(path).name] = digest
    return out


def _normalise_sha256(sha256: str) -> str:
    if not isinstance(sha256, str):
        raise ValueError("an expected SHA-256 is required; fetch_sha256() (CLI: --print-sha256) shows the hash "
                         "of the current public file, to be checked before you trust it")
    value = sha256.strip().lower()
    if not _HEX64.fullmatch(value):
        raise ValueError(f"not a SHA-256 (64 hex digits): {sha256!r}")
    return value


def _downloader(timeout: float):
    """pooch's HTTP downloader (no progress bar, 1 MiB reads, our User-Agent), then an fsync of the file
    it wrote, so that the rename that installs it never publishes blocks that are not on disk yet."""
    import pooch

    http = pooch.HTTPDownloader(progressbar=False, chunk_size=_CHUNK, timeout=timeout,
                                headers={"User-Agent": f"photoarchive/{__version__}"})

    def download(url: str, output_file: str, pup, check_only: bool = False):
        result = http(url, output_file, pup, check_only=check_only)
        if not check_only:
            with open(output_file, "rb") as f:
                os.fsync(f.fileno())
        return result

    return download


def _retrieve(url: str, folder: Path, name: str, sha256: str | None, timeout: float) -> Path:
    """``pooch.retrieve`` into ``folder/name``, its errors turned into `DownloadError` and `ChecksumError`.

    pooch streams to a temporary file in ``folder``, checks the SHA-256 and only then moves it onto
    ``folder/name`` (a rename on one file system); on any failure, Ctrl-C included, the temporary file
    is removed and an existing ``folder/name`` is left as it was.
    """
    import pooch
    import requests

    existed = (folder / name).exists()
    known_hash = f"sha256:{sha256}" if sha256 else None
    chatter = pooch.get_logger()  # its INFO lines repeat ours and advise on pooch.retrieve's arguments
    level = chatter.level
    chatter.setLevel(logging.WARNING)
    try:
        return Path(pooch.retrieve(url, known_hash=known_hash, fname=name, path=folder,
                                   downloader=_downloader(timeout), progressbar=False))
    except requests.exceptions.HTTPError as err:
        status = err.response.status_code if err.response is not None else "?"
        reason = err.response.reason if err.response is not None else err
        raise DownloadError(f"download of {url} failed: HTTP {status} {reason}") from err
    except (requests.exceptions.RequestException, OSError) as err:
        raise DownloadError(f"download of {url} failed: {err}. Check the network and run the download again") from err
    except ValueError as err:  # pooch: "... does not match the known hash: expected ... but got <hex>"
        got = re.search(r"but got ([0-9a-f]{64})", str(err))
        raise ChecksumError(f"{url} has SHA-256 {got.group(1) if got else '(unknown)'}, expected {sha256}: "
                            f"not installed{' (the existing file is unchanged)' if existed else ''}") from err
    finally:
        chatter.setLevel(level)


def download_model(url: str, dest: str | Path, sha256: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` if ``dest`` is not already the file with SHA-256 ``sha256``.

    Downloads with pooch (`_retrieve`): to a temporary file in ``dest``'s folder, SHA-256 checked, then
    renamed into place. Raises `ChecksumError` or `DownloadError` (nothing installed, an existing
    ``dest`` untouched); ``timeout`` is in seconds per network operation.
    """
    expected = _normalise_sha256(sha256)
    dest = Path(dest)
    if dest.is_file() and sha256_of_file(dest) == expected:
        logger.info("%s is already present and verified", dest)
        return dest
    logger.info("downloading %s -> %s", url, dest)
    _retrieve(url, dest.parent, dest.name, expected, timeout)
    logger.info("installed %s (sha256 %s)", dest, expected)
    return dest


def fetch_sha256(url: str, folder: str | Path, timeout: float = 60.0) -> str:
    """Download ``url`` into a temporary folder in ``folder`` and return its SHA-256; installs nothing."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".sha256-probe.") as probe:
        return sha256_of_file(_retrieve(url, Path(probe), "probe", None, timeout))


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def _parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in MODEL_FILES:
            raise SystemExit(f"--sha256 takes NAME=HEX with NAME one of {', '.join(MODEL_FILES)}; got {pair!r}")
        try:
            overrides[name] = _normalise_sha256(value)
        except ValueError as err:
            raise SystemExit(f"--sha256 {pair}: {err}") from err
    return overrides


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m photoarchive.download",
        description="Download model weights into the models folder, verified by SHA-256. Files without a "
        "published SHA-256 are refused unless you give one with --sha256 (see --print-sha256).",
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"what to download (default: all): {', '.join(MODEL_FILES)}")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="destination folder (default: models)")
    parser.add_argument("--sha256", action="append", default=[], metavar="NAME=HEX",
                        help="expected SHA-256 for NAME, overriding the table; repeatable")
    parser.add_argument("--print-sha256", action="store_true",
                        help="download to a temporary file, print the SHA-256, install nothing")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per network operation (default: 60)")
    parser.add_argument("--list", action="store_true", help="list the known files and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0: every requested file is installed or printed)."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.list:
        for name, entry in MODEL_FILES.items():
            logger.info("%s -> %s\n    %s\n    %s\n    sha256: %s", name, entry.filename, entry.about, entry.url,
                        entry.sha256 or "unknown (needs --sha256)")
        return 0
    unknown = [name for name in args.names if name not in MODEL_FILES]
    if unknown:
        logger.error("unknown model name(s): %s; known: %s", ", ".join(unknown), ", ".join(MODEL_FILES))
        return 2
    overrides = _parse_overrides(args.sha256)
    failures = 0
    for name in args.names or list(MODEL_FILES):
        entry = MODEL_FILES[name]
        dest = args.models_dir / entry.filename
        if args.print_sha256:
            logger.info("%s: fetching %s to compute its SHA-256 (nothing is installed)", name, entry.url)
            try:
                logger.info("%s sha256 %s", name, fetch_sha256(entry.url, args.models_dir, args.timeout))
            except DownloadError as err:
                logger.error("%s: %s", name, err)
                failures += 1
            continue
        expected = overrides.get(name, entry.sha256)
        if expected is None:
            logger.error("%s: refused: no trusted SHA-256 for %s. Run with --print-sha256 %s to see the hash of "
                         "the current public file, check it, then pass --sha256 %s=HEX", name, entry.url, name, name)
            failures += 1
            continue
        try:
            download_model(entry.url, dest, expected, timeout=args.timeout)
        except DownloadError as err:
            logger.error("%s: %s", name, err)
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
