"""Where the repair detector loses damage: per true scratch or speck of the benchmark's tune set, the first
stage that drops it (no candidate, or the classification gate that rejects its component), and per
wrongly found pixel, the damage type it was called. A diagnosis aid for tuning `photoarchive.repair`;
it mirrors the gates of `repair._classify` (one strip, no faces, no creases).

    python bench/diag_repair.py            # tune set; --held-out for the held-out set
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_repair import HELD_OUT, HELD_OUT_SEEDS, TUNE, TUNE_SEEDS, _tolerance, photo, schema_defaults  # noqa: E402

from photoarchive import repair as R  # noqa: E402
from photoarchive.synthetic import add_damage  # noqa: E402


def gates(gray: np.ndarray, cfg: dict, truth: dict[str, np.ndarray]) -> Counter:
    """Counter of 'type: outcome' over the true components (connected pieces of each truth mask): a gate
    that passes it at either polarity, else the reasons its own stage (scratch or dust) rejects it."""
    max_width, seed, grow, line_t = int(cfg["max_width"]), cfg["seed_z"], cfg["grow_z"], cfg["line_z"]
    gray8 = np.clip(gray * 255 + 0.5, 0, 255).astype(np.uint8)
    ground = cv2.GaussianBlur(cv2.medianBlur(gray8, 2 * max_width + 3).astype(np.float32) / 255, (0, 0), 2.0)
    slope = cv2.magnitude(cv2.Sobel(ground, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(ground, cv2.CV_32F, 0, 1, ksize=3))
    slope *= 0.5
    bz, dz, bc, dc, _, _ = R._zscores(gray, max_width, R.grain_floor(gray))
    best: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for polarity, z, contrast, stretch in (("bright", bz, bc, 1.0), ("dark", dz, dc, float(cfg["dark_factor"]))):
        cand = R._hysteresis(z, seed, grow) | ((R._line_response(z) >= line_t) & (z >= 1.0))
        for kind, join in (("scratch", 2), ("dust", 0)):
            comps = R._components(cand, z, join=join)
            quiet, _ = R._quiet(comps, z >= grow, slope, contrast, float(cfg["density_max"]), float(cfg["edge_max"]))
            speck = ((comps["area"] <= float(cfg["dust_max_area"])) & (comps["peak"] >= seed) & (comps["area"] >= 2)
                     & (comps["length"] <= 2.5 * np.sqrt(comps["area"]) + 2.0))
            near = R._speck_neighbours(comps, speck, R._COUNT_WINDOW)
            alone = R._isolated(gray, comps, speck, bright=polarity == "bright")
            density, _ = R._neighbourhood(z >= grow, comps, R._DENSITY_WINDOW, R._COUNT_WINDOW)
            for t in ("scratch", "dust"):
                count, labels = cv2.connectedComponents(truth[t].astype(np.uint8))
                for k in range(1, count):
                    ids = np.unique(comps["labels"][labels == k])
                    ids = ids[ids > 0]
                    if not ids.size:
                        reason = "no candidate"
                    else:
                        j = ids[np.argmax(comps["area"][ids])]
                        r = []
                        if kind == "scratch":
                            if comps["length"][j] < float(cfg["min_length"]) * stretch:
                                r.append("short")
                            if comps["width"][j] > max_width + 1 or comps["length"][j] < 4 * comps["width"][j]:
                                r.append("wide")
                            if comps["bend"][j] > float(cfg["max_bend"]) / stretch:
                                r.append("bent")
                        else:
                            if comps["area"][j] > float(cfg["dust_max_area"]):
                                r.append("large")
                            if comps["length"][j] > 2.5 * np.sqrt(comps["area"][j]) + 2:
                                r.append("not compact")
                            if comps["peak"][j] < seed:
                                r.append("weak")
                            if near[j] > float(cfg["neighbours_max"]):
                                r.append("crowded")
                            if not alone[j]:
                                r.append("not alone")
                        if density[j] > float(cfg["density_max"]):
                            r.append("busy")
                        elif not quiet[j]:
                            r.append("on an edge")
                        reason = f"{polarity} {kind}: " + (" + ".join(r) if r else "found")
                    best.setdefault((t, k), []).append((kind, reason))
    outcome = Counter()
    for (t, _), reasons in best.items():
        found = [r for _, r in reasons if r.endswith("found")]
        own = [r for kind, r in reasons if kind == t and not r.endswith("no candidate")]
        outcome[f"{t}: " + (found[0] if found else own[0] if own else "no candidate")] += 1
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", action="store_true")
    args = parser.parse_args()
    names, seeds = (HELD_OUT, HELD_OUT_SEEDS) if args.held_out else (TUNE, TUNE_SEEDS)
    cfg = schema_defaults("repair")
    total, wrong = Counter(), Counter()
    for name in names:
        for seed in seeds:
            _, damaged, truth = add_damage(photo(name), seed)
            found = R.damage_mask(damaged, cfg)
            near_true = _tolerance(truth["scratch"] | truth["dust"] | truth["crease"])
            for t in R.DAMAGE_TYPES:
                wrong[t] += int((found[t] & ~near_true).sum())
            total += gates(cv2.cvtColor(damaged, cv2.COLOR_RGB2GRAY), cfg, truth)
    print("true components, by the best outcome over polarity and stage:")
    for reason, n in sorted(total.items()):
        print(f"  {n:5d}  {reason}")
    print("wrongly found pixels by type: " + ", ".join(f"{t} {n}" for t, n in wrong.items()))


if __name__ == "__main__":
    main()
