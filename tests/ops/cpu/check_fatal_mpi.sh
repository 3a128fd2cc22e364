#!/bin/sh
# check_fatal_mpi.sh MPIEXEC EXE - the job must fail (not hang) and print rank 1's message.
out=$("$1" -np 2 "$2" 2>&1)
rc=$?
echo "$out"
[ "$rc" -ne 0 ] || { echo "FAIL: job exited 0"; exit 1; }
echo "$out" | grep -q '\[rank 1/2 [^]]*\] gvrt: gvrt error: deliberate failure on rank 1 of 2' || { echo "FAIL: message missing"; exit 1; }
echo "PASS: job aborted with rc $rc"
