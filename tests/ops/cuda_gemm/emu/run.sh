#!/usr/bin/env bash
# run.sh [BUILD] [SUITE] - runs a CUDA test against runtime/cuda's kernels compiled for the
# host by a thread-per-CUDA-thread emulator (see cuda/cuda_impl.h and mma.h here), on a
# machine without a GPU. SUITE (default attn):
#   attn   test_cuda_gemm_attn.c on attention.cu, attention_tc.cu and xent.cu (cuBLASLt is
#          not emulated: the linear cases are dropped); GV_CUDA_ATTENTION=tc runs bf16
#          attention on the tensor-core kernels, WMMA emulated;
#   adamw  test_cuda_adamw.c on optim.cu (the multi-tensor AdamW);
#   ops    test_cuda_ops.c on elementwise.cu, norm.cu, rope.cu, softmax.cu, embedding.cu, reduce.cu and
#          xent.cu (every op of that test);
#   moe    test_cuda_moe.c on moe.cu and softmax.cu (the mixture-of-experts kernels).
# Not a ctest test (minutes: one OS thread per CUDA thread). BUILD is a configured CUDA
# build of this tree (its libgvrt.a), default build.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
B=$(cd "${1:-$root/build}" && pwd)
suite=${2:-attn}
case $suite in
  attn) files="attention attention_tc xent"; test=ops/cuda_gemm/test_cuda_gemm_attn.c; def=EMU_ATTN
        only='/linear_case(dt\|linear_gelu_case(dt/d' ;;
  adamw) files="optim"; test=ops/cuda_adamw/test_cuda_adamw.c; def=EMU_OPTIM; only='' ;;
  ops) files="elementwise norm rope softmax embedding reduce xent"; test=ops/cuda/test_cuda_ops.c; def=EMU_OPS
       only='' ;;
  moe) files="moe softmax"; test=ops/cuda/test_cuda_moe.c; def=EMU_MOE; only='' ;;
  *) echo "run.sh: unknown suite $suite (attn, adamw, ops, moe)" >&2; exit 2 ;;
esac
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
ren="-Dcu_attn_tc_takes=emu_attn_tc_takes -Dcu_attn_tc_fwd=emu_attn_tc_fwd -Dcu_attn_tc_bwd=emu_attn_tc_bwd"
mkdir -p "$W/cuda"   # the shared device helpers, transformed like the kernels
"$here/transform.py" "$root/runtime/cuda/cu_common.cuh" "$W/cuda/cu_common.cuh"
inc="-I$here -I$W -I$root/runtime/include -I$root/runtime"  # (the emulated cuda/cuda_impl.h first)
objs=""
for f in $files; do
  "$here/transform.py" "$root/runtime/cuda/$f.cu" "$W/$f.cc"
  sed -i 's/gv_cuda_/emu_/g' "$W/$f.cc"
  g++ -std=c++20 -O2 -w -ffp-contract=off $ren $inc -c "$W/$f.cc" -o "$W/$f.o"
  objs="$objs $W/$f.o"
done
g++ -std=c++20 -O2 -w -D$def $inc -c "$here/emu_main.cc" -o "$W/emu_main.o"
sed -e "${only:-s/^$//}" "$root/tests/$test" > "$W/test_emu.c"
gcc -std=c11 -O1 -DGV_TEST_CUDA_EMU $inc -I"$root/tests" -c "$W/test_emu.c" -o "$W/test_emu.o"
cudalib=$(dirname "$(command -v nvcc)")/../lib64
mpilink=$(mpicc --showme:link 2>/dev/null || true)
g++ -o "$W/test_emu" "$W/test_emu.o" $objs "$W/emu_main.o" "$B/runtime/libgvrt.a" "$B/runtime/libgvsvg.a" -L"$cudalib" $mpilink \
    -lcublasLt -lcublas -lcudart -lnccl -lopenblas -lcjson -lgomp -lm -lpthread
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$W/test_emu"
