#!/usr/bin/env bash
# self_contained.sh SRC - fails when a tracked file refers to the folder beside the clone (a user's clone has
# nothing beside it), or when the Galvatron data the tests read is missing or unlabelled.
set -u
src=$1
cd "$src" || exit 1
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "skip: $src is not a git work tree"; exit 77
fi
pattern='\.\.''/shared'
if hits=$(git grep -n -E "$pattern" -- . 2>/dev/null); then
  echo "error: tracked files refer to a folder outside the repository:"; echo "$hits"; exit 1
fi
for f in tests/data/galvatron/SOURCE tests/data/galvatron/hardware/allreduce_bandwidth_1nodes_8gpus_per_node.json \
         tests/data/galvatron/golden/golden_costs_1x8_static_seq2048.json; do
  git ls-files --error-unmatch "$f" >/dev/null 2>&1 || { echo "error: $f is not tracked"; exit 1; }
done
grep -q "Apache" tests/data/galvatron/SOURCE || { echo "error: tests/data/galvatron/SOURCE names no license"; exit 1; }
echo "1 passed, 0 failed"
