#!/usr/bin/env bash
# run.sh GVC SRC WORK [MODEL] - checkpoint save/load throughput (not a ctest test): a GPT-2
# family model (default gpt2_xl, 1.5 B parameters; gpt2_medium or gpt2_large where memory
# is short: one rank holds parameters, gradients and AdamW's m and v, 16 bytes a parameter)
# trains one step and saves (model + optimizer state: 12 bytes a parameter), then a fresh
# run loads it, on 1 rank and on 2 (ZeRO-3 over dp 2: each rank writes and reads half).
# Beside them, this disk's sequential write (dd, fdatasync) and read (dd, the page cache of
# the file dropped first) in the same run. The loads read files whose page cache was dropped
# (dd iflag=nocache), so they come from the disk as far as the kernel honours that.
# Needs MPI for the 2-rank runs; WORK needs room for one checkpoint and a 2 GiB probe file.
set -u
gvc=$(realpath "$1"); src=$(realpath "$2"); work=$3; model=${4:-gpt2_xl}
mkdir -p "$work" && cd "$work" || exit 1
rm -rf ck_* probe
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
uncache() { for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none; done; }
gbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.2f", b / s / 1e9}'; }

echo "disk: sequential write and read of a 2 GiB file"
w=$( { /usr/bin/time -f %e dd if=/dev/zero of=probe bs=8M count=256 conv=fdatasync status=none; } 2>&1 | tail -1)
uncache probe
r=$( { /usr/bin/time -f %e dd if=probe of=/dev/null bs=8M status=none; } 2>&1 | tail -1)
rm -f probe
echo "  write $(gbps 2147483648 "$w") GB/s, read $(gbps 2147483648 "$r") GB/s"

for n in 1 2; do
  opts=(--num_gpus_per_node "$n"); [ "$n" = 2 ] && opts+=(--default_dp_type zero3)
  "$gvc" compile "$src/models/gpt2.gvm" --model "$model" --seq 32 --micro-batch 1 "${opts[@]}" -o "bench$n" \
    > compile.log 2>&1 || { echo "compile failed: $(tail -3 compile.log)"; exit 1; }
  launch=(); [ "$n" = 2 ] && launch=(mpiexec -n 2)
  [ "$n" = 2 ] && export GV_COMM=mpi || export GV_COMM=self
  args=(--batch_from "$fx" --global_train_batch_size "$n" --quiet)
  "${launch[@]}" "./bench$n" "${args[@]}" --iters 1 --save "ck_$n" > "save$n.log" 2>&1 \
    || { echo "save on $n ranks failed: $(tail -3 save$n.log)"; exit 1; }
  folder=$(ls -d ck_$n/iter_*)
  bytes=$(du -b --apparent-size -c "$folder"/*.safetensors | tail -1 | cut -f1)
  s=$(grep -o "saved checkpoint .*, [0-9.]*s)" "save$n.log" | grep -o "[0-9.]*s)$" | tr -d 's)')
  uncache "$folder"/*.safetensors
  "${launch[@]}" "./bench$n" "${args[@]}" --iters 1 --load "ck_$n" > "load$n.log" 2>&1 \
    || { echo "load on $n ranks failed: $(tail -3 load$n.log)"; exit 1; }
  l=$(grep -o "resuming at step 1 ([0-9.]*s)" "load$n.log" | grep -o "[0-9.]*s)$" | tr -d 's)')
  printf "%s, %d rank(s): checkpoint %.2f GB; save %.1f s = %s GB/s (CRC-32s and fsync included); load %.1f s = %s GB/s\n" \
    "$model" "$n" "$(gbps "$bytes" 1)" "$s" "$(gbps "$bytes" "$s")" "$l" "$(gbps "$bytes" "$l")"
  rm -rf "ck_$n"
done
