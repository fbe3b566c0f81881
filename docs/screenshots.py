"""Screenshots of the review app for the README (docs/review_*.png), from a finished run.

    python -m photoarchive.review needs nothing of this; run it after the pipeline, e.g. on the demo:
    .venv/bin/python docs/screenshots.py --results results --input-dir demo

Starts the app in-process on 127.0.0.1 (reviewer "demo", every photo listed), drives the system's headless
Chromium with Playwright and writes docs/review_queue.png (list and viewer), docs/review_zoom.png (zoomed
in, matte overlay) and docs/review_retune.png (a retune recomputed). Decisions are not recorded: Keep is
never pressed.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from photoarchive.review import load_config, make_server

DOCS = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--input-dir", type=Path, default=Path("demo"))
    parser.add_argument("--photo", default="family/coffee_damaged.png", help="the photo shown (its source path)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    server = make_server(args.results, args.input_dir, port=0, reviewer="demo", show_all=True,
                         config=load_config(None))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    photo = next(r["photo_id"] for r in server.data.rows()[0] if r["source"] == args.photo)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)  # waits evaluate JS
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        page.click(f"#list li[data-photo='{photo}']")
        page.wait_for_function(f"document.body.dataset.shown === '{photo}'")
        page.wait_for_function("document.getElementById('img-after').complete")
        page.wait_for_timeout(500)
        page.screenshot(path=DOCS / "review_queue.png")
        page.keyboard.press("d")
        for _ in range(3):
            page.keyboard.press("+")
        page.wait_for_timeout(300)
        page.screenshot(path=DOCS / "review_zoom.png")
        page.keyboard.press("0")
        page.keyboard.press("t")
        page.fill("#ctl-restore_strength", "50")
        page.select_option("#ctl-enhance_preset", "natural")
        page.click("#recompute")
        page.wait_for_function(f"document.body.dataset.retuned === '{photo}'", timeout=600_000)
        page.wait_for_timeout(500)
        page.screenshot(path=DOCS / "review_retune.png")
        browser.close()
    server.shutdown()
    server.server_close()
    for name in ("review_queue.png", "review_zoom.png", "review_retune.png"):  # 256 colours: a third of the bytes
        with Image.open(DOCS / name) as shot:
            shot.convert("RGB").quantize(256).save(DOCS / name, optimize=True)
    print("wrote", ", ".join(str(DOCS / n) for n in ("review_queue.png", "review_zoom.png", "review_retune.png")))


if __name__ == "__main__":
    main()
