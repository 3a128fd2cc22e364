#!/usr/bin/env python3
"""megatron_gpt_samples.py - the GPT samples Megatron's GPTDataset would give for a
Megatron indexed dataset, computed independently of gvc's C code with numpy's
RandomState, following gpt_dataset.py (_get_num_epochs, _build_document_index,
_build_shuffle_index, _query_document_sample_shuffle_indices) and helpers.cpp
(build_sample_idx) with add_extra_token_to_sequence = 1 and drop_last_partial_sequence.
Writes the samples of a few (seq, seed, num_samples, split) cases to a text file that
tests/unit/data/test_data_gpt.c compares against, sample by sample.

Usage: /usr/bin/python3 tests/reference/megatron_gpt_samples.py PREFIX OUT.txt
"""
import re
import struct
import sys

import numpy as np

DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}


def read_dataset(prefix):
    """Sequences of PREFIX (_IndexReader + np.memmap, simplified)."""
    with open(prefix + ".idx", "rb") as f:
        idx = f.read()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack_from("<Q", idx, 9)
    assert version == 1
    dtype = DTYPES[idx[17]]
    (s, _d) = struct.unpack_from("<QQ", idx, 18)
    sizes = np.frombuffer(idx, dtype=np.int32, count=s, offset=34)
    pointers = np.frombuffer(idx, dtype=np.int64, count=s, offset=34 + 4 * s)
    bin_ = np.fromfile(prefix + ".bin", dtype=np.uint8)
    itemsize = np.dtype(dtype).itemsize
    return [bin_[p:p + n * itemsize].view(dtype).astype(np.int64) for p, n in zip(pointers, sizes)]


def split_range(num, split, which):
    """parse_and_normalize_split + _get_split_indices (blended_megatron_dataset_builder)."""
    weights = list(map(float, re.findall(r"[.0-9]+", split)))
    weights = weights + [0.0] * (3 - len(weights))
    weights = [w / sum(weights) for w in weights]
    split_indices = [0]
    for pct in weights:
        split_indices.append(split_indices[-1] + int(round(pct * float(num))))
    split_indices[1:] = [i - (split_indices[-1] - num) for i in split_indices[1:]]
    return split_indices[which], split_indices[which + 1]


def build_document_index(documents, num_epochs, rng, separate_final_epoch):
    if not separate_final_epoch or num_epochs == 1:
        document_index = np.mgrid[0:num_epochs, 0:len(documents)][1]
        document_index[:] = documents
        document_index = document_index.reshape(-1).astype(np.int32)
        rng.shuffle(document_index)
        return document_index
    first = build_document_index(documents, num_epochs - 1, rng, False)
    last = build_document_index(documents, 1, rng, False)
    return np.concatenate((first, last))


def build_sample_idx(sizes, document_index, seq_length, num_epochs, tokens_per_epoch):
    num_samples = (num_epochs * tokens_per_epoch - 1) // seq_length
    sample_idx = np.zeros((num_samples + 1, 2), dtype=np.int64)
    doc_i, doc_offset = 0, 0
    for s in range(1, num_samples + 1):
        remaining = seq_length + 1
        while remaining != 0:
            doc_length = sizes[document_index[doc_i]] - doc_offset
            remaining -= doc_length
            if remaining <= 0:
                doc_offset += remaining + doc_length - 1
                remaining = 0
            else:
                assert doc_i != len(document_index) - 1
                doc_i += 1
                doc_offset = 0
        sample_idx[s] = (doc_i, doc_offset)
    return sample_idx


def build_shuffle_index(num_samples, total_size, rng):
    dtype = np.uint32 if total_size < np.iinfo(np.uint32).max - 1 else np.int64
    first = np.arange(0, num_samples, 1, dtype=dtype)
    rng.shuffle(first)
    if num_samples == total_size:
        return first
    last = np.arange(num_samples, total_size, 1, dtype=dtype)
    rng.shuffle(last)
    return np.concatenate((first, last))


def samples(seqs, seq_length, seed, num_samples, split, which):
    sizes = np.array([len(s) for s in seqs], dtype=np.int32)
    a, b = split_range(len(seqs), split, which)
    indices = np.arange(a, b, dtype=np.int32)
    tokens_per_epoch = int(np.sum(sizes[indices]))
    num_epochs = 1
    if num_samples:
        tokens = tokens_per_epoch
        while tokens < num_samples * seq_length + 1:
            num_epochs += 1
            tokens += tokens_per_epoch
    separate = False
    sans = None
    if num_epochs > 1:
        sans = ((num_epochs - 1) * tokens_per_epoch - 1) // seq_length
        from_final = num_samples - sans
        per_epoch = (tokens_per_epoch - 1) // seq_length
        assert 0 <= from_final <= per_epoch + 1
        separate = from_final < int(0.80 * per_epoch)
    rng = np.random.RandomState(seed)
    document_index = build_document_index(indices, num_epochs, rng, separate)
    sample_index = build_sample_idx(sizes, document_index, seq_length, num_epochs, tokens_per_epoch)
    n = sample_index.shape[0] - 1
    shuffle_index = build_shuffle_index(sans if separate else n, n, rng)
    out = []
    for i in range(n):
        j = shuffle_index[i]
        (db, ob), (de, oe) = sample_index[j], sample_index[j + 1]
        if db == de:
            parts = [seqs[document_index[db]][ob:oe + 1]]
        else:
            parts = [seqs[document_index[db]][ob:]]
            parts += [seqs[document_index[k]] for k in range(db + 1, de)]
            parts.append(seqs[document_index[de]][:oe + 1])
        sample = np.concatenate(parts)
        assert len(sample) == seq_length + 1
        out.append(sample)
    return num_epochs, separate, out


CASES = [  # seq, seed, num_samples, split, split index
    (16, 1234, 0, "1", 0),        # one epoch
    (16, 42, 80, "1", 0),         # 3 epochs, final epoch shuffled separately
    (8, 5, 120, "1", 0),          # 2 epochs, final epoch joined
    (7, 42, 0, "75,25", 0),       # train split
    (4, 42, 0, "75,25", 1),       # valid split
    (40, 3, 0, "1", 0),           # samples longer than any document
    (5, 9, 0, "949,50,1", 1),     # Megatron's default split: sequences 38..40
    (6, 9, 0, "1,1,1", 2),        # rounding gives 13+13+13: every boundary shifts by one
]


def main():
    prefix, out = sys.argv[1], sys.argv[2]
    seqs = read_dataset(prefix)
    with open(out, "w") as f:
        for seq, seed, num, split, which in CASES:
            epochs, separate, smp = samples(seqs, seq, seed, num, split, which)
            f.write("case %d %d %d %s %d %d %d %d\n" % (seq, seed, num, split, which, len(smp), epochs, int(separate)))
            for s in smp:
                f.write(" ".join(str(int(t)) for t in s) + "\n")


if __name__ == "__main__":
    main()
