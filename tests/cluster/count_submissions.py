"""Count the SLURM submissions a run would make, from a dry run with the SLURM profile.

    snakemake --profile profiles/slurm --dry-run > dry-run.txt
    python tests/cluster/count_submissions.py dry-run.txt

A dry run prints each group job once ("Group job <name> (jobs in lexicogr. order):" followed by its
member jobs, indented) and every other job as "rule <name>:" / "checkpoint <name>:" at the start of a
line; each of those is one sbatch call. Rules with nothing to run (`all`) are not submitted.

A dry run only sees the DAG up to a checkpoint that still has to run (dedup, then triage): jobs after
it are not known yet. To count those too, give the checkpoints up-to-date outputs first:
  1. in an empty working directory, dry-run once: that counts everything up to dedup;
  2. run the workflow up to dedup (locally is fine: `snakemake --cores 4 ingest_only`: dedup and the
     ingest chunk lists);
  3. write a placeholder results/qa/triage.tsv (header `photo_id<TAB>status`, every unique photo of
     results/dedup/dedup.tsv as `processed`), newer than dedup.tsv; the processed/review split only
     changes file names, not the number of jobs;
  4. dry-run again: it lists every job after dedup. The total is 1. (up to dedup) + 4.
bench/count_slurm_jobs.py does all of this for the demo and for synthetic archives of any size.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

GROUP = re.compile(r"^(?:\[[^\]]*\] )?Group job (\S+) \(jobs in lexicogr\. order\):", re.MULTILINE)
GROUP_MEMBER = re.compile(r"^    (?:rule|checkpoint) (\w+):", re.MULTILINE)
SINGLE = re.compile(r"^(?:rule|checkpoint) (\w+):", re.MULTILINE)
NOT_SUBMITTED = {"all"}


def count(text: str) -> Counter:
    """{'group <name>' or 'rule <name>': number of SLURM submissions} from a dry run's output."""
    counts = Counter(f"group {name}" for name in GROUP.findall(text))
    counts.update(f"rule {name}" for name in SINGLE.findall(text) if name not in NOT_SUBMITTED)
    return counts


def main(argv: list[str]) -> int:
    text = Path(argv[0]).read_text(encoding="utf-8", errors="replace") if argv else sys.stdin.read()
    counts = count(text)
    members = Counter(GROUP_MEMBER.findall(text))
    for kind, n in sorted(counts.items()):
        print(f"{n:6d}  {kind}")
    print(f"{sum(counts.values()):6d}  submissions in total ({sum(members.values())} jobs inside group jobs)")
    if "DAG of jobs will be updated after completion" in text:
        print("note: a checkpoint is pending; jobs after it are not counted (see this script's docstring)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
