/* attention.c - scaled dot-product attention, causal or bidirectional, MHA or GQA (query head
 * h reads kv head h / (H/KV)). Flash-style: forward keeps only the per-row logsumexp;
 * backward recomputes P one query block at a time. Each block's products are sgemm calls on
 * strided tiles (OpenBLAS is single-threaded, see gv_cpu_sgemm), and the only scratch is a
 * per-thread BR x S tile pair taken from the backend workspace (no T x T buffer survives).
 *   q, o: (B,T,H,D); k, v: (B,S,KV,D); lse: (B,H,T); row strides H*D and KV*D.
 *   causal: query i sees keys j <= i + (S - T).
 * Options (gv_attn_opts): the scores' scale (default 1/sqrt(D)) and an additive bias
 * (T,S,Hb), head h reading h0 + h, whose gradient (the scores' summed over the batch)
 * backward adds into dbias, and a key padding mask (keys whose id equals the pad id hidden;
 * a row that sees no key gives 0 and lse -inf). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cpu/cpu.h"

enum { BR = 64 };                     /* query rows per tile */

struct attn_dims {
  int64_t B, T, S, H, KV, D, G;       /* G = H / KV query heads per kv head */
  int causal;
  float scale;
  const float *bias;                  /* (T,S,Hb) or NULL */
  float *dbias;
  int64_t Hb, h0;
  const int32_t *key_ids;             /* (B,S) key padding ids or NULL */
  int32_t pad;
};

static struct attn_dims dims_of(const struct gv_tensor *q, const struct gv_tensor *k, int causal,
                                const struct gv_attn_opts *x)
{
  struct attn_dims d = {q->shape[0], q->shape[1], k->shape[1], q->shape[2], k->shape[2],
                        q->shape[3], q->shape[2] / k->shape[2], causal, 0.0f, NULL, NULL, 0, 0, NULL, 0};
  d.scale = x && x->scale != 0.0f ? x->scale : 1.0f / sqrtf((float)d.D);
  d.bias = x && x->bias ? cpu_f32(x->bias) : NULL;
  d.dbias = x && x->dbias ? cpu_f32(x->dbias) : NULL;
  d.Hb = x && (x->bias || x->dbias) ? (x->bias ? x->bias : x->dbias)->shape[2] : 0;
  d.h0 = x ? x->h0 : 0;
  d.key_ids = x && x->key_ids ? (const int32_t *)x->key_ids->data : NULL;
  d.pad = x ? x->pad_id : 0;
  return d;
}

/* Head h's bias from query i0, key 0 (row stride S * Hb, column stride Hb; NULL without one). */
static const float *bias_rows(const struct attn_dims *d, int64_t h, int64_t i0)
{
  return d->bias ? d->bias + i0 * d->S * d->Hb + d->h0 + h : NULL;
}

/* Sample b's key ids (NULL without a padding mask). */
static const int32_t *key_row(const struct attn_dims *d, int64_t b)
{
  return d->key_ids ? d->key_ids + b * d->S : NULL;
}

static size_t tile_floats(int64_t S) { return (size_t)2 * BR * (size_t)S; }

size_t gv_cpu_attention_workspace(struct gv_backend *be, int64_t B, int64_t T, int64_t S,
                                  int64_t H, int64_t KV, int64_t D)
{
  return tile_floats(S) * sizeof(float) * (size_t)cpu_max_threads();
}

/* Threads that fit in the workspace (fatal if not even one). */
static int fit_threads(const struct gv_backend *be, int64_t S)
{
  size_t per = tile_floats(S) * sizeof(float), fit = per ? be->workspace_bytes / per : 0;
  int nt = cpu_max_threads();
  GV_CHECK(fit >= 1, "attention: workspace of %zu bytes is below the %zu one thread needs (size it with gv_backend_workspace_bytes)",
           be->workspace_bytes, per);
  return fit < (size_t)nt ? (int)fit : nt;
}

/* Keys visible to query row i: [0, limit). */
static int64_t key_limit(const struct attn_dims *d, int64_t i)
{
  return d->causal ? i + (d->S - d->T) + 1 : d->S;
}

/* P (br x kend, ld kend) = softmax-ready exp(scale q k^T - shift) for rows i0.., masked to 0
 * (past the causal limit, and the keys whose id in kid is the pad id).
 * Forward (lse == NULL): shift = row max, writes lse_out; backward: shift = saved lse. */
CPU_CLONES
static void block_probs(float *p, const struct attn_dims *d, const float *qb, const float *kb,
                        int64_t i0, int64_t br, int64_t kend, const float *lse, float *lse_out,
                        const float *bias, const int32_t *kid)
{
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)br, (int)kend, (int)d->D, d->scale,
              qb + i0 * d->H * d->D, (int)(d->H * d->D), kb, (int)(d->KV * d->D), 0.0f, p, (int)kend);
  for (int64_t r = 0; r < br; r++) {
    float *row = p + r * kend;
    int64_t lim = key_limit(d, i0 + r);
    lim = lim < kend ? lim : kend;
    if (bias) {
      const float *brow = bias + r * d->S * d->Hb;
      for (int64_t j = 0; j < lim; j++) row[j] += brow[j * d->Hb];
    }
    for (int64_t j = 0; kid && j < lim; j++)
      if (kid[j] == d->pad) row[j] = -INFINITY;
    float shift = 0.0f, sum = 0.0f;
    if (lse) {
      shift = lse[i0 + r];
    } else {
      shift = -INFINITY;
#pragma omp simd reduction(max : shift)
      for (int64_t j = 0; j < lim; j++) shift = row[j] > shift ? row[j] : shift;
    }
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < lim; j++) {
      row[j] = row[j] == -INFINITY ? 0.0f : cpu_expf(row[j] - shift);
      sum += row[j];
    }
    for (int64_t j = lim; j < kend; j++) row[j] = 0.0f;
    if (!lse) {
      float inv = sum > 0.0f ? 1.0f / sum : 0.0f;   /* a row with no visible key gives 0 */
      for (int64_t j = 0; j < lim; j++) row[j] *= inv;
      lse_out[i0 + r] = sum > 0.0f ? shift + logf(sum) : -INFINITY;
    }
  }
}

/* Last key any row of the block [i0, i0 + br) can see, plus one. */
static int64_t block_keys(const struct attn_dims *d, int64_t i0, int64_t br)
{
  int64_t k = key_limit(d, i0 + br - 1);
  return k < d->S ? k : d->S;
}

/* ---- forward ---- */

void gv_cpu_attention_fwd(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                          const struct gv_tensor *q, const struct gv_tensor *k,
                          const struct gv_tensor *v, int causal, const struct gv_attn_opts *x)
{
  struct attn_dims d = dims_of(q, k, causal, x);
  const float *pq = cpu_f32(q), *pk = cpu_f32(k), *pv = cpu_f32(v);
  float *po = cpu_f32(o), *plse = cpu_f32(lse), *ws = be->workspace;
  int nt = fit_threads(be, d.S);
  (void)nt;                                       /* unused without OpenMP */
#pragma omp parallel num_threads(nt)
  {
    float *p = ws + tile_floats(d.S) * (size_t)cpu_thread_id();
#pragma omp for schedule(dynamic) collapse(2)
    for (int64_t b = 0; b < d.B; b++)
      for (int64_t h = 0; h < d.H; h++) {
        const float *qb = pq + b * d.T * d.H * d.D + h * d.D;
        const float *kb = pk + b * d.S * d.KV * d.D + (h / d.G) * d.D;
        const float *vb = pv + b * d.S * d.KV * d.D + (h / d.G) * d.D;
        float *ob = po + b * d.T * d.H * d.D + h * d.D, *lb = plse + (b * d.H + h) * d.T;
        for (int64_t i0 = 0; i0 < d.T; i0 += BR) {
          int64_t br = d.T - i0 < BR ? d.T - i0 : BR, kend = block_keys(&d, i0, br);
          block_probs(p, &d, qb, kb, i0, br, kend, NULL, lb, bias_rows(&d, h, i0), key_row(&d, b));
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)br, (int)d.D, (int)kend, 1.0f,
                      p, (int)kend, vb, (int)(d.KV * d.D), 0.0f, ob + i0 * d.H * d.D,
                      (int)(d.H * d.D));
        }
      }
  }
}

/* ---- ring attention's merge of two partial results ---- */

void gv_cpu_attention_merge(struct gv_backend *be, struct gv_tensor *o, struct gv_tensor *lse,
                            const struct gv_tensor *ob, const struct gv_tensor *lseb)
{
  int64_t R = o->shape[1], H = o->shape[2], D = o->shape[3], L = lse->shape[2];
  float *po = cpu_f32(o), *pl = cpu_f32(lse);
  const float *pb = cpu_f32(ob), *plb = cpu_f32(lseb);
  (void)be;
#pragma omp parallel for collapse(2)
  for (int64_t h = 0; h < H; h++)
    for (int64_t i = 0; i < R; i++) {
      float a = pl[h * L + i], b = plb[h * R + i];
      if (b == -INFINITY)
        continue;
      float m = a > b ? a : b, lnew = m + logf(expf(a - m) + expf(b - m));
      float wa = expf(a - lnew), wb = expf(b - lnew);
      float *orow = po + (i * H + h) * D;
      const float *brow = pb + (i * H + h) * D;
      for (int64_t c = 0; c < D; c++) orow[c] = orow[c] * wa + brow[c] * wb;
      pl[h * L + i] = lnew;
    }
}

/* ---- backward ---- */

/* Rows [0, S) of one kv head's slice of dk (or dv) set to zero. */
static void zero_kv_rows(float *base, const struct attn_dims *d)
{
  for (int64_t s = 0; s < d->S; s++) memset(base + s * d->KV * d->D, 0, (size_t)d->D * sizeof(float));
}

/* dS = P * (dP - rowsum(dO * O)) in place of dP. */
CPU_CLONES
static void block_dscores(float *dp, const float *p, const float *dob, const float *ob,
                          const struct attn_dims *d, int64_t i0, int64_t br, int64_t kend)
{
  int64_t ld = d->H * d->D;
  for (int64_t r = 0; r < br; r++) {
    const float *dor = dob + (i0 + r) * ld, *orow = ob + (i0 + r) * ld;
    float di = 0.0f;
#pragma omp simd reduction(+ : di)
    for (int64_t c = 0; c < d->D; c++) di += dor[c] * orow[c];
    for (int64_t j = 0; j < kend; j++) dp[r * kend + j] = p[r * kend + j] * (dp[r * kend + j] - di);
  }
}

/* One query head's contribution to dq (its rows) and to dk, dv (shared by the group), and
 * its scores' gradient added into its bias gradient (rows of the head). */
static void head_bwd(float *p, float *dp, const struct attn_dims *d, int64_t b, int64_t h, const float *qb,
                     const float *kb, const float *vb, const float *ob, const float *dob,
                     const float *lb, float *dqb, float *dkb, float *dvb, int acc_dq)
{
  int ldq = (int)(d->H * d->D), ldk = (int)(d->KV * d->D), D = (int)d->D;
  for (int64_t i0 = 0; i0 < d->T; i0 += BR) {
    int64_t br = d->T - i0 < BR ? d->T - i0 : BR, kend = block_keys(d, i0, br);
    block_probs(p, d, qb, kb, i0, br, kend, lb, NULL, bias_rows(d, h, i0), key_row(d, b));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)br, (int)kend, D, 1.0f,
                dob + i0 * ldq, ldq, vb, ldk, 0.0f, dp, (int)kend);
    block_dscores(dp, p, dob, ob, d, i0, br, kend);
    for (int64_t r = 0; d->dbias && r < br; r++) {
      float *drow = d->dbias + (i0 + r) * d->S * d->Hb + d->h0 + h;
      const float *srow = dp + r * kend;
      for (int64_t j = 0; j < kend; j++) drow[j * d->Hb] += srow[j];
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kend, D, (int)br, 1.0f, p, (int)kend,
                dob + i0 * ldq, ldq, 1.0f, dvb, ldk);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)br, D, (int)kend, d->scale, dp,
                (int)kend, kb, ldk, acc_dq ? 1.0f : 0.0f, dqb + i0 * ldq, ldq);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kend, D, (int)br, d->scale, dp,
                (int)kend, qb + i0 * ldq, ldq, 1.0f, dkb, ldk);
  }
}

/* Parallel over (batch, kv head): the query heads of a group accumulate into the same dk/dv
 * rows, so a task owns them all; dq, dk, dv follow GV_ACC_DX. */
void gv_cpu_attention_bwd(struct gv_backend *be, struct gv_tensor *dq, struct gv_tensor *dk,
                          struct gv_tensor *dv, const struct gv_tensor *dout,
                          const struct gv_tensor *q, const struct gv_tensor *k,
                          const struct gv_tensor *v, const struct gv_tensor *o,
                          const struct gv_tensor *lse, int causal, int flags, const struct gv_attn_opts *x)
{
  struct attn_dims d = dims_of(q, k, causal, x);
  const float *pq = cpu_f32(q), *pk = cpu_f32(k), *pv = cpu_f32(v), *po = cpu_f32(o),
              *pdo = cpu_f32(dout), *plse = cpu_f32(lse);
  float *pdq = cpu_f32(dq), *pdk = cpu_f32(dk), *pdv = cpu_f32(dv), *ws = be->workspace;
  int acc = flags & GV_ACC_DX;
  GV_CHECK(pdq && pdk && pdv, "attention_bwd needs dq, dk and dv");
  int nt = fit_threads(be, d.S);
  (void)nt;                                       /* unused without OpenMP */
#pragma omp parallel num_threads(nt)
  {
    float *p = ws + tile_floats(d.S) * (size_t)cpu_thread_id(), *dp = p + BR * d.S;
    /* task t: kv head t / B, sample t % B; with a bias gradient (summed over the samples of
     * a head) a task takes every sample of its kv head */
    int64_t per = d.dbias ? d.B : 1;
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < d.B * d.KV; t += per)
      for (int64_t b = t % d.B; b < t % d.B + per; b++) {
        int64_t kvh = t / d.B, qoff = b * d.T * d.H * d.D, koff = b * d.S * d.KV * d.D + kvh * d.D;
        if (!acc) {
          zero_kv_rows(pdk + koff, &d);
          zero_kv_rows(pdv + koff, &d);
        }
        for (int64_t h = kvh * d.G; h < (kvh + 1) * d.G; h++)
          head_bwd(p, dp, &d, b, h, pq + qoff + h * d.D, pk + koff, pv + koff, po + qoff + h * d.D,
                   pdo + qoff + h * d.D, plse + (b * d.H + h) * d.T, pdq + qoff + h * d.D,
                   pdk + koff, pdv + koff, acc);
      }
  }
}
