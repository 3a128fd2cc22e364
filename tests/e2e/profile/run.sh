#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - `gvc profile hardware` on 2 CPU ranks with small sizes:
# Galvatron's four files (and gvc's own) appear, with exactly the keys Galvatron's
# profiler writes for this world (the rule is first checked against the shipped files of
# 4, 8 and 16 GPUs), gvc's readers take them (gvc search and gvc cost on the directory),
# the summary table is printed and written, and an interrupted run leaves no JSON.
. "$(dirname "$0")/../e2e_lib.sh"
rm -rf hw hw2 hw3 plan.json plan.txt
H=$src/tests/data/galvatron/hardware L=$src/tests/data/galvatron/llama2-7b
keys() { grep -o '"[^"]*":' "$1" | tr -d '":' | sort; }
# Galvatron's key sets: all-reduce groups N..2 (N consecutive only), pipelines 2..min(N, max_pp),
# sp_time groups min(N, max_tp)..2 at 1..max_mb MB for all-reduce and all-to-all
want_allreduce() { for ((k = $1; k >= 2; k /= 2)); do echo "allreduce_size_${k}_consec_1"; [ "$k" -lt "$1" ] && echo "allreduce_size_${k}_consec_0"; done | sort; }
want_p2p() { for ((p = 2; p <= $1 && p <= $2; p *= 2)); do echo "pp_size_$p"; done | sort; }
want_sp() { for op in allreduce all2all; do for ((k = $1; k >= 2; k /= 2)); do for ((s = 1; s <= $2; s *= 2)); do
  echo "${op}_size_${k}_${s}MB_time"; done; done; done | sort; }
same() { diff <(keys "$1") <(cat) > /dev/null; }
for n in 1:4 1:8 2:8; do
  IFS=: read -r nodes g <<< "$n"; N=$((nodes * g)); f="${nodes}nodes_${g}gpus_per_node.json"
  want_allreduce $N | same "$H/allreduce_bandwidth_$f" && ok || bad "key rule vs shipped allreduce_bandwidth_$f"
  want_p2p $N 16 | same "$H/p2p_bandwidth_$f" && ok || bad "key rule vs shipped p2p_bandwidth_$f"
done
want_sp 8 1024 | same "$H/sp_time_1nodes_8gpus_per_node.json" && ok || bad "key rule vs shipped sp_time"
echo overlap_coe | same "$H/overlap_coefficient.json" && ok || bad "key rule vs shipped overlap_coefficient"

P="--num_nodes 1 --num_gpus_per_node 2 --start_mb 1 --end_mb 2 --sp_max_mb 128 --warmup 0 --repeats 3 --overlap_ms 20"
"$gvc" profile hardware --help | grep -q "usage: mpirun -n WORLD gvc profile hardware" && ok || bad "--help"
"$mpiexec" -n 2 "$gvc" profile hardware $P -o hw > out.txt 2> err.txt && ok || { bad "profile runs"; cat err.txt; }
f=1nodes_2gpus_per_node.json
want_allreduce 2 | same "hw/allreduce_bandwidth_$f" && ok || bad "allreduce_bandwidth keys"
want_p2p 2 8 | same "hw/p2p_bandwidth_$f" && ok || bad "p2p_bandwidth keys"
want_sp 2 128 | same "hw/sp_time_$f" && ok || bad "sp_time keys"
echo overlap_coe | same hw/overlap_coefficient.json && ok || bad "overlap_coefficient keys"
grep -q '"allgather_size_2_consec_1"' "hw/gvc_hardware_$f" && grep -q '"reducescatter_size_2_consec_1"' "hw/gvc_hardware_$f" \
  && ok || bad "ZeRO bandwidths in gvc_hardware_$f"
awk -F': ' '/"overlap_coe"/ {exit !($2 + 0 >= 1)}' hw/overlap_coefficient.json && ok || bad "overlap_coe >= 1"
! grep -h '": ' hw/*.json | grep -v '"device"\|"backend"' | grep -q -- '-\|nan\|inf' && ok || bad "a negative or non-finite value"
grep -q "^bus bandwidth" out.txt && grep -q "^sp_time" out.txt && cmp -s <(grep -v "^written:" out.txt | sed '$d') \
  hw/hardware_1nodes_2gpus_per_node.txt && ok || bad "summary table printed and written"
tr '\r' '\n' < err.txt | grep -q "ETA" && ok || bad "progress line"
[ -z "$(ls hw | grep -v '\.json$\|\.txt$')" ] && ok || bad "temporary files left"

# gvc's readers: the directory goes to every hardware path of gvc search and gvc cost
M="$src/models/llama.gvm --model llama2_7b --num_nodes 1 --num_gpus_per_node 2 --memory_constraint 80 --seq_length 2048
   --time_profiling_path $L --memory_profiling_path $L --allreduce_bandwidth_config_path hw --p2p_bandwidth_config_path hw
   --overlap_coe_path hw --sp_time_path hw --settle_bsz 8 --quiet"
"$gvc" search $M -o plan.json > search.out 2>&1 && grep -q "iteration time" search.out && ok || { bad "gvc search on the directory"; cat search.out; }
"$gvc" cost $M --strategy plan.json 2>&1 | grep -q "iteration time" && ok || bad "gvc cost on the directory"

# interrupted: the files of an earlier run stay whole, and no JSON is half-written
mkdir hw2 && cp hw/*.json hw2/
"$mpiexec" -n 2 "$gvc" profile hardware $P --overlap_ms 4000 -o hw2 > /dev/null 2>&1 &
pid=$!
sleep 2
kill "$pid" && ok || bad "the run ended before it could be interrupted"
wait "$pid" 2>/dev/null
for j in hw/*.json; do cmp -s "$j" "hw2/${j#hw/}" || bad "interrupted run changed ${j#hw/}"; done
[ "$(ls hw2 | wc -l)" -eq "$(ls hw/*.json | wc -l)" ] && ok || bad "an interrupted run left files: $(ls hw2)"
"$mpiexec" -n 1 "$gvc" profile hardware $P -o hw3 2>&1 | grep -q "mpirun -n 2 gvc profile hardware" && ok || bad "world size message"
finish
