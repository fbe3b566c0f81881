"""Tests for review decisions (photoarchive.decisions) and the review app's server (photoarchive.review)."""

from __future__ import annotations

import csv
import http.client
import json
import os
import threading

import numpy as np
import pytest
from workflow import snapshot

from photoarchive import decisions as dec
from photoarchive.imageio import write_image
from photoarchive.manifest import ManifestRow
from photoarchive.metadata import Provenance, exiftool_session, read_tags, stamp_published
from photoarchive.package import read_decisions as package_read_decisions
from photoarchive.review import ForbiddenPathError, load_config, make_server, reason_kind, safe_path
from photoarchive.stages import file_path

PHOTO = "family__img001.jpg-0123abcd"
OTHER = "family__img002.jpg-89abcdef"


# ------------------------------------------------------------------------------------------------
# decisions file


def test_record_and_read_back(tmp_path):
    path = tmp_path / "results" / "decisions.json"
    entry = dec.record_decision(path, PHOTO, "accept", "Ann", note="fine", when="2026-12-01T00:20:00+00:00")
    assert entry["decision"] == "accept" and entry["reviewer"] == "Ann"
    data = json.loads(path.read_text())
    assert data[PHOTO]["time"] == "2026-12-01T00:20:00+00:00" and data[PHOTO]["note"] == "fine"
    assert dec.read_decisions(path)[PHOTO]["decision"] == "accept"
    # no temporary or half-written file is left beside it
    assert sorted(p.name for p in path.parent.iterdir()) == [".decisions.json.lock", "decisions.json"]


def test_time_defaults_to_iso_utc(tmp_path):
    entry = dec.record_decision(tmp_path / "d.json", PHOTO, "reject", "Bo")
    assert entry["time"].endswith("+00:00") and entry["time"][4] == "-" and "T" in entry["time"]


def test_later_decision_replaces_and_keeps_history_and_overrides(tmp_path):
    path = tmp_path / "d.json"
    dec.record_decision(path, PHOTO, "retune", "Ann", overrides={"restore_strength": 40, "enhance_preset": "Natural"})
    dec.record_decision(path, OTHER, "reject", "Ann")
    entry = dec.record_decision(path, PHOTO, "accept", "Bo")
    assert entry["decision"] == "accept" and entry["overrides"] == {"restore_strength": 40.0,
                                                                   "enhance_preset": "natural"}
    assert [h["decision"] for h in entry["history"]] == ["retune"]
    assert set(dec.read_decisions(path)) == {PHOTO, OTHER}  # the other photo's decision is kept


@pytest.mark.parametrize("overrides, words", [
    ({"restore_strenght": 50}, "unknown override"),
    ({"restore_strength": 101}, "from 0 to 100"),
    ({"restore_grain": 2}, "from 0 to 1"),
    ({"restore_degradation_scale": 0.5}, "from 1 to 16"),
    ({"restore_grain": "lots"}, "expected a number"),
    ({"restore_grain": float("nan")}, "from 0 to 1"),
    ({"enhance_preset": "vivid"}, "use one of"),
    ({"repair": "maybe"}, "true or false"),
    ({"restore_weight_nose": 0.5}, "unknown override"),
])
def test_overrides_checked_against_the_schema(tmp_path, overrides, words):
    with pytest.raises(dec.DecisionError, match=words):
        dec.record_decision(tmp_path / "d.json", PHOTO, "retune", "Ann", overrides=overrides)
    assert not (tmp_path / "d.json").exists()  # nothing written


def test_overrides_take_every_per_photo_column():
    values = dec.validate_overrides({"enhance_preset": "strong", "enhance_tone": "neutral", "repair": "no",
                                     "repair_sensitivity": "70", "restore_strength": 0, "restore_grain": 1,
                                     "restore_skin_protection": 0.2, "restore_degradation_scale": 16,
                                     "restore_weight_eyes": 0.5, "restore_grain_extra": None})
    assert values["repair"] is False and values["repair_sensitivity"] == 70.0
    assert dec.overrides_row({"overrides": values})["repair"] == "false"
    assert dec.overrides_row({"overrides": values})["restore_strength"] == "0"


def test_override_columns_are_those_the_stages_read():
    from photoarchive.repair import CATALOGUE_COLUMNS as REPAIR
    from photoarchive.restore import CATALOGUE_COLUMNS as RESTORE
    assert set(RESTORE) | set(REPAIR) | {"enhance_preset", "enhance_tone"} == set(dec.OVERRIDE_COLUMNS)


def test_overrides_row_is_read_by_the_stages():
    from photoarchive.enhance import catalogue_overrides as enhance_overrides
    from photoarchive.repair import catalogue_overrides as repair_overrides
    from photoarchive.restore import catalogue_overrides as restore_overrides
    from photoarchive.restore import resolve_controls
    row = dec.overrides_row({"overrides": dec.validate_overrides(
        {"enhance_preset": "detail", "repair": False, "repair_sensitivity": 20, "restore_strength": 35,
         "restore_weight_eyes": 0.25})})
    assert enhance_overrides(row) == {"preset": "detail"}
    assert repair_overrides(row) == {"enabled": False, "sensitivity": 20.0}
    controls = resolve_controls({}, restore_overrides(row))
    assert controls["strength"] == 35 and controls["region_weights"]["eyes"] == 0.25


@pytest.mark.parametrize("decision, reviewer, photo, words", [
    ("maybe", "Ann", PHOTO, "use one of"),
    ("accept", "  ", PHOTO, "reviewer"),
    ("accept", "Ann", "../etc/passwd", "not a photo id"),
    ("retune", "Ann", PHOTO, "at least one override"),
])
def test_bad_decisions_are_refused(tmp_path, decision, reviewer, photo, words):
    with pytest.raises(dec.DecisionError, match=words):
        dec.record_decision(tmp_path / "d.json", photo, decision, reviewer)


def test_a_broken_file_names_the_entry(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({PHOTO: {"decision": "acept", "reviewer": "Ann"}}))
    with pytest.raises(dec.DecisionError, match=f"{path}.*{PHOTO}.*acept"):
        dec.read_decisions(path)


def test_absent_file_changes_nothing(tmp_path):
    assert dec.read_decisions(tmp_path / "none.json") == {}
    assert dec.effective_status("review", None) == "review"


def test_csv_and_list_forms_are_read(tmp_path):
    csv_file = tmp_path / "d.csv"
    csv_file.write_text("photo_id,decision,reviewer,time,note\n"
                        f"{PHOTO},accepted,Ann,2026-11-30,ok\n{OTHER},reject,Bo,2026-11-30,\n")
    assert {k: v["decision"] for k, v in dec.read_decisions(csv_file).items()} == {PHOTO: "accept", OTHER: "reject"}
    list_file = tmp_path / "d.json"
    list_file.write_text(json.dumps([{"photo_id": PHOTO, "decision": "reject", "reviewer": "Ann"}]))
    assert dec.read_decisions(list_file)[PHOTO]["decision"] == "reject"


def test_package_reads_the_decisions_file(tmp_path):
    path = tmp_path / "decisions.json"
    dec.record_decision(path, PHOTO, "retune", "Ann", note="softer", overrides={"restore_strength": 40})
    dec.record_decision(path, PHOTO, "accept", "Bo", note="good now", when="2026-12-01T01:00:00+00:00")
    got = package_read_decisions(path)[PHOTO]
    assert got["decision"] == "accept" and got["reviewer"] == "Bo" and got["time"] == "2026-12-01T01:00:00+00:00"
    assert got["note"] == "good now" and "overrides" not in got and "history" not in got


@pytest.mark.parametrize("qa, decision, status", [
    ("review", "accept", "processed"), ("review", "reject", "rejected"), ("review", "retune", "review"),
    ("processed", "reject", "rejected"), ("processed", "accept", "processed"), ("failed", "accept", "failed"),
])
def test_effective_status(qa, decision, status):
    assert dec.effective_status(qa, {"decision": decision}) == status


def test_decision_text():
    text = dec.decision_text({"decision": "retune", "reviewer": "Ann", "time": "T", "note": "n",
                              "overrides": {"restore_strength": 40.0}})
    assert text == "retuned by Ann T (restore_strength=40.0): n"


def test_review_tags_written_on_a_published_file(tmp_path):
    target = tmp_path / "x_restored.jpg"
    write_image(target, np.full((8, 8, 3), 0.5, np.float32))
    with exiftool_session() as et:
        stamp_published(et, target, target, [Provenance(stage="restore")], review=dec.XMP_TAGS["reject"])
        tags = read_tags(et, target)
    assert tags["XMP-xmp:Rating"] == -1 and tags["XMP-xmp:Label"] == "Rejected"


# ------------------------------------------------------------------------------------------------
# the app's server


IDS = [f"family__p{n:03d}.jpg-{n:08x}" for n in range(12)]


def _config(tmp_path) -> dict:
    config = load_config(None)
    config["review"]["decisions"] = "results/decisions.json"
    return config


@pytest.fixture
def run(tmp_path):
    """A tiny finished run: input folder, results/ with manifest, stamp, restore, dedup; 12 photos.

    Per-photo files are where the stage contract puts them (photoarchive.stages.file_path): restore is
    flat (results/restore/<photo>.png), whatever the photo's batch; records carry their key."""
    scans, results = tmp_path / "scans", tmp_path / "work" / "results"
    for sub in ("stamp", "restore", "dedup", "qa", "matting"):
        (results / sub).mkdir(parents=True)
    (scans / "family").mkdir(parents=True)
    rows = []
    for n, pid in enumerate(IDS):
        pixels = np.full((40, 60, 3), 0.1 + 0.05 * n, np.float32)
        write_image(scans / "family" / f"p{n:03d}.jpg", pixels)
        write_image(file_path(results, "stamp", pid), pixels)
        write_image(file_path(results, "restore", pid), pixels * 0.9)
        file_path(results, "restore", pid, 1).write_text(json.dumps(
            {"backend": "classical", "controls": {"strength": 50 + n}, "faces": [], "key": f"{n:064x}"}))
        status = "review" if n % 3 else "processed"
        reason = (f"face 0: identity distance 0.{50 + n} from the scan > 0.50: the restored face may be someone else"
                  if n % 2 else "sharpness fell to 0.70 of the scan's")
        reason = reason if status == "review" else "all QA checks passed"
        rows.append(ManifestRow(photo_id=pid, source=f"family/p{n:03d}.jpg", status=status, reason=reason,
                                identity_distance=f"0.{50 + n}", faces="1",
                                face_records=json.dumps([{"index": 0, "box": [5, 5, 25, 25], "score": 0.99}]),
                                output=f"results/{status}/family/p{n:03d}_restored.jpg"))
    with open(results / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ManifestRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(r.__dict__ for r in rows)
    (results / "dedup" / "dedup.tsv").write_text("photo_id\tstatus\tbatch\n" + "".join(
        f"{pid}\tunique\tb0000\n" for pid in IDS))
    (tmp_path / "secret.png").write_bytes((results / "stamp" / f"{IDS[0]}.png").read_bytes())
    return {"scans": scans, "results": results, "root": tmp_path}


@pytest.fixture
def server(run, tmp_path):
    srv = make_server(run["results"], run["scans"], port=0, reviewer="Tess", config=_config(tmp_path))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(srv, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    """(status, headers, body bytes) of one raw request: the path goes out exactly as given."""
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Host": f"{host}:{port}", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for key, value in headers.items():
        conn.putheader(key, value)
    conn.putheader("Content-Length", str(len(data or b"")))
    conn.endheaders(data)
    response = conn.getresponse()
    out = response.status, dict(response.getheaders()), response.read()
    conn.close()
    return out


@pytest.mark.parametrize("path", [
    "/file/results/../secret.png",
    "/file/results/%2e%2e/secret.png",
    "/file/results/%2E%2E%2Fsecret.png",
    "/file/results/..%2fsecret.png",
    "/file/results/stamp/..%2f..%2fsecret.png",
    "/file/results/%252e%252e/secret.png",
    "/file/results//etc/passwd",
    "/file/results/%2Fetc%2Fpasswd",
    "/file/results/..%5csecret.png",
    "/file/results/stamp%00.png",
    "/file/input/../work/results/manifest.csv",
    "/file/elsewhere/secret.png",
    "/file/results/link_out/secret.png",
    "/file/results/link_file.png",
])
def test_path_traversal_is_refused(server, run, path):
    (run["results"] / "link_out").symlink_to(run["root"])  # a symbolic link leading out of results/
    (run["results"] / "link_file.png").symlink_to(run["root"] / "secret.png")
    status, _, body = request(server, "GET", path)
    assert status in (403, 404), (path, status)
    assert body[:4] != b"\x89PNG"


def test_files_under_the_two_roots_are_served(server, run):
    (run["results"] / "link_in.png").symlink_to(run["results"] / "stamp" / f"{IDS[1]}.png")  # inside: fine
    for path, folder in ((f"/file/results/stamp/{IDS[1]}.png", run["results"] / "stamp" / f"{IDS[1]}.png"),
                         ("/file/input/family/p001.jpg", run["scans"] / "family" / "p001.jpg"),
                         ("/file/results/link_in.png", run["results"] / "stamp" / f"{IDS[1]}.png")):
        status, headers, body = request(server, "GET", path)
        assert status == 200 and body == folder.read_bytes(), path
    assert request(server, "GET", "/file/results/manifest.csv")[0] == 404  # images only


def test_safe_path_unit(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"x")
    assert safe_path(tmp_path, "a/x.png") == (tmp_path / "a" / "x.png").resolve()
    for bad in ("../a", "a/../../x", "/etc/passwd", "a\\..\\x", "", "a//x.png", "./a/x.png"):
        with pytest.raises(ForbiddenPathError):
            safe_path(tmp_path / "a", bad)


def test_foreign_host_and_cross_origin_posts_are_refused(server):
    assert request(server, "GET", "/api/photos", headers={"Host": "evil.example:8765"})[0] == 403
    status, _, _ = request(server, "POST", "/api/decision", {"photo_id": IDS[1], "decision": "accept"},
                           headers={"Origin": "http://evil.example"})
    assert status == 403
    status, _, _ = request(server, "POST", "/api/decision", None, headers={"Content-Type": "text/plain"})
    assert status == 415


def test_token_checked_on_every_request(run, tmp_path):
    srv = make_server(run["results"], run["scans"], port=0, reviewer="Tess", config=_config(tmp_path), token="s3cret")
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        for path in ("/", "/api/photos", f"/file/results/stamp/{IDS[1]}.png", f"/thumb/{IDS[1]}/before"):
            assert request(srv, "GET", path)[0] == 401, path
            assert request(srv, "GET", path + ("&" if "?" in path else "?") + "token=wrong")[0] == 401
            assert request(srv, "GET", path, headers={"X-Review-Token": "s3cret"})[0] == 200, path
        status, headers, _ = request(srv, "GET", "/?token=s3cret")
        assert status == 200 and "HttpOnly" in headers["Set-Cookie"]
        assert request(srv, "GET", "/api/photos", headers={"Cookie": "review_token=s3cret"})[0] == 200
        assert request(srv, "POST", "/api/decision", {"photo_id": IDS[1], "decision": "accept"})[0] == 401
    finally:
        srv.shutdown()
        srv.server_close()


def test_other_hosts_get_a_generated_token(run, tmp_path):
    srv = make_server(run["results"], run["scans"], host="0.0.0.0", port=0, config=_config(tmp_path))
    try:
        assert srv.token and len(srv.token) >= 24
    finally:
        srv.server_close()
    local = make_server(run["results"], run["scans"], port=0, config=_config(tmp_path))
    try:
        assert local.token is None and local.server_address[0] == "127.0.0.1"
    finally:
        local.server_close()


def test_list_paginates_filters_sorts_and_counts(server):
    status, _, body = request(server, "GET", "/api/photos?limit=5")
    page = json.loads(body)
    assert status == 200 and page["total"] == 8 and len(page["items"]) == 5  # the review queue by default
    assert page["counts"] == {"processed": 4, "review": 8}
    assert page["reasons"] == {"the restored face may be someone else": 4, "sharpness fell to # of the scan's": 4}
    rest = json.loads(request(server, "GET", "/api/photos?limit=5&offset=5")[2])
    assert len(rest["items"]) == 3
    assert not {i["photo_id"] for i in rest["items"]} & {i["photo_id"] for i in page["items"]}
    everything = json.loads(request(server, "GET", "/api/photos?status=all&sort=score&order=desc")[2])
    scores = [i["score"] for i in everything["items"]]
    assert everything["total"] == 12 and scores == sorted(scores, reverse=True)
    one = json.loads(request(server, "GET", "/api/photos?reason=the%20restored%20face%20may%20be%20someone%20else")[2])
    assert one["total"] == 4 and all("someone else" in i["reasons"][0] for i in one["items"])
    assert reason_kind("face 2: detection score 0.80 < 0.95: it may not be a face") == "it may not be a face"


def test_detail_has_images_faces_and_provenance(server):
    detail = json.loads(request(server, "GET", f"/api/photo/{IDS[1]}")[2])
    assert detail["images"]["before"] == f"/file/results/stamp/{IDS[1]}.png"
    assert detail["images"]["after"] == f"/file/results/restore/{IDS[1]}.png"  # flat, not under its batch
    assert detail["images"]["original"] == "/file/input/family/p001.jpg"
    assert detail["faces"][0]["box"] == [5, 5, 25, 25] and detail["provenance"]["batch"] == "b0000"
    assert detail["provenance"]["restore_backend"] == "classical"  # from the restore record
    assert detail["provenance"]["controls"] == {"strength": 51}
    assert request(server, "GET", "/api/photo/..%2f..%2fetc")[0] == 404
    assert request(server, "GET", "/api/photo/unknown-00000000")[0] == 404


def test_thumbnails_from_the_thumbs_rule_else_in_memory(server, run):
    status, headers, body = request(server, "GET", f"/thumb/{IDS[2]}/after")
    assert status == 200 and headers["X-Thumbnail"] == "memory" and body[:2] == b"\xff\xd8"
    assert not (run["results"] / "thumbs").exists()  # never written
    made = run["results"] / "thumbs" / "b0000" / f"{IDS[3]}_before.jpg"
    made.parent.mkdir(parents=True)
    made.write_bytes(b"\xff\xd8 the thumbs rule's file")
    status, headers, body = request(server, "GET", f"/thumb/{IDS[3]}/before")
    assert headers["X-Thumbnail"] == "file" and body == made.read_bytes()
    assert request(server, "GET", f"/thumb/{IDS[3]}/sideways")[0] == 404


def test_decisions_through_the_api_leave_originals_alone(server, run):
    before = snapshot(run["scans"])
    results_before = snapshot(run["results"])
    status, _, body = request(server, "POST", "/api/decision", {"photo_id": IDS[1], "decision": "accept", "note": "ok"})
    assert status == 200 and json.loads(body)["reviewer"] == "Tess"
    assert request(server, "POST", "/api/decision", {"photo_id": IDS[2], "decision": "reject"})[0] == 200
    status, _, body = request(server, "POST", "/api/decision",
                              {"photo_id": IDS[4], "decision": "retune", "overrides": {"restore_strength": 500}})
    assert status == 400 and b"from 0 to 100" in body
    assert request(server, "POST", "/api/decision", {"photo_id": "nope-00000000", "decision": "accept"})[0] == 404
    saved = dec.read_decisions(run["results"] / "decisions.json")
    assert {k: v["decision"] for k, v in saved.items()} == {IDS[1]: "accept", IDS[2]: "reject"}
    assert saved[IDS[1]]["note"] == "ok" and saved[IDS[1]]["reviewer"] == "Tess"
    assert snapshot(run["scans"]) == before  # originals: same bytes, same times
    after = snapshot(run["results"])
    assert {k: v for k, v in after.items() if k in results_before} == results_before  # pipeline outputs untouched
    listing = json.loads(request(server, "GET", "/api/photos?status=all")[2])
    assert {i["photo_id"]: i["decision"] for i in listing["items"]}[IDS[1]] == "accept"


def test_retune_reads_the_stage_files_and_writes_only_its_own_folder(server, run):
    """A retune takes the photo's stamped scan, face record and matte from where the stage contract puts
    them and writes its result under results/review_app/retune/<photo>/ alone."""
    results, pid = run["results"], IDS[5]
    file_path(results, "faces", pid).parent.mkdir(parents=True, exist_ok=True)
    file_path(results, "faces", pid).write_text(json.dumps({"faces": [], "skipped": [], "key": "f" * 64}))
    write_image(file_path(results, "matting", pid, 0), np.full((40, 60), 1.0, np.float32))
    file_path(results, "matting", pid, 2).write_text(json.dumps({"person_found": False, "key": "m" * 64}))
    before = snapshot(results)
    status, _, body = request(server, "POST", "/api/retune",
                              {"photo_id": pid, "overrides": {"enhance_preset": "natural", "repair": False}})
    assert status == 200, body
    result = json.loads(body)
    assert result["preset"] == "natural" and result["status"] in ("processed", "review")
    assert result["image"] == f"/file/results/review_app/retune/{pid}/after.png"
    out = results / "review_app" / "retune" / pid
    assert sorted(p.name for p in out.iterdir()) == ["after.png", "result.json"]  # repair off: no damage mask
    assert json.loads((out / "result.json").read_text())["overrides"] == {"enhance_preset": "natural",
                                                                          "repair": False}
    after = snapshot(results)
    assert {k: v for k, v in after.items() if k in before} == before  # pipeline outputs untouched
    assert {k for k in after if k not in before} == {f"review_app/retune/{pid}/after.png",
                                                     f"review_app/retune/{pid}/result.json"}
    assert json.loads(request(server, "GET", f"/api/photo/{pid}")[2])["retuned"]["preset"] == "natural"
    # a photo without a face record (the pipeline has not run for it) is refused with the reason
    status, _, body = request(server, "POST", "/api/retune", {"photo_id": IDS[6], "overrides": {"repair": False}})
    assert status == 500 and b"run the pipeline first" in body
    assert not (results / "review_app" / "retune" / IDS[6]).exists()


def test_page_and_assets_are_served(server):
    status, headers, body = request(server, "GET", "/")
    assert status == 200 and b'<html lang="en">' in body and "script-src 'self'" in headers["Content-Security-Policy"]
    assert request(server, "GET", "/app.js")[0] == 200 and request(server, "GET", "/app.css")[0] == 200
    assert os.path.getsize(__import__("photoarchive.review", fromlist=["STATIC"]).STATIC / "index.html") < 50_000


def test_overrides_row_per_stage():
    decision = {"overrides": {"restore_strength": 40.0, "enhance_preset": "natural", "repair": True}}
    assert dec.overrides_row(decision, "restore") == {"restore_strength": "40"}
    assert dec.overrides_row(decision, "enhance") == {"enhance_preset": "natural"}
    assert dec.overrides_row(decision, "repair") == {"repair": "true"}
    assert dec.overrides_row(None, "repair") == {}


def test_package_hands_over_a_rejected_photo_as_its_original_alone(tmp_path):
    from photoarchive.package import PackageOptions, package
    from tests.package_tree import make_tree
    tree = make_tree(tmp_path, n=4, with_zip=False)
    manifest = tree["results"] / "manifest.csv"
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rejected = next(r for r in rows if r["status"] in ("processed", "review"))
    rejected["status"] = "rejected"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    decisions = tree["results"] / "decisions.json"
    dec.record_decision(decisions, rejected["photo_id"], "reject", "Ada", note="face changed")
    before = snapshot(tree["scans"])
    [result] = package(tree["results"], tree["scans"], manifest, tree["sources"], tmp_path / "package",
                       PackageOptions(), decisions_file=decisions)
    stem = rejected["source"].rsplit(".", 1)[0]
    payload = [p.relative_to(result.path / "data").as_posix() for p in (result.path / "data").rglob("*") if p.is_file()]
    assert f"objects/{rejected['source']}" in payload  # the original, the archive's copy
    assert not [p for p in payload if p.startswith(f"objects/service/{stem}")]  # no derivative of it
    premis = (result.path / "data" / "metadata" / "premis.xml").read_text(encoding="utf-8")
    assert "Ada" in premis and "reject" in premis and "face changed" in premis
    assert snapshot(tree["scans"]) == before
