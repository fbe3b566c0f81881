"""The review app in a real browser (headless Chromium via Playwright), and the next run honouring its decisions.

A three-photo archive goes through the pipeline; in the app one photo is accepted by keyboard, one rejected,
one retuned (recomputed in the app, then kept); the pipeline runs again and must have honoured all three.
Skipped, saying why, only where Chromium or Playwright is missing (`make setup` installs both).
"""

from __future__ import annotations

import csv
import json
import shutil
import threading
from pathlib import Path

import pytest
import yaml
from workflow import REPO, snakemake, snapshot

from photoarchive.metadata import exiftool_session, read_tags
from photoarchive.review import make_server
from photoarchive.stages import BatchTable, file_path, read_record

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed: pip install playwright (make setup)")
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed: apt-get install chromium (make setup)", allow_module_level=True)

FILES = ("family/coffee_damaged.png", "family/Großmutter 1951.jpg", "family/img001.jpg")
ACCEPT, REJECT, RETUNE = FILES


def manifest(work: Path) -> dict[str, dict[str, str]]:
    with open(work / "results" / "manifest.csv", encoding="utf-8", newline="") as fh:
        return {row["source"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("review_browser")
    scans = root / "scans"
    for name in FILES:
        (scans / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / "demo" / name, scans / name)
    work = root / "work"
    work.mkdir()
    # the three photos share one batch (batch_size 8): the retune must redo its own photo alone (issue #12)
    settings = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    assert settings["scheduling"]["batch_size"] >= len(FILES)
    (root / "config.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    args = ("--configfile", str(root / "config.yaml"))
    config = {"input_dir": str(scans)}
    snakemake(work, *args, config=config)
    return {"scans": scans, "work": work, "config": config, "args": args, "before": snapshot(scans)}


@pytest.fixture(scope="module")
def app(archive):
    from photoarchive.review import load_config
    config = load_config(None)
    server = make_server(archive["work"] / "results", archive["scans"], port=0, reviewer="Tess", show_all=True,
                         config=config)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_review_in_the_browser_then_the_next_run_honours_it(archive, app):
    work, results = archive["work"], archive["work"] / "results"
    rows = manifest(work)
    ids = {name: rows[name]["photo_id"] for name in FILES}
    host, port = app.server_address[:2]
    errors: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)  # waits evaluate JS
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://{host}:{port}/")
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)

        def choose(name: str) -> None:
            page.click(f"#list li[data-photo='{ids[name]}']")
            page.wait_for_function(f"document.body.dataset.shown === '{ids[name]}'")
            page.wait_for_function("document.getElementById('img-before').complete")
            assert page.text_content("#title") == name

        # keyboard: next / previous, zoom, then accept
        first = page.evaluate("document.body.dataset.photo")
        page.keyboard.press("j")
        page.wait_for_function(f"document.body.dataset.photo !== '{first}'")
        page.keyboard.press("k")
        page.wait_for_function(f"document.body.dataset.photo === '{first}'")
        choose(ACCEPT)
        page.wait_for_function("document.getElementById('img-before').naturalWidth > 0")
        fit = float(page.evaluate("document.body.dataset.zoom"))
        for _ in range(12):
            page.keyboard.press("+")
        assert float(page.evaluate("document.body.dataset.zoom")) == 1.0 > fit  # up to 100 %, not beyond
        before_t = page.evaluate("getComputedStyle(document.getElementById('img-before')).transform")
        assert before_t == page.evaluate("getComputedStyle(document.getElementById('img-after')).transform")
        page.keyboard.press("0")
        page.fill("#note", "good enough")
        page.locator("#viewer").click(position={"x": 5, "y": 5})  # focus away from the note field
        page.keyboard.press("a")
        page.wait_for_function(f"document.body.dataset.lastDecision === '{ids[ACCEPT]} accept'")

        choose(REJECT)
        page.keyboard.press("r")
        page.wait_for_function(f"document.body.dataset.lastDecision === '{ids[REJECT]} reject'")

        choose(RETUNE)
        page.keyboard.press("t")
        page.fill("#ctl-restore_strength", "40")
        page.select_option("#ctl-enhance_preset", "natural")
        page.click("#recompute")
        page.wait_for_function(f"document.body.dataset.retuned === '{ids[RETUNE]}'", timeout=300_000)
        page.wait_for_function("document.getElementById('retune-image').naturalWidth > 0")  # the result shown
        assert "QA says" in page.text_content("#retune-state")
        page.click("#keep")
        page.wait_for_function(f"document.body.dataset.lastDecision === '{ids[RETUNE]} retune'")
        browser.close()
    assert not errors, errors

    saved = json.loads((results / "decisions.json").read_text())
    assert {pid: saved[pid]["decision"] for pid in saved} == {
        ids[ACCEPT]: "accept", ids[REJECT]: "reject", ids[RETUNE]: "retune"}
    assert saved[ids[ACCEPT]]["note"] == "good enough" and saved[ids[ACCEPT]]["reviewer"] == "Tess"
    assert saved[ids[RETUNE]]["overrides"] == {"restore_strength": 40.0, "enhance_preset": "natural"}
    assert (results / "review_app" / "retune" / ids[RETUNE] / "after.png").is_file()
    assert snapshot(archive["scans"]) == archive["before"]  # the app never touched an original

    # the next run honours the three decisions
    restored_before = {pid: file_path(results, "restore", pid).stat().st_mtime_ns for pid in ids.values()}
    snakemake(work, *archive["args"], config=archive["config"])
    rows = manifest(work)
    accepted, rejected, retuned = rows[ACCEPT], rows[REJECT], rows[RETUNE]
    assert accepted["status"] == "processed" and accepted["decision"] == "accept"
    assert accepted["reason"].startswith(f"accepted by Tess {saved[ids[ACCEPT]]['time']}: good enough; QA: ")
    assert "/processed/" in accepted["output"] and (work / accepted["output"]).is_file()
    assert rejected["status"] == "rejected" and rejected["reason"].startswith("rejected by Tess")
    assert "/rejected/" in rejected["output"] and (work / rejected["output"]).is_file()
    assert not list((results / "processed").rglob("Großmutter 1951_*"))  # moved, not copied twice
    assert not list((results / "review").rglob("coffee_damaged_*"))
    with exiftool_session() as et:
        tags = {name: read_tags(et, work / rows[name]["output"]) for name in (ACCEPT, REJECT)}
    assert tags[ACCEPT]["XMP-xmp:Rating"] == 5 and tags[ACCEPT]["XMP-xmp:Label"] == "Accepted"
    assert tags[REJECT]["XMP-xmp:Rating"] == -1 and tags[REJECT]["XMP-xmp:Label"] == "Rejected"
    assert retuned["status"] in ("processed", "review") and retuned["decision"] == "retune"
    assert read_record(results, "restore", ids[RETUNE])["controls"]["strength"] == 40.0
    assert read_record(results, "enhance", ids[RETUNE])["preset"] == "natural"
    # only the retuned photo was restored again; its batch mates' results were kept, file for file
    [table] = (results / "restore" / "batches").glob("*.json")
    assert {row.photo_id for row in BatchTable.read(table).rows} == set(ids.values())
    restored = {pid: file_path(results, "restore", pid).stat().st_mtime_ns for pid in ids.values()}
    assert restored == {**restored_before, ids[RETUNE]: restored[ids[RETUNE]]}
    assert restored[ids[RETUNE]] != restored_before[ids[RETUNE]]
    assert snapshot(archive["scans"]) == archive["before"]  # originals still untouched after the run
