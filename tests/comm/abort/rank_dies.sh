#!/usr/bin/env bash
# rank_dies.sh MPIEXEC BINARY - a killed rank must end the whole job, non-zero, in < 20 s.
set -u
start=$(date +%s)
timeout 60 "$1" -n 3 "$2" >/dev/null 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
echo "mpirun exit code $rc after ${elapsed}s"
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then echo "FAIL: the job did not end with an error"; exit 1; fi
if [ "$elapsed" -ge 20 ]; then echo "FAIL: took ${elapsed}s to end"; exit 1; fi
echo "ok: the job ended by itself"
