/* backend.c - the CPU backend's table and its memory entry points. Device memory is host
 * memory (64-byte aligned for AVX-512 loads); there is nothing to synchronise. Entries that
 * take float tensors point to the bf16.c wrappers (f32 straight through, bf16 emulated);
 * be->impl is a struct gv_cpu holding the emulation's scratch. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/fused.h"
#include "cpu/cpu.h"

/* The backend parallelises with OpenMP only; OpenBLAS runs single-threaded inside it. */
static void cpu_init(struct gv_backend *be)
{
  be->impl = calloc(1, sizeof(struct gv_cpu));
  GV_CHECK(be->impl != NULL, "cpu backend: cannot allocate its state");
  openblas_set_num_threads(1);
  gv_log(GV_LOG_DEBUG, "cpu backend: %d OpenMP threads, OpenBLAS single-threaded per call (its %s kernels)",
         cpu_max_threads(), openblas_get_corename());
}
static void cpu_shutdown(struct gv_backend *be)
{
  struct gv_cpu *st = be->impl;
  if (st) free(st->scratch);
  free(st);
  be->impl = NULL;
}

/* Buffers of 2 MiB or more (the arenas, the logits) are 2 MiB aligned and advised to be backed
 * by transparent huge pages, which the kernel otherwise gives only to madvise'd memory. sgemm's
 * packing reads rows far apart (the LM head's dW walks rows of 50304 floats), and with 4 KiB
 * pages each such row is a TLB miss. Where the kernel does not take the advice nothing changes. */
enum { CPU_HUGE_PAGE = 2 << 20 };

void *gv_cpu_alloc(size_t bytes)
{
  if (bytes >= CPU_HUGE_PAGE) {
    size_t n = (bytes + CPU_HUGE_PAGE - 1) & ~(size_t)(CPU_HUGE_PAGE - 1);
    void *p = aligned_alloc(CPU_HUGE_PAGE, n);
#ifdef MADV_HUGEPAGE
    if (p) (void)madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
  }
  size_t n = (bytes + 63) & ~(size_t)63;
  return n ? aligned_alloc(64, n) : NULL;
}

static void *cpu_alloc(struct gv_backend *be, size_t bytes)
{
  (void)be;
  return gv_cpu_alloc(bytes);
}

static void cpu_release(struct gv_backend *be, void *p, size_t bytes) { free(p); }

static void cpu_copy_bytes(struct gv_backend *be, void *dst, const void *src, size_t n,
                           enum gv_copy_dir dir)
{
  memmove(dst, src, n);
}

static void cpu_sync(struct gv_backend *be) { (void)be; }

static void cpu_mem_info(struct gv_backend *be, size_t *used, size_t *total) { *used = *total = 0; }

const struct gv_backend_ops gv_cpu_ops = {
  .name = "cpu",
  .init = cpu_init,
  .shutdown = cpu_shutdown,
  .alloc = cpu_alloc,
  .release = cpu_release,
  .copy_bytes = cpu_copy_bytes,
  .sync = cpu_sync,
  .mem_info = cpu_mem_info,
  .attention_workspace = gv_cpu_attention_workspace,
  .linear_fwd = gv_cpu_bf16_linear_fwd,
  .linear_bwd = gv_cpu_bf16_linear_bwd,
  .linear_gelu_fwd = gv_fused_linear_gelu_fwd,   /* as linear then gelu (each bf16-wrapped) */
  .linear_dgelu_bwd = gv_fused_linear_dgelu_bwd,
  .embedding_fwd = gv_cpu_bf16_embedding_fwd,
  .embedding_bwd = gv_cpu_bf16_embedding_bwd,
  .layernorm_fwd = gv_cpu_bf16_layernorm_fwd,
  .layernorm_bwd = gv_cpu_bf16_layernorm_bwd,
  .rmsnorm_fwd = gv_cpu_bf16_rmsnorm_fwd,
  .rmsnorm_bwd = gv_cpu_bf16_rmsnorm_bwd,
  .add_layernorm_fwd = gv_cpu_add_layernorm_fwd,  /* one pass (f32), as add then the norm */
  .add_rmsnorm_fwd = gv_cpu_add_rmsnorm_fwd,
  .gelu_fwd = gv_cpu_bf16_gelu_fwd,
  .gelu_bwd = gv_cpu_bf16_gelu_bwd,
  .silu_fwd = gv_cpu_bf16_silu_fwd,
  .silu_bwd = gv_cpu_bf16_silu_bwd,
  .relu_fwd = gv_cpu_bf16_relu_fwd,
  .relu_bwd = gv_cpu_bf16_relu_bwd,
  .swiglu_fwd = gv_cpu_bf16_swiglu_fwd,
  .swiglu_bwd = gv_cpu_bf16_swiglu_bwd,
  .mul_fwd = gv_cpu_bf16_mul_fwd,
  .mul_bwd = gv_cpu_bf16_mul_bwd,
  .add_fwd = gv_cpu_bf16_add_fwd,
  .affine = gv_cpu_bf16_affine,
  .softmax_fwd = gv_cpu_bf16_softmax_fwd,
  .softmax_bwd = gv_cpu_bf16_softmax_bwd,
  .copy_cols = gv_cpu_bf16_copy_cols,
  .patchify = gv_cpu_patchify,
  .rope_fwd = gv_cpu_bf16_rope_fwd,
  .rope_bwd = gv_cpu_bf16_rope_bwd,
  .attention_fwd = gv_cpu_bf16_attention_fwd,
  .attention_bwd = gv_cpu_bf16_attention_bwd,
  .attention_merge = gv_cpu_attention_merge,
  .dropout_fwd = gv_cpu_bf16_dropout_fwd,
  .dropout_bwd = gv_cpu_bf16_dropout_bwd,
  .xent_fwd = gv_cpu_bf16_xent_fwd,
  .xent_bwd = gv_cpu_bf16_xent_bwd,
  .sumsq = gv_cpu_bf16_sumsq,
  .sumsq_multi = gv_cpu_bf16_sumsq_multi,
  .fill = gv_cpu_bf16_fill,
  .copy = gv_cpu_copy,
  .axpy = gv_cpu_bf16_axpy,
  .scale = gv_cpu_bf16_scale,
  .adamw_multi = gv_cpu_adamw_multi,
  .copy2d = gv_cpu_copy2d,
  .embedding_shard_fwd = gv_cpu_bf16_embedding_shard_fwd,
  .embedding_shard_bwd = gv_cpu_bf16_embedding_shard_bwd,
  .xent_shard_fwd = gv_cpu_bf16_xent_shard_fwd,
  .xent_shard_bwd = gv_cpu_bf16_xent_shard_bwd,
  .topk = gv_cpu_bf16_topk,
  .take_fwd = gv_cpu_bf16_take_fwd,
  .take_bwd = gv_cpu_bf16_take_bwd,
  .moe_permute_fwd = gv_cpu_bf16_moe_permute_fwd,
  .moe_permute_bwd = gv_cpu_bf16_moe_permute_bwd,
  .moe_grouped_fwd = gv_cpu_bf16_moe_grouped_fwd,
  .moe_grouped_bwd = gv_cpu_bf16_moe_grouped_bwd,
  .moe_unpermute_fwd = gv_cpu_bf16_moe_unpermute_fwd,
  .moe_unpermute_bwd = gv_cpu_bf16_moe_unpermute_bwd,
  .moe_aux_fwd = gv_cpu_bf16_moe_aux_fwd,
  .moe_aux_bwd = gv_cpu_bf16_moe_aux_bwd,
};
