/* test_ring_attention.c - ring attention over the world as the cp group (zigzag split)
 * against single-rank causal attention of the whole sequence, forward (o, lse) and
 * backward (dq, dk, dv, overwritten and accumulated), MHA and GQA, two samples, a chunk
 * length that is not a multiple of the kernels' 64-row tiles.
 * Tolerance: 2e-6 absolute + 2e-5 relative. The ring computes the same sums in another
 * order (each block's softmax against its own maximum, then rescaled and added through the
 * log-sum-exp merge; dK/dV summed block by block around the ring), so results differ from
 * one rank's by float32 rounding only: a few ulps of values of order 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/mpi_testutil.h"

enum { B = 2, H = 4, D = 8 };

/* This rank's zigzag rows of a [B,Tg,X,D] tensor into a [B,T,X,D] one (or back, adding). */
static void zigzag_rows(float *local, const float *global, int64_t Tg, int64_t X, int r, int P)
{
  int64_t T = Tg / P;
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < T; i++)
      memcpy(local + (b * T + i) * X * D, global + (b * Tg + gv_zigzag_pos(i, T, r, P)) * X * D,
             sizeof(float) * (size_t)(X * D));
}

static void check_rows(const char *what, const float *got, const float *ref_global, int64_t Tg, int64_t X, int r,
                       int P, float add)
{
  int64_t T = Tg / P, n = B * T * X * D;
  float *want = malloc(sizeof(float) * (size_t)n);
  zigzag_rows(want, ref_global, Tg, X, r, P);
  mt_check_close(what, r, got, want, n, add, 2e-6, 2e-5);
  free(want);
}

static void run(struct gv_comm *w, struct gv_backend *be, int64_t chunk, int64_t KV)
{
  int r = gv_comm_rank(w), P = gv_comm_size(w);
  int64_t Tg = 2 * P * chunk, T = 2 * chunk, nq = B * Tg * H * D, nk = B * Tg * KV * D;
  float *q = mt_fill_rand(nq, 1), *k = mt_fill_rand(nk, 2), *v = mt_fill_rand(nk, 3), *dout = mt_fill_rand(nq, 4);
  /* the single-rank reference (every rank computes it) */
  float *o = calloc((size_t)nq, 4), *lse = calloc((size_t)(B * H * Tg), 4), *dq = calloc((size_t)nq, 4),
        *dk = calloc((size_t)nk, 4), *dv = calloc((size_t)nk, 4);
  struct gv_tensor tq = gv_tensor_4d(q, GV_DTYPE_F32, B, Tg, H, D), tk = gv_tensor_4d(k, GV_DTYPE_F32, B, Tg, KV, D),
                   tv = gv_tensor_4d(v, GV_DTYPE_F32, B, Tg, KV, D), to = gv_tensor_4d(o, GV_DTYPE_F32, B, Tg, H, D),
                   tl = gv_tensor_4d(lse, GV_DTYPE_F32, B, H, Tg, 0), tdo = gv_tensor_4d(dout, GV_DTYPE_F32, B, Tg, H, D),
                   tdq = gv_tensor_4d(dq, GV_DTYPE_F32, B, Tg, H, D), tdk = gv_tensor_4d(dk, GV_DTYPE_F32, B, Tg, KV, D),
                   tdv = gv_tensor_4d(dv, GV_DTYPE_F32, B, Tg, KV, D);
  size_t ws = gv_backend_workspace_bytes(be, B, Tg, Tg, H, KV, D);
  void *work = malloc(ws);
  gv_backend_set_workspace(be, work, ws);
  gv_attention_fwd(be, &to, &tl, &tq, &tk, &tv, 1);
  gv_attention_bwd(be, &tdq, &tdk, &tdv, &tdo, &tq, &tk, &tv, &to, &tl, 1, 0);

  /* this rank's rows through the ring */
  int64_t lq = B * T * H * D, lk = B * T * KV * D;
  float *mq = malloc(4 * (size_t)lq), *mk = malloc(4 * (size_t)lk), *mv = malloc(4 * (size_t)lk),
        *mdo = malloc(4 * (size_t)lq), *mo = malloc(4 * (size_t)lq), *ml = malloc(4 * (size_t)(B * H * T)),
        *mdq = malloc(4 * (size_t)lq), *mdk = malloc(4 * (size_t)lk), *mdv = malloc(4 * (size_t)lk);
  zigzag_rows(mq, q, Tg, H, r, P);
  zigzag_rows(mk, k, Tg, KV, r, P);
  zigzag_rows(mv, v, Tg, KV, r, P);
  zigzag_rows(mdo, dout, Tg, H, r, P);
  struct gv_tensor lq4 = gv_tensor_4d(mq, GV_DTYPE_F32, B, T, H, D), lk4 = gv_tensor_4d(mk, GV_DTYPE_F32, B, T, KV, D),
                   lv4 = gv_tensor_4d(mv, GV_DTYPE_F32, B, T, KV, D), lo4 = gv_tensor_4d(mo, GV_DTYPE_F32, B, T, H, D),
                   ll = gv_tensor_4d(ml, GV_DTYPE_F32, B, H, T, 0), ldo = gv_tensor_4d(mdo, GV_DTYPE_F32, B, T, H, D),
                   ldq = gv_tensor_4d(mdq, GV_DTYPE_F32, B, T, H, D), ldk = gv_tensor_4d(mdk, GV_DTYPE_F32, B, T, KV, D),
                   ldv = gv_tensor_4d(mdv, GV_DTYPE_F32, B, T, KV, D);
  size_t sb = gv_ring_attention_scratch_bytes(B, T, H, KV, D, 1);
  CHECK(sb >= gv_ring_attention_scratch_bytes(B, T, H, KV, D, 0));
  void *scratch = malloc(sb);
  gv_ring_attention_fwd(w, be, &lo4, &ll, &lq4, &lk4, &lv4, scratch);
  check_rows("o", mo, o, Tg, H, r, P, 0.0f);
  for (int64_t b = 0; b < B; b++) /* lse [B,H,T]: row i of head h */
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < T; i++)
        CHECK_CLOSE(lse[(b * H + h) * Tg + gv_zigzag_pos(i, T, r, P)], ml[(b * H + h) * T + i], 2e-6, 2e-5);
  gv_ring_attention_bwd(w, be, &ldq, &ldk, &ldv, &ldo, &lq4, &lk4, &lv4, &lo4, &ll, scratch, 0);
  check_rows("dq", mdq, dq, Tg, H, r, P, 0.0f);
  check_rows("dk", mdk, dk, Tg, KV, r, P, 0.0f);
  check_rows("dv", mdv, dv, Tg, KV, r, P, 0.0f);
  for (int64_t i = 0; i < lq; i++) mdq[i] = 1.0f; /* GV_ACC_DX adds */
  for (int64_t i = 0; i < lk; i++) mdk[i] = mdv[i] = 1.0f;
  gv_ring_attention_bwd(w, be, &ldq, &ldk, &ldv, &ldo, &lq4, &lk4, &lv4, &lo4, &ll, scratch, GV_ACC_DX);
  check_rows("dq+1", mdq, dq, Tg, H, r, P, 1.0f);
  check_rows("dk+1", mdk, dk, Tg, KV, r, P, 1.0f);
  check_rows("dv+1", mdv, dv, Tg, KV, r, P, 1.0f);
  gv_backend_set_workspace(be, NULL, 0);
  free(work);
  free(scratch);
  float *all[] = {q, k, v, dout, o, lse, dq, dk, dv, mq, mk, mv, mdo, mo, ml, mdq, mdk, mdv};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

int main(int argc, char **argv)
{
  struct mt_world m;
  mt_start(&m, &argc, &argv);
  run(m.comm, &m.be, 5, H);  /* MHA, chunks of 5 rows */
  run(m.comm, &m.be, 70, 2); /* GQA, chunks longer than a 64-row tile */
  return mt_finish(&m, "ring_attention");
}
