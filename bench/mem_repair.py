"""Peak memory (RSS) of the repair stage on a large synthetic scan, measured in a fresh process.

    python bench/mem_repair.py                 # 12000 × 9000 (108 MP): prints peak RSS and seconds
    python bench/mem_repair.py --size 4000 3000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(width: int, height: int) -> None:
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
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    _, _, record = repair(image, schema_defaults("repair"))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{width}x{height} ({width * height / 1e6:.0f} MP): peak RSS {peak:.0f} MiB (input image and "
          f"libraries {before:.0f} MiB), {seconds:.1f} s ({seconds / (width * height / 1e6):.2f} s/MP), "
          f"{record['shares_text']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(12000, 9000), metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.size)
        return
    subprocess.run([sys.executable, __file__, "--child", "--size", *map(str, args.size)], check=True)


if __name__ == "__main__":
    main()
