#!/usr/bin/env bash
# Start a single-node Slurm (munged, slurmctld, slurmd) from the templates next to this script.
#
#   sudo bash scripts/slurm/start.sh            # then: export SLURM_CONF=/tmp/ptb-slurm/etc/slurm.conf
#
# Everything lives under $PTB_SLURM_DIR (default /tmp/ptb-slurm): rendered config, a private
# munge key and socket, state, logs, pid files. Nothing under /etc is touched, so a site's own
# Slurm/munge (if any) is not disturbed. Ports: $PTB_SLURM_CTLD_PORT (6817), $PTB_SLURMD_PORT (6818).
# Needs root: slurmd must create cgroups and switch to the job owner's uid.
# Prints the SLURM_CONF line to export, and returns once `sinfo` shows the node idle.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DIR=${PTB_SLURM_DIR:-/tmp/ptb-slurm}
CTLD_PORT=${PTB_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${PTB_SLURMD_PORT:-6818}
DEF_MEM_PER_CPU=${PTB_SLURM_DEF_MEM_PER_CPU:-2048}
WAIT_S=${PTB_SLURM_WAIT_S:-60}

die() { echo "slurm/start.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (slurmd creates cgroups and runs jobs as their owner)"
for bin in munged slurmctld slurmd sinfo; do
  command -v "$bin" >/dev/null || die "$bin not found: apt-get install -y slurm-wlm munge"
done

# cgroup flavour: proctrack/cgroup needs the freezer controller on v1, a writable unified
# hierarchy on v2.
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
  CGROUP_PLUGIN=cgroup/v2
else
  CGROUP_PLUGIN=cgroup/v1
  [ -d /sys/fs/cgroup/freezer ] || die "cgroup v1 without the freezer controller: proctrack/cgroup cannot track jobs"
fi

NODE=$(hostname -s)
CPUS=$(nproc --all)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))

mkdir -p "$DIR"/{etc,munge,state/ctld,state/d,run,log}
chmod 700 "$DIR/munge"
if [ ! -s "$DIR/munge/munge.key" ]; then
  head -c 1024 /dev/urandom > "$DIR/munge/munge.key"
fi
chmod 400 "$DIR/munge/munge.key"

render() {
  sed -e "s|@DIR@|$DIR|g" -e "s|@NODE@|$NODE|g" -e "s|@ADDR@|127.0.0.1|g" \
      -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
      -e "s|@USER@|$(id -un)|g" -e "s|@CPUS@|$CPUS|g" -e "s|@MEM_MB@|$MEM_MB|g" \
      -e "s|@DEF_MEM_PER_CPU@|$DEF_MEM_PER_CPU|g" -e "s|@CGROUP_PLUGIN@|$CGROUP_PLUGIN|g" "$1"
}
render "$here/slurm.conf.in" > "$DIR/etc/slurm.conf"
render "$here/cgroup.conf.in" > "$DIR/etc/cgroup.conf"
export SLURM_CONF="$DIR/etc/slurm.conf"

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! alive "$DIR/run/munged.pid"; then
  # --force: munged refuses to run as root otherwise; the key and socket are private to $DIR.
  munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed"
fi
alive "$DIR/run/slurmctld.pid" || slurmctld -f "$SLURM_CONF"
alive "$DIR/run/slurmd.pid" || slurmd -f "$SLURM_CONF"

for _ in $(seq "$WAIT_S"); do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
  if [ "$state" = idle ]; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 1
done
echo "slurm/start.sh: node $NODE not idle after ${WAIT_S}s (state: ${state:-none}); logs:" >&2
tail -n 20 "$DIR"/log/*.log >&2 || true
exit 1
