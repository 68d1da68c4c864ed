#!/usr/bin/env bash
# .ci/slurm_up.sh - single-node SLURM 22.05 "cluster" on this machine (Debian 12, root, no systemd),
# for tests/test_slurm.py and for developers (docs/DEVELOPERS.md). Stop it with .ci/slurm_down.sh.
# Adapted from the project's shared local_slurm.sh: partitions are named as in profiles/slurm
# (cpu = default, gpu), plus debug for compatibility.
# Idempotent: installs what is missing, (re)writes configs, starts only daemons not already running,
# restarts slurmctld/slurmd if slurm.conf/gres.conf changed, waits until `sinfo` shows the node idle.
#
# Env knobs:
#   LOCAL_SLURM_ACCOUNTING=slurmdbd (default: mariadb + slurmdbd, so `sacct` works, which is the
#                                    snakemake slurm plugin's default status command)
#                        | none     (no DB; then run snakemake with --slurm-status-command squeue)
#   LOCAL_SLURM_FAKE_GPUS=2   number of fake GPUs (char devices aliasing /dev/null; 0 = none).
#                             Lets rules with resources gpu=/gres=/gpu_model= be scheduled, and
#                             sets CUDA_VISIBLE_DEVICES in jobs. No real GPU behind them.
#   LOCAL_SLURM_STATE=/var/lib/local-slurm   where fake-GPU device nodes live
#   LOCAL_SLURM_WAIT=90       seconds to wait for the node to become idle
set -euo pipefail

ACCT=${LOCAL_SLURM_ACCOUNTING:-slurmdbd}
NGPU=${LOCAL_SLURM_FAKE_GPUS:-2}
STATE=${LOCAL_SLURM_STATE:-/var/lib/local-slurm}
WAIT=${LOCAL_SLURM_WAIT:-90}
CLUSTER=localcluster
DBPASS=slurmdbpass
log() { printf '[local_slurm %(%T)T] %s\n' -1 "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }

# ---------- 1. packages ----------
pkgs=(munge slurmctld slurmd slurm-client)
[ "$ACCT" = slurmdbd ] && pkgs+=(slurmdbd mariadb-server)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------- helpers ----------
pid_alive() { # pidfile comm-prefix
  local f=$1 c=$2 p
  [ -s "$f" ] || return 1
  p=$(cat "$f" 2>/dev/null) || return 1
  [ -n "$p" ] && [ -d "/proc/$p" ] && grep -q "^$c" "/proc/$p/comm" 2>/dev/null
}
wait_for() { # seconds description command...
  local n=$1 what=$2; shift 2
  local end=$((SECONDS + n))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $end ] && { log "timeout waiting for $what"; return 1; }
    sleep 0.5
  done
}
write_if_changed() { # path mode ; content on stdin ; returns 0 if changed
  local dst=$1 mode=$2 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$dst" ] && cmp -s "$tmp" "$dst"; then rm -f "$tmp"; return 1; fi
  install -m "$mode" "$tmp" "$dst"; rm -f "$tmp"; return 0
}

HOST=$(hostname -s)
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >>/etc/hosts
NCPU=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)   # nproc honours OMP_NUM_THREADS: ignore it
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
MEM=$(( MEM > 2048 ? MEM - 1024 : MEM ))   # leave headroom so the node is never INVALID

# ---------- 2. munge ----------
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating munge key"
  mungekey --create --keyfile=/etc/munge/munge.key --force
fi
chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
if ! pid_alive /run/munge/munged.pid munged; then
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged --force
  wait_for 20 munged bash -c 'munge -n | unmunge'
fi

# ---------- 3. mariadb + slurmdbd ----------
if [ "$ACCT" = slurmdbd ]; then
  write_if_changed /etc/mysql/mariadb.conf.d/99-slurmdbd.cnf 0644 <<'EOF' || true
[mysqld]
skip-networking
innodb_buffer_pool_size=256M
innodb_log_file_size=64M
innodb_lock_wait_timeout=900
max_allowed_packet=16M
EOF
  install -d -o mysql -g mysql /run/mysqld /var/log/mysql
  if [ ! -d /var/lib/mysql/mysql ]; then
    log "initialising mariadb datadir"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  if ! pid_alive /run/mysqld/mysqld.pid mariadbd; then
    log "starting mariadbd (unix socket only)"
    setsid -f /usr/sbin/mariadbd --user=mysql --log-error=/var/log/mysql/error.log </dev/null >/dev/null 2>&1
    wait_for 60 mariadbd mariadb-admin --protocol=socket ping
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
              CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  install -d /run/slurm /var/log/slurm
  write_if_changed /etc/slurm/slurmdbd.conf 0600 <<EOF || true
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
EOF
  if ! pid_alive /run/slurm/slurmdbd.pid slurmdbd; then
    log "starting slurmdbd"
    /usr/sbin/slurmdbd
    # slurmdbd answers on 6819 once it is up; probe with bash's /dev/tcp
    wait_for 60 slurmdbd bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819'
  fi
  ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10"
else
  ACCT_LINES="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

# ---------- 4. slurm.conf / gres.conf ----------
GRES_NODE="" GRES_TYPES=""
if [ "$NGPU" -gt 0 ]; then
  install -d "$STATE/fakegpu"
  for ((i = 0; i < NGPU; i++)); do
    [ -c "$STATE/fakegpu/nvidia$i" ] || mknod "$STATE/fakegpu/nvidia$i" c 1 3   # same major/minor as /dev/null
  done
  GRES_NODE="Gres=gpu:fake:$NGPU"
  GRES_TYPES="GresTypes=gpu"
fi
install -d /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
changed=0
write_if_changed /etc/slurm/slurm.conf 0644 <<EOF && changed=1 || true
# generated by local_slurm.sh
ClusterName=$CLUSTER
SlurmctldHost=$HOST
AuthType=auth/munge
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# no cgroups: this VM has a hybrid cgroup v1 tree that slurm's cgroup plugins don't need
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=300
MailProg=/bin/true
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
$ACCT_LINES
JobCompType=jobcomp/none
$GRES_TYPES
NodeName=$HOST CPUs=$NCPU RealMemory=$MEM $GRES_NODE State=UNKNOWN
# partition names match profiles/slurm/config.yaml (slurm_partition: cpu / gpu)
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=debug Nodes=ALL Default=NO MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL Default=NO MaxTime=INFINITE State=UP
EOF
if [ "$NGPU" -gt 0 ]; then
  write_if_changed /etc/slurm/gres.conf 0644 <<EOF && changed=1 || true
AutoDetect=off
NodeName=$HOST Name=gpu Type=fake File=$STATE/fakegpu/nvidia[0-$((NGPU - 1))]
EOF
else
  [ -f /etc/slurm/gres.conf ] && { rm -f /etc/slurm/gres.conf; changed=1; }
fi

# ---------- 5. accounting objects (cluster/account/user) ----------
if [ "$ACCT" = slurmdbd ]; then
  sacctmgr -n list cluster format=cluster%40 | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  sacctmgr -n list account format=account%40 | grep -qw genoattn ||
    sacctmgr -i add account genoattn Description=local Organization=local >/dev/null
  sacctmgr -n -s list user root format=account%40 | grep -qw genoattn ||
    sacctmgr -i add user root Account=genoattn DefaultAccount=genoattn >/dev/null
fi

# ---------- 6. slurmctld + slurmd ----------
if [ $changed = 1 ]; then
  for d in slurmd slurmctld; do
    if pid_alive /run/slurm/$d.pid $d; then
      log "config changed: stopping $d"; kill "$(cat /run/slurm/$d.pid)"
      wait_for 30 "$d exit" bash -c "! kill -0 $(cat /run/slurm/$d.pid) 2>/dev/null"
    fi
  done
fi
if ! pid_alive /run/slurm/slurmctld.pid slurmctld; then
  log "starting slurmctld"; /usr/sbin/slurmctld
  wait_for 30 slurmctld scontrol ping
fi
if ! pid_alive /run/slurm/slurmd.pid slurmd; then
  log "starting slurmd"; /usr/sbin/slurmd
fi

# ---------- 7. wait for the node ----------
end=$((SECONDS + WAIT))
while :; do
  st=$(sinfo -h -N -n "$HOST" -o %t 2>/dev/null | head -1 || true)
  case "$st" in
    idle) break ;;
    mix | alloc) break ;;   # running jobs from an earlier start: node is up
    *drain* | drng | down* | inval* | fail*)
      scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
  esac
  [ $SECONDS -ge $end ] && { log "node state '$st' after ${WAIT}s"; sinfo; exit 1; }
  sleep 1
done
log "ready: accounting=$ACCT fake_gpus=$NGPU"
sinfo -o "%P %a %l %D %t %N %G"
