#!/usr/bin/env bash
# A private, throwaway single-node Slurm for tests (ctest fixture `slurm`, or by hand):
#   tools/slurm.sh start DIR   munged + slurmctld + slurmd; waits until a GPU job runs; writes DIR/env
#   tools/slurm.sh stop DIR    cancels its jobs, shuts the daemons down and deletes their state
#   tools/slurm.sh env DIR     prints DIR/env (`. DIR/env` sets SLURM_CONF for sbatch, squeue, ...)
# Everything lives under DIR: slurm.conf, gres.conf, four fake GPU files (fakegpu0..3, gres type `fake`),
# the munge key and socket, state, spool, logs and pid files. Nothing is written outside DIR, except
# when DIR is so deep that unix socket paths (~100 bytes) would not fit, or lies below a directory
# others cannot pass through (munged refuses its socket there): the munge socket and slurmd's spool
# (step sockets) then go to a short /tmp/nc-slurm.XXXXXX directory, recorded in DIR/instance.
# The node is `hostname -s` at 127.0.0.1 with the machine's CPUs (at least 16, declared with
# SlurmdParameters=config_overrides so that test gangs of several tasks fit on a 2-core CI machine; no
# CPU binding) and its memory less a margin. The TCP ports are free ones picked at start, so two
# checkouts on one machine do not collide. A second node, nc-down0, is configured DOWN and never comes
# up (for tests of jobs placed on a lost node). Completed jobs stay visible to scontrol for MinJobAge=300 s
# (there is no slurmdbd, so no sacct). `start` first stops an instance left by an earlier run.
# Runs as root (SlurmUser=root); needs Debian's slurm-wlm and munge packages (tools/install-deps.sh).
# See docs in /work/shared/design/slurm-single-node.md for the pitfalls this avoids.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|env DIR" >&2
  exit 2
fi

die() { echo "slurm.sh: $*" >&2; exit 1; }

case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
case "$dir" in
  *[[:space:]\'\"\\]*) die "DIR must not contain whitespace, quotes or backslashes (slurm.conf cannot hold them): '$dir'" ;;
esac
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf="$dir/slurm.conf"
START_TIMEOUT=${NC_SLURM_START_TIMEOUT:-60}

# The pid in FILE if that process is alive and its command name starts with NAME.
live_pid() {
  local file=$1 name=$2 pid comm
  [ -f "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  case "$comm" in "$name"*) echo "$pid" ;; *) return 1 ;; esac
}

# Waits up to $2 seconds for the process in pid file $1 (command $3) to exit; then SIGKILLs it.
stop_pid() {
  local file=$1 secs=$2 name=$3 pid i
  pid=$(live_pid "$file" "$name") || { rm -f "$file"; return 0; }
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
    if [ "$i" -eq 0 ] || [ $((i % 30)) -eq 0 ]; then kill -TERM "$pid" 2>/dev/null || true; fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

searchable_by_all() {  # every directory from $1 up to / lets others pass through (o+x)
  local p=$1
  while [ -n "$p" ] && [ "$p" != / ]; do
    [ -d "$p" ] && [ $((0$(stat -c %a "$p") & 1)) -eq 1 ] || return 1
    p=$(dirname "$p")
  done
}

runtime_dir() {  # where the munge socket and slurmd spool live
  if [ -f "$dir/instance" ]; then cat "$dir/instance"; else echo "$dir/run"; fi
}

stop_instance() {
  local rt
  rt=$(runtime_dir)
  if [ -f "$conf" ] && live_pid "$dir/slurmctld.pid" slurmctld >/dev/null; then
    export SLURM_CONF="$conf"
    # Cancel this cluster's jobs first: slurmd's shutdown leaves running jobs' slurmstepd alive.
    local jobs
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      timeout 10 scancel --signal=KILL --full $jobs >/dev/null 2>&1 || true
      # shellcheck disable=SC2086
      timeout 10 scancel $jobs >/dev/null 2>&1 || true
      for _ in $(seq 50); do
        [ -z "$(timeout 5 squeue -h -t R,CG -o %A 2>/dev/null || true)" ] && break
        sleep 0.2
      done
    fi
    timeout 15 scontrol shutdown >/dev/null 2>&1 || true
  fi
  stop_pid "$dir/slurmd.pid" 15 slurmd
  stop_pid "$dir/slurmctld.pid" 15 slurmctld
  stop_pid "$dir/munged.pid" 10 munged
  case "$rt" in
    /tmp/nc-slurm.*) rm -rf "$rt" ;;
    "$dir"/run) ;;
    *) die "refusing to remove unexpected runtime directory '$rt'" ;;
  esac
  rm -rf "$dir/run" "$dir/state" "$dir/spool" "$dir/munge" "$dir/instance" "$dir/env" \
         "$dir"/fakegpu[0-9] "$dir/slurm.conf" "$dir/gres.conf" "$dir"/*.pid
}

free_ports() {  # two free TCP ports on this machine
  python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

fail_start() {  # prints the message and the daemons' log tails, stops what started, exits 1
  local msg=$1 f
  echo "slurm.sh: $msg" >&2
  for f in "$dir/munged.log" "$dir/slurmctld.log" "$dir/slurmd.log"; do
    if [ -s "$f" ]; then
      echo "---- last lines of $f ----" >&2
      tail -n 25 "$f" >&2
    fi
  done
  stop_instance || true
  exit 1
}

start_instance() {
  local host cpus mem_kb mem_mib rt ports ctld_port d_port
  [ "$(id -u)" -eq 0 ] || die "must run as root (SlurmUser=root, slurmd needs root)"
  for b in munged slurmctld slurmd sinfo srun scontrol; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
      die "$b not found: install slurm-wlm and munge (bash tools/install-deps.sh)"
  done
  export PATH="$PATH:/usr/sbin"
  stop_instance
  rm -f "$dir"/*.log

  host=$(hostname -s)
  cpus=$(nproc)
  [ "$cpus" -ge 16 ] || cpus=16
  mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  mem_mib=$((mem_kb / 1024))
  mem_mib=$((mem_mib - mem_mib / 10 - 256))  # margin: slurmd's own reading is a little lower
  [ "$mem_mib" -ge 256 ] || mem_mib=256

  # Unix sockets (munge, slurmstepd's <spool>/<node>_<job>.<step>) must fit in ~100 bytes, and munged
  # wants every directory above its socket searchable by all (a checkout under a 0700 `mktemp -d` is not).
  rt="$dir/run"
  mkdir -p "$dir"
  if [ $((${#dir} + ${#host} + 40)) -gt 100 ] || ! searchable_by_all "$dir"; then
    rt=$(mktemp -d /tmp/nc-slurm.XXXXXX)
    echo "$rt" >"$dir/instance"
  fi
  mkdir -p "$rt/munge" "$rt/spool" "$dir/state" "$dir/munge"
  chmod 755 "$rt" "$rt/munge"  # munged insists that its socket directory be searchable by all
  chmod 700 "$dir/munge" "$rt/spool" "$dir/state"

  read -r ctld_port d_port < <(free_ports)
  for i in 0 1 2 3; do : >"$dir/fakegpu$i"; done

  # munged: a private key and socket (it refuses group/other-writable directories on these paths).
  head -c 1024 /dev/urandom >"$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
  local sock="$rt/munge/munge.socket"
  if ! munged --socket="$sock" --key-file="$dir/munge/munge.key" --pid-file="$dir/munged.pid" \
      --log-file="$dir/munged.log" --seed-file="$dir/munge/munged.seed" 2>>"$dir/munged.log"; then
    fail_start "munged failed to start"
  fi
  if ! munge -S "$sock" -n </dev/null | unmunge -S "$sock" >/dev/null 2>&1; then
    fail_start "munge -n | unmunge failed on $sock"
  fi

  cat >"$conf" <<EOF
# tools/slurm.sh: private single-node test cluster ($dir)
ClusterName=nctest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$rt/spool
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
GresTypes=gpu
MinJobAge=300
KillWait=5
InactiveLimit=0
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mib Gres=gpu:fake:4 State=UNKNOWN
# A node that never comes up, for tests of jobs placed on a lost node (they pend: ReqNodeNotAvail).
NodeName=nc-down0 NodeAddr=127.0.0.1 Port=9 CPUs=1 RealMemory=100 State=DOWN Reason=never_up
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$dir/gres.conf" <<EOF
NodeName=$host Name=gpu Type=fake File=$dir/fakegpu[0-3]
EOF
  export SLURM_CONF="$conf"

  if ! slurmctld -f "$conf" >>"$dir/slurmctld.log" 2>&1; then
    fail_start "slurmctld failed to start"
  fi
  if ! slurmd -f "$conf" >>"$dir/slurmd.log" 2>&1; then
    fail_start "slurmd failed to start"
  fi

  # Wait until the node is idle (resume it if it came up down/drained) and a GPU job runs.
  local deadline=$((SECONDS + START_TIMEOUT)) state="" resumed=0
  while :; do
    live_pid "$dir/slurmctld.pid" slurmctld >/dev/null || [ $SECONDS -lt 3 ] ||
      fail_start "slurmctld exited"
    state=$(timeout 5 sinfo -h -n "$host" -o %t 2>/dev/null | head -n 1 || true)
    case "$state" in
      idle*) break ;;
      down* | drain* | drng* | inval*)
        if [ $resumed -eq 0 ]; then
          timeout 5 scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
          resumed=1
        fi
        ;;
    esac
    [ $SECONDS -lt $deadline ] || fail_start "node $host not idle after ${START_TIMEOUT}s (sinfo state: '${state:-none}')"
    sleep 0.5
  done
  local left=$((deadline - SECONDS))
  [ $left -ge 10 ] || left=10
  if ! timeout "$left" srun -N1 --gres=gpu:1 -t 1 true >"$dir/srun-check.log" 2>&1; then
    cat "$dir/srun-check.log" >&2
    fail_start "srun -N1 --gres=gpu:1 true failed"
  fi
  rm -f "$dir/srun-check.log"
  printf "export SLURM_CONF='%s'\n" "$conf" >"$dir/env"
  echo "slurm: node $host idle (ctld port $ctld_port, slurmd port $d_port); . $dir/env"
}

case "$cmd" in
  start) start_instance ;;
  stop) export PATH="$PATH:/usr/sbin"; stop_instance ;;
  env)
    [ -f "$dir/env" ] || die "no Slurm running for $dir"
    cat "$dir/env"
    ;;
  *)
    echo "usage: $0 start|stop|env DIR" >&2
    exit 2
    ;;
esac
