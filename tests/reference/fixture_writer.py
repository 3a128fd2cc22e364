"""fixture_writer.py - what the reference generators share: a fixture's bytes (gen_fixtures.py's
format, magic "GVRF": a 64-int header, then named records of f32, f64 or i32 tensors) and its
writing, or with --check its comparison against the committed file (exit status 1 if it
differs). Imported by gen_t5_ops.py, gen_t5_s2s.py, gen_vit_ops.py and gen_vit_fixture.py.
"""
import struct
import sys

import torch

MAGIC = 0x46525647


def serialize(header, recs):
    """The fixture's bytes: header (padded to 64 ints), then (name, tensor, code) records,
    code 0 f32, 1 f64, 2 i32."""
    out = bytearray(struct.pack("<64i", *(header + [0] * (64 - len(header)))))
    for name, t, code in recs:
        nb = name.encode()
        out += struct.pack("<i", len(nb)) + nb + struct.pack("<ii", code, t.dim()) + struct.pack(f"<{t.dim()}i", *t.shape)
        tt = {0: torch.float32, 1: torch.float64, 2: torch.int32}[code]
        out += t.detach().to(tt).contiguous().numpy().tobytes()
    return bytes(out)


def checking():
    """True when the script was asked to compare (--check) rather than write."""
    return "--check" in sys.argv[1:]


def check_files(pairs):
    """Compares each (path, bytes) with the file; prints one line per file; the exit status."""
    same = True
    for path, data in pairs:
        with open(path, "rb") as f:
            ok = f.read() == data
        print(f"{path}: {'matches' if ok else 'DIFFERS from'} a regeneration")
        same = same and ok
    return 0 if same else 1


def write_or_check(path, data, note=""):
    """With --check compares data with the file at path, otherwise writes it; the exit status."""
    if checking():
        return check_files([(path, data)])
    with open(path, "wb") as f:
        f.write(data)
    print(f"wrote {path} ({len(data)} bytes){note}")
    return 0
