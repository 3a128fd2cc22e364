#!/usr/bin/env python3
"""megatron_bpe_tokenizer.py - a small GPT-2-style byte-level BPE tokenizer and its
encodings, independent of gvc's C code, for testing `gvc data --tokenizer tokenizer.json`
(Megatron's preprocess_data.py with a HF GPT-2 tokenizer). It

  1. trains a tiny BPE (most frequent pair first, ties broken by the pair's text) over
     GPT-2's pre-tokenized pieces of a sample text,
  2. writes it as a Hugging Face tokenizer.json (model BPE + ByteLevel pre-tokenizer,
     <|endoftext|> as an added token),
  3. encodes test documents with the algorithm of OpenAI's gpt-2 encoder.py (bpe():
     merge the lowest-ranked adjacent pair until none applies) and writes the expected
     token listing (the megatron_writer.py .txt format) with EOD appended.

The pattern uses Python's re: `[^\\W\\d_]` for \\p{L} and `\\d` for \\p{N}, identical on the
test texts (ASCII plus Latin-1 letters and General Punctuation).
Usage: /usr/bin/python3 tests/reference/megatron_bpe_tokenizer.py OUT_DIR
"""
import collections
import json
import os
import re
import sys

PAT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")

TRAIN = """The quick brown fox jumps over the lazy dog. It's the dog's day, isn't it?
We'll see: the the the thing that then there these those them, they're here.
Numbers 1234 and 56789; 2024-11-24. Don't panic!!! ... ok ok ok
    indented line   with   spaces\t\ttabs
café naïve über — “quotes” and ‘single’ quotes ... snake_case_names __init__
"""

DOCS = [
    "The quick brown fox jumps over the lazy dog.",
    "It's the dog's day, isn't it? They're here, we'll see, I'm sure, you'd say, I've been.",
    "Numbers 1234 and 56789;   three spaces   and trailing   ",
    "line one\nline two\n\n\nafter blank lines\n    indented\ttab\t\tend\n",
    "café naïve über — “quotes” and ‘single’ quotes ... snake_case __init__ x'y '' 'S",
    "  leading spaces, !!!punct??? ok",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs])), bs


def pieces(text, b2u):
    return ["".join(b2u[b] for b in p.encode("utf-8")) for p in PAT.findall(text)]


def train(text, b2u, nmerges):
    words = collections.Counter(tuple(p) for p in pieces(text, b2u))
    merges = []
    for _ in range(nmerges):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        new = collections.Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] += c
        words = new
    return merges


def bpe(token, ranks):
    """OpenAI gpt-2 encoder.py Encoder.bpe, returning symbols."""
    word = tuple(token)
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        bigram = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        new_word, i = [], 0
        while i < len(word):
            try:
                j = word.index(first, i)
                new_word.extend(word[i:j])
                i = j
            except ValueError:
                new_word.extend(word[i:])
                break
            if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                new_word.append(first + second)
                i += 2
            else:
                new_word.append(word[i])
                i += 1
        word = tuple(new_word)
    return word


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    b2u, order = bytes_to_unicode()
    merges = train(TRAIN, b2u, 120)
    vocab = {b2u[b]: i for i, b in enumerate(order)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    eod = len(vocab)
    tok = {
        "version": "1.0",
        "added_tokens": [{"id": eod, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": True, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "fuse_unk": False,
                  "vocab": vocab, "merges": ["%s %s" % m for m in merges]},
    }
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    ranks = {m: i for i, m in enumerate(merges)}
    with open(os.path.join(out, "docs.jsonl"), "w", encoding="utf-8") as f:
        for d in DOCS:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "expected.txt"), "w") as f:
        f.write("docs %d seqs %d\n" % (len(DOCS), len(DOCS)))
        for i, d in enumerate(DOCS):
            ids = [vocab[s] for p in pieces(d, b2u) for s in bpe(p, ranks)] + [eod]
            f.write("doc %d 1\n%d%s\n" % (i, len(ids), "".join(" %d" % t for t in ids)))


if __name__ == "__main__":
    main()
