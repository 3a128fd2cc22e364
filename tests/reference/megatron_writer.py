#!/usr/bin/env python3
"""megatron_writer.py - an independent writer of Megatron indexed datasets (MMIDIDX),
written from the format description (docs/data.md §1, Megatron's indexed_dataset.py
_IndexWriter) with numpy and struct only -- not from gvc's C code. It writes the small
fixtures that tests/unit/data reads, plus corrupted copies for the error tests, and a
text listing of every document so the C tests can compare token by token.

Run with /usr/bin/python3 (needs numpy):  tests/reference/megatron_writer.py tests/unit/data/fixtures
"""
import os
import struct
import sys

import numpy as np

DTYPE_CODES = {np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5,
               np.float64: 6, np.float32: 7, np.uint16: 8}


def idx_bytes(dtype, seq_lengths, document_indices):
    """The .idx exactly as _IndexWriter.write: header, sizes, pointers, doc indices."""
    itemsize = np.dtype(dtype).itemsize
    sizes = np.array(seq_lengths, dtype=np.int32)
    pointers = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) > 1:
        pointers[1:] = np.cumsum(sizes[:-1].astype(np.int64) * itemsize)
    out = b"MMIDIDX\x00\x00"
    out += struct.pack("<Q", 1)
    out += struct.pack("<B", DTYPE_CODES[dtype])
    out += struct.pack("<Q", len(sizes))
    out += struct.pack("<Q", len(document_indices))
    out += sizes.tobytes(order="C") + pointers.tobytes(order="C")
    out += np.array(document_indices, dtype=np.int64).tobytes(order="C")
    return out


def write_dataset(prefix, dtype, documents):
    """documents: list of documents, each a list of sequences (lists of ints)."""
    seqs = [s for doc in documents for s in doc]
    doc_idx = [0]
    for doc in documents:                   # IndexedDatasetBuilder.end_document
        doc_idx.append(doc_idx[-1] + len(doc))
    with open(prefix + ".bin", "wb") as f:
        for s in seqs:
            f.write(np.array(s, dtype=dtype).tobytes(order="C"))
    idx = idx_bytes(dtype, [len(s) for s in seqs], doc_idx)
    with open(prefix + ".idx", "wb") as f:
        f.write(idx)
    with open(prefix + ".txt", "w") as f:   # listing: "doc D" then one line per sequence
        f.write("docs %d seqs %d\n" % (len(documents), len(seqs)))
        for d, doc in enumerate(documents):
            f.write("doc %d %d\n" % (d, len(doc)))
            for s in doc:
                f.write("%d%s\n" % (len(s), "".join(" %d" % t for t in s)))
    return idx


def patched(prefix, src, idx, offset, data, truncate=None):
    """A corrupted copy of src's .idx (and the same .bin)."""
    b = bytearray(idx)
    if data is not None:
        b[offset:offset + len(data)] = data
    if truncate is not None:
        b = b[:truncate]
    with open(prefix + ".idx", "wb") as f:
        f.write(bytes(b))
    with open(src + ".bin", "rb") as f, open(prefix + ".bin", "wb") as g:
        g.write(f.read())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/unit/data/fixtures"
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)

    # small: uint16, a multi-sequence document and an empty sequence
    small = [[[72, 101, 108, 108, 111, 256]],
             [[1, 2, 3], [], [65535, 0, 7]],
             [[9] * 10]]
    idx = write_dataset(p("small"), np.uint16, small)

    # i32: int32 tokens above uint16's range (a 50257-style vocab would use int32 >= 65500)
    write_dataset(p("i32"), np.int32, [[[70000, 1, 2**31 - 1]], [[5, 6]]])

    # gpt: 40 documents of 1..30 tokens from a fixed RandomState, for sample construction
    rng = np.random.RandomState(7)
    gpt = [[list(rng.randint(0, 1000, size=rng.randint(1, 31)))] for _ in range(40)]
    write_dataset(p("gpt"), np.uint16, gpt)

    # corrupted copies of small (S = 5 sequences, D = 4)
    s_count, d_count = 5, 4
    ptr_off = 34 + 4 * s_count
    doc_off = 34 + 12 * s_count
    patched(p("bad_magic"), p("small"), idx, 0, b"MMIDIDY")
    patched(p("bad_version"), p("small"), idx, 9, struct.pack("<Q", 2))
    patched(p("bad_dtype"), p("small"), idx, 17, struct.pack("<B", 9))
    patched(p("truncated"), p("small"), idx, 0, None, truncate=len(idx) - 13)
    patched(p("short_header"), p("small"), idx, 0, None, truncate=20)
    patched(p("bad_count"), p("small"), idx, 18, struct.pack("<Q", 1 << 40))
    patched(p("bad_pointer"), p("small"), idx, ptr_off + 8 * 4, struct.pack("<q", 1 << 20))
    patched(p("bad_docidx"), p("small"), idx, doc_off + 8 * 2, struct.pack("<q", 0))
    del d_count


if __name__ == "__main__":
    main()
