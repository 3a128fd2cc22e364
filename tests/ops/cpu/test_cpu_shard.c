/* test_cpu_shard.c - the CPU backend's entries for Ulysses and vocabulary parallelism
 * against plain reference loops: copy2d (strided rows, any dtype, padding untouched),
 * embedding_shard (zero rows / no gradient outside the block; the blocks sum to the whole
 * embedding), and xent_shard (the three forward stages combined by hand as the tp group's
 * all-reduces would: the whole row's loss and lse of gv_xent_fwd; the backward's blocks are
 * the columns of gv_xent_bwd). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt.h"
#include "testutil.h"

static uint64_t seed = 12345;
static float urand(float lo, float hi)
{
  seed = seed * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (float)((double)(seed >> 11) * 0x1p-53);
}

static void test_copy2d(struct gv_backend *be)
{
  enum { R = 7, W = 5, SLD = 13, DLD = 9 };
  float src[R * SLD], dst[R * DLD];
  int32_t isrc[R * SLD], idst[R * DLD];
  for (int i = 0; i < R * SLD; i++) src[i] = urand(-1, 1), isrc[i] = i * 7 - 3;
  for (int i = 0; i < R * DLD; i++) dst[i] = -99.0f, idst[i] = -99;
  gv_copy2d(be, dst + 1, DLD, src + 4, SLD, R, W, GV_DTYPE_F32);
  gv_copy2d(be, idst + 1, DLD, isrc + 4, SLD, R, W, GV_DTYPE_I32);
  int bad = 0;
  for (int r = 0; r < R; r++)
    for (int c = 0; c < DLD; c++) {
      int in = c >= 1 && c < 1 + W;
      float want = in ? src[r * SLD + 4 + c - 1] : -99.0f;
      int32_t iwant = in ? isrc[r * SLD + 4 + c - 1] : -99;
      bad += memcmp(&dst[r * DLD + c], &want, 4) != 0 || idst[r * DLD + c] != iwant;
    }
  CHECK_EQ_INT(0, bad);
  gv_copy2d(be, dst, DLD, src, SLD, 0, W, GV_DTYPE_F32); /* nothing to copy: no call */
}

static void test_embedding_shard(struct gv_backend *be)
{
  enum { B = 2, T = 5, M = B * T, V = 12, NB = 3, VS = V / NB, C = 6 };
  int32_t ids[M] = {0, 11, 4, 5, 3, 8, 12, -1, 7, 4}; /* 12 and -1: in no block */
  float table[V * C], y[M * C], sum[M * C], dy[M * C], dt[VS * C];
  for (int i = 0; i < V * C; i++) table[i] = urand(-1, 1);
  for (int i = 0; i < M * C; i++) dy[i] = urand(-1, 1), sum[i] = 0.0f;
  int bad = 0, badg = 0;
  for (int b = 0; b < NB; b++) {
    int64_t lo = (int64_t)b * VS;
    struct gv_tensor Y = gv_tensor_4d(y, GV_DTYPE_F32, B, T, C, 0), I = gv_tensor_4d(ids, GV_DTYPE_I32, B, T, 0, 0),
                     TB = gv_tensor_4d(table + lo * C, GV_DTYPE_F32, VS, C, 0, 0),
                     DY = gv_tensor_4d(dy, GV_DTYPE_F32, B, T, C, 0), DT = gv_tensor_4d(dt, GV_DTYPE_F32, VS, C, 0, 0);
    for (int i = 0; i < M * C; i++) y[i] = 1e9f; /* every element is written */
    gv_embedding_shard_fwd(be, &Y, &I, &TB, lo);
    for (int i = 0; i < M; i++)
      for (int c = 0; c < C; c++) {
        int in = ids[i] >= lo && ids[i] < lo + VS;
        bad += y[i * C + c] != (in ? table[ids[i] * C + c] : 0.0f);
        sum[i * C + c] += y[i * C + c];
      }
    for (int pass = 0; pass < 2; pass++) { /* overwrite, then accumulate onto 0.5 */
      for (int i = 0; i < VS * C; i++) dt[i] = pass ? 0.5f : 1e9f;
      gv_embedding_shard_bwd(be, &DT, &DY, &I, lo, pass ? GV_ACC_DW : 0);
      for (int k = 0; k < VS; k++)
        for (int c = 0; c < C; c++) {
          double want = pass ? 0.5 : 0.0;
          for (int i = 0; i < M; i++)
            if (ids[i] == lo + k) want += dy[i * C + c];
          badg += fabs(dt[k * C + c] - want) > 1e-6;
        }
    }
  }
  CHECK_EQ_INT(0, bad);
  CHECK_EQ_INT(0, badg);
  for (int i = 0; i < M; i++) /* the blocks' sum is the whole lookup (zero for ids in no block) */
    for (int c = 0; c < C; c++)
      bad += sum[i * C + c] != (ids[i] >= 0 && ids[i] < V ? table[ids[i] * C + c] : 0.0f);
  CHECK_EQ_INT(0, bad);
}

static void test_xent_shard(struct gv_backend *be)
{
  enum { M = 9, V = 24, NB = 3, VS = V / NB };
  int32_t t[M] = {0, 23, 7, 8, -1, 15, 16, 3, -5};
  float x[M * V], lse_ref[M], loss_ref, d_ref[M * V], xb[NB][M * VS], lse[NB][M], part[NB][M], loss[NB], d[M * VS];
  const float scale = 1.0f / 7.0f;
  for (int i = 0; i < M * V; i++) x[i] = urand(-6, 6);
  x[2 * V + 20] = 40.0f; /* a large logit in another block than the max of the others */
  struct gv_tensor L = gv_tensor_4d(&loss_ref, GV_DTYPE_F32, 1, 0, 0, 0),
                   S = gv_tensor_4d(lse_ref, GV_DTYPE_F32, M, 0, 0, 0),
                   X = gv_tensor_4d(x, GV_DTYPE_F32, M, V, 0, 0), TT = gv_tensor_4d(t, GV_DTYPE_I32, M, 0, 0, 0),
                   D = gv_tensor_4d(d_ref, GV_DTYPE_F32, M, V, 0, 0);
  gv_xent_fwd(be, &L, &S, &X, &TT, scale);
  gv_xent_bwd(be, &D, &X, &S, &TT, scale);
  struct gv_tensor LB[NB], SB[NB], PB[NB], XB[NB];
  for (int b = 0; b < NB; b++) {
    for (int i = 0; i < M; i++) memcpy(xb[b] + i * VS, x + i * V + b * VS, sizeof(float) * VS);
    LB[b] = gv_tensor_4d(&loss[b], GV_DTYPE_F32, 1, 0, 0, 0);
    SB[b] = gv_tensor_4d(lse[b], GV_DTYPE_F32, M, 0, 0, 0);
    PB[b] = gv_tensor_4d(part[b], GV_DTYPE_F32, M, 0, 0, 0);
    XB[b] = gv_tensor_4d(xb[b], GV_DTYPE_F32, M, VS, 0, 0);
  }
  /* stage by stage, each followed by the group's all-reduce done here */
  for (int b = 0; b < NB; b++) gv_xent_shard_fwd(be, NULL, &SB[b], NULL, &XB[b], &TT, b * VS, scale, GV_XSHARD_MAX);
  for (int i = 0; i < M; i++) {
    float mx = -INFINITY, want = -INFINITY;
    for (int b = 0; b < NB; b++) mx = lse[b][i] > mx ? lse[b][i] : mx;
    for (int j = 0; j < V; j++) want = x[i * V + j] > want ? x[i * V + j] : want;
    CHECK(mx == want);
    for (int b = 0; b < NB; b++) lse[b][i] = mx;
  }
  for (int b = 0; b < NB; b++)
    gv_xent_shard_fwd(be, NULL, &SB[b], &PB[b], &XB[b], &TT, b * VS, scale, GV_XSHARD_SUMEXP);
  for (int i = 0; i < M; i++) {
    float s = 0.0f;
    for (int b = 0; b < NB; b++) s += part[b][i];
    for (int b = 0; b < NB; b++) part[b][i] = s;
  }
  float total = 0.0f;
  for (int b = 0; b < NB; b++) {
    gv_xent_shard_fwd(be, &LB[b], &SB[b], &PB[b], &XB[b], &TT, b * VS, scale, GV_XSHARD_LOSS);
    total += loss[b];
  }
  CHECK_CLOSE(loss_ref, total, 1e-6, 1e-5);
  for (int b = 0; b < NB; b++)
    for (int i = 0; i < M; i++) CHECK_CLOSE(lse_ref[i], lse[b][i], 1e-6, 1e-6);
  /* backward: this block's columns of the whole row's gradient (aliasing the logits too) */
  int bad = 0;
  for (int b = 0; b < NB; b++) {
    struct gv_tensor DB = gv_tensor_4d(d, GV_DTYPE_F32, M, VS, 0, 0);
    gv_xent_shard_bwd(be, &DB, &XB[b], &SB[b], &TT, b * VS, scale);
    for (int i = 0; i < M; i++)
      for (int j = 0; j < VS; j++) bad += fabsf(d[i * VS + j] - d_ref[i * V + b * VS + j]) > 1e-6f;
    gv_xent_shard_bwd(be, &XB[b], &XB[b], &SB[b], &TT, b * VS, scale);
    for (int i = 0; i < M * VS; i++) bad += xb[b][i] != d[i];
  }
  CHECK_EQ_INT(0, bad);
}

int main(void)
{
  struct gv_backend be;
  gv_backend_init(&be, "cpu", 0);
  test_copy2d(&be);
  test_embedding_shard(&be);
  test_xent_shard(&be);
  gv_backend_free(&be);
  return tu_report("test_cpu_shard");
}
