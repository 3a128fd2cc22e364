/* emu_main.cc - the emulator's globals and a backend whose table is the CPU backend's except
 * the entries of the suite run.sh builds (EMU_ATTN: attention and cross-entropy; EMU_OPTIM:
 * AdamW; EMU_OPS: every op of test_cuda_ops; EMU_MOE: the mixture-of-experts kernels), which are the CUDA entry points compiled for the host (their
 * gv_cuda_* names renamed emu_* by run.sh, so libgvrt can be linked beside them). */
#include <cstdlib>
#include <type_traits>

#include "cuda/cuda_impl.h"

thread_local dim3 threadIdx, blockIdx;
thread_local unsigned emu_tid;
dim3 blockDim, gridDim;
float *emu_dyn_smem;
std::barrier<> *emu_block_bar;
std::barrier<> *emu_warp_bar[32];
double emu_xchg[32][32];

/* The CUDA entry points of the suite run.sh builds (their gv_cuda_ prefix renamed emu_),
 * declared with the table's own types and put into a copy of the CPU backend's table. */
#if defined(EMU_ATTN)
#define EMU_ENTRIES(X) X(attention_workspace) X(attention_fwd) X(attention_bwd) X(xent_fwd) X(xent_bwd) \
  X(xent_shard_fwd) X(xent_shard_bwd)
#elif defined(EMU_OPTIM)
#define EMU_ENTRIES(X) X(adamw_multi)
#elif defined(EMU_MOE)
#define EMU_ENTRIES(X) X(topk) X(take_fwd) X(take_bwd) X(moe_permute_fwd) X(moe_permute_bwd) X(moe_grouped_fwd) \
  X(moe_grouped_bwd) X(moe_unpermute_fwd) X(moe_unpermute_bwd) X(moe_aux_fwd) X(moe_aux_bwd) X(softmax_fwd) \
  X(softmax_bwd)
#elif defined(EMU_OPS)
#define EMU_ENTRIES(X) X(layernorm_fwd) X(layernorm_bwd) X(rmsnorm_fwd) X(rmsnorm_bwd) X(add_layernorm_fwd) \
  X(add_rmsnorm_fwd) X(gelu_fwd) X(gelu_bwd) X(silu_fwd) X(silu_bwd) X(relu_fwd) X(relu_bwd) X(swiglu_fwd) \
  X(swiglu_bwd) X(mul_fwd) \
  X(mul_bwd) X(add_fwd) X(affine) X(softmax_fwd) X(softmax_bwd) X(copy_cols) X(dropout_fwd) X(dropout_bwd) \
  X(rope_fwd) X(rope_bwd) X(embedding_fwd) X(embedding_bwd) \
  X(embedding_shard_fwd) X(embedding_shard_bwd) X(sumsq) X(fill) X(copy) X(axpy) X(scale) X(copy2d) \
  X(xent_fwd) X(xent_bwd) X(xent_shard_fwd) X(xent_shard_bwd)
#endif

#define EMU_DECL(e) extern "C" std::remove_pointer_t<decltype(gv_backend_ops::e)> emu_##e;
EMU_ENTRIES(EMU_DECL)

static double reduce_slot[2];
struct gv_cuda emu_cuda = {3, 0, 8, 0, &reduce_slot[0], &reduce_slot[1]}; /* 3 SMs: few blocks; sm_80 */

extern "C" {
extern const struct gv_backend_ops gv_cpu_ops;

static struct gv_backend_ops emu_ops;

void emu_backend_init(struct gv_backend *be)
{
  const char *attn = getenv("GV_CUDA_ATTENTION");  /* tc: the tensor-core kernels, WMMA emulated */
  emu_cuda.attention_tc = attn && !strcmp(attn, "tc");
  emu_ops = gv_cpu_ops;
  emu_ops.name = "emu";
#define EMU_SET(e) emu_ops.e = emu_##e;
  EMU_ENTRIES(EMU_SET)
  memset(be, 0, sizeof *be);
  be->ops = &emu_ops;
  emu_ops.init(be);                                /* the CPU backend's own state (bf16 scratch) */
}
}
