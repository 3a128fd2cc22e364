/* emu_main.cc - the emulator's globals and a backend whose table is the CPU backend's except
 * attention and cross-entropy, which are the CUDA entry points compiled for the host (their
 * gv_cuda_* names are renamed emu_* by run.sh so libgvrt_cuda can be linked beside them). */
#include "cuda/cuda_impl.h"

thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
float *emu_dyn_smem;
std::barrier<> *emu_block_bar;
std::barrier<> *emu_warp_bar[32];
float emu_xchg[32][32];

extern "C" {
extern const struct gv_backend_ops gv_cpu_ops;
size_t emu_attention_workspace(struct gv_backend *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
void emu_attention_fwd(struct gv_backend *, struct gv_tensor *, struct gv_tensor *, const struct gv_tensor *,
                       const struct gv_tensor *, const struct gv_tensor *, int);
void emu_attention_bwd(struct gv_backend *, struct gv_tensor *, struct gv_tensor *, struct gv_tensor *,
                       const struct gv_tensor *, const struct gv_tensor *, const struct gv_tensor *,
                       const struct gv_tensor *, const struct gv_tensor *, const struct gv_tensor *, int, int);
void emu_xent_fwd(struct gv_backend *, struct gv_tensor *, struct gv_tensor *, const struct gv_tensor *,
                  const struct gv_tensor *, float);
void emu_xent_bwd(struct gv_backend *, struct gv_tensor *, const struct gv_tensor *, const struct gv_tensor *,
                  const struct gv_tensor *, float);

static struct gv_backend_ops emu_ops;
static struct gv_cuda fake = {3};    /* SMs: grid-stride kernels get few blocks */
static void noop(struct gv_backend *) {}

void emu_backend_init(struct gv_backend *be)
{
  emu_ops = gv_cpu_ops;
  emu_ops.name = "emu";
  emu_ops.init = noop;
  emu_ops.shutdown = noop;
  emu_ops.attention_workspace = emu_attention_workspace;
  emu_ops.attention_fwd = emu_attention_fwd;
  emu_ops.attention_bwd = emu_attention_bwd;
  emu_ops.xent_fwd = emu_xent_fwd;
  emu_ops.xent_bwd = emu_xent_bwd;
  memset(be, 0, sizeof *be);
  be->ops = &emu_ops;
  be->impl = &fake;
}
}
