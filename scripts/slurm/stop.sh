#!/usr/bin/env bash
# Stop the single-node Slurm started by start.sh (slurmd, slurmctld, munged), by their pid files.
set -uo pipefail
DIR=${PTB_SLURM_DIR:-/tmp/ptb-slurm}
for name in slurmd slurmctld munged; do
  pidfile="$DIR/run/$name.pid"
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
done
exit 0
