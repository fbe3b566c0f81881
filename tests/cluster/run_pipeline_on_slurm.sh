#!/usr/bin/env bash
# The whole pipeline on the demo archive through SLURM, on a real one-node cluster on this machine:
#   1. start munged/slurmctld/slurmd (tests/cluster/slurm_cluster.sh; installs slurm-wlm when missing)
#   2. copy the repository's files to a scratch working directory (local results/ stay untouched)
#   3. snakemake --profile profiles/slurm there, under `timeout -s KILL`
#   4. check: manifest rows and statuses; every job went through sbatch and completed (job IDs from
#      Snakemake's log against scontrol/squeue history); only the GPU stage asked for a GPU
#   5. stop the daemons by PID (also on failure)
# Exit 0 on success; non-zero on failure. Exit 0 with "SKIP" ONLY when this machine cannot run SLURM at
# all (not root, or SLURM missing and no apt-get to install it).
#
# Environment:
#   SNAKEMAKE            snakemake to use (default: <repo>/.venv/bin/snakemake)
#   SLURM_RUN_TIMEOUT    seconds before the run is killed (default 1200)
#   SLURM_KEEP_CLUSTER=1 leave the daemons running afterwards (for poking at scontrol/squeue)
#   SLURM_KEEP_WORKDIR=1 keep the scratch working directory (removed on success otherwise)
# Extra arguments are passed to snakemake (e.g. --config input_dir=/data/scans).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$REPO/tests/cluster"
SNAKEMAKE=${SNAKEMAKE:-$REPO/.venv/bin/snakemake}
PYTHON=$(dirname "$SNAKEMAKE")/python
RUN_TIMEOUT=${SLURM_RUN_TIMEOUT:-1200}
# The demo archive (demo/README.md): 9 files, 2 of them duplicates.
EXPECT_ROWS=9
EXPECT_DUPLICATES=2

say() { printf '[run_pipeline_on_slurm] %s\n' "$*"; }

if [[ ! -x "$SNAKEMAKE" ]]; then
    say "FAILED: no snakemake at $SNAKEMAKE (run 'make setup' first, or set SNAKEMAKE)"
    exit 1
fi

t0=$SECONDS
set +e
"$HERE/slurm_cluster.sh" start
rc=$?
set -e
if ((rc == 77)); then
    say "SKIP: this machine cannot run a SLURM cluster (see the reason above); the SLURM test did NOT run"
    exit 0
elif ((rc != 0)); then
    say "FAILED: could not start the test cluster (exit $rc)"
    "$HERE/slurm_cluster.sh" stop || true
    exit 1
fi
t_cluster=$((SECONDS - t0))
say "cluster started in ${t_cluster} s"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/photoarchive-slurm.XXXXXX")
cleanup() {
    local status=$?
    if [[ "${SLURM_KEEP_CLUSTER:-0}" != 1 ]]; then
        "$HERE/slurm_cluster.sh" stop || true
    fi
    if [[ $status == 0 && "${SLURM_KEEP_WORKDIR:-0}" != 1 ]]; then
        rm -rf "$WORK"
    else
        say "working directory kept: $WORK"
    fi
    exit "$status"
}
trap cleanup EXIT

# The repository's own files (tracked, plus new ones git does not ignore): no .venv, results or logs.
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
        | xargs -0 -I{} sh -c 'test -e "$1" && cp --parents -- "$1" "$2"' _ {} "$WORK")
else
    tar -C "$REPO" --exclude=.venv --exclude=results --exclude=logs --exclude=.snakemake -cf - . \
        | tar -C "$WORK" -xf -
fi
say "working directory: $WORK"

# Jobs inherit this environment (the plugin submits with --export=ALL).
export PATH="$(dirname "$SNAKEMAKE"):$PATH"
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$REPO/.numba_cache}  # pymatting's JIT, compiled once

LOG="$WORK/snakemake-slurm.log"
say "running: snakemake --profile profiles/slurm $* (killed after ${RUN_TIMEOUT} s)"
t1=$SECONDS
set +e
(cd "$WORK" && timeout -s KILL "$RUN_TIMEOUT" "$SNAKEMAKE" --profile profiles/slurm "$@") >"$LOG" 2>&1
rc=$?
set -e
t_run=$((SECONDS - t1))
if ((rc != 0)); then
    tail -60 "$LOG"
    if ((rc == 137)); then
        say "FAILED: the run did not finish within ${RUN_TIMEOUT} s (killed)"
    else
        say "FAILED: snakemake exited with $rc after ${t_run} s"
    fi
    squeue --states=all -o '%i %T %M %r %k' || true
    exit 1
fi
say "pipeline finished on SLURM in ${t_run} s"

"$PYTHON" "$HERE/check_slurm_run.py" "$WORK" "$LOG" --rows "$EXPECT_ROWS" --duplicates "$EXPECT_DUPLICATES"
say "OK: cluster start ${t_cluster} s, pipeline run ${t_run} s, total $((SECONDS - t0)) s"
