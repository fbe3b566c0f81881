"""Model download step against a local HTTP server: verified, atomic, nothing partial left behind."""

import hashlib
import http.server
import logging
import re
import threading

import pytest

from photoarchive import download
from photoarchive.download import MODEL_FILES, ChecksumError, DownloadError, ModelFile, download_model

BODY = bytes(range(256)) * 1000  # 256 kB, several read chunks
GOOD_SHA = hashlib.sha256(BODY).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests.append(self.path)
        if self.path == "/model.pth":
            self._send(BODY, len(BODY))
        elif self.path == "/cut.pth":
            # Promises more than it sends, then closes the connection.
            self._send(BODY[: len(BODY) // 2], len(BODY))
            self.close_connection = True
        else:
            self.send_error(404)

    def _send(self, body: bytes, length: int):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(monkeypatch):
    """Base URL of a server on 127.0.0.1 (ephemeral port); requests seen are in ``_Handler.requests``."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.requests = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _leftovers(folder):
    """Anything in ``folder`` that is not a model file: hidden or not (pooch names its temporary files tmp*)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".pth"))


def test_good_checksum_installs_file(server, tmp_path):
    dest = tmp_path / "models" / "GPEN-BFR-512.pth"
    assert download_model(f"{server}/model.pth", dest, GOOD_SHA.upper(), timeout=10) == dest
    assert dest.read_bytes() == BODY
    assert _leftovers(dest.parent) == []


def test_verified_file_is_not_downloaded_again(server, tmp_path):
    dest = tmp_path / "m.pth"
    dest.write_bytes(BODY)
    download_model(f"{server}/model.pth", dest, GOOD_SHA, timeout=10)
    assert _Handler.requests == []


def test_bad_checksum_installs_nothing_and_keeps_existing_file(server, tmp_path):
    dest = tmp_path / "m.pth"
    with pytest.raises(ChecksumError, match=f"SHA-256 {GOOD_SHA}, expected {'0' * 64}"):
        download_model(f"{server}/model.pth", dest, "0" * 64, timeout=10)
    assert not dest.exists() and _leftovers(tmp_path) == []

    dest.write_bytes(b"older good file")
    with pytest.raises(ChecksumError, match="existing file is unchanged"):
        download_model(f"{server}/model.pth", dest, "0" * 64, timeout=10)
    assert dest.read_bytes() == b"older good file" and _leftovers(tmp_path) == []


def test_interrupted_download_leaves_no_partial_file(server, tmp_path):
    dest = tmp_path / "m.pth"
    with pytest.raises(DownloadError) as info:
        download_model(f"{server}/cut.pth", dest, GOOD_SHA, timeout=10)
    assert not isinstance(info.value, ChecksumError)  # a cut connection is said to be one, not a bad file
    assert not dest.exists() and _leftovers(tmp_path) == []

    dest.write_bytes(b"older good file")
    with pytest.raises(DownloadError):
        download_model(f"{server}/cut.pth", dest, GOOD_SHA, timeout=10)
    assert dest.read_bytes() == b"older good file" and _leftovers(tmp_path) == []


def test_http_error_is_clear(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_model(f"{server}/absent.pth", tmp_path / "m.pth", GOOD_SHA, timeout=10)
    assert list(tmp_path.iterdir()) == []


def test_rejects_malformed_or_missing_sha256(tmp_path):
    with pytest.raises(ValueError, match="64 hex"):
        download_model("http://127.0.0.1:9/x", tmp_path / "m.pth", "abc")
    with pytest.raises(ValueError, match="required"):
        download_model("http://127.0.0.1:9/x", tmp_path / "m.pth", None)
    assert list(tmp_path.iterdir()) == []


def test_model_table_is_well_formed():
    expected_files = {"GPEN-BFR-512.pth", "GPEN-BFR-1024.pth", "detection_Resnet50_Final.pth", "parsing_parsenet.pth"}
    assert {entry.filename for entry in MODEL_FILES.values()} == expected_files
    for entry in MODEL_FILES.values():
        assert entry.url.startswith("https://")
        assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", entry.sha256)


@pytest.fixture()
def local_table(server, monkeypatch):
    table = {
        "known": ModelFile(f"{server}/model.pth", GOOD_SHA, "known.pth", "test file with a known hash"),
        "unknown": ModelFile(f"{server}/model.pth", None, "unknown.pth", "test file without a known hash"),
    }
    monkeypatch.setattr(download, "MODEL_FILES", table)
    return table


def test_cli_installs_known_and_refuses_unknown(local_table, tmp_path, caplog):
    models = tmp_path / "models"
    assert download.main(["known", "--models-dir", str(models)]) == 0
    assert (models / "known.pth").read_bytes() == BODY

    assert download.main(["unknown", "--models-dir", str(models)]) == 1
    assert not (models / "unknown.pth").exists()
    assert "refused" in caplog.text and "--sha256 unknown=HEX" in caplog.text


def test_cli_print_sha256_installs_nothing(local_table, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="photoarchive.download")
    models = tmp_path / "models"
    assert download.main(["unknown", "--print-sha256", "--models-dir", str(models)]) == 0
    assert f"unknown sha256 {GOOD_SHA}" in caplog.text
    assert list(models.iterdir()) == []


def test_cli_sha256_override(local_table, tmp_path):
    models = tmp_path / "models"
    assert download.main(["unknown", "--sha256", f"unknown={GOOD_SHA}", "--models-dir", str(models)]) == 0
    assert (models / "unknown.pth").read_bytes() == BODY
    assert download.main(["unknown", "--sha256", f"unknown={'1' * 64}", "--models-dir", str(tmp_path / "b")]) == 1
    assert download.main(["nosuchmodel", "--models-dir", str(models)]) == 2


def test_importing_the_module_loads_no_network_code():
    """The pipeline imports `sha256_of_file` from here; pooch and requests come only with a download."""
    import subprocess
    import sys

    code = "import sys, photoarchive.download; print(sorted({'pooch', 'requests'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
