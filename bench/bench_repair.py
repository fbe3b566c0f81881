"""Benchmark of the repair stage and of enhance's `tone: keep` on real photographs with known damage.

Photos: the real photographs bundled with scikit-image (no download). Damage is synthetic with known
masks (`photoarchive.synthetic.add_damage`: scratches of width 1-4 px, straight to curved, any angle,
bright or dark, a share of them faint; dust specks; optionally creases) on top of film grain
(σ 0.01); the grainy clean photo is the reference.

Sets (the detector's settings were tuned by looking at the `tune` set only):
- tune:     camera, astronaut, coffee, chelsea with damage seeds 1 and 2;
- held-out: rocket, motorcycle_left, coins, moon (real photos), seeds 11 and 12;
- aged held-out: the same photos made old prints by `photoarchive.synthetic.aged_print_marked` (another
            damage generator: faded, toned, soft, with sharp specks, 1-px fibres and long faint
            near-vertical scratches; seeds 21 and 22, strength 1.5); the reference is the print before
            its marks;
- clean:    photos with line-like content and no damage: skimage text, page, brick, grass, gravel,
            hubble_deep_field (a real star field), and photos with drawn content: pinstripes,
            wires (thin soft dark lines across the sky) and a star field (also with grain σ 0.01).

Detection precision and recall are by pixel with a 2-px tolerance band: a found pixel is correct when it
lies within 2 px of a true damage pixel (of any type), a true pixel is found when a found pixel (of any
type) lies within 2 px. PSNR/SSIM compare with the grainy clean photo inside the damaged pixels of each
type and over the whole photo, before (damaged input) and after repair. False repair: share of pixels
changed by more than 1/255 on the clean photos. True masks: the fill alone, where the true damage is
(grown as the stage grows what it finds), PSNR in each type before and after. Tone: Lab a*b* distance
(Δab) and full ΔE76 of the mean colour of the mid-tone pixels (L* 30-70 in the input) of toned prints
before and after the whole enhance stage with `tone: keep` (and `neutral` for comparison). Speed:
seconds per megapixel of `repair`, wall clock and CPU time (all threads; the wall clock of a shared
machine swings with its load); peak memory: tracemalloc peak of a 4-megapixel run (numpy allocations;
OpenCV's own buffers are not traced) and the process's peak RSS.

    python bench/bench_repair.py            # prints the table, writes bench/out/bench_repair.csv
    python bench/bench_repair.py --detector learned   # models/damage_unet.pt; bench/out/bench_repair_learned.csv
    python bench/bench_repair.py --detector both --weights PATH   # both tables, bench/out/bench_repair_both.csv

(Run classical and learned in separate processes for a fair peak RSS: it is the process's peak so far.)

The learned detector (`--detector learned|both`) was trained on other photos plus the tune photos (see
`photoarchive.damage_training`): for it the tune set is in-sample; held-out and clean are not.
    python bench/mem_repair.py              # peak RSS of the stage on a 12000 x 9000 scan (own process)
"""

from __future__ import annotations

import argparse
import csv
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import yaml
from skimage import data
from skimage.metrics import structural_similarity

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photoarchive.enhance import enhance  # noqa: E402
from photoarchive.qa import rgb_to_lab  # noqa: E402
from photoarchive.repair import DAMAGE_TYPES, LearnedDetector, fill, grown, repair  # noqa: E402
from photoarchive.synthetic import add_damage, aged_print_marked, toned_print  # noqa: E402

TUNE = ("camera", "astronaut", "coffee", "chelsea")
TUNE_SEEDS = (1, 2)
HELD_OUT = ("rocket", "motorcycle_left", "coins", "moon")
HELD_OUT_SEEDS = (11, 12)
AGED_SEEDS = (21, 22)
AGED_STRENGTH = 1.5
CLEAN = ("text", "page", "brick", "grass", "gravel", "hubble_deep_field")
DRAWN = ("pinstripes", "wires", "stars")
TONED = ("camera", "astronaut", "coffee")
TOL = 2


def schema_defaults(section: str) -> dict:
    """config.schema.yaml's defaults of one section (what the stage gets when config.yaml is silent)."""
    schema = yaml.safe_load((ROOT / "config.schema.yaml").read_text())

    def fill(node: dict) -> object:
        if node.get("type") == "object" or "properties" in node:
            out = dict(node.get("default") or {})
            for key, sub in node.get("properties", {}).items():
                value = fill(sub)
                if value is not None:
                    out.setdefault(key, value)
            return out
        return node.get("default")

    return fill(schema["properties"][section])


def photo(name: str) -> np.ndarray:
    if hasattr(data, name):
        img = getattr(data, name)()
    else:  # a file of skimage's data folder without a loader function (motorcycle_left.png)
        img = cv2.cvtColor(cv2.imread(str(Path(data.__file__).parent / f"{name}.png")), cv2.COLOR_BGR2RGB)
    img = np.dstack([img] * 3) if img.ndim == 2 else img[..., :3]
    return (img.astype(np.float32) / 255.0).copy()


def drawn(kind: str, seed: int = 0) -> np.ndarray:
    """A real photo with line-like content drawn on as part of the picture (not damage), plus grain."""
    rng = np.random.default_rng(seed)
    if kind == "wires":
        img = photo("camera")  # sky in the top third
        h, w = img.shape[:2]
        for k in range(3):
            xs = np.linspace(-10, w + 10, 200)
            sag = 25 + 10 * k
            ys = 30 + 25 * k + sag * ((xs - w / 2) / (w / 2)) ** 2
            layer = np.zeros((h * 4, w * 4), np.uint8)
            cv2.polylines(layer, [np.round(np.stack([xs, ys], 1) * 4).astype(np.int32)], False, 255, 8, cv2.LINE_AA)
            cover = cv2.GaussianBlur(cv2.resize(layer, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255,
                                     (0, 0), 0.7)
            img = img * (1 - 0.6 * cover[..., None])
    elif kind == "pinstripes":
        img = photo("chelsea")
        h, w = img.shape[:2]
        x = np.arange(w)[None, :] + 0.3 * np.arange(h)[:, None]
        stripes = (np.mod(x, 9.0) < 1.5).astype(np.float32)
        stripes = cv2.GaussianBlur(stripes, (0, 0), 0.6)
        region = np.zeros((h, w), np.float32)
        region[h // 2:, : w // 2] = 1.0
        img = img * (1 - 0.5 * (stripes * region)[..., None]) + 0.0
    else:  # stars: a dark night sky with many specks over the top of the astronaut photo
        img = photo("astronaut")
        h, w = img.shape[:2]
        sky = np.full((h // 3, w, 3), 0.05, np.float32)
        for _ in range(400):
            cv2.circle(sky, (int(rng.integers(0, w)), int(rng.integers(0, h // 3))), int(rng.integers(0, 2)),
                       (float(rng.uniform(0.4, 1.0)),) * 3, -1, cv2.LINE_AA)
        img[: h // 3] = sky
    grainy = img + rng.normal(0, 0.01, (*img.shape[:2], 1)).astype(np.float32)
    return np.clip(grainy, 0, 1).astype(np.float32)


def _tolerance(mask: np.ndarray) -> np.ndarray:
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * TOL + 1,) * 2)
    return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(1.0 / mse)


def _ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    _, full = structural_similarity(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY),
                                    data_range=1.0, full=True)
    return full


def damaged_case(name: str, seed: int, cfg: dict, creases: int, detector: LearnedDetector | None,
                 aged: bool = False) -> dict:
    if aged:  # the aged print before its marks is the reference
        damaged, clean, truth = aged_print_marked(photo(name), seed, strength=AGED_STRENGTH)
    else:
        clean, damaged, truth = add_damage(photo(name), seed, creases=creases)
    started, cpu = time.perf_counter(), time.process_time()
    repaired, found, _ = repair(damaged, cfg, detector=detector)  # found: damage_mask's masks
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    any_true = np.zeros(clean.shape[:2], bool)
    any_found = np.zeros_like(any_true)
    for t in DAMAGE_TYPES:
        any_true |= truth[t]
        any_found |= found[t]
    near_true, near_found = _tolerance(any_true), _tolerance(any_found)
    ssim_before, ssim_after = _ssim_map(damaged, clean), _ssim_map(repaired, clean)
    out = {"pixels": clean.shape[0] * clean.shape[1], "seconds": seconds, "cpu": cpu,
           "found_px": int(any_found.sum()), "found_ok": int((any_found & near_true).sum()),
           "psnr_all_before": _psnr(damaged, clean), "psnr_all_after": _psnr(repaired, clean),
           "ssim_all_before": float(ssim_before.mean()), "ssim_all_after": float(ssim_after.mean())}
    for t in DAMAGE_TYPES:
        sel = truth[t]
        out[f"{t}_true"] = int(sel.sum())
        out[f"{t}_hit"] = int((sel & near_found).sum())
        if sel.any():
            out[f"{t}_se_before"] = float(np.sum((damaged[sel].astype(np.float64) - clean[sel]) ** 2))
            out[f"{t}_se_after"] = float(np.sum((repaired[sel].astype(np.float64) - clean[sel]) ** 2))
            out[f"{t}_ssim_before"] = float(ssim_before[sel].sum())
            out[f"{t}_ssim_after"] = float(ssim_after[sel].sum())
    return out


def summarise(label: str, cases: list[dict]) -> list[dict]:
    rows = []
    pixels = sum(c["pixels"] for c in cases)
    precision = sum(c["found_ok"] for c in cases) / max(sum(c["found_px"] for c in cases), 1)
    for t in DAMAGE_TYPES:
        true = sum(c[f"{t}_true"] for c in cases)
        if not true:
            continue
        n = sum(c[f"{t}_true"] for c in cases)
        se_b = sum(c.get(f"{t}_se_before", 0.0) for c in cases) / (3 * n)
        se_a = sum(c.get(f"{t}_se_after", 0.0) for c in cases) / (3 * n)
        rows.append({"set": label, "type": t, "images": len(cases), "true_px": true,
                     "recall": sum(c[f"{t}_hit"] for c in cases) / true, "precision_all_types": precision,
                     "psnr_region_before": 10 * np.log10(1 / se_b), "psnr_region_after": 10 * np.log10(1 / se_a),
                     "ssim_region_before": sum(c.get(f"{t}_ssim_before", 0) for c in cases) / n,
                     "ssim_region_after": sum(c.get(f"{t}_ssim_after", 0) for c in cases) / n})
    rows.append({"set": label, "type": "whole photo", "images": len(cases),
                 "psnr_region_before": float(np.mean([c["psnr_all_before"] for c in cases])),
                 "psnr_region_after": float(np.mean([c["psnr_all_after"] for c in cases])),
                 "ssim_region_before": float(np.mean([c["ssim_all_before"] for c in cases])),
                 "ssim_region_after": float(np.mean([c["ssim_all_after"] for c in cases])),
                 "s_per_mp": sum(c["seconds"] for c in cases) / (pixels / 1e6),
                 "cpu_s_per_mp": sum(c["cpu"] for c in cases) / (pixels / 1e6)})
    return rows


def true_mask_fill(label: str, names: tuple[str, ...], seeds: tuple[int, ...], cfg: dict, aged: bool) -> list[dict]:
    """The fill alone: each photo filled where its true damage is (grown by `dilate` px as the stage
    grows what it finds), PSNR in each damage type before and after (the detector's misses left out)."""
    se = {}
    for name in names:
        for seed in seeds:
            if aged:
                damaged, clean, truth = aged_print_marked(photo(name), seed, strength=AGED_STRENGTH)
            else:
                clean, damaged, truth = add_damage(photo(name), seed)
            core = np.zeros(clean.shape[:2], bool)
            for t in DAMAGE_TYPES:
                core |= truth[t]
            filled = fill(damaged, grown(core, int(cfg["dilate"])), core=core)
            for t in DAMAGE_TYPES:
                sel = truth[t]
                b, a, n = se.get(t, (0.0, 0.0, 0))
                se[t] = (b + float(np.sum((damaged[sel].astype(np.float64) - clean[sel]) ** 2)),
                         a + float(np.sum((filled[sel].astype(np.float64) - clean[sel]) ** 2)), n + int(sel.sum()))
    return [{"set": f"{label}, true masks", "type": t, "images": len(names) * len(seeds), "true_px": n,
             "psnr_region_before": 10 * np.log10(3 * n / b), "psnr_region_after": 10 * np.log10(3 * n / a)}
            for t, (b, a, n) in se.items() if n]


def false_repair(cfg: dict, detector: LearnedDetector | None) -> list[dict]:
    rows = []
    for name in CLEAN + DRAWN:
        img = drawn(name) if name in DRAWN else photo(name)
        repaired, _, record = repair(img, cfg, detector=detector)
        changed = np.any(np.abs(repaired - img) > 1 / 255, axis=2)
        rows.append({"set": "clean", "type": f"false repair: {name}", "images": 1,
                     "changed_share": float(changed.mean()), "detail": record["shares_text"]})
    return rows


def tone_rows(enhance_cfg: dict) -> list[dict]:
    rows = []
    for toner in ("sepia", "selenium", "cyanotype"):
        for name in TONED:
            toned = toned_print(photo(name), toner)
            lab = rgb_to_lab(toned)
            mids = (lab[..., 0] >= 30) & (lab[..., 0] <= 70)
            before = lab[mids].mean(axis=0)
            row = {"set": "tone", "type": f"{toner}: {name}", "images": 1}
            for tone in ("keep", "neutral"):
                out, record = enhance(toned, {**enhance_cfg, "tone": tone})
                after = rgb_to_lab(out)[mids].mean(axis=0)
                row[f"dab_{tone}"] = float(np.hypot(*(after[1:] - before[1:])))
                row[f"de76_{tone}"] = float(np.linalg.norm(after - before))
                row[f"preset_{tone}"] = record["preset"]
            rows.append(row)
    return rows


def memory_row(cfg: dict, detector: LearnedDetector | None) -> dict:
    big = cv2.resize(photo("astronaut"), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    _, damaged, _ = add_damage(big, 5, scratches=12, dust=120)
    tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    repair(damaged, cfg, detector=detector)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"set": "memory", "type": "4.2 MP astronaut", "images": 1, "s_per_mp": seconds / 4.194304,
            "cpu_s_per_mp": cpu / 4.194304,
            "peak_traced_mb": peak / 2**20, "peak_rss_mb": rss}


COLUMNS = ("detector", "set", "type", "images", "true_px", "recall", "precision_all_types", "psnr_region_before",
           "psnr_region_after", "ssim_region_before", "ssim_region_after", "s_per_mp", "cpu_s_per_mp",
           "changed_share", "detail",
           "dab_keep", "de76_keep", "preset_keep", "dab_neutral", "de76_neutral", "preset_neutral",
           "peak_traced_mb", "peak_rss_mb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creases", type=int, default=0, help="creases per damaged photo (default 0)")
    parser.add_argument("--quick", action="store_true", help="damage sets only (no clean, tone, memory)")
    parser.add_argument("--detector", choices=("classical", "learned", "both"), default="classical")
    parser.add_argument("--weights", type=Path, default=ROOT / "models" / "damage_unet.pt",
                        help="the learned detector's state dict (default models/damage_unet.pt)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads of the learned detector")
    parser.add_argument("--sensitivity", type=float, help="repair.sensitivity (default: the schema's)")
    parser.add_argument("--dilate", type=int, help="repair.dilate (default: the schema's)")
    args = parser.parse_args()
    cfg, enhance_cfg = schema_defaults("repair"), schema_defaults("enhance")
    if args.sensitivity is not None:
        cfg["sensitivity"] = args.sensitivity
    if args.dilate is not None:
        cfg["dilate"] = args.dilate
    if args.creases:
        cfg["crease"] = {**cfg["crease"], "enabled": True}
    detectors: dict[str, LearnedDetector | None] = {}
    if args.detector in ("classical", "both"):
        detectors["classical"] = None
    if args.detector in ("learned", "both"):
        import torch

        torch.set_num_threads(args.threads)
        detectors["learned"] = LearnedDetector.load(args.weights)
    rows = []
    for kind, detector in detectors.items():
        found = []
        for label, names, seeds in (("tune", TUNE, TUNE_SEEDS), ("held-out", HELD_OUT, HELD_OUT_SEEDS)):
            found += summarise(label, [damaged_case(n, s, cfg, args.creases, detector) for n in names for s in seeds])
        found += summarise("aged held-out", [damaged_case(n, s, cfg, 0, detector, aged=True)
                                             for n in HELD_OUT for s in AGED_SEEDS])
        if not args.quick:
            found += false_repair(cfg, detector)
            found += [memory_row(cfg, detector)]
        rows += [{"detector": kind, **r} for r in found]
    # The fill with the true masks, and enhance's rows: the same whatever the detector.
    rows += [{"detector": "none", **r} for r in true_mask_fill("held-out", HELD_OUT, HELD_OUT_SEEDS, cfg, aged=False)
             + true_mask_fill("aged held-out", HELD_OUT, AGED_SEEDS, cfg, aged=True)]
    if not args.quick and "classical" in detectors:
        rows += tone_rows(enhance_cfg)
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "bench_repair.csv" if args.detector == "classical" else f"bench_repair_{args.detector}.csv"
    with open(out_dir / name, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    shown = [c for c in COLUMNS if any(c in r for r in rows)]
    print(" | ".join(shown))
    for r in rows:
        cells = []
        for c in shown:
            v = r.get(c, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
