"""Benchmark the GPEN forward on this machine's CPU: time per face and peak memory, fp32, random weights.

Random weights cost the same compute as the released ones. Every (size, variant) runs in a fresh
subprocess so that its peak RSS (``resource.getrusage`` max RSS; tracemalloc cannot see torch's
allocations) belongs to that configuration alone. Each child builds the model, runs one warm-up
forward and then ``--runs`` timed forwards, and reports the median.

Variants:
  fast          photoarchive.models.gpen as shipped
  fast+malloc   the same, with glibc told to keep freed memory (MALLOC_MMAP_THRESHOLD_ and
                MALLOC_TRIM_THRESHOLD_ in the child's environment), which removes the page faults of
                large fresh tensors; a deployment choice, not a code change
  naive-fir     the same network with its FIR blur/upsampling replaced by a generic
                upfirdn2d-style implementation (zero-stuff, pad, reshape to one channel, conv), the
                way the official pure-PyTorch path computes them; for comparison only

The machine is shared: the load average before and after each child is recorded, the child's CPU
time per face is reported next to the wall time, and ``--wait-for-load`` waits for a quiet moment
before each configuration.

    .venv/bin/python bench/bench_gpen.py                 # 512 and 1024, all variants, 3 runs
    .venv/bin/python bench/bench_gpen.py --sizes 512 --runs 5 --variants fast
    .venv/bin/python bench/bench_gpen.py --threads 1    # steadier on a shared, busy machine
    .venv/bin/python bench/bench_gpen.py --wait-for-load 1.5 --runs 5

Writes bench/out/gpen.csv (bench/out is git-ignored).

``--ab COMMIT`` instead times, in one process with the same random weights and input, this tree's
GPEN ("new"), the GPEN of an earlier commit (read with ``git show``; "old") and that commit's GPEN
with its FIR ops swapped for the naive upfirdn2d-style ones ("official": the official pure-PyTorch
way of computing them), rotating the order every round so that load changes hit all three alike. It
reports the medians, their ratios and the largest output differences, and writes
bench/out/gpen_ab.csv. The reference for issue 12 is main at 95181cd (0.72x official then):

    .venv/bin/python bench/bench_gpen.py --ab 95181cd --sizes 512 256 --runs 5 --threads 2

``--before COMMIT2`` adds COMMIT2's GPEN ("before") to the same rotation, so that a change is
reported before and after against the official way under the same load:

    .venv/bin/python bench/bench_gpen.py --ab 95181cd --before main --sizes 512 --runs 6 --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_CSV = REPO / "bench" / "out" / "gpen.csv"
VARIANTS = ("fast", "fast+malloc", "naive-fir")
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(4 << 30), "MALLOC_TRIM_THRESHOLD_": str(64 << 30)}
FIELDS = ["size", "variant", "batch", "threads", "runs", "median_s_per_face", "min_s_per_face", "max_s_per_face",
          "cpu_s_per_face", "model_rss_mib", "peak_rss_mib", "forward_rss_delta_mib", "load1_before", "load1_after",
          "torch", "cpu"]


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _use_naive_fir(gpen: types.ModuleType) -> None:
    """Swap the FIR ops of the GPEN module ``gpen`` for a generic upfirdn2d-style version."""
    import torch.nn.functional as F

    def upfirdn(x, kernel, up, pad0, pad1):
        n, c, h, w = x.shape
        x = x.reshape(n * c, 1, h, w)  # every channel as its own one-channel image
        if up > 1:  # insert up-1 zeros after every sample, both axes
            x = F.pad(x.reshape(n * c, 1, h, 1, w, 1), (0, up - 1, 0, 0, 0, up - 1)).reshape(n * c, 1, h * up, w * up)
        x = F.pad(x, (pad0, pad1, pad0, pad1))
        x = F.conv2d(x, kernel.flip(0, 1)[None, None])  # true convolution with the kernel
        return x.reshape(n, c, x.shape[-2], x.shape[-1])

    gpen.Blur.forward = lambda self, x: upfirdn(x, self.kernel, 1, self.pad, self.pad)
    gpen.Upsample.forward = lambda self, x: upfirdn(x, self.kernel, 2, 2, 1)


def child(size: int, variant: str, runs: int, batch: int, threads: int) -> dict:
    """Build one model, time it, return the measurements (runs in the subprocess)."""
    import torch

    from photoarchive.models.gpen import GPEN, GPEN_CONFIGS

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    if variant == "naive-fir":
        tiny = GPEN(size=16, style_dim=8, n_mlp=1, narrow=1 / 64).eval()
        probe = torch.rand(2, 3, 16, 16) * 2 - 1
        with torch.no_grad():
            reference = tiny(probe)
            _use_naive_fir(sys.modules[GPEN.__module__])
            torch.testing.assert_close(tiny(probe), reference, atol=1e-5, rtol=0)  # same numbers
    model = GPEN(**GPEN_CONFIGS[size]).eval()
    x = torch.rand(batch, 3, size, size) * 2 - 1
    model_rss = _max_rss_mib()
    times = []
    with torch.inference_mode():
        model(x)  # warm-up
        cpu0 = _cpu_seconds()
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) / batch)
        cpu = (_cpu_seconds() - cpu0) / runs / batch
    peak = _max_rss_mib()
    return {
        "threads": torch.get_num_threads(), "median_s_per_face": statistics.median(times),
        "min_s_per_face": min(times), "max_s_per_face": max(times), "cpu_s_per_face": cpu,
        "model_rss_mib": model_rss, "peak_rss_mib": peak, "forward_rss_delta_mib": peak - model_rss,
        "torch": torch.__version__,
    }


def _module_at(commit: str, name: str) -> types.ModuleType:
    """photoarchive/models/gpen.py as it was at ``commit``, imported as a separate module ``name``."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:photoarchive/models/gpen.py"],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(name)
    sys.modules[module.__name__] = module
    exec(compile(source, f"gpen_{commit}.py", "exec"), module.__dict__)  # noqa: S102 (our own history)
    return module


def ab_child(size: int, commit: str, runs: int, threads: int, before: str | None = None) -> dict:
    """Alternate forwards of this tree's GPEN, ``commit``'s, and ``commit``'s with naive FIR ops.

    Same random weights and input for all (with ``before``: that commit's GPEN too); the order
    rotates every round so that load changes hit each model alike.
    """
    import torch

    from photoarchive.models.gpen import GPEN, GPEN_CONFIGS

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    models = {"new": GPEN(**GPEN_CONFIGS[size]).eval()}
    official = _module_at(commit, f"gpen_{commit}_official")
    _use_naive_fir(official)
    models["old"] = _module_at(commit, f"gpen_{commit}").GPEN(**GPEN_CONFIGS[size]).eval()
    models["official"] = official.GPEN(**GPEN_CONFIGS[size]).eval()
    if before:
        models["before"] = _module_at(before, f"gpen_{before}_before").GPEN(**GPEN_CONFIGS[size]).eval()
    for model in models.values():
        model.load_state_dict(models["new"].state_dict(), strict=True)
    x = torch.rand(1, 3, size, size) * 2 - 1
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu_times: dict[str, list[float]] = {name: [] for name in names}  # user + system, all threads
    with torch.inference_mode():
        outputs = {name: model(x) for name, model in models.items()}  # warm-up
        for k in range(runs):
            for name in names[k % len(names) :] + names[: k % len(names)]:
                start, cpu_start = time.perf_counter(), _cpu_seconds()
                models[name](x)
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(_cpu_seconds() - cpu_start)
    median = {name: statistics.median(t) for name, t in times.items()}
    cpu = {name: statistics.median(t) for name, t in cpu_times.items()}
    extra = {}
    if before:
        extra = {"before": before, "before/official": median["before"] / median["official"],
                 "cpu before/official": cpu["before"] / cpu["official"],
                 "max_abs_diff_before_official": float((outputs["before"] - outputs["official"]).abs().max())}
    return {"size": size, "commit": commit, "threads": torch.get_num_threads(), "runs": runs,
            **{f"{name}_median_s": median[name] for name in names},
            "new/old": median["new"] / median["old"], "new/official": median["new"] / median["official"],
            "old/official": median["old"] / median["official"],
            **{f"{name}_cpu_s": cpu[name] for name in names}, "cpu new/official": cpu["new"] / cpu["official"],
            "max_abs_diff_new_old": float((outputs["new"] - outputs["old"]).abs().max()),
            "max_abs_diff_new_official": float((outputs["new"] - outputs["official"]).abs().max()),
            **{f"{name}_times": " ".join(f"{t:.2f}" for t in times[name]) for name in names}, **extra}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def _wait_for_load(limit: float, max_wait: float) -> None:
    """Sleep until the 1-minute load average is below ``limit`` (or ``max_wait`` seconds passed)."""
    deadline = time.monotonic() + max_wait
    while limit > 0 and os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        time.sleep(5)


def _child_env(thp: bool) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **({"THP_MEM_ALLOC_ENABLE": "1"} if thp else {})}


def run_one(size: int, variant: str, runs: int, batch: int, threads: int, thp: bool) -> dict:
    env = _child_env(thp)
    if variant == "fast+malloc":
        env.update(MALLOC_ENV)
    load_before = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(size), variant, str(runs), str(batch), str(threads)],
        env=env, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {size}/{variant} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"size": size, "variant": variant + ("+thp" if thp else ""), "batch": batch, "runs": runs, **result,
            "load1_before": load_before, "load1_after": os.getloadavg()[0], "cpu": _cpu_name()}


def _print_table(rows: list[dict]) -> None:
    header = f"{'size':>5} {'variant':<16} {'thr':>3} {'median s/face':>13} {'min':>6} {'max':>6} {'cpu s/face':>10} " \
             f"{'peak RSS MiB':>12} {'fwd +RSS MiB':>12} {'load1 before/after':>18}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['size']:>5} {r['variant']:<16} {r['threads']:>3} {r['median_s_per_face']:>13.2f} "
              f"{r['min_s_per_face']:>6.2f} {r['max_s_per_face']:>6.2f} {r['cpu_s_per_face']:>10.2f} "
              f"{r['peak_rss_mib']:>12.0f} {r['forward_rss_delta_mib']:>12.0f} "
              f"{r['load1_before']:>8.2f} / {r['load1_after']:<7.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], choices=[256, 512, 1024, 2048])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--naive-sizes", type=int, nargs="+", default=[512],
                        help="sizes that also run the naive-fir variant (default: 512)")
    parser.add_argument("--runs", type=int, default=3, help="timed forwards after the warm-up (default: 3)")
    parser.add_argument("--batch", type=int, default=1, help="faces per forward (default: 1)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads in each child (default 0: torch's default, one per core); "
                        "1 gives steadier numbers on a busy machine")
    parser.add_argument("--wait-for-load", type=float, default=0.0, metavar="LOAD",
                        help="before each configuration, wait (at most --max-wait s) until the 1-minute load "
                        "average is below LOAD (default 0: do not wait)")
    parser.add_argument("--max-wait", type=float, default=300.0, help="seconds (default: 300)")
    parser.add_argument("--out", type=Path, default=OUT_CSV)
    parser.add_argument("--ab", metavar="COMMIT", help="time against the GPEN of COMMIT, alternating")
    parser.add_argument("--before", metavar="COMMIT2", help="with --ab: also time COMMIT2's GPEN in the rotation")
    parser.add_argument("--thp", action="store_true",
                        help="run the children with THP_MEM_ALLOC_ENABLE=1: torch then asks for transparent huge "
                        "pages for large tensors, so a fresh tensor costs 512x fewer page faults (a deployment "
                        "setting, read once per process)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ab and not args.child:
        return main_ab(args)
    if args.child and args.child[1] == "ab":
        size, _, commit, runs, threads, *before = args.child
        print(json.dumps(ab_child(int(size), commit, int(runs), int(threads), *before)))
        return 0
    if args.child:
        size, variant, runs, batch, threads = args.child
        print(json.dumps(child(int(size), variant, int(runs), int(batch), int(threads))))
        return 0

    print(f"start: {_uptime()}")
    print(f"cpu: {_cpu_name()}; fp32, random weights, batch {args.batch}, median of {args.runs} after 1 warm-up")
    rows = []
    for size in args.sizes:
        for variant in args.variants:
            if variant == "naive-fir" and size not in args.naive_sizes:
                continue
            _wait_for_load(args.wait_for_load, args.max_wait)
            rows.append(run_one(size, variant, args.runs, args.batch, args.threads, args.thp))
            print(f"  done {size} {variant}: {rows[-1]['median_s_per_face']:.2f} s/face", flush=True)
    print(f"end: {_uptime()}\n")
    _print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    print(f"\nwrote {args.out}")
    return 0


def main_ab(args: argparse.Namespace) -> int:
    """A/B against an earlier commit, one child per size."""
    print(f"start: {_uptime()}" + (" (THP_MEM_ALLOC_ENABLE=1)" if args.thp else ""))
    rows = []
    for size in args.sizes:
        load_before = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, __file__, "--child", str(size), "ab", args.ab, str(args.runs),
                               str(args.threads), *([args.before] if args.before else [])], env=_child_env(args.thp),
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"A/B child {size} failed:\n{proc.stderr}")
        rows.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "thp": args.thp, "load1_before": load_before,
                     "load1_after": os.getloadavg()[0]})
    print(f"end: {_uptime()}\n")
    print(f"{'size':>5} {'thr':>3} {'runs':>4} {'new s':>7} {'old s':>7} {'offic. s':>8} {'new/old':>7} "
          f"{'new/offic.':>10} {'old/offic.':>10} {'max|new-old|':>12} {'max|new-offic.|':>15}  load1 before/after")
    for r in rows:
        print(f"{r['size']:>5} {r['threads']:>3} {r['runs']:>4} {r['new_median_s']:>7.2f} {r['old_median_s']:>7.2f} "
              f"{r['official_median_s']:>8.2f} {r['new/old']:>7.3f} {r['new/official']:>10.3f} "
              f"{r['old/official']:>10.3f} {r['max_abs_diff_new_old']:>12.2e} {r['max_abs_diff_new_official']:>15.2e}"
              f"  {r['load1_before']:>6.2f} / {r['load1_after']:<6.2f}")
        print(f"      cpu s (median, user+sys): new {r['new_cpu_s']:.2f} old {r['old_cpu_s']:.2f} official "
              f"{r['official_cpu_s']:.2f}, new/official {r['cpu new/official']:.3f}")
        if "before" in r:
            print(f"      before ({r['before']}): {r['before_median_s']:.2f} s, "
                  f"before/official {r['before/official']:.3f}, "
                  f"cpu before/official {r['cpu before/official']:.3f}, "
                  f"max|before-offic.| {r['max_abs_diff_before_official']:.2e}")
        print(f"      runs (s): new {r['new_times']} | old {r['old_times']} | official {r['official_times']}"
              + (f" | before {r['before_times']}" if "before" in r else ""))
    out = args.out.with_name("gpen_ab.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
