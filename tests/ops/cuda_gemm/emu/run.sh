#!/usr/bin/env bash
# run.sh [BUILD] - runs tests/ops/cuda_gemm/test_cuda_gemm_attn.c against runtime/cuda's
# attention.cu and xent.cu compiled for the host by a thread-per-CUDA-thread emulator (see
# cuda/cuda_impl.h here), on a machine without a GPU. Linear (cuBLASLt) is not emulated: its
# cases are dropped. Not a ctest test (minutes: one OS thread per CUDA thread). BUILD is a
# configured CUDA build of this tree (libgvrt.a, libgvrt_cuda.a), default build.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
B=$(cd "${1:-$root/build}" && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
ren="-Dgv_cuda_attention_workspace=emu_attention_workspace -Dgv_cuda_attention_fwd=emu_attention_fwd
     -Dgv_cuda_attention_bwd=emu_attention_bwd -Dgv_cuda_xent_fwd=emu_xent_fwd -Dgv_cuda_xent_bwd=emu_xent_bwd"
inc="-I$here -I$root/runtime/include"
for f in attention xent; do
  "$here/transform.py" "$root/runtime/cuda/$f.cu" "$W/$f.cc"
  g++ -std=c++20 -O2 -w $ren $inc -c "$W/$f.cc" -o "$W/$f.o"
done
g++ -std=c++20 -O2 -w $inc -c "$here/emu_main.cc" -o "$W/emu_main.o"
sed -e 's/gv_backend_init(&gpu, "cuda", 0);/emu_backend_init(\&gpu);/' -e '/linear_case(dt/d' \
    -e 's/if (!gv_cuda_available(why, sizeof why)) {/if (0) { (void)why;/' \
    -e 's/^int gv_cuda_available(char \*why, size_t len);/void emu_backend_init(struct gv_backend *be);/' \
    "$root/tests/ops/cuda_gemm/test_cuda_gemm_attn.c" > "$W/test_emu.c"
gcc -std=c11 -O1 $inc -I"$root/tests" -c "$W/test_emu.c" -o "$W/test_emu.o"
cudalib=$(dirname "$(command -v nvcc)")/../lib64
mpilink=$(mpicc --showme:link 2>/dev/null || true)
g++ -o "$W/test_emu" "$W/test_emu.o" "$W/attention.o" "$W/xent.o" "$W/emu_main.o" \
    "$B/runtime/libgvrt.a" "$B/runtime/libgvrt_cuda.a" -L"$cudalib" $mpilink \
    -lcublasLt -lcublas -lcudart -lopenblas -lgomp -lm -lpthread
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$W/test_emu"
