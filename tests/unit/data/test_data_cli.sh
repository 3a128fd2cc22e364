#!/usr/bin/env bash
# test_data_cli.sh GVC TMP - `gvc data` end to end: text, fortune and JSONL inputs are
# split into the documents docs/data.md promises (checked token by token through
# `--inspect`), a bad input or a corrupt dataset is exit 1 with a message naming the
# file, and nothing is left half-written; sequence-to-sequence pairs (PREFIX_src/_tgt,
# padded per side) read back as training sees them (`--inspect-pairs`), and their errors.
set -u
GVC=$1 T=$2 FIX=$(dirname "$0")/fixtures
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
rm -rf "$T" && mkdir -p "$T"

printf 'hi\n' >"$T/a.txt"
printf 'ab\n%%\ncd\n%%\n' >"$T/b"
printf '{"text": "x"}\n\n{"text": "yz", "id": 3}\n' >"$T/c.jsonl"
printf 'p1\n\n\np2\n' >"$T/d.txt"
"$GVC" data "$T/a.txt" "$T/b" "$T/c.jsonl" -o "$T/out" --append-eod >"$T/log" || fail "gvc data exit $?"
grep -q "5 documents, 17 tokens" "$T/log" || fail "summary: $(cat "$T/log")"
"$GVC" data --inspect "$T/out" --docs 9 >"$T/insp" || fail "inspect exit $?"
want='0 1 4 104 105 10 256
1 1 4 97 98 10 256
2 1 4 99 100 10 256
3 1 2 120 256
4 1 3 121 122 256'
got=$(awk '$1 ~ /^[0-9]+$/ && NF > 3' "$T/insp" | sed 's/  */ /g; s/^ //')
[ "$got" = "$want" ] || fail "documents differ:
$got"
grep -q "dtype      uint16 (code 8)" "$T/insp" || fail "dtype line"
[ -z "$(ls "$T" | grep tmp)" ] || fail "temporary files left"

# GPT samples of the dataset above: 17 tokens, seq 4 -> (17-1)/4 = 4 samples
"$GVC" data --inspect "$T/out" --docs 0 --samples 9 --seq 4 --seed 1 >"$T/smp" || fail "--samples exit $?"
grep -q "samples    4 of 4+1 tokens (seed 1, 1 epoch)" "$T/smp" || fail "--samples header: $(cat "$T/smp")"
[ "$(grep -c '^  [0-9]' "$T/smp")" = 4 ] || fail "--samples: expected 4 sample rows"

"$GVC" data "$T/d.txt" --split para -o "$T/para" --quiet || fail "para exit $?"
"$GVC" data --inspect "$T/para" | grep -q "documents  2" || fail "para: expected 2 documents"

expect_error() {  # expect_error REGEX ARGS... : exit 1 and stderr matching REGEX
  local re=$1; shift
  "$GVC" data "$@" >/dev/null 2>"$T/err"; local rc=$?
  [ $rc -eq 1 ] || fail "gvc data $*: exit $rc, expected 1"
  grep -Eq "$re" "$T/err" || fail "gvc data $*: stderr '$(cat "$T/err")' does not match '$re'"
}
expect_error "bad_magic.idx: field 'magic'" --inspect "$FIX/bad_magic"
expect_error "bad_version.idx: field 'version' is 2" --inspect "$FIX/bad_version"
expect_error "bad_dtype.idx: field 'dtype' has unknown code 9" --inspect "$FIX/bad_dtype"
expect_error "truncated.idx: truncated" --inspect "$FIX/truncated"
expect_error "bad_count.idx: field 'sequence_count'" --inspect "$FIX/bad_count"
expect_error "bad_pointer.idx: field 'sequence_pointers\[4\]'.*bad_pointer.bin" --inspect "$FIX/bad_pointer"
expect_error "bad_docidx.idx: field 'document_indices\[2\]'" --inspect "$FIX/bad_docidx"
expect_error "nothere.idx: cannot open" --inspect "$T/nothere"
printf '{"text": "ok"}\n{"text": 5}\n' >"$T/bad.jsonl"
expect_error "bad.jsonl:2: no string field" "$T/bad.jsonl" -o "$T/bad"
printf 'not json\n' >"$T/bad2.jsonl"
expect_error "bad2.jsonl:1: not valid JSON" "$T/bad2.jsonl" -o "$T/bad"
expect_error "missing.txt: cannot read" "$T/missing.txt" -o "$T/bad"
[ -z "$(ls "$T" | grep '^bad\.\(bin\|idx\)')" ] || fail "a failed build left files"
expect_error "unknown option '--frobnicate'" --frobnicate x
expect_error "out: split \"2,x\" index 0: expected up to 3" --inspect "$T/out" --samples 1 --split-weights 2,x
expect_error "out: split 0 of \"1\" \(sequences 0..5\) has 17 tokens, fewer than seq\+1 = 65" --inspect "$T/out" --samples 1
expect_error "gpt2: cannot read tokenizer" "$T/a.txt" -o "$T/x" --tokenizer gpt2
printf '{"model": {"type": "WordPiece"}, "pre_tokenizer": {"type": "ByteLevel"}}' >"$T/wp.json"
expect_error "wp.json: field 'model.type' is not \"BPE\"" "$T/a.txt" -o "$T/x" --tokenizer "$T/wp.json"
printf '{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}' >"$T/ws.json"
expect_error "ws.json: field 'pre_tokenizer' is not ByteLevel" "$T/a.txt" -o "$T/x" --tokenizer "$T/ws.json"
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}}' >"$T/nb.json"
expect_error "nb.json: field 'model.merges': merge 0 'a b': the right part is not in the vocabulary" "$T/a.txt" -o "$T/x" --tokenizer "$T/nb.json"
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}' >"$T/ne.json"
expect_error "ne.json: --append-eod, but the tokenizer has no <\|endoftext\|> token" "$T/a.txt" -o "$T/x" --tokenizer "$T/ne.json" --append-eod
expect_error "no symbol for byte" "$T/a.txt" -o "$T/x" --tokenizer "$T/ne.json"
expect_error "no output" "$T/a.txt"
"$GVC" data --help | grep -q "usage: gvc data" || fail "--help"

# sequence-to-sequence pairs: each side padded to its length; the decoder's input is the
# target shifted right behind the start token (the pad id), the labels the target with pads -1
printf '{"src": "hello", "tgt": "hi"}\n\n{"src": "ab", "tgt": "xyz", "n": 1}\n' >"$T/p.jsonl"
"$GVC" data "$T/p.jsonl" -o "$T/p" --src-key src --tgt-key tgt --encoder-seq-length 8 --tgt-seq 5 --append-eod \
  >"$T/log" || fail "pairs: exit $?"
grep -q "2 pairs of 8 + 5 tokens" "$T/log" || fail "pairs summary: $(cat "$T/log")"
"$GVC" data --inspect-pairs "$T/p" >"$T/insp" || fail "--inspect-pairs exit $?"
want='source 104 101 108 108 111 256 0 0
decoder 0 104 105 256 0
labels 104 105 256 -1 -1
source 97 98 256 0 0 0 0 0
decoder 0 120 121 122 256
labels 120 121 122 256 -1'
got=$(grep -E '^    (source|decoder|labels)' "$T/insp" | sed 's/  */ /g; s/^ //')
[ "$got" = "$want" ] || fail "pairs differ:
$got"
"$GVC" data "$T/p.jsonl" -o "$T/pt" --src_key src --tgt_key tgt --src-seq 3 --decoder-seq-length 2 --truncate --quiet ||
  fail "--truncate exit $?"
"$GVC" data --inspect-pairs "$T/pt" | grep -q "lengths    source 3, target 2" || fail "--truncate lengths"
expect_error "p.jsonl:1: the source has 5 tokens, more than --src-seq 4 \(--truncate cuts it\)" "$T/p.jsonl" -o "$T/bad" \
  --src-key src --tgt-key tgt --src-seq 4 --tgt-seq 5
expect_error "p.jsonl:3: the target has 3 tokens, more than --tgt-seq 2" "$T/p.jsonl" -o "$T/bad" --src-key src \
  --tgt-key tgt --src-seq 8 --tgt-seq 2
expect_error "p.jsonl:1: no string field 'dst' \(--tgt-key\)" "$T/p.jsonl" -o "$T/bad" --src-key src --tgt-key dst \
  --src-seq 8 --tgt-seq 8
expect_error "p.jsonl:1: the source holds the pad id 108 as token 2" "$T/p.jsonl" -o "$T/bad" --src-key src \
  --tgt-key tgt --src-seq 8 --tgt-seq 8 --pad-id 108
printf '{"src": "", "tgt": "a"}\n' >"$T/empty.jsonl"
expect_error "empty.jsonl:1: the source is empty" "$T/empty.jsonl" -o "$T/bad" --src-key src --tgt-key tgt \
  --src-seq 8 --tgt-seq 8
expect_error "needs --src-seq and --tgt-seq" "$T/p.jsonl" -o "$T/bad" --src-key src --tgt-key tgt --src-seq 8
expect_error "needs both --src-key and --tgt-key" "$T/p.jsonl" -o "$T/bad" --src-key src
[ -z "$(ls "$T" | grep '^bad_')" ] || fail "a failed pair build left files"
printf '{"src": "a", "tgt": "b"}\n' >"$T/one.jsonl"
"$GVC" data "$T/one.jsonl" -o "$T/one" --src-key src --tgt-key tgt --src-seq 8 --tgt-seq 5 --quiet || fail "one pair"
cp "$T/one_tgt.bin" "$T/p_tgt.bin" && cp "$T/one_tgt.idx" "$T/p_tgt.idx"
expect_error "p_src.idx has 2 records and .*p_tgt.idx 1: the two sides" --inspect-pairs "$T/p"
cp "$T/out.bin" "$T/p_src.bin" && cp "$T/out.idx" "$T/p_src.idx"
expect_error "p_src.idx: record 3 has 2 tokens, record 0 4: the records of a pair dataset.s side are padded" --inspect-pairs "$T/p"

[ $fails -eq 0 ] && echo "test_data_cli: ok" || echo "test_data_cli: $fails failures"
exit $((fails > 0))
