/* test_ep_grouped.c - expert parallelism's grouped linear (gv_ep_grouped_fwd/bwd) over the
 * world as the ep group against one rank's grouped linear with every expert: y and dx of
 * this rank's routed rows, and dw of this rank's experts as the sum over every rank's rows
 * (overwritten, and accumulated with GV_ACC_DX | GV_ACC_DW). Ranks route different numbers
 * of tokens; one case routes every token to the first two experts, so that some ranks
 * receive no rows. Tolerance: 1e-5 relative + 1e-6 (the same products, summed in another
 * order for dw). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/mpi_testutil.h"

enum { E = 8, K = 5, N = 3, TOPK = 2 };

static void check(const char *what, int r, const float *got, const float *want, int64_t n, float add)
{
  mt_check_close(what, r, got, want, n, add, 1e-6, 1e-5);
}

static struct gv_tensor mat(float *p, int64_t a, int64_t b) { return gv_tensor_4d(p, GV_DTYPE_F32, a, b, 0, 0); }
static struct gv_tensor wts(float *p, int64_t e) { return gv_tensor_4d(p, GV_DTYPE_F32, e, N, K, 0); }

/* M tokens on this rank, each choosing TOPK distinct experts (skewed: experts 0 and 1). */
static void run(struct gv_comm *w, struct gv_backend *be, int64_t M, int skewed)
{
  int r = gv_comm_rank(w), P = gv_comm_size(w);
  int64_t rows = M * TOPK, El = E / P;
  int32_t *ids = malloc(sizeof *ids * (size_t)rows);
  for (int64_t t = 0; t < M; t++) {
    int32_t a = skewed ? 0 : (int32_t)((t * 3 + r * 5) % E), b = skewed ? 1 : (int32_t)((a + 1 + (t + r) % (E - 1)) % E);
    ids[t * TOPK] = a;
    ids[t * TOPK + 1] = b;
  }
  float *x = mt_fill_rand(rows * K, 11u + (uint32_t)r), *dy = mt_fill_rand(rows * N, 29u + (uint32_t)r),
        *wall = mt_fill_rand(E * N * K, 7u), *wl = wall + (size_t)(r * El * N * K);
  float *y_ref = calloc((size_t)(rows * N), sizeof(float)), *dx_ref = calloc((size_t)(rows * K), sizeof(float)),
        *dw_ref = calloc((size_t)(E * N * K), sizeof(float));
  struct gv_tensor I = gv_tensor_4d(ids, GV_DTYPE_I32, M, TOPK, 0, 0), X = mat(x, rows, K), DY = mat(dy, rows, N),
                   W = wts(wall, E), YR = mat(y_ref, rows, N), DXR = mat(dx_ref, rows, K), DWR = wts(dw_ref, E);
  gv_moe_grouped_fwd(be, &YR, &X, &W, &I);
  gv_moe_grouped_bwd(be, &DXR, &DWR, &DY, &X, &W, &I, 0);
  gv_comm_all_reduce(w, dw_ref, (size_t)(E * N * K), GV_DTYPE_F32, GV_REDUCE_SUM); /* every rank's rows */
  float *dw_mine = dw_ref + (size_t)(r * El * N * K);

  size_t sb = gv_ep_grouped_scratch_bytes(rows, K, N, P, sizeof(float));
  void *scratch = gv_dev_alloc(be, sb);
  float *y = calloc((size_t)(rows * N), sizeof(float)), *dx = malloc(sizeof(float) * (size_t)(rows * K)),
        *dw = malloc(sizeof(float) * (size_t)(El * N * K));
  struct gv_tensor Y = mat(y, rows, N), WL = wts(wl, El), DX = mat(dx, rows, K), DW = wts(dw, El);
  gv_ep_grouped_fwd(w, be, &Y, &X, &WL, &I, E, scratch);
  check("y", r, y, y_ref, rows * N, 0.0f);
  for (int acc = 0; acc < 2; acc++) {
    for (int64_t i = 0; i < rows * K; i++)
      dx[i] = acc ? 1.0f : NAN;
    for (int64_t i = 0; i < El * N * K; i++)
      dw[i] = acc ? 1.0f : NAN;
    gv_ep_grouped_bwd(w, be, &DX, &DW, &DY, &X, &WL, &I, E, scratch, acc ? GV_ACC_DX | GV_ACC_DW : 0);
    check(acc ? "dx (accumulated)" : "dx", r, dx, dx_ref, rows * K, acc ? 1.0f : 0.0f);
    check(acc ? "dw (accumulated)" : "dw", r, dw, dw_mine, El * N * K, acc ? 1.0f : 0.0f);
  }
  gv_dev_free(be, &scratch, sb);
  free(ids), free(x), free(dy), free(wall), free(y_ref), free(dx_ref), free(dw_ref), free(y), free(dx), free(dw);
}

int main(int argc, char **argv)
{
  struct mt_world m;
  mt_start(&m, &argc, &argv);
  run(m.comm, &m.be, 3 + gv_comm_rank(m.comm), 0); /* different token counts per rank */
  run(m.comm, &m.be, 4, 1);                       /* every row to experts 0 and 1: other ranks receive none */
  return mt_finish(&m, "ep_grouped");
}
