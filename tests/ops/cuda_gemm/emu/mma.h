/* mma.h (emulated) - nvcuda::wmma for the host emulator (cuda/cuda_impl.h here): the 16x16x16
 * fragments attention_tc.cu uses, bf16 inputs and fp32 accumulators. Every lane holds the
 * whole 16x16 matrix (a fragment's lane layout is opaque, so no kernel can tell), and each
 * *_sync call is warp-collective as on the GPU: the warp's lanes meet before and after it,
 * so a lane never loads what another lane of its warp stores in the same step. */
#pragma once
#include "cuda/cuda_impl.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
  float v[16 * 16];   /* element (i, j) at v[i * 16 + j] */
};

inline void emu_warp_sync() { emu_warp_bar[emu_tid / 32]->arrive_and_wait(); }

inline float emu_in(const __nv_bfloat16 *p, int64_t i) { return __bfloat162float(p[i]); }
inline float emu_in(const float *p, int64_t i) { return p[i]; }

/* matrix_a / matrix_b: element (i, j) at p[i * ldm + j] (row-major) or p[i + j * ldm]. */
template <typename Use, typename T, typename Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout> &f, const T *p, unsigned ldm)
{
  emu_warp_sync();
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++)
      f.v[i * 16 + j] = emu_in(p, std::is_same<Layout, row_major>::value ? (int64_t)i * ldm + j : i + (int64_t)j * ldm);
  emu_warp_sync();
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ldm, layout_t l)
{
  emu_warp_sync();
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) f.v[i * 16 + j] = p[l == mem_row_major ? (int64_t)i * ldm + j : i + (int64_t)j * ldm];
  emu_warp_sync();
}

inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t l)
{
  emu_warp_sync();
  if (emu_tid % 32 == 0)
    for (int i = 0; i < 16; i++)
      for (int j = 0; j < 16; j++) p[l == mem_row_major ? (int64_t)i * ldm + j : i + (int64_t)j * ldm] = f.v[i * 16 + j];
  emu_warp_sync();
}

inline void fill_fragment(fragment<accumulator, 16, 16, 16, float> &f, float x)
{
  for (int i = 0; i < 256; i++) f.v[i] = x;
}

/* d = a b + c (fp32 sums of exact bf16 products) */
template <typename TA, typename LA, typename TB, typename LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, TA, LA> &a,
              const fragment<matrix_b, 16, 16, 16, TB, LB> &b, const fragment<accumulator, 16, 16, 16, float> &c)
{
  float r[256];
  emu_warp_sync();
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      float s = c.v[i * 16 + j];
      for (int k = 0; k < 16; k++) s += a.v[i * 16 + k] * b.v[k * 16 + j];
      r[i * 16 + j] = s;
    }
  std::memcpy(d.v, r, sizeof r);
  emu_warp_sync();
}

}  // namespace wmma
}  // namespace nvcuda
