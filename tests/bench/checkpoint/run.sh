#!/usr/bin/env bash
# run.sh GVC SRC WORK [MODEL] - checkpoint save/load throughput (not a ctest test): a GPT-2
# family model (default gpt2_xl, 1.5 B parameters) saves its parameters and AdamW state
# (model + optimizer: 12 bytes a parameter in fp32) through the training binary's own
# checkpoint code, then a fresh run loads it, on 1 rank and on 2 (ZeRO-3 over dp 2: each
# rank writes and reads half). The runs train no step (--iters 0: the binary then allocates
# no gradient arena, and --save writes the initial state), so the 1-rank run needs 12 bytes
# a parameter of memory (18.7 GB for gpt2_xl) instead of a training run's 16. Beside them,
# this disk's sequential write (dd, fdatasync) and read in the same run, and each speed as a
# share of the disk's. The read baseline is dd reading the checkpoint's own files (8 MiB
# blocks), and the loads and those reads take turns, LOADS times each (default 3; the
# medians are shown): before each, the page cache of the files is dropped (dd iflag=nocache,
# posix_fadvise DONTNEED; fincore checks that nothing of them is left cached), so both read
# the same bytes from the disk (the loads read long ranges with O_DIRECT, around the page
# cache; dd through it). Run it under `nice -n -20` on a shared machine. RANKS="1"
# (or "2") runs one of the two; a rank count whose memory is not available is skipped,
# saying so. Needs MPI for the 2-rank runs; WORK needs room for one checkpoint and a 2 GiB
# probe.
set -u
gvc=$(realpath "$1"); src=$(realpath "$2"); work=$3; model=${4:-gpt2_xl}
mkdir -p "$work" && cd "$work" || exit 1
rm -rf ck_* probe
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader
# The page cache of files dropped (posix_fadvise DONTNEED through dd); fails saying so if
# fincore finds any of them still cached.
uncache() {
  for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none; done
  if command -v fincore > /dev/null; then
    local left
    left=$(fincore -b -n -o RES "$@" | awk '{s += $1} END {print s + 0}')
    [ "$left" = 0 ] || { echo "the page cache of $* could not be dropped ($left bytes left): the reads would not be the disk's"; exit 1; }
  fi
}
gbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.2f", b / s / 1e9}'; }
median() { sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# This disk's sequential write of a 2 GiB file (dd, fdatasync at the end), measured right
# before and right after each checkpoint's save (the share is of the mean of the two), so
# that both see the same load of a shared machine: sets dw (GB/s).
disk_write() {
  local w
  w=$( { /usr/bin/time -f %e dd if=/dev/zero of=probe bs=8M count=256 conv=fdatasync status=none; } 2>&1 | tail -1)
  rm -f probe
  dw=$(gbps 2147483648 "$w")
}
mean() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (a + b) / 2}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100 * a / b}'; }
# 12 bytes a parameter (fp32 weights, AdamW m and v) must fit beside what is running; on 2
# ranks (ZeRO-3 shards only the blocks) the embedding's are held twice, and a margin for each
# process besides (0.5 GB). fits N: 0, or 1 after saying why not.
info=$("$gvc" info "$src/models/gpt2.gvm" --model "$model" --json 2>/dev/null)
params=$(echo "$info" | grep -o '"params": *[0-9]*' | head -1 | grep -o '[0-9]*$')
embed=$(echo "$info" | grep -o '"name": "embedding", [^}]*"params": [0-9]*' | grep -o '[0-9]*$')
fits() {
  local need=$(( (params + (${1} - 1) * ${embed:-0}) * 12 + ${1} * 500000000 ))
  local avail=$(awk '/MemAvailable/ {printf "%.0f", $2 * 1024}' /proc/meminfo)
  [ "$need" -le "$avail" ] && return 0
  echo "$model on $1 rank(s): needs $((need / 1000000)) MB (12 bytes a parameter, the embedding's on every rank, 0.5 GB a process); $((avail / 1000000)) MB are available: not run"
  return 1
}
for n in ${RANKS:-1 2}; do
  fits "$n" || continue
  disk_write
  opts=(--num_gpus_per_node "$n"); [ "$n" = 2 ] && opts+=(--default_dp_type zero3)
  "$gvc" compile "$src/models/gpt2.gvm" --model "$model" --seq 32 --micro-batch 1 "${opts[@]}" -o "bench$n" \
    > compile.log 2>&1 || { echo "compile failed: $(tail -3 compile.log)"; exit 1; }
  launch=(); [ "$n" = 2 ] && launch=(mpiexec -n 2)
  [ "$n" = 2 ] && export GV_COMM=mpi || export GV_COMM=self
  args=(--data synthetic --global_train_batch_size "$n" --iters 0 --quiet)
  "${launch[@]}" "./bench$n" "${args[@]}" --save "ck_$n" > "save$n.log" 2>&1 \
    || { echo "save on $n ranks failed: $(tail -3 save$n.log)"; exit 1; }
  folder=$(ls -d ck_$n/iter_*)
  bytes=$(du -b --apparent-size -c "$folder"/*.safetensors | tail -1 | cut -f1)
  s=$(grep -o "saved checkpoint .*, [0-9.]*s)" "save$n.log" | grep -o "[0-9.]*s)$" | tr -d 's)')
  w0=$dw; disk_write; echo "disk: sequential write $w0 GB/s before the save, $dw after (2 GiB, dd)"
  dw=$(mean "$w0" "$dw")
  : > "reads$n"; : > "loads$n"
  for k in $(seq "${LOADS:-3}"); do # the disk's read of the same files and the load, in turns
    uncache "$folder"/*.safetensors
    { /usr/bin/time -f %e sh -c 'for f; do dd if="$f" of=/dev/null bs=8M status=none; done' - "$folder"/*.safetensors; } \
      2>&1 | tail -1 >> "reads$n"
    uncache "$folder"/*.safetensors
    "${launch[@]}" "./bench$n" "${args[@]}" --load "ck_$n" > "load$n.log" 2>&1 \
      || { echo "load on $n ranks failed: $(tail -3 load$n.log)"; exit 1; }
    grep -o "resuming at step 0 ([0-9.]*s" "load$n.log" | grep -o "[0-9.]*s$" | tr -d s >> "loads$n"
    echo "read $k: the disk (dd) $(tail -1 "reads$n") s, the load $(tail -1 "loads$n") s"
  done
  r=$(median < "reads$n"); l=$(median < "loads$n"); dr=$(gbps "$bytes" "$r")
  echo "disk: sequential read of the checkpoint's files $dr GB/s (dd, 8 MiB blocks, page cache dropped first; median of ${LOADS:-3})"
  sw=$(gbps "$bytes" "$s"); sr=$(gbps "$bytes" "$l")
  printf "%s, %d rank(s): checkpoint %.2f GB; save %.1f s = %s GB/s (%s of the disk's write; CRC-32s and fsync included); load %.1f s = %s GB/s (%s of its read; median of %d, every CRC-32 checked)\n" \
    "$model" "$n" "$(gbps "$bytes" 1)" "$s" "$sw" "$(pct "$sw" "$dw")" "$l" "$sr" "$(pct "$sr" "$dr")" "${LOADS:-3}"
  rm -rf "ck_$n"
done
