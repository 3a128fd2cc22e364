/* moe.c - mixture-of-experts kernels of the CPU backend (the contracts are in gvrt.h, "Mixture
 * of experts"): top-k of each row, the gather of chosen columns, the routing of token rows to
 * experts (a stable counting sort of the assignments by expert), the per-expert GEMMs over
 * the routed rows (one sgemm per expert), the gated combination back into token order, and
 * the load-balancing loss. Every sum runs in a fixed order: results do not depend on the
 * thread count.
 *   idx i32 [M, k], x [M, N|C], routed rows [M k, C], w [E, N, K] */
#include <stdlib.h>

#include "cpu/cpu.h"

/* The routing of idx: pos[a] for each assignment a (M k of them) and off[e] .. off[e+1], the
 * rows of expert e (off has E + 1 entries). Caller frees the returned block (pos, then off). */
static int64_t *route(const struct gv_tensor *idx, int64_t E, int64_t **off_out)
{
  const int32_t *pi = idx->data;
  int64_t A = gv_tensor_numel(idx);
  int64_t *pos = malloc(sizeof(int64_t) * (size_t)(A + E + 1));
  GV_CHECK(pos != NULL, "moe: cannot allocate the routing of %lld assignments", (long long)A);
  int64_t *off = pos + A;
  for (int64_t e = 0; e <= E; e++) off[e] = 0;
  for (int64_t a = 0; a < A; a++) {
    GV_CHECK(pi[a] >= 0 && pi[a] < E, "moe: expert id %d of assignment %lld is not below %lld experts", pi[a],
             (long long)a, (long long)E);
    off[pi[a] + 1]++;
  }
  for (int64_t e = 0; e < E; e++) off[e + 1] += off[e];
  int64_t *next = malloc(sizeof(int64_t) * (size_t)(E ? E : 1));
  GV_CHECK(next != NULL, "moe: cannot allocate the routing of %lld experts", (long long)E);
  for (int64_t e = 0; e < E; e++) next[e] = off[e];
  for (int64_t a = 0; a < A; a++) pos[a] = next[pi[a]]++;
  free(next);
  *off_out = off;
  return pos;
}

void gv_cpu_topk(struct gv_backend *be, struct gv_tensor *idx, const struct gv_tensor *x)
{
  (void)be;
  const float *px = cpu_f32(x);
  int32_t *pi = idx->data;
  int64_t M = cpu_rows(x), N = cpu_cols(x), k = cpu_cols(idx);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    const float *r = px + i * N;
    int32_t *o = pi + i * k;
    for (int64_t j = 0; j < k; j++) { /* selection: k is small (the experts a token picks) */
      int64_t best = -1;
      for (int64_t c = 0; c < N; c++) {
        int taken = 0;
        for (int64_t q = 0; q < j && !taken; q++) taken = o[q] == c;
        if (!taken && (best < 0 || r[c] > r[best])) best = c;
      }
      o[j] = (int32_t)best;
    }
  }
}

void gv_cpu_take_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                     const struct gv_tensor *idx)
{
  (void)be;
  const float *px = cpu_f32(x);
  float *py = cpu_f32(y);
  const int32_t *pi = idx->data;
  int64_t M = cpu_rows(x), N = cpu_cols(x), k = cpu_cols(idx);
  for (int64_t a = 0; a < M * k; a++) {
    GV_CHECK(pi[a] >= 0 && pi[a] < N, "take: index %d is not below %lld columns", pi[a], (long long)N);
    py[a] = px[(a / k) * N + pi[a]];
  }
}

void gv_cpu_take_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dy,
                     const struct gv_tensor *idx, int flags)
{
  (void)be;
  float *pdx = cpu_f32(dx);
  const float *pdy = cpu_f32(dy);
  const int32_t *pi = idx->data;
  int64_t M = cpu_rows(dx), N = cpu_cols(dx), k = cpu_cols(idx);
  if (!(flags & GV_ACC_DX)) memset(pdx, 0, sizeof(float) * (size_t)(M * N));
  for (int64_t a = 0; a < M * k; a++) {
    GV_CHECK(pi[a] >= 0 && pi[a] < N, "take: index %d is not below %lld columns", pi[a], (long long)N);
    pdx[(a / k) * N + pi[a]] += pdy[a];
  }
}

void gv_cpu_moe_permute_fwd(struct gv_backend *be, struct gv_tensor *xp, const struct gv_tensor *x,
                            const struct gv_tensor *idx, int64_t E)
{
  (void)be;
  int64_t *off, *pos = route(idx, E, &off);
  const float *px = cpu_f32(x);
  float *pp = cpu_f32(xp);
  int64_t C = cpu_cols(x), k = cpu_cols(idx), A = gv_tensor_numel(idx);
#pragma omp parallel for schedule(static)
  for (int64_t a = 0; a < A; a++) memcpy(pp + pos[a] * C, px + (a / k) * C, sizeof(float) * (size_t)C);
  free(pos);
}

void gv_cpu_moe_permute_bwd(struct gv_backend *be, struct gv_tensor *dx, const struct gv_tensor *dxp,
                            const struct gv_tensor *idx, int64_t E, int flags)
{
  (void)be;
  int64_t *off, *pos = route(idx, E, &off);
  float *pdx = cpu_f32(dx);
  const float *pp = cpu_f32(dxp);
  int64_t M = cpu_rows(dx), C = cpu_cols(dx), k = cpu_cols(idx);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < M; t++)
    for (int64_t c = 0; c < C; c++) {
      float s = 0.0f;
      for (int64_t j = 0; j < k; j++) s += pp[pos[t * k + j] * C + c];
      cpu_store(&pdx[t * C + c], s, flags & GV_ACC_DX);
    }
  free(pos);
}

void gv_cpu_moe_grouped_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *x,
                            const struct gv_tensor *w, const struct gv_tensor *idx)
{
  (void)be;
  int64_t E = w->shape[0], N = w->shape[1], K = w->shape[2];
  int64_t *off, *pos = route(idx, E, &off);
  const float *px = cpu_f32(x), *pw = cpu_f32(w);
  float *py = cpu_f32(y);
  for (int64_t e = 0; e < E; e++)
    if (off[e + 1] > off[e])
      gv_cpu_sgemm(0, 1, off[e + 1] - off[e], N, K, 1.0f, px + off[e] * K, K, pw + e * N * K, K, 0.0f,
                   py + off[e] * N, N);
  free(pos);
}

void gv_cpu_moe_grouped_bwd(struct gv_backend *be, struct gv_tensor *dx, struct gv_tensor *dw,
                            const struct gv_tensor *dy, const struct gv_tensor *x, const struct gv_tensor *w,
                            const struct gv_tensor *idx, int flags)
{
  (void)be;
  int64_t E = w->shape[0], N = w->shape[1], K = w->shape[2];
  int64_t *off, *pos = route(idx, E, &off);
  const float *px = cpu_f32(x), *pw = cpu_f32(w), *pdy = cpu_f32(dy);
  float *pdx = cpu_f32(dx), *pdw = cpu_f32(dw);
  for (int64_t e = 0; e < E; e++) {
    int64_t r0 = off[e], n = off[e + 1] - off[e];
    if (pdx && n)
      gv_cpu_sgemm(0, 0, n, K, N, 1.0f, pdy + r0 * N, N, pw + e * N * K, K, (flags & GV_ACC_DX) ? 1.0f : 0.0f,
                   pdx + r0 * K, K);
    if (pdw && n)
      gv_cpu_sgemm(1, 0, N, K, n, 1.0f, pdy + r0 * N, N, px + r0 * K, K, (flags & GV_ACC_DW) ? 1.0f : 0.0f,
                   pdw + e * N * K, K);
    else if (pdw && !(flags & GV_ACC_DW)) /* an expert no token chose: a zero gradient */
      memset(pdw + e * N * K, 0, sizeof(float) * (size_t)(N * K));
  }
  free(pos);
}

void gv_cpu_moe_unpermute_fwd(struct gv_backend *be, struct gv_tensor *y, const struct gv_tensor *yp,
                              const struct gv_tensor *gates, const struct gv_tensor *idx, int64_t E)
{
  (void)be;
  int64_t *off, *pos = route(idx, E, &off);
  const float *pp = cpu_f32(yp), *pg = cpu_f32(gates);
  float *py = cpu_f32(y);
  int64_t M = cpu_rows(y), C = cpu_cols(y), k = cpu_cols(idx);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < M; t++)
    for (int64_t c = 0; c < C; c++) {
      float s = 0.0f;
      for (int64_t j = 0; j < k; j++) s += pg[t * k + j] * pp[pos[t * k + j] * C + c];
      py[t * C + c] = s;
    }
  free(pos);
}

void gv_cpu_moe_unpermute_bwd(struct gv_backend *be, struct gv_tensor *dyp, struct gv_tensor *dgates,
                              const struct gv_tensor *dy, const struct gv_tensor *yp, const struct gv_tensor *gates,
                              const struct gv_tensor *idx, int64_t E, int flags)
{
  (void)be;
  int64_t *off, *pos = route(idx, E, &off);
  const float *pp = cpu_f32(yp), *pg = cpu_f32(gates), *pdy = cpu_f32(dy);
  float *pdp = cpu_f32(dyp), *pdg = cpu_f32(dgates);
  int64_t C = cpu_cols(dy), k = cpu_cols(idx), A = gv_tensor_numel(idx);
  int acc = flags & GV_ACC_DX;
#pragma omp parallel for schedule(static)
  for (int64_t a = 0; a < A; a++) {
    const float *d = pdy + (a / k) * C, *r = pp + pos[a] * C;
    float dot = 0.0f;
    for (int64_t c = 0; c < C; c++) {
      dot += d[c] * r[c];
      if (pdp) cpu_store(&pdp[pos[a] * C + c], pg[a] * d[c], acc);
    }
    if (pdg) cpu_store(&pdg[a], dot, acc);
  }
  free(pos);
}

/* c_e: the assignments of each expert, as floats. */
static float *expert_counts(const struct gv_tensor *idx, int64_t E)
{
  const int32_t *pi = idx->data;
  float *cnt = calloc((size_t)(E ? E : 1), sizeof(float));
  GV_CHECK(cnt != NULL, "moe_aux: cannot allocate %lld counts", (long long)E);
  for (int64_t a = 0; a < gv_tensor_numel(idx); a++) {
    GV_CHECK(pi[a] >= 0 && pi[a] < E, "moe_aux: expert id %d is not below %lld experts", pi[a], (long long)E);
    cnt[pi[a]] += 1.0f;
  }
  return cnt;
}

void gv_cpu_moe_aux_fwd(struct gv_backend *be, struct gv_tensor *loss, const struct gv_tensor *probs,
                        const struct gv_tensor *idx, float scale)
{
  (void)be;
  const float *pp = cpu_f32(probs);
  int64_t M = cpu_rows(probs), E = cpu_cols(probs);
  float *cnt = expert_counts(idx, E);
  double s = 0.0;
  for (int64_t t = 0; t < M; t++)
    for (int64_t e = 0; e < E; e++) s += (double)cnt[e] * pp[t * E + e];
  free(cnt);
  cpu_f32(loss)[0] = (float)(s * scale);
}

void gv_cpu_moe_aux_bwd(struct gv_backend *be, struct gv_tensor *dprobs, const struct gv_tensor *idx, float scale,
                        int flags)
{
  (void)be;
  float *pd = cpu_f32(dprobs);
  int64_t M = cpu_rows(dprobs), E = cpu_cols(dprobs);
  float *cnt = expert_counts(idx, E);
  for (int64_t t = 0; t < M; t++)
    for (int64_t e = 0; e < E; e++) cpu_store(&pd[t * E + e], scale * cnt[e], flags & GV_ACC_DX);
  free(cnt);
}
