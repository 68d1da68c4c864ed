#!/usr/bin/env bash
# .ci/slurm_down.sh - stop the daemons started by .ci/slurm_up.sh, each by the PID in its pidfile.
#   --purge   also delete slurm state, the accounting DB and logs (next start is from scratch)
set -uo pipefail
log() { printf '[local_slurm_down %(%T)T] %s\n' -1 "$*" >&2; }
stop() { # pidfile comm-prefix
  local f=$1 c=$2 p
  [ -s "$f" ] || return 0
  p=$(cat "$f")
  if [ -d "/proc/$p" ] && grep -q "^$c" "/proc/$p/comm" 2>/dev/null; then
    log "stopping $c (pid $p)"; kill "$p"
    for _ in $(seq 1 60); do [ -d "/proc/$p" ] || break; sleep 0.5; done
    [ -d "/proc/$p" ] && { log "$c still alive, SIGKILL"; kill -9 "$p"; }
  fi
  rm -f "$f"
}
# cancel queued/running jobs first so slurmd's job steps don't linger
command -v scancel >/dev/null && scontrol ping >/dev/null 2>&1 && scancel --state=PENDING,RUNNING -u root 2>/dev/null
stop /run/slurm/slurmd.pid slurmd
stop /run/slurm/slurmctld.pid slurmctld
stop /run/slurm/slurmdbd.pid slurmdbd
if [ "${1:-}" = --purge ] && mariadb-admin --protocol=socket ping >/dev/null 2>&1; then
  log "dropping slurm_acct_db"; mariadb -e "DROP DATABASE IF EXISTS slurm_acct_db"
fi
stop /run/mysqld/mysqld.pid mariadbd
stop /run/munge/munged.pid munged
if [ "${1:-}" = --purge ]; then
  log "purging state"
  rm -rf /var/spool/slurmctld/* /var/spool/slurmd/* /var/log/slurm/*.log
fi
log "down"
