"""Peak memory (RSS) of the repair stage on a large synthetic scan, measured in a fresh process.

    python bench/mem_repair.py                 # 12000 × 9000 (108 MP): prints peak RSS and seconds
    python bench/mem_repair.py --size 4000 3000
    python bench/mem_repair.py --weights models/damage_unet.pt   # with the learned detector (2 threads)
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(width: int, height: int, weights: str | None) -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import cv2
    import numpy as np
    from bench_repair import photo, schema_defaults

    from photoarchive.repair import repair

    # A real photo enlarged to the scan's size (float32, as the stage gets it), with a few long scratches.
    image = cv2.resize(photo("astronaut"), (width, height), interpolation=cv2.INTER_LINEAR)
    rng = np.random.default_rng(0)
    for _ in range(12):
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(image, p0, p1, (0.9, 0.9, 0.9), 3)
    detector = None
    if weights:
        import torch

        from photoarchive.repair import LearnedDetector

        torch.set_num_threads(2)
        detector = LearnedDetector.load(Path(weights))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    _, _, record = repair(image, schema_defaults("repair"), detector=detector)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{record['detector']} detector, {width}x{height} ({width * height / 1e6:.0f} MP): peak RSS {peak:.0f} MiB "
          f"(input image and libraries {before:.0f} MiB), {seconds:.1f} s "
          f"({seconds / (width * height / 1e6):.2f} s/MP), "
          f"{record['shares_text']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(12000, 9000), metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--weights", help="the learned detector's damage_unet.pt (default: classical)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.size, args.weights)
        return
    weights = ["--weights", args.weights] if args.weights else []
    subprocess.run([sys.executable, __file__, "--child", "--size", *map(str, args.size), *weights], check=True)


if __name__ == "__main__":
    main()
