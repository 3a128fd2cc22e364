/* bench_cuda_layer.c - one LLaMA-7B-shaped decoder layer (hidden 4096, 32 heads of 128, no
 * GQA, SwiGLU FFN 11008, RMSNorm, RoPE, causal attention, seq 2048) forward + backward in
 * bf16 on the CUDA backend, through the gv_* ops of gvrt.h only. Prints per op (summed over
 * its calls in the layer) the median ms over --reps, achieved TFLOP/s and % of peak, the
 * total (ops timed apart, and the whole layer without per-op syncs), and cuBLASLt's
 * TFLOP/s on the two GEMM shapes alone, for batch sizes 1..4 (or --batch B).
 * Timing: gv_backend_sync + CLOCK_MONOTONIC around each op (one sync per op, ~10 us).
 * FLOPs: linear 2MNK forward, 4MNK backward (dx and dW); causal attention 2BHT^2D forward
 * (half of 4BHT^2D) and 2.5x that backward, as FlashAttention counts them; norms, RoPE,
 * SwiGLU and adds count 0 (memory-bound: no TFLOP/s shown).
 * Not a test: without a usable GPU it prints why and exits 0. Needs the whole CUDA op set
 * (rmsnorm, rope, swiglu, add too): an op that is still pending is fatal. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gvrt.h"


#define BF16 GV_DTYPE_BF16
#define F32 GV_DTYPE_F32

enum { MAX_REPS = 64, MAX_OPS = 32 };

static const int64_t C = 4096, H = 32, D = 128, F = 11008;

struct op_stat {
  const char *name;
  double flop;               /* per rep */
  double ms[MAX_REPS];       /* per rep, summed over the op's calls */
};

struct bench {
  struct gv_backend be;
  int64_t B, T, M;
  int reps, rep;
  struct op_stat ops[MAX_OPS];
  int nops;
  double t0;
  /* weights and their gradients */
  struct gv_tensor wq, wk, wv, wo, wg, wu, wd, n1, n2;
  struct gv_tensor dwq, dwk, dwv, dwo, dwg, dwu, dwd, dn1, dn2;
  /* activations (forward) */
  struct gv_tensor x, h1, q, k, v, qr, kr, o, lse, a, x2, h2, g, u, s, d, y, r1, r2;
  /* gradients (backward) */
  struct gv_tensor dy, ds, dg, du, dh2, dx2, dob, dq, dk, dv, dqr, dkr, dh1, dx;
};

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- buffers ---- */

/* A device tensor filled from a cheap hash, values in [-amp, amp). */
static struct gv_tensor tensor(struct bench *s, enum gv_dtype dt, int64_t d0, int64_t d1, int64_t d2,
                               int64_t d3, float amp)
{
  struct gv_tensor t = gv_tensor_4d(NULL, dt, d0, d1, d2, d3);
  int64_t n = gv_tensor_numel(&t);
  size_t es = gv_dtype_size(dt);
  void *h = malloc((size_t)n * es);
  for (int64_t i = 0; i < n; i++) {
    float f = amp * ((float)((uint32_t)(i * 2654435761u) % 2001u) / 1000.0f - 1.0f);
    if (dt == BF16) ((uint16_t *)h)[i] = gv_bf16_from_float(f);
    else ((float *)h)[i] = f;
  }
  t.data = gv_dev_alloc(&s->be, (size_t)n * es);
  gv_dev_memcpy(&s->be, t.data, h, (size_t)n * es, GV_COPY_H2D);
  free(h);
  return t;
}

static struct gv_tensor as4(const struct gv_tensor *t, int64_t B, int64_t T)
{
  struct gv_tensor r = *t;
  int64_t shape[4] = {B, T, t->shape[1] / D, D};
  return gv_tensor_reshape(&r, 4, shape);
}

static void release(struct bench *s, struct gv_tensor *t)
{
  gv_dev_free(&s->be, &t->data, gv_tensor_bytes(t));
}

static void alloc_all(struct bench *s)
{
  int64_t M = s->M;
  float wa = 0.02f;
  s->wq = tensor(s, BF16, C, C, 0, 0, wa), s->wk = tensor(s, BF16, C, C, 0, 0, wa);
  s->wv = tensor(s, BF16, C, C, 0, 0, wa), s->wo = tensor(s, BF16, C, C, 0, 0, wa);
  s->wg = tensor(s, BF16, F, C, 0, 0, wa), s->wu = tensor(s, BF16, F, C, 0, 0, wa);
  s->wd = tensor(s, BF16, C, F, 0, 0, wa);
  s->n1 = tensor(s, BF16, C, 0, 0, 0, 1.0f), s->n2 = tensor(s, BF16, C, 0, 0, 0, 1.0f);
  s->dwq = tensor(s, BF16, C, C, 0, 0, 0), s->dwk = tensor(s, BF16, C, C, 0, 0, 0);
  s->dwv = tensor(s, BF16, C, C, 0, 0, 0), s->dwo = tensor(s, BF16, C, C, 0, 0, 0);
  s->dwg = tensor(s, BF16, F, C, 0, 0, 0), s->dwu = tensor(s, BF16, F, C, 0, 0, 0);
  s->dwd = tensor(s, BF16, C, F, 0, 0, 0);
  s->dn1 = tensor(s, BF16, C, 0, 0, 0, 0), s->dn2 = tensor(s, BF16, C, 0, 0, 0, 0);
  struct gv_tensor *mc[] = {&s->x, &s->h1, &s->q, &s->k, &s->v, &s->qr, &s->kr, &s->o, &s->a, &s->x2,
                            &s->h2, &s->d, &s->y, &s->dy, &s->dh2, &s->dx2, &s->dob, &s->dq, &s->dk,
                            &s->dv, &s->dqr, &s->dkr, &s->dh1, &s->dx};
  for (size_t i = 0; i < sizeof mc / sizeof *mc; i++) *mc[i] = tensor(s, BF16, M, C, 0, 0, 1.0f);
  struct gv_tensor *mf[] = {&s->g, &s->u, &s->s, &s->ds, &s->dg, &s->du};
  for (size_t i = 0; i < sizeof mf / sizeof *mf; i++) *mf[i] = tensor(s, BF16, M, F, 0, 0, 1.0f);
  s->lse = tensor(s, F32, s->B, H, s->T, 0, 0);
  s->r1 = tensor(s, F32, M, 0, 0, 0, 0), s->r2 = tensor(s, F32, M, 0, 0, 0, 0);
  size_t ws = gv_backend_workspace_bytes(&s->be, s->B, s->T, s->T, H, H, D);
  gv_backend_set_workspace(&s->be, gv_dev_alloc(&s->be, ws), ws);
}

static void free_all(struct bench *s)
{
  struct gv_tensor *all[] = {&s->wq, &s->wk, &s->wv, &s->wo, &s->wg, &s->wu, &s->wd, &s->n1, &s->n2,
                             &s->dwq, &s->dwk, &s->dwv, &s->dwo, &s->dwg, &s->dwu, &s->dwd, &s->dn1,
                             &s->dn2, &s->x, &s->h1, &s->q, &s->k, &s->v, &s->qr, &s->kr, &s->o, &s->lse,
                             &s->a, &s->x2, &s->h2, &s->g, &s->u, &s->s, &s->d, &s->y, &s->r1, &s->r2,
                             &s->dy, &s->ds, &s->dg, &s->du, &s->dh2, &s->dx2, &s->dob, &s->dq, &s->dk,
                             &s->dv, &s->dqr, &s->dkr, &s->dh1, &s->dx};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) release(s, all[i]);
  gv_dev_free(&s->be, &s->be.workspace, s->be.workspace_bytes);
  gv_backend_set_workspace(&s->be, NULL, 0);
}

/* ---- per-op timing: op_begin / op_end around each call (rep < 0: warm-up, not kept) ---- */

static void op_begin(struct bench *s)
{
  gv_backend_sync(&s->be);
  s->t0 = now();
}

static void op_end(struct bench *s, const char *name, double flop)
{
  gv_backend_sync(&s->be);
  double ms = 1e3 * (now() - s->t0);
  if (s->rep < 0) return;
  int i = 0;
  while (i < s->nops && strcmp(s->ops[i].name, name)) i++;
  if (i == s->nops) {
    if (s->nops == MAX_OPS) return;
    memset(&s->ops[i], 0, sizeof s->ops[i]);
    s->ops[i].name = name;
    s->nops++;
  }
  if (s->rep == 0) s->ops[i].flop += flop;   /* counted once per call site, first rep */
  s->ops[i].ms[s->rep] += ms;
}

#define TIMED(s, name, flop, ...) do { op_begin(s); __VA_ARGS__; op_end(s, name, flop); } while (0)

static double lin_flop(struct bench *s, int64_t n, int64_t k) { return 2.0 * (double)s->M * (double)n * (double)k; }
static double attn_flop(struct bench *s) { return 2.0 * (double)s->B * H * (double)s->T * (double)s->T * D; }

/* ---- the layer ---- */

/* timed != 0: every op between syncs (the per-op table); 0: one stream of ops. */
#define OP(name, flop, ...) do { if (timed) TIMED(s, name, flop, __VA_ARGS__); else { __VA_ARGS__; } } while (0)

static void layer_fwd(struct bench *s, int timed)
{
  struct gv_backend *be = &s->be;
  int64_t B = s->B, T = s->T;
  struct gv_tensor q4 = as4(&s->q, B, T), k4 = as4(&s->k, B, T), v4 = as4(&s->v, B, T), qr4 = as4(&s->qr, B, T),
                   kr4 = as4(&s->kr, B, T), o4 = as4(&s->o, B, T);
  OP("rmsnorm fwd", 0, gv_rmsnorm_fwd(be, &s->h1, &s->r1, &s->x, &s->n1, 1e-5f));
  OP("linear qkv fwd", 3 * lin_flop(s, C, C), {
    gv_linear_fwd(be, &s->q, &s->h1, &s->wq, NULL);
    gv_linear_fwd(be, &s->k, &s->h1, &s->wk, NULL);
    gv_linear_fwd(be, &s->v, &s->h1, &s->wv, NULL);
  });
  OP("rope fwd", 0, { gv_rope_fwd(be, &qr4, &q4, 10000.0f, 0, 0); gv_rope_fwd(be, &kr4, &k4, 10000.0f, 0, 0); });
  OP("attention fwd", attn_flop(s), gv_attention_fwd(be, &o4, &s->lse, &qr4, &kr4, &v4, 1));
  OP("linear o fwd", lin_flop(s, C, C), gv_linear_fwd(be, &s->a, &s->o, &s->wo, NULL));
  OP("add fwd", 0, gv_add_fwd(be, &s->x2, &s->x, &s->a));
  OP("rmsnorm fwd", 0, gv_rmsnorm_fwd(be, &s->h2, &s->r2, &s->x2, &s->n2, 1e-5f));
  OP("linear gate+up fwd", 2 * lin_flop(s, F, C), {
    gv_linear_fwd(be, &s->g, &s->h2, &s->wg, NULL);
    gv_linear_fwd(be, &s->u, &s->h2, &s->wu, NULL);
  });
  OP("swiglu fwd", 0, gv_swiglu_fwd(be, &s->s, &s->g, &s->u));
  OP("linear down fwd", lin_flop(s, C, F), gv_linear_fwd(be, &s->d, &s->s, &s->wd, NULL));
  OP("add fwd", 0, gv_add_fwd(be, &s->y, &s->x2, &s->d));
}

static void layer_bwd(struct bench *s, int timed)
{
  struct gv_backend *be = &s->be;
  int64_t B = s->B, T = s->T;
  size_t mc = gv_tensor_bytes(&s->dy);
  struct gv_tensor qr4 = as4(&s->qr, B, T), kr4 = as4(&s->kr, B, T), v4 = as4(&s->v, B, T), o4 = as4(&s->o, B, T),
                   do4 = as4(&s->dob, B, T), dq4 = as4(&s->dq, B, T), dk4 = as4(&s->dk, B, T),
                   dv4 = as4(&s->dv, B, T), dqr4 = as4(&s->dqr, B, T), dkr4 = as4(&s->dkr, B, T);
  int acc = GV_ACC_DX;
  OP("linear down bwd", 2 * lin_flop(s, C, F), gv_linear_bwd(be, &s->ds, &s->dwd, NULL, &s->dy, &s->s, &s->wd, 0));
  OP("swiglu bwd", 0, gv_swiglu_bwd(be, &s->dg, &s->du, &s->ds, &s->g, &s->u, 0));
  OP("linear gate+up bwd", 4 * lin_flop(s, F, C), {
    gv_linear_bwd(be, &s->dh2, &s->dwg, NULL, &s->dg, &s->h2, &s->wg, 0);
    gv_linear_bwd(be, &s->dh2, &s->dwu, NULL, &s->du, &s->h2, &s->wu, acc);
  });
  /* residual: dx2 = dy + rmsnorm_bwd(dh2) */
  OP("rmsnorm bwd", 0, {
    gv_dev_memcpy(be, s->dx2.data, s->dy.data, mc, GV_COPY_D2D);
    gv_rmsnorm_bwd(be, &s->dx2, &s->dn2, &s->dh2, &s->x2, &s->n2, &s->r2, acc);
  });
  OP("linear o bwd", 2 * lin_flop(s, C, C), gv_linear_bwd(be, &s->dob, &s->dwo, NULL, &s->dx2, &s->o, &s->wo, 0));
  OP("attention bwd", 2.5 * attn_flop(s),
     gv_attention_bwd(be, &dq4, &dk4, &dv4, &do4, &qr4, &kr4, &v4, &o4, &s->lse, 1, 0));
  /* dq, dk: gradients of the rotated q, k; dqr, dkr: of the linears' outputs */
  OP("rope bwd", 0, { gv_rope_bwd(be, &dqr4, &dq4, 10000.0f, 0, 0, 0); gv_rope_bwd(be, &dkr4, &dk4, 10000.0f, 0, 0, 0); });
  OP("linear qkv bwd", 6 * lin_flop(s, C, C), {
    gv_linear_bwd(be, &s->dh1, &s->dwq, NULL, &s->dqr, &s->h1, &s->wq, 0);
    gv_linear_bwd(be, &s->dh1, &s->dwk, NULL, &s->dkr, &s->h1, &s->wk, acc);
    gv_linear_bwd(be, &s->dh1, &s->dwv, NULL, &s->dv, &s->h1, &s->wv, acc);
  });
  OP("rmsnorm bwd", 0, {
    gv_dev_memcpy(be, s->dx.data, s->dx2.data, mc, GV_COPY_D2D);
    gv_rmsnorm_bwd(be, &s->dx, &s->dn1, &s->dh1, &s->x, &s->n1, &s->r1, acc);
  });
}

/* ---- reporting ---- */

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
  double t[MAX_REPS];
  memcpy(t, v, (size_t)n * sizeof *t);
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void row(const char *name, double ms, double flop, double peak)
{
  if (flop > 0) {
    double tf = flop / (ms * 1e-3) / 1e12;
    printf("  %-22s %10.3f %10.1f %8.1f%%\n", name, ms, tf, 100.0 * tf / peak);
  } else {
    printf("  %-22s %10.3f %10s %9s\n", name, ms, "-", "-");
  }
}

/* The median ms of one gv_linear_fwd [M,K] x [N,K]^T. */
static double gemm_ms(struct bench *s, const struct gv_tensor *w, const struct gv_tensor *x, struct gv_tensor *y)
{
  double ms[MAX_REPS];
  gv_linear_fwd(&s->be, y, x, w, NULL);
  for (int r = 0; r < s->reps; r++) {
    op_begin(s);
    gv_linear_fwd(&s->be, y, x, w, NULL);
    gv_backend_sync(&s->be);
    ms[r] = 1e3 * (now() - s->t0);
  }
  return median(ms, s->reps);
}

static void run(struct bench *s, double peak)
{
  s->M = s->B * s->T;
  s->nops = 0;
  alloc_all(s);
  s->rep = -1;                                 /* warm-up: algorithm cache, clocks */
  layer_fwd(s, 1);
  layer_bwd(s, 1);
  for (s->rep = 0; s->rep < s->reps; s->rep++) {
    layer_fwd(s, 1);
    layer_bwd(s, 1);
  }
  double whole[MAX_REPS];
  for (int r = 0; r < s->reps; r++) {
    op_begin(s);
    layer_fwd(s, 0);
    layer_bwd(s, 0);
    gv_backend_sync(&s->be);
    whole[r] = 1e3 * (now() - s->t0);
  }
  printf("\nLLaMA-7B layer, bf16, B=%lld T=%lld (M=%lld tokens), median of %d\n", (long long)s->B,
         (long long)s->T, (long long)s->M, s->reps);
  printf("  %-22s %10s %10s %9s\n", "op", "ms", "TFLOP/s", "% peak");
  double sum[MAX_REPS] = {0}, flop = 0;
  for (int i = 0; i < s->nops; i++) {
    row(s->ops[i].name, median(s->ops[i].ms, s->reps), s->ops[i].flop, peak);
    flop += s->ops[i].flop;
    for (int r = 0; r < s->reps; r++) sum[r] += s->ops[i].ms[r];
  }
  row("total (ops apart)", median(sum, s->reps), flop, peak);
  row("total (one stream)", median(whole, s->reps), flop, peak);

  struct gv_tensor x = s->h1, y1 = s->q, y2 = s->g;   /* [M,4096] -> [M,4096], [M,11008] */
  double m1 = gemm_ms(s, &s->wq, &x, &y1), m2 = gemm_ms(s, &s->wg, &x, &y2);
  printf("  GEMM only (gv_linear_fwd, cuBLASLt):\n");
  row("M x 4096 x 4096", m1, lin_flop(s, C, C), peak);
  row("M x 11008 x 4096", m2, lin_flop(s, F, C), peak);
  free_all(s);
}

static void usage(void)
{
  fprintf(stderr, "usage: bench_cuda_layer [--peak-tflops X] [--batch B] [--seq T] [--reps N]\n");
  exit(2);
}

int main(int argc, char **argv)
{
  double peak = 989.0;
  int batch = 0, reps = 10;
  int64_t seq = 2048;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) usage();
    if (!strcmp(argv[i], "--peak-tflops")) peak = atof(argv[++i]);
    else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seq")) seq = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
    else usage();
  }
  if (peak <= 0 || batch < 0 || seq < 1 || reps < 1 || reps > MAX_REPS) usage();
  char why[256];
  if (!gv_backend_available("cuda", why, sizeof why)) {
    printf("bench_cuda_layer: skipping: %s\n", why);
    return 0;
  }
  static struct bench s;
  gv_backend_init(&s.be, "cuda", 0);
  s.T = seq;
  s.reps = reps;
  printf("TFLOP/s = FLOPs / median time; %% peak = TFLOP/s / %.0f (dense bf16 peak, --peak-tflops;\n"
         "default 989 = H100 SXM). FLOPs: linear 2MNK fwd, 4MNK bwd; causal attention 2BHT^2D fwd,\n"
         "2.5x bwd; norms, RoPE, SwiGLU, adds: 0. Ops summed over their calls in the layer.\n", peak);
  for (int64_t b = batch ? batch : 1; b <= (batch ? batch : 4); b++) {
    s.B = b;
    run(&s, peak);
  }
  gv_backend_free(&s.be);
  return 0;
}
