"""Whole-pipeline benchmark on a synthetic archive of aged photos, against a one-process loop.

    python bench/bench_pipeline.py [N] [--cores 2] [--out bench/out/pipeline] [--scans DIR] [--gpen-random]
                                   [--long-side PX] [--no-loop]

Builds N synthetic scans (default 50; --long-side 3600 enlarges each to that long side, e.g. 2400×3600
as in issue 12), runs the workflow on them in a scratch folder (<out>/work), and prints per-stage wall
time (from Snakemake's benchmark: files), photos per minute, peak RSS, the per-job startup overhead
(process start → script ready, logged by every job) and the share of the restore stage spent outside
the restorer itself. Writes the table to <out>/pipeline.csv.

Then (unless --no-loop) the same work without Snakemake, in a fresh folder (<out>/loop): one Python
process runs every stage's own script (runpy, the very same code) once, for one batch holding every
unique photo, with the `snakemake` object the rules would give it (see `loop_child`). Compared: wall
time and CPU time (user + system of the process tree, from getrusage of children) of both, CPU-s per
photo, and the ratios; every stage record's key and every published image's pixels must match. The
comparison goes to <out>/compare.csv (and summary.json), with the load average before and after each run.
The first run in a checkout fills the numba cache (.numba_cache: pymatting's JIT, minutes): Snakemake,
which runs first, would pay it alone, so the bench says so; run it again for comparable numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from photoarchive.synthetic import synthetic_archive  # noqa: E402

STARTUP = re.compile(r"job startup ([0-9.]+) s")


def random_gpen_models(folder: Path) -> Path:
    """GPEN-BFR-512.pth with random weights of the official 512 architecture: same compute as the real
    model, for timing only (its faces are noise)."""
    import torch

    from photoarchive.models.gpen import GPEN, GPEN_CONFIGS

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(GPEN(**GPEN_CONFIGS[512]).state_dict(), folder / "GPEN-BFR-512.pth")
    return folder


def enlarge_scans(paths: list[Path], long_side: int) -> None:
    """Resize each synthetic scan (600-1200 px) to `long_side` px on its long side, as a JPEG again."""
    import cv2

    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        h, w = image.shape[:2]
        f = long_side / max(h, w)
        image = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def child_env() -> dict[str, str]:
    return {**os.environ, "NUMBA_CACHE_DIR": str(REPO / ".numba_cache"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_cpu() -> float:
    """CPU seconds of this process and its finished children (exiftool)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + children_cpu()


def config_arguments(overrides: dict) -> list[str]:
    """--config key=value for Snakemake (a dict value as JSON, which Snakemake reads as YAML)."""
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in overrides.items()]


def run_pipeline(work: Path, cores: int, overrides: dict) -> tuple[float, float]:
    """Snakemake on `work`: (wall s, CPU s of its whole process tree)."""
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--configfile", str(REPO / "config.yaml"),
           "--directory", str(work), "--cores", str(cores), "--resources", "gpu=1", "--quiet", "progress",
           "--config", *config_arguments(overrides)]
    cpu = children_cpu()
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=child_env())
    return time.perf_counter() - started, children_cpu() - cpu


def run_loop(work: Path, overrides: dict) -> tuple[float, float]:
    """The one-process loop (`loop_child`) on `work` in a fresh interpreter: (wall s, CPU s)."""
    spec = json.dumps({"work": str(work), "overrides": overrides})
    cpu = children_cpu()
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--loop-child", spec], check=True, env=child_env())
    return time.perf_counter() - started, children_cpu() - cpu


# ---------------------------------------------------------------------------------------------------
# The one-process loop: each stage's script, run in this process with the `snakemake` object its rule
# would give it. What follows mirrors rules/common.smk and rules/*.smk for plain input files (no ZIPs,
# no names with braces); keep it in step with them. The record keys compared afterwards catch a drift.


class Named(list):
    """Snakemake's Namedlist in small: values by position (lists flattened) and by name."""

    def __init__(self, *items: object, **named: object) -> None:
        values = [*items, *named.values()]
        super().__init__(x for v in values for x in (v if isinstance(v, list) else [v]))
        self.__dict__.update(named)


def merged(base: dict, *updates: dict) -> dict:
    """Deep merge, as Snakemake's --configfile / --config over the schema's defaults."""
    out = dict(base)
    for update in updates:
        for key, value in update.items():
            out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def loop_child(spec: dict) -> None:
    """Run every stage's script once, in this process, for one batch of all unique photos."""
    import runpy

    import yaml

    from photoarchive.decisions import overrides_row, read_decisions
    from photoarchive.ingest import discover_sources
    from photoarchive.metadata import METADATA_COLUMNS, read_metadata_csv
    from photoarchive.publish import published_names
    from photoarchive.settings import schema_defaults

    os.chdir(spec["work"])  # as snakemake --directory: relative paths (models/, results/) from here
    config = merged(schema_defaults(), yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8")),
                    spec["overrides"])

    # rules/common.smk
    input_dir = Path(config["input_dir"])
    metadata_csv = Path(config["metadata_csv"]) if config["metadata_csv"] else input_dir / "metadata.csv"
    metadata_csv = metadata_csv if metadata_csv.exists() else None
    sources = {s.photo_id: s for s in discover_sources(input_dir, skip=(metadata_csv,) if metadata_csv else (),
                                                       ignore=tuple(config["ingest"]["ignore"]))}
    if any(s.archive or "{" in s.relpath or "}" in s.relpath for s in sources.values()):
        raise SystemExit("the loop mirrors plain input files only: no ZIPs, no names with braces")
    catalogue, _ = read_metadata_csv(metadata_csv)
    published = published_names(sources.values())
    decisions = read_decisions(config["review"]["decisions"])
    decisions_input = [config["review"]["decisions"]] if Path(config["review"]["decisions"]).is_file() else []

    def source_of_photo(photo: str) -> str:
        return "" if sources[photo].refusal else str(input_dir / sources[photo].relpath)

    def archival_row(photo: str) -> dict:
        row = catalogue.get(sources[photo].relpath, {})
        return {column: row[column] for column in METADATA_COLUMNS if column in row}

    def tuned_rows(photos: list[str], stage: str) -> dict:
        rows = {}
        for photo in photos:
            row = catalogue.get(sources[photo].relpath, {})
            row = {k: v for k, v in row.items() if k == stage or k.startswith(f"{stage}_")}
            rows[photo] = {**row, **overrides_row(decisions.get(photo), stage)}
        return rows

    stages: dict[str, dict[str, float]] = {}

    def run(script: str, rule: str, *, log: str, output: dict | list, input: dict | None = None,
            params: dict | None = None, wildcards: dict | None = None, threads: int = 1) -> None:
        outputs = Named(**output) if isinstance(output, dict) else Named(*output)
        for path in outputs:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        params = dict(params or {})
        namespace = SimpleNamespace(input=Named(**(input or {})), output=outputs, params=Named(**params),
                                    wildcards=Named(**(wildcards or {})), log=Named(log), threads=threads,
                                    config=config, resources=Named(), rule=rule)
        cpu, wall = tree_cpu(), time.perf_counter()
        runpy.run_path(str(REPO / "scripts" / f"{script}.py"), init_globals={"snakemake": namespace})
        stages[rule] = {"wall_s": time.perf_counter() - wall, "cpu_s": tree_cpu() - cpu}

    ingest = "results/ingest/batches/c0000.json"  # one chunk of every input file
    run("ingest", "ingest", log="logs/ingest/c0000.log", output={"table": ingest}, wildcards={"chunk": "c0000"},
        input={"sources": [p for p in map(source_of_photo, sorted(sources)) if p]},
        params={"sources": [sources[p] for p in sorted(sources)],
                "inputs": {p: source_of_photo(p) for p in sorted(sources)},
                "max_pixels": config["ingest"]["max_pixels"], "max_file_mb": config["ingest"]["max_file_mb"],
                "hash_size": config["dedup"]["hash_size"]})
    dedup = "results/dedup/dedup.tsv"
    run("dedup", "dedup", log="logs/dedup/dedup.log", input={"tables": [ingest]}, output={"table": dedup},
        params={"max_distance": config["dedup"]["max_distance"]})
    with open(dedup, encoding="utf-8", newline="") as fh:
        photos = sorted(row["photo_id"] for row in csv.DictReader(fh, delimiter="\t") if row["batch"])

    batch = "b0000"  # one batch: every unique photo

    def table(stage: str) -> str:
        return f"results/{stage}/batches/{batch}.json"

    def batch_rule(script: str, rule: str, stage: str, inputs: dict, params: dict, threads: int = 1) -> None:
        run(script, rule, log=f"logs/{stage}/{batch}.log", output={"table": table(stage)},
            input={k: table(v) for k, v in inputs.items()}, wildcards={"batch": batch}, threads=threads,
            params=params)

    run("stamp", "stamp", log=f"logs/stamp/{batch}.log", output={"table": table("stamp")},
        input={"dedup": dedup, "sources": [p for p in map(source_of_photo, photos) if p]}, wildcards={"batch": batch},
        params={"sources": {p: sources[p] for p in photos}, "inputs": {p: source_of_photo(p) for p in photos},
                "archival": {p: archival_row(p) for p in photos}, "max_pixels": config["ingest"]["max_pixels"]})
    models_dir = config["models_dir"]
    batch_rule("detect_faces", "detect_faces", "faces", {"stamped": "stamp"},
               {"photos": photos, "cfg": config["faces"], "models_dir": models_dir})
    batch_rule("repair", "repair", "repair", {"stamped": "stamp", "faces": "faces"},
               {"photos": photos, "cfg": config["repair"], "catalogue": tuned_rows(photos, "repair")})
    batch_rule("enhance", "enhance", "enhance", {"repaired": "repair"},
               {"photos": photos, "cfg": config["enhance"], "catalogue": tuned_rows(photos, "enhance")})
    batch_rule("matte", "matte", "matting", {"enhanced": "enhance", "faces": "faces"},
               {"photos": photos, "cfg": config["matting"], "models_dir": models_dir})
    batch_rule("restore_faces", "restore_faces", "restore",
               {"enhanced": "enhance", "faces": "faces", "mattes": "matting"},
               {"photos": photos, "catalogue": tuned_rows(photos, "restore"), "cfg": config["restore"],
                "models_dir": models_dir}, threads=2)
    batch_rule("qa", "qa", "qa", {k: k for k in ("stamp", "enhance", "faces", "matting", "restore")},
               {"photos": photos, "cfg": config["qa"], "identity": config["restore"]["identity"],
                "min_face_px": config["faces"]["min_face_px"]})
    batch_rule("publish", "publish", "publish", {"verdicts": "qa", "restored": "restore", "matting": "matting",
                                                  "repaired": "repair"},
               {"photos": photos, "published": {p: published[p] for p in photos},
                "jpeg_quality": config["publish"]["jpeg_quality"],
                "decisions": {p: {k: decisions[p][k] for k in ("decision", "reviewer", "time")}
                              for p in photos if p in decisions}})
    # the rest of `all`: triage, manifest, thumbnails, report, finished
    run("triage", "triage", log="logs/qa/triage.log", output={"table": "results/qa/triage.tsv"},
        input={"tables": [table("qa")], "decisions": decisions_input})
    run("manifest", "manifest", log="logs/manifest.log",
        output={"manifest": "results/manifest.csv", "failed": "results/failed.txt"},
        input={"ingest": [ingest], "dedup": dedup, "triage": "results/qa/triage.tsv",
               "published": [table("publish")], "decisions": decisions_input},
        params={"sources": list(sources.values()), "published": published})
    thumbs = f"results/thumbs/{batch}"
    run("thumbnails", "thumbnails", log=f"logs/thumbnails/{batch}.log", output=[thumbs],
        input={"stamped": table("stamp"), "restored": table("restore")}, wildcards={"batch": batch},
        params={"photos": photos, "thumb_px": config["report"]["thumb_px"],
                "quality": config["report"]["thumb_quality"]})
    run("report", "report", log="logs/report.log",
        output={"report": "results/report.html", "data": "results/report-data", "sample": "results/report-sample"},
        input={"manifest": "results/manifest.csv", "thumbs": [thumbs], "published": [table("publish")],
               "verdicts": [table("qa")]},
        params={"page_size": config["report"]["page_size"], "sample_size": config["report"]["sample_size"]})
    run("finished", "finished", log="logs/finished.log", output=["results/finished.txt"],
        input={"manifest": "results/manifest.csv", "failed": "results/failed.txt"})

    usage = [resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    Path("loop.json").write_text(json.dumps({"stages": stages, "peak_rss_mb": max(usage)}, indent=1))


def compare_runs(a: Path, b: Path) -> dict:
    """Record keys of every stage and the pixels (and bytes) of every published file, run `a` against `b`."""
    import cv2
    import numpy as np

    from photoarchive.stages import STAGES

    def records(work: Path, stage: str) -> dict[str, dict]:
        folder = work / "results" / stage
        return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}

    keys_differ = []
    for stage in STAGES:
        ra, rb = records(a, stage), records(b, stage)
        keys_differ += [f"{stage}/{p}" for p in sorted(set(ra) | set(rb))
                        if ra.get(p, {}).get("key") != rb.get(p, {}).get("key")]
    pa, pb = records(a, "publish"), records(b, "publish")
    files = sorted({f for r in (*pa.values(), *pb.values()) for f in r.get("files", [])})
    pixels_differ, bytes_differ = [], 0
    for name in files:
        fa, fb = a / "results" / name, b / "results" / name
        if not (fa.exists() and fb.exists()):
            pixels_differ.append(f"{name} (missing in {'one' if fa.exists() or fb.exists() else 'both'})")
            continue
        bytes_differ += fa.read_bytes() != fb.read_bytes()
        ia, ib = (cv2.imread(str(f), cv2.IMREAD_UNCHANGED) for f in (fa, fb))
        if ia is None or ib is None:  # not an image cv2 reads: bytes decide
            if fa.read_bytes() != fb.read_bytes():
                pixels_differ.append(name)
        elif ia.shape != ib.shape or ia.dtype != ib.dtype or not np.array_equal(ia, ib):
            pixels_differ.append(name)
    return {"published_files": len(files), "pixels_differ": pixels_differ, "bytes_differ": bytes_differ,
            "keys_differ": keys_differ}


def stage_table(work: Path) -> list[dict]:
    """Per rule: jobs, summed wall seconds and peak RSS from benchmark files, summed startup from logs."""
    wall: dict[str, float] = defaultdict(float)
    jobs: dict[str, int] = defaultdict(int)
    rss: dict[str, float] = defaultdict(float)
    for tsv in (work / "benchmarks").rglob("*.tsv"):
        rule = tsv.relative_to(work / "benchmarks").parts[0]
        with open(tsv) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        wall[rule] += float(row["s"])
        jobs[rule] += 1
        if row["max_rss"] not in ("-", "NA", ""):
            rss[rule] = max(rss[rule], float(row["max_rss"]))
    startup: dict[str, float] = defaultdict(float)
    for log in (work / "logs").rglob("*.log"):
        rule = log.relative_to(work / "logs").parts[0]
        match = STARTUP.search(log.read_text(encoding="utf-8", errors="replace"))
        if match and rule in wall:
            startup[rule] += float(match.group(1))
    return [{"stage": r, "jobs": jobs[r], "wall_s": round(wall[r], 2), "mean_s": round(wall[r] / jobs[r], 3),
             "startup_s": round(startup[r], 2), "startup_share": round(startup[r] / wall[r], 3) if wall[r] else 0,
             "peak_rss_mb": round(rss[r], 1)} for r in sorted(wall)]


def restore_model_seconds(work: Path) -> float:
    total = 0.0
    for record in (work / "results" / "restore").glob("*/*.json"):
        faces = json.loads(record.read_text()).get("faces", [])
        total += sum(f.get("seconds", 0.0) for f in faces)
    return total


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--loop-child":  # run_loop's child process
        loop_child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=50, help="photos in the synthetic archive")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "pipeline")
    parser.add_argument("--scans", type=Path, help="use this folder of scans instead of a synthetic archive")
    parser.add_argument("--long-side", type=int, help="enlarge each synthetic scan to this long side (px)")
    parser.add_argument("--gpen-random", action="store_true",
                        help="restore with a random-weight GPEN-512 (real compute, meaningless faces)")
    parser.add_argument("--no-loop", action="store_true", help="skip the one-process loop and the comparison")
    args = parser.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    scans, work, loop_work = args.out / "scans", args.out / "work", args.out / "loop"
    work.mkdir(parents=True)
    if args.scans:
        scans = args.scans.resolve()
    else:
        paths = synthetic_archive(scans, args.n, seed=0)
        if args.long_side:
            enlarge_scans(paths, args.long_side)
    overrides: dict = {"input_dir": str(scans)}
    if args.gpen_random:
        models = random_gpen_models(args.out / "models")
        overrides |= {"models_dir": str(models), "restore": {"backend": "gpen", "model": 512}}
    cold = not any((REPO / ".numba_cache").rglob("*.nbi"))
    load_before = os.getloadavg()[0]
    total, cpu = run_pipeline(work, args.cores, overrides)
    load_after = os.getloadavg()[0]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows = stage_table(work)
    job_wall = sum(r["wall_s"] for r in rows)
    startup = sum(r["startup_s"] for r in rows)
    restore_wall = sum(r["wall_s"] for r in rows if r["stage"] == "restore_faces")
    model = restore_model_seconds(work)
    with open(work / "results" / "manifest.csv", encoding="utf-8") as fh:
        statuses = [r["status"] for r in csv.DictReader(fh)]
    photos = sum(s in ("processed", "review") for s in statuses)

    size = f" enlarged to {args.long_side} px" if args.long_side and not args.scans else ""
    what = f"scans from {args.scans}" if args.scans else f"{args.n} synthetic scans{size}"
    restorer = "GPEN-512 (random weights)" if args.gpen_random else "auto"
    print(f"\nphotoarchive pipeline benchmark: {what}, --cores {args.cores}, restore {restorer}, "
          f"load average before {load_before:.1f}")
    header = f"{'stage':<16}{'jobs':>6}{'wall s':>10}{'mean s':>9}{'startup s':>11}{'startup %':>11}{'peak MB':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['stage']:<16}{r['jobs']:>6}{r['wall_s']:>10.1f}{r['mean_s']:>9.2f}{r['startup_s']:>11.1f}"
              f"{100 * r['startup_share']:>10.0f}%{r['peak_rss_mb']:>9.0f}")
    summary = {
        "pipeline_wall_s": round(total, 1),
        "pipeline_cpu_s": round(cpu, 1),
        "photos_finished": photos,
        "photos_per_minute": round(60 * photos / total, 2),
        "sum_job_wall_s": round(job_wall, 1),
        "job_startup_share": round(startup / job_wall, 3) if job_wall else 0,
        "restore_outside_model_share": round(1 - model / restore_wall, 3) if restore_wall else 0,
        "peak_rss_mb": round(peak_rss_mb, 0),
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
    }
    print()
    for key, value in summary.items():
        print(f"{key:<30}{value}")
    with open(args.out / "pipeline.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if not args.no_loop:
        summary["loop"] = loop_comparison(args.out, work, loop_work, overrides, photos,
                                          {"wall_s": total, "cpu_s": cpu, "load_before": load_before,
                                           "load_after": load_after, "peak_rss_mb": peak_rss_mb})
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {args.out / 'pipeline.csv'} and summary.json")
    if cold:
        print("NOTE: the numba cache was empty: this Snakemake run included the JIT compile; run again to compare")


def loop_comparison(out: Path, work: Path, loop_work: Path, overrides: dict, photos: int, pipeline: dict) -> dict:
    """Run the loop after Snakemake, print and write (compare.csv) both runs' times and whether they agree."""
    loop_work.mkdir(parents=True)
    load_before = os.getloadavg()[0]
    wall, cpu = run_loop(loop_work, overrides)
    loop = {"wall_s": wall, "cpu_s": cpu, "load_before": load_before, "load_after": os.getloadavg()[0],
            **json.loads((loop_work / "loop.json").read_text())}
    runs = []
    for name, run in (("snakemake", pipeline), ("loop", loop)):
        runs.append({"run": name, "wall_s": round(run["wall_s"], 1), "cpu_s": round(run["cpu_s"], 1),
                     "cpu_s_per_photo": round(run["cpu_s"] / max(photos, 1), 2),
                     "wall_ratio": round(run["wall_s"] / loop["wall_s"], 3),
                     "cpu_ratio": round(run["cpu_s"] / loop["cpu_s"], 3),
                     "peak_rss_mb": round(run["peak_rss_mb"]), "load_before": round(run["load_before"], 2),
                     "load_after": round(run["load_after"], 2)})
    print(f"\nSnakemake against the one-process loop ({photos} photos; ratios over the loop)")
    header = (f"{'run':<11}{'wall s':>9}{'CPU s':>9}{'CPU-s/photo':>13}{'wall ×':>8}{'CPU ×':>8}{'peak MB':>9}"
              f"{'load':>12}")
    print(header)
    print("-" * len(header))
    for r in runs:
        print(f"{r['run']:<11}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{r['cpu_s_per_photo']:>13.2f}{r['wall_ratio']:>8.2f}"
              f"{r['cpu_ratio']:>8.2f}{r['peak_rss_mb']:>9}{r['load_before']:>6.1f}→{r['load_after']:<5.1f}")
    print("\nloop stages (wall s / CPU s): " + ", ".join(
        f"{k} {v['wall_s']:.1f}/{v['cpu_s']:.1f}" for k, v in loop["stages"].items()))
    same = compare_runs(work, loop_work)
    print(f"published files: {same['published_files']}, pixels differ: {len(same['pixels_differ'])} "
          f"{same['pixels_differ'][:5]}, bytes differ: {same['bytes_differ']}, "
          f"record keys differ: {len(same['keys_differ'])} {same['keys_differ'][:5]}")
    with open(out / "compare.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    print(f"wrote {out / 'compare.csv'}")
    return {"runs": runs, "stages": loop["stages"], **same}


if __name__ == "__main__":
    main()
