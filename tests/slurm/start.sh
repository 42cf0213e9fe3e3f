#!/usr/bin/env bash
# Start a single-node SLURM on this machine for tests/test_slurm.py (run as root; no systemd needed).
# Installs nothing: the packages come first (Debian/Ubuntu: apt-get install slurm-wlm munge).
#   bash tests/slurm/start.sh
# Writes /etc/slurm/slurm.conf from tests/slurm/slurm.conf (this host's name, CPUs and memory),
# creates the munge key if missing, starts munged, slurmctld and slurmd as daemons and waits until
# the node is idle. Idempotent: does nothing when `scontrol ping` already answers.
# Logs: /var/log/slurm/slurmctld.log, /var/log/slurm/slurmd.log, /var/log/munge/munged.log.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CONF=/etc/slurm/slurm.conf
MARK="# written by bert-ablation tests/slurm/start.sh"
TIMEOUT="${SLURM_START_TIMEOUT:-60}"

fail() {
    echo "tests/slurm/start.sh: $*" >&2
    for log in /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log /var/log/munge/munged.log; do
        if [ -s "$log" ]; then echo "--- last lines of $log" >&2; tail -n 15 "$log" >&2; fi
    done
    exit 1
}

controller_up() { scontrol ping 2>/dev/null | grep -q "is UP"; }
node_state() { sinfo --noheader --node "$HOST" --format "%T" 2>/dev/null | head -n 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (it writes $CONF and starts daemons)"
for command in munged slurmctld slurmd scontrol sinfo sbatch; do
    command -v "$command" >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
    command -v "$command" >/dev/null || fail "'$command' not found; install SLURM first: apt-get install -y slurm-wlm munge"
done

HOST="$(hostname -s)"
if controller_up; then
    echo "SLURM already running: $(scontrol ping | head -n 1)"
    exit 0
fi

# The configuration: never overwrite a slurm.conf this script did not write.
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    fail "$CONF exists and was not written by this script; move it away to use the test SLURM"
fi
CPUS="$(nproc)"
# RealMemory: 90% of MemTotal in MB (slurmd drains a node that reports less than configured).
MEMORY="$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
{
    echo "$MARK"
    sed -e "s/@HOST@/$HOST/g" -e "s/@CPUS@/$CPUS/g" -e "s/@MEMORY@/$MEMORY/g" "$HERE/slurm.conf"
} > "$CONF.tmp"
mv "$CONF.tmp" "$CONF"
echo "wrote $CONF: node $HOST, $CPUS CPUs, RealMemory=$MEMORY MB, partition 'test'"

# munge: key, runtime directory, daemon (as the munge user, as the Debian service does).
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile /etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    echo "created /etc/munge/munge.key"
fi
MUNGE_USER=root
id munge >/dev/null 2>&1 && MUNGE_USER=munge
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown "$MUNGE_USER": /etc/munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [ "$MUNGE_USER" = root ]; then
        munged --force
    else
        su -s /bin/sh "$MUNGE_USER" -c "munged --force"
    fi
    for _ in $(seq 10); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || fail "munged did not start"
fi

# slurmctld and slurmd: daemons (they fork); a stale daemon from an earlier start is left alone
# unless it does not answer, in which case it is stopped first by its pid file.
for pidfile in /run/slurmctld.pid /run/slurmd.pid; do
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        sleep 1
    fi
done
# -c: start from a clean state (no jobs or node states kept from an earlier, different config).
slurmctld -c || fail "slurmctld did not start"
slurmd || fail "slurmd did not start"

deadline=$((SECONDS + TIMEOUT))
until controller_up; do
    [ $SECONDS -lt $deadline ] || fail "slurmctld does not answer 'scontrol ping' after ${TIMEOUT}s"
    sleep 1
done
state=""
until [ "$state" = idle ]; do
    state="$(node_state)"
    case "$state" in
        idle) break ;;
        drain*|down*|fail*)
            # e.g. a node left down by an earlier start: return it to service once.
            scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
    esac
    [ $SECONDS -lt $deadline ] || fail "node $HOST is '${state:-unknown}', not idle, after ${TIMEOUT}s ($(sinfo -R --noheader 2>/dev/null | head -n 1))"
    sleep 1
done
echo "SLURM is up: partition 'test', node $HOST idle"
sinfo
