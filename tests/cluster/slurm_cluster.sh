#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for testing the `profiles/slurm` profile for real.
#
#   tests/cluster/slurm_cluster.sh start    install (if missing), configure and start munged, slurmctld, slurmd
#   tests/cluster/slurm_cluster.sh stop     stop the daemons this script started, by PID
#   tests/cluster/slurm_cluster.sh status   show the daemons' PIDs and the node state
#
# Needs root and Debian/Ubuntu (apt-get). `start` exits 77 when the machine cannot run SLURM at all
# (not root; or SLURM missing and apt-get absent or unable to reach a mirror); callers treat 77 as "skip".
# Daemons are started by hand (no systemd), so this works in containers too.
# It overwrites /etc/slurm/slurm.conf and /etc/slurm/gres.conf: meant for CI machines and throwaway
# containers, never for a machine that is part of a real cluster.
#
# Environment:
#   SLURM_STATE_DIR   where the daemons' PIDs are recorded (default /tmp/photoarchive-slurm);
#                     daemon logs: /var/log/slurm/{slurmctld,slurmd}.log, /var/log/munge/munged.log
#   SLURM_PARTITION   partition name (default: main)
#   SLURM_WAIT_S      how long `start` waits for the node to become idle (default 60)
#   SLURM_MIN_JOB_AGE seconds finished jobs stay in squeue/scontrol (default 3600)
set -euo pipefail

STATE_DIR="${SLURM_STATE_DIR:-/tmp/photoarchive-slurm}"
PARTITION="${SLURM_PARTITION:-main}"
WAIT_S="${SLURM_WAIT_S:-60}"
MIN_JOB_AGE="${SLURM_MIN_JOB_AGE:-3600}"
CONF_DIR=/etc/slurm          # the plugin's inner srun only finds the config at its default path
SKIP=77

log() { printf '[slurm_cluster] %s\n' "$*" >&2; }

can_run_slurm() {
    if [[ "$(id -u)" != 0 ]]; then
        log "SKIP: not root; a throwaway SLURM cluster needs root (apt-get, /etc/slurm, daemons)"
        return 1
    fi
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
        if ! command -v apt-get >/dev/null; then
            log "SKIP: SLURM is not installed and there is no apt-get to install it"
            return 1
        fi
    fi
    return 0
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    log "installing slurmctld slurmd slurm-client munge (apt-get)"
    local t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    # Another apt run may hold the dpkg lock: wait for it instead of failing.
    if ! apt-get -o DPkg::Lock::Timeout=300 update -qq >"$STATE_DIR/apt.log" 2>&1; then
        tail -n 20 "$STATE_DIR/apt.log" >&2
        log "SKIP: SLURM is not installed and apt-get cannot reach a package mirror"
        return $SKIP
    fi
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >>"$STATE_DIR/apt.log" 2>&1 \
        || { tail -n 20 "$STATE_DIR/apt.log" >&2; return 1; }
    log "installed in $((SECONDS - t0)) s"
}

write_config() {
    local cpus mem_mb
    cpus=$(nproc)
    # MB of RAM as the kernel reports it; slurmd drains a node that has less than RealMemory.
    mem_mb=$(free -m | awk '/^Mem:/ {print $2}')
    mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
    chown slurm:slurm /var/spool/slurmctld /var/log/slurm /run/slurm 2>/dev/null || true
    cat >"$CONF_DIR/slurm.conf" <<EOF
# Written by photoarchive tests/cluster/slurm_cluster.sh: a one-node test cluster.
ClusterName=photoarchive
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# How long finished jobs stay visible to squeue/scontrol. The plugin's squeue status check needs at
# least 3x its status-check interval (300 s is plenty for that); the test's own check reads every job
# of the run afterwards, and the run takes longer than 5 minutes.
MinJobAge=$MIN_JOB_AGE
ReturnToService=2
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    # One pretend GPU backed by /dev/null: enough for SLURM to accept and schedule --gpus=1.
    cat >"$CONF_DIR/gres.conf" <<EOF
NodeName=localhost Name=gpu File=/dev/null
EOF
    chmod 644 "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"
    log "wrote $CONF_DIR/slurm.conf (CPUs=$cpus RealMemory=$mem_mb, partition $PARTITION, gres gpu:1)"
}

log_of() { if [[ $1 == munged ]]; then echo /var/log/munge/munged.log; else echo "/var/log/slurm/$1.log"; fi; }

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# Wait (bounded) for a daemon's pidfile to name a live process; record that PID.
record_pid() {
    local name=$1 pidfile=$2 i pid=""
    for ((i = 0; i < 100; i++)); do
        if [[ -s "$pidfile" ]]; then
            pid=$(tr -dc 0-9 <"$pidfile")
            if pid_alive "$pid"; then
                echo "$pid" >"$STATE_DIR/$name.pid"
                log "$name running, PID $pid"
                return 0
            fi
        fi
        sleep 0.1
    done
    log "ERROR: $name did not start; see $(log_of "$name")"
    tail -n 20 "$(log_of "$name")" >&2 2>/dev/null || true
    return 1
}

start_munge() {
    if pid_alive "$(cat "$STATE_DIR/munged.pid" 2>/dev/null)"; then
        log "munged already running"
        return 0
    fi
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 0700 /etc/munge /var/log/munge
    chmod 0755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key --force
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    record_pid munged /run/munge/munged.pid
    munge -n | unmunge >/dev/null || { log "ERROR: munge round trip failed"; return 1; }
}

start_slurm_daemons() {
    if pid_alive "$(cat "$STATE_DIR/slurmctld.pid" 2>/dev/null)"; then
        log "slurmctld already running"
    else
        rm -f /run/slurm/slurmctld.pid
        # -c: forget jobs from an earlier test cluster, so job IDs and history belong to this run.
        slurmctld -c
        record_pid slurmctld /run/slurm/slurmctld.pid
    fi
    if pid_alive "$(cat "$STATE_DIR/slurmd.pid" 2>/dev/null)"; then
        log "slurmd already running"
    else
        rm -f /run/slurm/slurmd.pid
        slurmd -N localhost
        record_pid slurmd /run/slurm/slurmd.pid
    fi
}

wait_idle() {
    local state="" t0=$SECONDS
    while ((SECONDS - t0 < WAIT_S)); do
        state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
        if [[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]]; then
            log "node localhost is $state after $((SECONDS - t0)) s"
            return 0
        fi
        sleep 0.5
    done
    log "ERROR: node not idle after ${WAIT_S} s (state: '${state:-none}')"
    scontrol show node localhost >&2 || true
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    return 1
}

cmd_start() {
    can_run_slurm || exit $SKIP
    mkdir -p "$STATE_DIR"
    local t0=$SECONDS
    local rc=0
    install_packages || rc=$?
    ((rc == 0)) || exit "$rc"
    write_config
    start_munge
    start_slurm_daemons
    wait_idle
    log "cluster up in $((SECONDS - t0)) s"
}

stop_pid() {
    local name=$1 pid i
    pid=$(cat "$STATE_DIR/$name.pid" 2>/dev/null || true)
    if ! pid_alive "$pid"; then
        rm -f "$STATE_DIR/$name.pid"
        return 0
    fi
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        log "$name (PID $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (PID $pid)"
    rm -f "$STATE_DIR/$name.pid"
}

cmd_stop() {
    # Cancel what is still queued or running on this test cluster, then stop the daemons by PID.
    if pid_alive "$(cat "$STATE_DIR/slurmctld.pid" 2>/dev/null)"; then
        scancel --full --quiet --state=PENDING,RUNNING --partition="$PARTITION" 2>/dev/null || true
    fi
    stop_pid slurmd
    stop_pid slurmctld
    stop_pid munged
}

cmd_status() {
    local name pid
    for name in munged slurmctld slurmd; do
        pid=$(cat "$STATE_DIR/$name.pid" 2>/dev/null || true)
        if pid_alive "$pid"; then echo "$name: running (PID $pid)"; else echo "$name: not running"; fi
    done
    sinfo -N -o '%N %T %c %m %G' 2>/dev/null || true
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
