#!/usr/bin/env bash
# run.sh FUZZER SRC WORKDIR SECONDS - a bounded libFuzzer run seeded with the model zoo,
# the stdlib and the golden diagnostics; fails on any crash, leak or sanitizer report.
set -u
fuzzer=$1; src=$2; work=$3; secs=${4:-60}
rm -rf "$work/corpus" && mkdir -p "$work/corpus" "$work/seeds"
cp "$src"/models/*.gvm "$src"/stdlib/*.gvm "$src"/examples/*.gvm "$src"/tests/golden/diag/*.gvm "$work/seeds/"
cd "$work" && "$fuzzer" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=8192 \
  -print_final_stats=1 corpus seeds 2>fuzz.log
rc=$?
tail -15 fuzz.log
[ $rc -eq 0 ] && echo "fuzz: no crash in ${secs}s" || { grep -m5 -E "ERROR|SUMMARY" fuzz.log; echo "fuzz: FAILED"; }
exit $rc
