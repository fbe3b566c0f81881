"""Count the SLURM submissions a run would make, from a dry run with the SLURM profile.

    snakemake --profile profiles/slurm --dry-run > dry-run.txt
    python tests/cluster/count_submissions.py dry-run.txt

A dry run prints each group job once ("Group job <name> (jobs in lexicogr. order):" followed by its
member jobs, indented) and every other job as "rule <name>:" / "checkpoint <name>:" at the start of a
line; each of those is one sbatch call. Rules with nothing to run (`all`) are not submitted.

A dry run only sees the DAG up to the first unfinished checkpoint (dedup, then triage): jobs after it
are not known yet. Run the workflow up to the checkpoint first (locally is fine, e.g.
`snakemake --cores 4 results/dedup/dedup.tsv`), then dry-run again for the stages after it.
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
