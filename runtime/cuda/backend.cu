/* backend.cu - the CUDA backend's table, its start-up (device, stream, cuBLAS handles) and
 * its memory entry points. Device memory comes from cudaMalloc once per plan arena; every
 * op runs on one compute stream. A machine without a usable GPU gets a clear fatal message
 * at init (tests check gv_cuda_available() first and skip). */
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_impl.h"

/* 1 when a CUDA device can be used (driver present, at least one device), else 0; why gets
 * the runtime's reason. Used by init and by the GPU tests to skip. */
extern "C" GV_API int gv_cuda_available(char *why, size_t why_len)
{
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (why) snprintf(why, why_len, "%s", e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device");
    (void)cudaGetLastError();   /* clear the sticky error */
    return 0;
  }
  return 1;
}

static void cuda_init(struct gv_backend *be)
{
  char why[256];
  if (!gv_cuda_available(why, sizeof why))
    gv_fatalf(__FILE__, __LINE__, "cudaGetDeviceCount", "cuda", "the cuda backend needs a GPU: %s", why);
  int ndev = 0;
  GV_CUDA_CHECK(cudaGetDeviceCount(&ndev));
  struct gv_cuda *cu = (struct gv_cuda *)calloc(1, sizeof *cu);
  GV_CHECK(cu != NULL, "out of host memory");
  GV_CHECK(be->device >= 0, "cuda backend: device %d", be->device);
  cu->device = be->device % ndev;   /* a node-local rank picks its GPU */
  be->device = cu->device;
  GV_CUDA_CHECK(cudaSetDevice(cu->device));
  cudaDeviceProp prop;
  GV_CUDA_CHECK(cudaGetDeviceProperties(&prop, cu->device));
  cu->sm_count = prop.multiProcessorCount;
  cu->cc_major = prop.major;
  cu->cc_minor = prop.minor;
  GV_CUDA_CHECK(cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking));
  GV_CUBLAS_CHECK(cublasCreate(&cu->blas));
  GV_CUBLAS_CHECK(cublasSetStream(cu->blas, cu->stream));
  GV_CUBLAS_CHECK(cublasLtCreate(&cu->lt));
  GV_CUDA_CHECK(cudaMalloc((void **)&cu->d_reduce, sizeof(double)));
  GV_CUDA_CHECK(cudaMallocHost((void **)&cu->h_reduce, sizeof(double)));
  const char *attn = getenv("GV_CUDA_ATTENTION"); /* simt (default) or tc */
  GV_CHECK(!attn || !strcmp(attn, "simt") || !strcmp(attn, "tc"), "GV_CUDA_ATTENTION=%s: simt or tc", attn);
  cu->attention_tc = attn && !strcmp(attn, "tc");
  be->impl = cu;
  be->stream = cu->stream;
  gv_cuda_linear_init(be);
  gv_log(GV_LOG_INFO, "cuda backend: device %d %s (sm_%d%d, %d SMs, %.1f GiB)", cu->device, prop.name,
         prop.major, prop.minor, prop.multiProcessorCount, (double)prop.totalGlobalMem / (1 << 30));
}

static void cuda_shutdown(struct gv_backend *be)
{
  struct gv_cuda *cu = cu_impl(be);
  if (!cu) return;
  GV_CUDA_CHECK(cudaStreamSynchronize(cu->stream));
  gv_cuda_linear_shutdown(be);
  GV_CUDA_CHECK(cudaFree(cu->d_reduce));
  GV_CUDA_CHECK(cudaFreeHost(cu->h_reduce));
  GV_CUBLAS_CHECK(cublasLtDestroy(cu->lt));
  GV_CUBLAS_CHECK(cublasDestroy(cu->blas));
  GV_CUDA_CHECK(cudaStreamDestroy(cu->stream));
  free(cu);
  be->impl = NULL;
  be->stream = NULL;
}

/* cudaMalloc aligns to 256 bytes, more than the 64 the plan needs. */
static void *cuda_alloc(struct gv_backend *be, size_t bytes)
{
  void *p = NULL;
  (void)be;
  if (!bytes) return NULL;
  GV_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

static void cuda_release(struct gv_backend *be, void *p, size_t bytes)
{
  (void)bytes;
  GV_CUDA_CHECK(cudaStreamSynchronize(cu_stream(be)));
  GV_CUDA_CHECK(cudaFree(p));
}

/* Ordered on the compute stream; a copy that touches host memory returns only when the
 * host side may be reused or read. */
static void cuda_copy_bytes(struct gv_backend *be, void *dst, const void *src, size_t n,
                            enum gv_copy_dir dir)
{
  static const cudaMemcpyKind kinds[] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                                         cudaMemcpyDeviceToDevice};
  GV_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, kinds[dir], cu_stream(be)));
  if (dir != GV_COPY_D2D) GV_CUDA_CHECK(cudaStreamSynchronize(cu_stream(be)));
}

static void cuda_sync(struct gv_backend *be) { GV_CUDA_CHECK(cudaStreamSynchronize(cu_stream(be))); }

static void cuda_mem_info(struct gv_backend *be, size_t *used, size_t *total)
{
  size_t free_bytes = 0;
  GV_CUDA_CHECK(cudaSetDevice(cu_impl(be)->device));
  GV_CUDA_CHECK(cudaMemGetInfo(&free_bytes, total));
  *used = *total - free_bytes;
}

extern "C" const struct gv_backend_ops gv_cuda_ops = {
  .name = "cuda",
  .init = cuda_init,
  .shutdown = cuda_shutdown,
  .alloc = cuda_alloc,
  .release = cuda_release,
  .copy_bytes = cuda_copy_bytes,
  .sync = cuda_sync,
  .mem_info = cuda_mem_info,
  .attention_workspace = gv_cuda_attention_workspace,
  .linear_fwd = gv_cuda_linear_fwd,
  .linear_bwd = gv_cuda_linear_bwd,
  .linear_gelu_fwd = gv_cuda_linear_gelu_fwd,
  .linear_dgelu_bwd = gv_cuda_linear_dgelu_bwd,
  .embedding_fwd = gv_cuda_embedding_fwd,
  .embedding_bwd = gv_cuda_embedding_bwd,
  .layernorm_fwd = gv_cuda_layernorm_fwd,
  .layernorm_bwd = gv_cuda_layernorm_bwd,
  .rmsnorm_fwd = gv_cuda_rmsnorm_fwd,
  .rmsnorm_bwd = gv_cuda_rmsnorm_bwd,
  .add_layernorm_fwd = gv_cuda_add_layernorm_fwd,
  .add_rmsnorm_fwd = gv_cuda_add_rmsnorm_fwd,
  .gelu_fwd = gv_cuda_gelu_fwd,
  .gelu_bwd = gv_cuda_gelu_bwd,
  .silu_fwd = gv_cuda_silu_fwd,
  .silu_bwd = gv_cuda_silu_bwd,
  .relu_fwd = gv_cuda_relu_fwd,
  .relu_bwd = gv_cuda_relu_bwd,
  .swiglu_fwd = gv_cuda_swiglu_fwd,
  .swiglu_bwd = gv_cuda_swiglu_bwd,
  .mul_fwd = gv_cuda_mul_fwd,
  .mul_bwd = gv_cuda_mul_bwd,
  .add_fwd = gv_cuda_add_fwd,
  .affine = gv_cuda_affine,
  .softmax_fwd = gv_cuda_softmax_fwd,
  .softmax_bwd = gv_cuda_softmax_bwd,
  .copy_cols = gv_cuda_copy_cols,
  .patchify = gv_cuda_patchify,
  .rope_fwd = gv_cuda_rope_fwd,
  .rope_bwd = gv_cuda_rope_bwd,
  .attention_fwd = gv_cuda_attention_fwd,
  .attention_bwd = gv_cuda_attention_bwd,
  .attention_merge = gv_cuda_attention_merge,
  .dropout_fwd = gv_cuda_dropout_fwd,
  .dropout_bwd = gv_cuda_dropout_bwd,
  .xent_fwd = gv_cuda_xent_fwd,
  .xent_bwd = gv_cuda_xent_bwd,
  .sumsq = gv_cuda_sumsq,
  .sumsq_multi = gv_cuda_sumsq_multi,
  .fill = gv_cuda_fill,
  .copy = gv_cuda_copy,
  .axpy = gv_cuda_axpy,
  .scale = gv_cuda_scale,
  .adamw_multi = gv_cuda_adamw_multi,
  .copy2d = gv_cuda_copy2d,
  .embedding_shard_fwd = gv_cuda_embedding_shard_fwd,
  .embedding_shard_bwd = gv_cuda_embedding_shard_bwd,
  .xent_shard_fwd = gv_cuda_xent_shard_fwd,
  .xent_shard_bwd = gv_cuda_xent_shard_bwd,
  .topk = gv_cuda_topk,
  .take_fwd = gv_cuda_take_fwd,
  .take_bwd = gv_cuda_take_bwd,
  .moe_permute_fwd = gv_cuda_moe_permute_fwd,
  .moe_permute_bwd = gv_cuda_moe_permute_bwd,
  .moe_grouped_fwd = gv_cuda_moe_grouped_fwd,
  .moe_grouped_bwd = gv_cuda_moe_grouped_bwd,
  .moe_unpermute_fwd = gv_cuda_moe_unpermute_fwd,
  .moe_unpermute_bwd = gv_cuda_moe_unpermute_bwd,
  .moe_aux_fwd = gv_cuda_moe_aux_fwd,
  .moe_aux_bwd = gv_cuda_moe_aux_bwd,
};
