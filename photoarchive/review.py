"""The review app: a local light table for the review queue, whose decisions the next pipeline run honours.

    python -m photoarchive.review [--results results] [--input-dir DIR] [--host 127.0.0.1] [--port 8765]
                                  [--reviewer NAME] [--all]

One page (photoarchive/data/review/) and a JSON API on a standard-library ThreadingHTTPServer:

    GET  /api/photos?status=review&reason=&q=&sort=score&order=desc&offset=0&limit=100   one page of the list
    GET  /api/photo/<id>       one photo: reasons, metrics, faces, provenance, image URLs, its decision
    GET  /api/overrides        the retune controls (names, types, ranges from config.schema.yaml)
    POST /api/decision         {"photo_id", "decision": accept|reject|retune, "note", "overrides"}
    POST /api/retune           {"photo_id", "overrides"}: that photo recomputed into results/review_app/retune/
    GET  /file/results/<path>, /file/input/<path>   image files (full resolution) under those two folders only
    GET  /thumb/<id>/before|after   results/thumbs/<batch>/<id>_<kind>.jpg, else made in memory

Per-photo files under results/ are found through the stage contract (photoarchive.stages: file_path,
read_record), never by building their paths here.

Security: files are served only from under results/ and the input folder (after resolving symbolic links;
"..", encoded or not, is refused); the server binds 127.0.0.1 unless told otherwise, and on any other
address every request must carry the token printed at start (``?token=`` once, then a cookie, or the
``X-Review-Token`` header). Requests whose Host or Origin is not the server's own are refused (DNS
rebinding, cross-site posts). The app writes only the decisions file and results/review_app/; it never
writes, moves or deletes anything under the input folder or a pipeline output.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import hmac
import ipaddress
import json
import logging
import mimetypes
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from functools import cached_property
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from photoarchive import decisions as dec
from photoarchive.imageio import read_scan, thumbnail_jpeg
from photoarchive.settings import SCHEMA_FILE
from photoarchive.stages import file_path, read_record

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("data") / "review"
REPO_CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
PHOTO_ID = re.compile(r"^[A-Za-z0-9._-]+-[0-9a-f]{8}$")
MAX_LIMIT = 500
MAX_BODY = 64 * 1024
THUMB_PX = 320
_REASON_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def reason_kind(reason: str) -> str:
    """A reason without its numbers and face index, to count reasons of the same kind together."""
    text = re.sub(r"^face \d+: ", "", reason.strip())
    text = text.split(": ", 1)[-1] if ": " in text else text
    return _REASON_NUMBER.sub("#", text).strip()


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class ForbiddenPathError(Exception):
    """A request for a file outside the folders the app may serve."""


def safe_path(root: Path, relpath: str) -> Path:
    """`root`/`relpath` when it is a file inside `root` (symbolic links resolved); raises ForbiddenPathError.

    `relpath` is already percent-decoded once; a "..", an absolute path, a NUL or a backslash is
    refused before anything touches the file system, and the resolved path must stay under the
    resolved root (a symbolic link pointing outside is refused).
    """
    if not relpath or "\x00" in relpath or "\\" in relpath or relpath.startswith("/"):
        raise ForbiddenPathError(relpath)
    parts = relpath.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ForbiddenPathError(relpath)
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(base.joinpath(*parts)))
    if not target.is_relative_to(base) or target == base:
        raise ForbiddenPathError(relpath)
    return target


class ReviewData:
    """What the app shows, read from results/ (the manifest and per-photo records), cached by file version."""

    def __init__(self, results: Path, input_dir: Path, decisions_file: Path, config: dict):
        self.results, self.input_dir, self.decisions_file, self.config = results, input_dir, decisions_file, config
        self._lock = threading.Lock()
        self._manifest: tuple[tuple, list[dict], dict[str, dict]] | None = None
        self._dedup: tuple[tuple, dict[str, str]] | None = None
        self._decisions: tuple[tuple, dict] | None = None
        self._thumbs: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    @staticmethod
    def _version(path: Path) -> tuple:
        try:
            info = path.stat()
            return info.st_size, info.st_mtime_ns
        except OSError:
            return ()

    def rows(self) -> tuple[list[dict], dict[str, dict]]:
        """The manifest's rows (with parsed reasons and score) and the same by photo id."""
        path = self.results / "manifest.csv"
        version = self._version(path)
        with self._lock:
            if self._manifest is None or self._manifest[0] != version:
                rows = []
                if version:
                    with open(path, encoding="utf-8", newline="") as fh:
                        for row in csv.DictReader(fh):
                            row = {k: v or "" for k, v in row.items() if k}
                            reasons = [r for r in row.get("reason", "").split("; ") if r] \
                                if row.get("status") in ("review", "rejected") else []
                            row["_reasons"] = reasons
                            row["_kinds"] = sorted({reason_kind(r) for r in reasons})
                            row["_score"] = _float(row.get("identity_distance", ""))
                            rows.append(row)
                self._manifest = (version, rows, {r["photo_id"]: r for r in rows})
            return self._manifest[1], self._manifest[2]

    def batch_of(self, photo: str) -> str:
        path = self.results / "dedup" / "dedup.tsv"
        version = self._version(path)
        with self._lock:
            if self._dedup is None or self._dedup[0] != version:
                table = {}
                if version:
                    with open(path, encoding="utf-8", newline="") as fh:
                        table = {r["photo_id"]: r.get("batch", "") for r in csv.DictReader(fh, delimiter="\t")}
                self._dedup = (version, table)
            return self._dedup[1].get(photo, "")

    def decisions(self) -> dict[str, dict]:
        version = self._version(self.decisions_file)
        with self._lock:
            if self._decisions is None or self._decisions[0] != version:
                self._decisions = (version, dec.read_decisions(self.decisions_file) if version else {})
            return self._decisions[1]

    def listing(self, query: dict[str, str]) -> dict:
        """One page of the list, filtered and sorted, with counts per status and per reason kind."""
        rows, _ = self.rows()
        decided = self.decisions()
        status = query.get("status", "review")
        reason, text = query.get("reason", ""), query.get("q", "").casefold()
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        chosen = rows if status in ("", "all") else [r for r in rows if r["status"] == status]
        if text:
            chosen = [r for r in chosen if text in r["source"].casefold() or text in r["reason"].casefold()]
        reasons: dict[str, int] = {}
        for row in chosen:
            for kind in row["_kinds"]:
                reasons[kind] = reasons.get(kind, 0) + 1
        if reason:
            chosen = [r for r in chosen if reason in r["_kinds"]]
        sort, descending = query.get("sort", "source"), query.get("order", "asc") == "desc"
        if sort == "score":  # largest identity distance first when descending; photos without one last
            chosen = sorted(chosen, key=lambda r: (r["_score"] is None,
                                                   -(r["_score"] or 0) if descending else (r["_score"] or 0)))
        elif sort in ("status", "reason", "source"):
            chosen = sorted(chosen, key=lambda r: (r[sort], r["source"]), reverse=descending)
        try:
            offset = max(0, int(query.get("offset", 0)))
            limit = min(MAX_LIMIT, max(1, int(query.get("limit", 100))))
        except ValueError:
            offset, limit = 0, 100
        items = [{"photo_id": r["photo_id"], "source": r["source"], "status": r["status"],
                  "reasons": r["_reasons"], "score": r["_score"], "faces": r.get("faces", ""),
                  "decision": (decided.get(r["photo_id"]) or {}).get("decision", "")}
                 for r in chosen[offset:offset + limit]]
        return {"total": len(chosen), "offset": offset, "limit": limit, "counts": counts,
                "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])), "items": items}

    def _url(self, path: Path) -> str | None:
        """/file/results/... or /file/input/... for a file under one of the two roots, None otherwise."""
        for name, root in (("results", self.results), ("input", self.input_dir)):
            try:
                rel = path.relative_to(root)
            except ValueError:
                continue
            if path.is_file():
                return f"/file/{name}/{rel.as_posix()}"
        return None

    def _output(self, text: str) -> Path:
        """A manifest `output` (relative to the run's working folder, the one holding results/) as a path."""
        path = Path(text)
        return path if path.is_absolute() else self.results.parent / path

    def detail(self, photo: str) -> dict | None:
        """Everything the viewer shows for one photo, or None for an unknown id."""
        _, by_id = self.rows()
        row = by_id.get(photo)
        if row is None:
            return None
        r = self.results
        batch = self.batch_of(photo)
        verdict, enhance, restore, ingest, repair, matting = (
            read_record(r, stage, photo) or {} for stage in ("qa", "enhance", "restore", "ingest", "repair", "matting"))
        try:
            faces = json.loads(row.get("face_records") or "[]")
        except ValueError:
            faces = []
        retuned = r / "review_app" / "retune" / photo
        images = {
            "before": self._url(file_path(r, "stamp", photo)),
            "after": self._url(file_path(r, "restore", photo)),
            "matte": self._url(file_path(r, "matting", photo, 0)),
            "damage": self._url(file_path(r, "repair", photo, 1)),
            "published": self._url(self._output(row["output"])) if row.get("output") else None,
            "original": self._url(self.input_dir / row["source"]),
            "retuned": self._url(retuned / "after.png"),
        }
        return {
            "photo_id": photo, "source": row["source"], "status": row["status"], "reason": row["reason"],
            "reasons": verdict.get("reasons", row["_reasons"]), "qa_status": verdict.get("status", ""),
            "metrics": {k: v for k, v in verdict.get("metrics", {}).items() if not isinstance(v, (list, dict))},
            "faces": faces, "images": images, "decision": self.decisions().get(photo),
            "provenance": {
                "source": row["source"], "sha256": row.get("sha256", ""), "batch": batch,
                "size": [ingest.get("width"), ingest.get("height")], "bit_depth": ingest.get("bit_depth"),
                "notes": row.get("notes", ""), "preset": enhance.get("preset", ""),
                "preset_reasons": enhance.get("reasons", []), "damage": repair.get("shares_text", ""),
                "matting": matting.get("backend", ""), "restore_backend": restore.get("backend", ""),
                "restore_model": row.get("restore_model", ""), "controls": restore.get("controls", {}),
                "face_detector": row.get("face_detector", ""), "output": row.get("output", ""),
            },
            "retuned": _read_json(retuned / "result.json") or None,
        }

    def thumbnail(self, photo: str, kind: str) -> tuple[bytes, str] | None:
        """(JPEG bytes, where from): the thumbs rule's file, else one made in memory (never written)."""
        batch = self.batch_of(photo)  # "" for a photo that is not a unique one of this run
        if not batch or kind not in ("before", "after"):
            return None
        made = self.results / "thumbs" / batch / f"{photo}_{kind}.jpg"
        if made.is_file():
            return made.read_bytes(), "file"
        key = (photo, kind)
        with self._lock:
            if key in self._thumbs:
                self._thumbs.move_to_end(key)
                return self._thumbs[key], "memory"
        source = file_path(self.results, "stamp" if kind == "before" else "restore", photo)
        try:
            scan = read_scan(source, max_pixels=10**10, max_side=2 * THUMB_PX)
        except (OSError, ValueError):
            return None
        data = thumbnail_jpeg(scan.pixels, THUMB_PX)
        with self._lock:
            self._thumbs[key] = data
            while len(self._thumbs) > 2000:
                self._thumbs.popitem(last=False)
        return data, "memory"


def load_config(path: Path | None) -> dict:
    """The pipeline's config (the given file, else ./config.yaml, else the repository's), schema defaults filled."""
    import yaml
    from snakemake.utils import validate

    for candidate in (path, Path("config.yaml"), REPO_CONFIG):
        if candidate is not None and Path(candidate).is_file():
            config = yaml.safe_load(Path(candidate).read_text(encoding="utf-8")) or {}
            break
    else:
        config = {}
    validate(config, str(SCHEMA_FILE))
    return config


class Retuner:
    """Recompute one photo with other per-photo controls: repair → enhance → restore → QA, by calling the
    package's functions, into results/review_app/retune/<photo>/ (pipeline outputs are not touched)."""

    def __init__(self, data: ReviewData, catalogue: dict[str, dict[str, str]]):
        self.data, self.catalogue = data, catalogue
        self._lock = threading.Lock()  # one at a time: a retune takes the CPU (or the GPU) for seconds

    @cached_property
    def selector(self):
        from photoarchive.restore import build_restorer
        return build_restorer(self.data.config["restore"], Path(self.data.config["models_dir"]))

    @cached_property
    def damage_detector(self):
        """The learned damage detector when models_dir has its weights (as the repair stage uses), else None."""
        from photoarchive.repair import load_detector
        return load_detector(Path(self.data.config["models_dir"]))

    def run(self, photo: str, overrides: dict[str, Any]) -> dict:
        from photoarchive import enhance as enh
        from photoarchive import qa
        from photoarchive import repair as rep
        from photoarchive import restore as res
        from photoarchive.identity import FaceEmbedder
        from photoarchive.imageio import encode_image, load_working, write_atomic

        overrides = dec.validate_overrides(overrides)
        _, by_id = self.data.rows()
        row = by_id[photo]
        results, config = self.data.results, self.data.config
        kept = (self.data.decisions().get(photo) or {}).get("overrides", {})
        cells = {**self.catalogue.get(row["source"], {}), **dec.overrides_row({"overrides": {**kept, **overrides}})}
        detection = read_record(results, "faces", photo)
        if detection is None:
            raise FileNotFoundError(f"{file_path(results, 'faces', photo)}: run the pipeline first")
        faces = detection["faces"]
        started = time.perf_counter()
        with self._lock:
            original, depth = load_working(file_path(results, "stamp", photo))
            pixels = original
            repair_cfg = rep.apply_overrides(config["repair"], rep.catalogue_overrides(cells))
            masks = None
            if repair_cfg["enabled"]:
                boxes = [f["box"] for f in faces] if repair_cfg["protect_faces"] else None
                pixels, masks, _ = rep.repair(pixels, repair_cfg, boxes, self.damage_detector)
            enhanced, enhance_record = enh.enhance(pixels, {**config["enhance"], **enh.catalogue_overrides(cells)})
            matte_path = file_path(results, "matting", photo, 0)
            matte = load_working(matte_path)[0] if matte_path.is_file() else None
            restore_cfg = config["restore"]
            embedder = FaceEmbedder() if faces and restore_cfg["identity"]["guard"] else None
            restored, restore_record = res.restore_faces(enhanced, faces, self.selector, matte=matte, cfg=restore_cfg,
                                                         overrides=res.catalogue_overrides(cells), embedder=embedder)
            restore_record["errors"] = [f"face {e['index']}: {e['error']}" for e in restore_record["faces"]
                                        if e.get("status") == "error"]
            metrics = qa.measure_photo(original, restored, faces, restore_record, config["qa"], embedder,
                                       detection.get("skipped", []), config["faces"]["min_face_px"])
            metrics["person_found"] = (read_record(results, "matting", photo) or {}).get("person_found")
            metrics["tone_kept"] = enhance_record.get("tone_kept")
            status, reasons = qa.triage(metrics, config["qa"], restore_cfg["identity"])
            out = results / "review_app" / "retune" / photo
            write_atomic(out / "after.png", encode_image(restored, ".png", depth))
            if masks is not None:
                write_atomic(out / "damage.png", encode_image(rep.label_image(masks), ".png", 8))
            result = {"photo_id": photo, "overrides": {**kept, **overrides}, "status": status, "reasons": reasons,
                      "preset": enhance_record.get("preset"), "controls": restore_record.get("controls", {}),
                      "faces": [{"index": e.get("index"), "strength": e.get("strength"), "identity": e.get("identity")}
                                for e in restore_record.get("faces", [])],
                      "seconds": round(time.perf_counter() - started, 2),
                      "time": dec.now_iso()}
            write_atomic(out / "result.json", json.dumps(result, indent=1, default=float).encode())
        log.info("retuned %s in %.1f s: %s", photo, result["seconds"], status)
        return {**result, "image": self.data._url(out / "after.png")}


def override_controls(config: dict) -> list[dict]:
    """The retune form: each override column with its type, range, choices and the configured value."""
    controls = []
    for column, path in dec.OVERRIDE_COLUMNS.items():
        spec = dec.override_spec(column)
        value: Any = config
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        controls.append({"name": column, "type": "enum" if "enum" in spec else spec.get("type"),
                         "choices": [str(e) for e in spec.get("enum", [])], "minimum": spec.get("minimum"),
                         "maximum": spec.get("maximum"), "configured": value})
    return controls


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], data: ReviewData, retuner: Retuner, reviewer: str,
                 token: str | None, show_all: bool):
        super().__init__(address, Handler)
        self.data, self.retuner, self.reviewer, self.token, self.show_all = data, retuner, reviewer, token, show_all

    @property
    def origin_hosts(self) -> set[str]:
        host, port = self.server_address[:2]
        names = {host, "localhost", "127.0.0.1", "[::1]"} if is_loopback(host) else {host}
        return {f"{h}:{port}" for h in names}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    # --- plumbing -------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
                         "frame-ancestors 'none'")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the browser moved on (next photo, reload)
                self.close_connection = True

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data, default=float).encode(), "application/json; charset=utf-8",
                   {"Cache-Control": "no-store", **(headers or {})})

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _allowed(self, query: dict[str, str]) -> bool:
        """Host/Origin are the server's own, and the token (when one is set) came with the request."""
        host, token = self.headers.get("Host", ""), self.server.token
        if token is None and host not in self.server.origin_hosts:  # a DNS-rebound name reaching 127.0.0.1
            self._error(HTTPStatus.FORBIDDEN, "unexpected Host header")
            return False
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != host:
            self._error(HTTPStatus.FORBIDDEN, "cross-origin request refused")
            return False
        if token is None:
            return True
        cookie = re.search(r"(?:^|;\s*)review_token=([^;]+)", self.headers.get("Cookie", ""))
        given = query.get("token") or self.headers.get("X-Review-Token") or (cookie.group(1) if cookie else "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            self._error(HTTPStatus.UNAUTHORIZED, "token required: open the address printed when the app started")
            return False
        return True

    def _parse(self) -> tuple[str, dict[str, str]] | None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if not self._allowed(query):
            return None
        return url.path, query

    # --- GET ------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802 - the base class's name
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        parsed = self._parse()
        if parsed is None:
            return
        path, query = parsed
        data = self.server.data
        try:
            if path in ("/", "/index.html"):
                headers = {}
                if self.server.token and query.get("token"):
                    headers["Set-Cookie"] = f"review_token={self.server.token}; HttpOnly; SameSite=Strict; Path=/"
                self._send(HTTPStatus.OK, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8",
                           {"Cache-Control": "no-store", **headers})
            elif path in ("/app.js", "/app.css"):
                kind = "text/javascript" if path.endswith(".js") else "text/css"
                self._send(HTTPStatus.OK, (STATIC / path[1:]).read_bytes(), f"{kind}; charset=utf-8")
            elif path == "/api/config":
                self._json(HTTPStatus.OK, {"reviewer": self.server.reviewer, "all": self.server.show_all,
                                           "controls": override_controls(data.config),
                                           "decisions_file": str(data.decisions_file)})
            elif path == "/api/photos":
                self._json(HTTPStatus.OK, data.listing(query))
            elif path.startswith("/api/photo/"):
                photo = unquote(path[len("/api/photo/"):])
                detail = data.detail(photo) if PHOTO_ID.match(photo) else None
                if detail is None:
                    self._error(HTTPStatus.NOT_FOUND, "unknown photo")
                else:
                    self._json(HTTPStatus.OK, detail)
            elif path.startswith("/thumb/"):
                parts = path.split("/")
                got = data.thumbnail(parts[2], parts[3]) if len(parts) == 4 and PHOTO_ID.match(parts[2]) else None
                if got is None:
                    self._error(HTTPStatus.NOT_FOUND, "no thumbnail")
                else:
                    self._send(HTTPStatus.OK, got[0], "image/jpeg", {"Cache-Control": "max-age=60",
                                                                     "X-Thumbnail": got[1]})
            elif path.startswith("/file/"):
                self._file(path)
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found")
        except dec.DecisionError as exc:
            self._error(HTTPStatus.CONFLICT, str(exc))

    def _file(self, path: str) -> None:
        _, _, root_name, rel = (path.split("/", 3) + ["", ""])[:4]
        roots = {"results": self.server.data.results, "input": self.server.data.input_dir}
        try:
            if root_name not in roots:
                raise ForbiddenPathError(root_name)
            target = safe_path(roots[root_name], unquote(rel))
        except ForbiddenPathError:
            self._error(HTTPStatus.FORBIDDEN, "outside the folders this app serves")
            return
        if target.suffix.lower() not in IMAGE_SUFFIXES or not target.is_file():
            self._error(HTTPStatus.NOT_FOUND, "no such image")
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, target.read_bytes(), kind, {"Cache-Control": "no-cache"})

    # --- POST -----------------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802
        parsed = self._parse()
        if parsed is None:
            return
        path, _query = parsed
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON")
            return
        length = self.headers.get("Content-Length") or "0"
        length = int(length) if length.isdigit() else MAX_BODY + 1
        if length > MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            photo = str(body.get("photo_id", ""))
        except (ValueError, AttributeError):
            self._error(HTTPStatus.BAD_REQUEST, "not a JSON object")
            return
        _, by_id = self.server.data.rows()
        if not PHOTO_ID.match(photo) or photo not in by_id:
            self._error(HTTPStatus.NOT_FOUND, "unknown photo")
            return
        try:
            if path == "/api/decision":
                entry = dec.record_decision(self.server.data.decisions_file, photo, str(body.get("decision", "")),
                                            self.server.reviewer, str(body.get("note") or ""),
                                            body.get("overrides"))
                log.info("%s: %s", photo, dec.decision_text(entry))
                self._json(HTTPStatus.OK, entry)
            elif path == "/api/retune":
                self._json(HTTPStatus.OK, self.server.retuner.run(photo, body.get("overrides") or {}))
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found")
        except dec.DecisionError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except Exception as exc:  # a retune that fails says why; the server carries on
            log.exception("%s failed for %s", path, photo)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")


def make_server(results: Path, input_dir: Path | None = None, host: str = "127.0.0.1", port: int = 8765,
                reviewer: str | None = None, show_all: bool = False, token: str | None = None,
                config: dict | None = None, config_file: Path | None = None) -> ReviewServer:
    """The app's server, not yet serving (call serve_forever). A non-loopback host gets a token."""
    from photoarchive.metadata import read_metadata_csv

    config = config if config is not None else load_config(config_file)
    results = Path(results).resolve()
    input_dir = Path(input_dir or config["input_dir"]).resolve()
    decisions_file = Path(config["review"]["decisions"])
    if not decisions_file.is_absolute():  # relative to the pipeline's working folder, the one above results/
        decisions_file = results.parent / decisions_file
    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(24)
    catalogue_file = Path(config["metadata_csv"]) if config.get("metadata_csv") else input_dir / "metadata.csv"
    catalogue, _problems = read_metadata_csv(catalogue_file if catalogue_file.is_file() else None)
    data = ReviewData(results, input_dir, decisions_file, config)
    return ReviewServer((host, port), data, Retuner(data, catalogue), reviewer or getpass.getuser(), token, show_all)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m photoarchive.review", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results"), help="the pipeline's results folder")
    parser.add_argument("--input-dir", type=Path, help="the scans (default: input_dir of the config)")
    parser.add_argument("--configfile", type=Path, help="config.yaml of the run (default: ./config.yaml)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind; not loopback: a token is required")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--reviewer", help="your name, recorded with each decision (default: login name)")
    parser.add_argument("--all", action="store_true", help="list every photo, not only the review queue")
    parser.add_argument("--token", help="use this token instead of a generated one (non-loopback hosts)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not (args.results / "manifest.csv").is_file():
        parser.error(f"{args.results / 'manifest.csv'} not found: run the pipeline first, or pass --results")
    server = make_server(args.results, args.input_dir, args.host, args.port, args.reviewer, args.all, args.token,
                         config_file=args.configfile)
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/" + (f"?token={server.token}" if server.token else "")
    print(f"photoarchive review app for {server.data.results} (reviewer: {server.reviewer})\n  open {url}\n"
          f"  decisions go to {server.data.decisions_file}; Ctrl-C to stop", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
