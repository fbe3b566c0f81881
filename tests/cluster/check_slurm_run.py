"""Check a pipeline run made with `--profile profiles/slurm` on the test cluster.

Reads Snakemake's log of the run and asks SLURM (`scontrol`, `squeue`) about every job it submitted:
each one must have gone through sbatch, completed, and run in the run's working directory; exactly
the jobs of this run (by the plugin's run ID) are known to SLURM; the GPU stage, and only it,
asked for one GPU; no rule ran on the submit host. Then the manifest: one row per input file, the
expected number of duplicates, nothing failed.

    python tests/cluster/check_slurm_run.py WORKDIR SNAKEMAKE_LOG --rows 9 --duplicates 2

Exit status 0 when every check passes; the problems are listed otherwise.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (.*)\)\.")
RUN_ID = re.compile(r"SLURM run ID: (\S+)")
LOCAL_RULE = re.compile(r"^\s*local(?:rule|checkpoint) (\w+):", re.MULTILINE)
# Rules with nothing to run (targets): Snakemake finishes them on the submit host by design.
TARGET_RULES = {"all"}
GPU_RULE = "restore_faces"
# The profile's group holding it: the plugin cuts a group job's comment (its rule names) after 50
# characters, so the group's name, which comes first, is what is always there (scontrol shows the comment
# as "rule_batch_…", the plugin's log as "group_batch_…").
GPU_GROUP_COMMENT = ("rule_batch_", "group_batch_")


def runs_gpu_rule(comment: str) -> bool:
    return GPU_RULE in comment or comment.startswith(GPU_GROUP_COMMENT)


def parse_log(text: str) -> tuple[str | None, dict[str, str], set[str]]:
    """(plugin run ID, {SLURM job id: Snakemake log line target}, rules run on the submit host)."""
    run_ids = set(RUN_ID.findall(text))
    run_id = run_ids.pop() if len(run_ids) == 1 else None
    jobs = {slurm_id: slurm_log for _job, slurm_id, slurm_log in SUBMITTED.findall(text)}
    return run_id, jobs, set(LOCAL_RULE.findall(text)) - TARGET_RULES


def job_kind(slurm_log: str) -> str:
    """`rule_<name>` or `group_<name>_<rules>`: the folder the plugin files the job's SLURM log under."""
    parts = Path(slurm_log).parts
    return parts[parts.index("slurm_logs") + 1] if "slurm_logs" in parts else Path(slurm_log).parent.name


def parse_scontrol(text: str) -> dict[str, dict[str, str]]:
    """`scontrol show job -o` output as {job id: {field: value}}."""
    jobs = {}
    for line in text.splitlines():
        fields = dict(re.findall(r"(\w[\w/:]*)=(\S*)", line))
        if "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


def slurm_jobs() -> dict[str, dict[str, str]]:
    shown = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, check=True)
    return parse_scontrol(shown.stdout)


def check_slurm(run_id: str | None, submitted: dict[str, str], workdir: Path,
                jobs: dict[str, dict[str, str]]) -> list[str]:
    problems = []
    if not submitted:
        return ["the log names no job submitted with sbatch"]
    if run_id is None:
        problems.append("the log does not name exactly one SLURM run ID")
    for slurm_id in sorted(submitted, key=int):
        job = jobs.get(slurm_id)
        if job is None:
            problems.append(f"SLURM job {slurm_id} is unknown to scontrol (MinJobAge too short?)")
            continue
        if job.get("JobState") != "COMPLETED":
            problems.append(f"SLURM job {slurm_id} ({job.get('Comment')}) is {job.get('JobState')}")
        if Path(job.get("WorkDir", "")).resolve() != workdir.resolve():
            problems.append(f"SLURM job {slurm_id} ran in {job.get('WorkDir')}, not {workdir}")
        if run_id is not None and job.get("JobName") != run_id:
            problems.append(f"SLURM job {slurm_id} has name {job.get('JobName')}, not the run ID {run_id}")
        # TresPerJob=gres:gpu:1 is what sbatch --gpus=1 asked for (TRES lists it only when tracked).
        wants_gpu = "gpu" in job.get("TresPerJob", "") or "gres/gpu" in job.get("TRES", "")
        has_gpu_rule = runs_gpu_rule(job.get("Comment", ""))
        if has_gpu_rule and not wants_gpu:
            problems.append(f"SLURM job {slurm_id} runs {GPU_RULE} but asked for no GPU ({job.get('TRES')})")
        if wants_gpu and not has_gpu_rule:
            problems.append(f"SLURM job {slurm_id} ({job.get('Comment')}) asked for a GPU it does not need")
    if not any(runs_gpu_rule(jobs.get(i, {}).get("Comment", "")) for i in submitted):
        problems.append(f"no SLURM job ran {GPU_RULE}")
    if run_id is not None:
        queue = subprocess.run(
            ["squeue", "--states=all", "--noheader", "--format=%i", "--name", run_id],
            capture_output=True, text=True, check=True,
        )
        known = set(queue.stdout.split())
        if known != set(submitted):
            problems.append(
                f"squeue knows jobs {sorted(known - set(submitted), key=int)} of this run that the log does not "
                f"name, and misses {sorted(set(submitted) - known, key=int)}"
            )
    return problems


def check_manifest(workdir: Path, rows: int, duplicates: int) -> list[str]:
    path = workdir / "results" / "manifest.csv"
    if not path.is_file():
        return [f"{path} is missing"]
    with path.open(encoding="utf-8", newline="") as fh:
        table = list(csv.DictReader(fh))
    statuses = Counter(row["status"] for row in table)
    problems = []
    if len(table) != rows:
        problems.append(f"manifest has {len(table)} rows, expected {rows}")
    if statuses["duplicate"] != duplicates:
        problems.append(f"manifest has {statuses['duplicate']} duplicates, expected {duplicates}")
    if set(statuses) - {"processed", "review", "duplicate"}:
        problems.append(f"manifest statuses: {dict(statuses)}")
    failed = workdir / "results" / "failed.txt"
    if failed.is_file():
        lines = [ln for ln in failed.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
        if lines:
            problems.append(f"{failed} lists failures:\n" + "\n".join(lines))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("log", type=Path, help="Snakemake's output (stdout and stderr) of the run")
    parser.add_argument("--rows", type=int, required=True, help="expected manifest rows (input files)")
    parser.add_argument("--duplicates", type=int, required=True, help="expected duplicate rows")
    args = parser.parse_args(argv)

    run_id, submitted, local_rules = parse_log(args.log.read_text(encoding="utf-8", errors="replace"))
    jobs = slurm_jobs()
    problems = check_slurm(run_id, submitted, args.workdir, jobs)
    if local_rules:
        problems.append(f"rules ran on the submit host instead of through sbatch: {sorted(local_rules)}")
    problems += check_manifest(args.workdir, args.rows, args.duplicates)

    kinds = Counter(job_kind(log) for log in submitted.values())
    print(f"SLURM run ID {run_id}: {len(submitted)} sbatch submissions")
    for kind, n in sorted(kinds.items()):
        print(f"  {n:4d}  {kind}")
    print("  job   run time  time limit  resources  (what each submission asked for and used)")
    for slurm_id in sorted(submitted, key=int):
        job = jobs.get(slurm_id, {})
        print(f"  {slurm_id:>4}  {job.get('RunTime', '?'):>8}  {job.get('TimeLimit', '?'):>10}  "
              f"{job.get('TRES', '?')}  {job_kind(submitted[slurm_id])}")
    if problems:
        print("FAILED:", *problems, sep="\n  ")
        return 1
    print("OK: every job went through sbatch and completed; manifest as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
