#!/usr/bin/env bash
# run.sh GVC SRC MPIEXEC WORK - vocabulary sequence parallelism (vsp: the embedding, final
# norm, LM head and loss on each rank's token rows of the tp group, whole weights): the tiny
# GPT (tied embeddings, learned positions) and the tiny LLaMA (rope, RMSNorm) reproduce the
# single rank's losses to 1e-5 relative with the next layers under Megatron tp, sequence
# parallelism and Ulysses, with pipelines, data parallelism and ZeRO-2/3, and micro-batches
# of one sample (each rank then holds half of its sequence); so does a Galvatron strategy
# file with vsp = 1 (Megatron and Ulysses blocks, checkpointing) and one whose vocabulary
# degree is above the blocks' tp degree; with per-layer tp degrees, or token rows the tp
# group does not divide, vsp is noted and runs the vocabulary layers replicated.
. "$(dirname "$0")/../e2e_lib.sh"
dir="$src/tests/e2e/vsp"
for model in tiny_gpt tiny_llama; do
  fx="$src/tests/reference/fixtures/$model.bin"
  args="--init_from $fx --batch_from $fx --iters 6 --warmup 2 --min_lr 1e-4 --global_train_batch_size 2"
  mx_single "$src/examples/tiny.gvm" "$model"
  v="--vocab_tp 2 --vocab_sp 1"
  mx_run "${model}_tp2" 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 $v
  mx_run "${model}_tp2_sp" 2 --micro-batch 1 --chunks 2 --num_gpus_per_node 2 --global_tp_deg 2 --sequence_parallel 1 $v
  mx_run "${model}_ulysses2" 2 --micro-batch 2 --num_gpus_per_node 2 --global_tp_deg 2 --use_ulysses 1 $v
  mx_run "${model}_pp2_tp2" 4 --micro-batch 1 --chunks 2 --num_gpus_per_node 4 --pp_deg 2 --global_tp_deg 2 $v
  mx_run "${model}_tp2_dp2_zero2" 4 --micro-batch 1 --num_gpus_per_node 4 --global_tp_deg 2 --default_dp_type zero2 $v
  mx_run "${model}_tp2_dp2_zero3" 4 --micro-batch 1 --num_gpus_per_node 4 --global_tp_deg 2 --default_dp_type zero3 $v
  # Galvatron's file: layer 0 Megatron tp 2, layer 1 Ulysses 2 and checkpointed, vsp = 1
  mx_run "${model}_config" 2 --num_gpus_per_node 2 --galvatron_config_path "$dir/tiny_tp2_vsp2.json"
done
# the schedule: the ids sliced, the positions of the rows, the loss summed over the group,
# the head's input sliced and its gradient gathered back into a Megatron block
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 --num_gpus_per_node 2 \
  --global_tp_deg 2 --vocab_tp 2 --vocab_sp 1 --dump schedule,strategy -o /dev/null > sched.txt 2>&1
for want in "vsp: my token rows of the ids" "gen_sp_pos_embedding_fwd" "gen_sp_pos_embedding_bwd" \
            "vsp: the loss summed over the tp group" "sp: all-gather the gradient rows" "^head .* split (vsp)"; do
  grep -q "$want" sched.txt && ok || bad "schedule without '$want'"
done
# a vocabulary degree above the blocks' (vsp 2, blocks tp 1): every rank its own samples,
# the same numbers and the same tokens per rank as Galvatron's vocabulary group of 2
sed -e 's/"tp_sizes_enc": "2,2"/"tp_sizes_enc": "1,1"/' -e 's/"use_sp": "0,1"/"use_sp": "0,0"/' -e 's/"chunks": 2/"chunks": 1/' \
  "$dir/tiny_tp2_vsp2.json" > tp1.json
fx="$src/tests/reference/fixtures/tiny_gpt.bin"
args="--init_from $fx --batch_from $fx --iters 6 --warmup 2 --min_lr 1e-4 --global_train_batch_size 2"
mx_single "$src/examples/tiny.gvm" tiny_gpt
mx_run vsp_above_tp 2 --num_gpus_per_node 2 --galvatron_config_path tp1.json
# per-layer tp degrees (2 then 1) with vsp: the vocabulary layers replicated over the group, noted
sed -e 's/"tp_sizes_enc": "1,1"/"tp_sizes_enc": "2,1"/' tp1.json > ltp.json
mx_run vsp_per_layer_tp 2 --num_gpus_per_node 2 --galvatron_config_path ltp.json
grep -q "note: vsp 2: the embedding and head run replicated over their tp group of 2, with per-layer tp degrees" compile.log && ok \
  || bad "no note for vsp with per-layer tp: $(cat compile.log)"
# sampling by whole forwards: the last position's logits row is on one rank of the group,
# which picks and broadcasts; the greedy ids are one rank's (the tiny GPT's single program)
for i in $(seq 40); do printf 'fortune number %d: the quick brown fox jumps over the lazy dog\n%%\n' $i; done > fort.txt
"$gvc" data fort.txt -o fort >/dev/null 2>&1 || bad "gvc data"
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 --num_gpus_per_node 2 \
  --global_tp_deg 2 --vocab_tp 2 --vocab_sp 1 -o gen_vsp 2>/dev/null || bad "compile gen_vsp"
gen="--init_from $src/tests/reference/fixtures/tiny_gpt.bin --data fort --iters 0 --sample 24 --sample_format ids"
one=$(GV_COMM=self ./single $gen 2>&1 | grep "^sample_ids>")
two=$("$mpiexec" -n 2 ./gen_vsp $gen 2>&1 </dev/null | grep "^sample_ids>")
[ -n "$one" ] && [ "$one" = "$two" ] && ok || bad "vsp greedy ids: '$two', one rank: '$one'"
# ... and without vsp every rank of the tp group still picks (the same row, the same token)
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 32 --micro-batch 1 --num_gpus_per_node 2 \
  --global_tp_deg 2 -o gen_tp 2>/dev/null || bad "compile gen_tp"
two=$("$mpiexec" -n 2 ./gen_tp $gen 2>&1 </dev/null | grep "^sample_ids>")
[ "$one" = "$two" ] && ok || bad "tp greedy ids: '$two', one rank: '$one'"
# token rows the tp group does not divide (seq 15, micro-batch 1, tp 2): replicated, noted
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 15 --micro-batch 1 -o single15 2>/dev/null
GV_COMM=self ./single15 $args 2>&1 | losses > single15.txt
"$gvc" compile "$src/examples/tiny.gvm" --model tiny_gpt --seq 15 --micro-batch 1 --num_gpus_per_node 2 \
  --global_tp_deg 2 --vocab_tp 2 --vocab_sp 1 -o rows15 2> rows15.log || bad "compile rows15: $(cat rows15.log)"
grep -q "note: vsp 2: .* the micro-batch's 15 token rows are not divisible by it" rows15.log && ok \
  || bad "no note for rows the group does not divide: $(cat rows15.log)"
"$mpiexec" -n 2 ./rows15 $args 2>&1 | losses > rows15.txt
close single15.txt rows15.txt 7 && ok || { bad "rows15: losses differ from one rank"; paste single15.txt rows15.txt; }
finish
