#!/usr/bin/env python3
"""transform.py IN.cu OUT.cc - CUDA source to host C++ for the emulator: kernel launches
k<<<grid, block, smem, stream>>>(args) become emu_launch(k, grid, block, smem, stream)(args),
the dynamic shared array becomes the emulator's buffer, __shared__ arrays become statics
(blocks run one at a time)."""
import sys

s = open(sys.argv[1]).read()
s = s.replace('extern __shared__ float sm[];', 'float *sm = emu_dyn_smem;')
s = s.replace('extern __shared__ __align__(128) unsigned char smem[];', 'unsigned char *smem = (unsigned char *)emu_dyn_smem;')
out, i = [], 0
while True:
    j = s.find('<<<', i)
    if j < 0:
        out.append(s[i:])
        break
    k = j
    if s[k - 1] == '>':                      # template arguments of the kernel name
        depth = 0
        while True:
            k -= 1
            if s[k] == '>':
                depth += 1
            elif s[k] == '<':
                depth -= 1
                if depth == 0:
                    break
    while k > 0 and (s[k - 1].isalnum() or s[k - 1] == '_'):
        k -= 1
    e = s.find('>>>', j)
    out.append(s[i:k] + 'emu_launch(' + s[k:j] + ', ' + s[j + 3:e] + ')')
    i = e + 3
open(sys.argv[2], 'w').write(''.join(out).replace('__shared__', 'static'))
