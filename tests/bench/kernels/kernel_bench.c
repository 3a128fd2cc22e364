/* kernel_bench.c - per-kernel timings of the CPU backend for the forward + backward of a
 * GPT-2 block stack (pre-LN, GELU tanh, separate q/k/v/o linears, causal MHA), default
 * 6 layers, hidden 384, 6 heads, seq 256, batch 8, and the LM head with its cross-entropy over a
 * vocabulary of 50304 (once a step; V = 0 leaves it out). Each kernel is timed alone on the
 * block's shapes (best of REPS after a warm-up) and multiplied by its count per step; the
 * OpenBLAS sgemm peak is measured in the same run (square 1536^3, best of 5, before and after
 * the kernels; the larger counts), so "% peak"
 * compares like with like. Attention FLOPs count the causal half only (4BHT^2D/2 forward,
 * 2.5x that backward), as FlashAttention reports them. Threads: OMP_NUM_THREADS and
 * OPENBLAS_NUM_THREADS. Not a test: nothing here can fail. */
#define _POSIX_C_SOURCE 199309L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gvrt.h"

enum { REPS = 7 };

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double sgemm_peak(void)
{
  enum { N = 1536 };
  float *a = malloc(sizeof(float) * N * N), *b = malloc(sizeof(float) * N * N),
        *c = malloc(sizeof(float) * N * N);
  double best = 1e30;
  for (size_t i = 0; i < (size_t)N * N; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
  for (int r = 0; r < 6; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
    double dt = now() - t0;
    if (r > 0 && dt < best) best = dt;
  }
  free(a), free(b), free(c);
  return 2.0 * N * N * (double)N / best / 1e9;
}

/* Every buffer the block's kernels touch, sized for the largest use. */
struct bench {
  struct gv_backend be;
  int64_t L, C, H, T, B, F, M;
  float *x, *y, *dx, *dy, *h, *dh, *w, *dw, *bias, *dbias, *q, *k, *v, *o, *dq, *dk, *dv, *lse,
      *mean, *rstd, *g, *gb;
  int64_t V;                             /* the LM head's vocabulary */
  float *logits, *dlogits, *wte, *dwte, *loss;
  int32_t *targets;
  double peak, total_ms, total_gflop;
  int threads;                           /* OpenBLAS threads before the backend set them to 1 */
};

typedef void (*kernel_fn)(struct bench *s);

static float *buf(struct bench *s, int64_t n)
{
  float *p = gv_dev_alloc(&s->be, (size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  return p;
}

static struct gv_tensor t2(float *p, int64_t a, int64_t b) { return gv_tensor_4d(p, GV_DTYPE_F32, a, b, 0, 0); }
static struct gv_tensor t4(float *p, int64_t a, int64_t b, int64_t c, int64_t d)
{
  return gv_tensor_4d(p, GV_DTYPE_F32, a, b, c, d);
}

/* ---- the kernels of one block (shapes of the GPT-2 block) ---- */

static void lin(struct bench *s, int64_t in, int64_t out, int bwd)
{
  struct gv_tensor x = t2(s->x, s->M, in), y = t2(s->h, s->M, out), w = t2(s->w, out, in),
                   b = gv_tensor_4d(s->bias, GV_DTYPE_F32, out, 0, 0, 0), dx = t2(s->dx, s->M, in),
                   dw = t2(s->dw, out, in), db = gv_tensor_4d(s->dbias, GV_DTYPE_F32, out, 0, 0, 0);
  if (bwd) gv_linear_bwd(&s->be, &dx, &dw, &db, &y, &x, &w, GV_ACC_DW);
  else gv_linear_fwd(&s->be, &y, &x, &w, &b);
}
static void qkvo_fwd(struct bench *s) { lin(s, s->C, s->C, 0); }
static void qkvo_bwd(struct bench *s) { lin(s, s->C, s->C, 1); }
static void up_fwd(struct bench *s) { lin(s, s->C, s->F, 0); }
static void up_bwd(struct bench *s) { lin(s, s->C, s->F, 1); }
static void down_fwd(struct bench *s) { lin(s, s->F, s->C, 0); }
static void down_bwd(struct bench *s) { lin(s, s->F, s->C, 1); }

static void attn(struct bench *s, int bwd)
{
  int64_t D = s->C / s->H;
  struct gv_tensor q = t4(s->q, s->B, s->T, s->H, D), k = t4(s->k, s->B, s->T, s->H, D),
                   v = t4(s->v, s->B, s->T, s->H, D), o = t4(s->o, s->B, s->T, s->H, D),
                   lse = gv_tensor_4d(s->lse, GV_DTYPE_F32, s->B, s->H, s->T, 0),
                   dq = t4(s->dq, s->B, s->T, s->H, D), dk = t4(s->dk, s->B, s->T, s->H, D),
                   dv = t4(s->dv, s->B, s->T, s->H, D), dout = t4(s->dy, s->B, s->T, s->H, D);
  if (bwd) gv_attention_bwd(&s->be, &dq, &dk, &dv, &dout, &q, &k, &v, &o, &lse, 1, 0);
  else gv_attention_fwd(&s->be, &o, &lse, &q, &k, &v, 1);
}
static void attn_fwd(struct bench *s) { attn(s, 0); }
static void attn_bwd(struct bench *s) { attn(s, 1); }

static void ln(struct bench *s, int bwd)
{
  struct gv_tensor x = t2(s->x, s->M, s->C), y = t2(s->y, s->M, s->C), dx = t2(s->dx, s->M, s->C),
                   dy = t2(s->dy, s->M, s->C), g = gv_tensor_4d(s->g, GV_DTYPE_F32, s->C, 0, 0, 0),
                   gb = gv_tensor_4d(s->gb, GV_DTYPE_F32, s->C, 0, 0, 0),
                   m = gv_tensor_4d(s->mean, GV_DTYPE_F32, s->M, 0, 0, 0),
                   r = gv_tensor_4d(s->rstd, GV_DTYPE_F32, s->M, 0, 0, 0);
  if (bwd) gv_layernorm_bwd(&s->be, &dx, &g, &gb, &dy, &x, &g, &m, &r, GV_ACC_DX | GV_ACC_DW);
  else gv_layernorm_fwd(&s->be, &y, &m, &r, &x, &g, &gb, 1e-5f);
}
static void ln_fwd(struct bench *s) { ln(s, 0); }
static void ln_bwd(struct bench *s) { ln(s, 1); }

static void gelu(struct bench *s, int bwd)
{
  struct gv_tensor x = t2(s->h, s->M, s->F), y = t2(s->dh, s->M, s->F);
  if (bwd) gv_gelu_bwd(&s->be, &y, &y, &x, 1, 0);
  else gv_gelu_fwd(&s->be, &y, &x, 1);
}
static void gelu_fwd(struct bench *s) { gelu(s, 0); }
static void gelu_bwd(struct bench *s) { gelu(s, 1); }

static void residual(struct bench *s)
{
  struct gv_tensor x = t2(s->x, s->M, s->C), y = t2(s->y, s->M, s->C);
  gv_add_fwd(&s->be, &y, &x, &y);
}
static void residual_bwd(struct bench *s)
{
  struct gv_tensor x = t2(s->dy, s->M, s->C), y = t2(s->dx, s->M, s->C);
  gv_axpy(&s->be, &y, 1.0f, &x);
}

/* ---- LLaMA-block kernels on the same shapes (reported apart, not in the total) ---- */

static void rms(struct bench *s, int bwd)
{
  struct gv_tensor x = t2(s->x, s->M, s->C), y = t2(s->y, s->M, s->C), dx = t2(s->dx, s->M, s->C),
                   dy = t2(s->dy, s->M, s->C), g = gv_tensor_4d(s->g, GV_DTYPE_F32, s->C, 0, 0, 0),
                   r = gv_tensor_4d(s->rstd, GV_DTYPE_F32, s->M, 0, 0, 0);
  if (bwd) gv_rmsnorm_bwd(&s->be, &dx, &g, &dy, &x, &g, &r, GV_ACC_DX | GV_ACC_DW);
  else gv_rmsnorm_fwd(&s->be, &y, &r, &x, &g, 1e-5f);
}
static void rms_fwd(struct bench *s) { rms(s, 0); }
static void rms_bwd(struct bench *s) { rms(s, 1); }

static void rope(struct bench *s, int bwd)
{
  int64_t D = s->C / s->H;
  struct gv_tensor q = t4(s->q, s->B, s->T, s->H, D), dq = t4(s->dq, s->B, s->T, s->H, D);
  if (bwd) gv_rope_bwd(&s->be, &dq, &dq, 10000.0f, 0, 0, 0);
  else gv_rope_fwd(&s->be, &q, &q, 10000.0f, 0, 0);
}
static void rope_fwd(struct bench *s) { rope(s, 0); }
static void rope_bwd(struct bench *s) { rope(s, 1); }

static void swiglu(struct bench *s, int bwd)
{
  struct gv_tensor a = t2(s->h, s->M, s->F), b = t2(s->x, s->M, s->F), y = t2(s->dh, s->M, s->F),
                   db = t2(s->dx, s->M, s->F);
  if (bwd) gv_swiglu_bwd(&s->be, &y, &db, &y, &a, &b, 0);
  else gv_swiglu_fwd(&s->be, &y, &a, &b);
}
static void swiglu_fwd(struct bench *s) { swiglu(s, 0); }
static void swiglu_bwd(struct bench *s) { swiglu(s, 1); }

static void gqa(struct bench *s, int bwd)
{
  int64_t D = s->C / s->H, KV = s->H / 2;
  struct gv_tensor q = t4(s->q, s->B, s->T, s->H, D), k = t4(s->k, s->B, s->T, KV, D),
                   v = t4(s->v, s->B, s->T, KV, D), o = t4(s->o, s->B, s->T, s->H, D),
                   lse = gv_tensor_4d(s->lse, GV_DTYPE_F32, s->B, s->H, s->T, 0),
                   dq = t4(s->dq, s->B, s->T, s->H, D), dk = t4(s->dk, s->B, s->T, KV, D),
                   dv = t4(s->dv, s->B, s->T, KV, D), dout = t4(s->dy, s->B, s->T, s->H, D);
  if (bwd) gv_attention_bwd(&s->be, &dq, &dk, &dv, &dout, &q, &k, &v, &o, &lse, 1, 0);
  else gv_attention_fwd(&s->be, &o, &lse, &q, &k, &v, 1);
}
static void gqa_fwd(struct bench *s) { gqa(s, 0); }
static void gqa_bwd(struct bench *s) { gqa(s, 1); }

/* ---- the LM head and the cross-entropy over V logits (once a step; reported apart) ---- */

static void head(struct bench *s, int bwd)
{
  struct gv_tensor x = t2(s->y, s->M, s->C), dx = t2(s->dx, s->M, s->C), w = t2(s->wte, s->V, s->C),
                   dw = t2(s->dwte, s->V, s->C), y = t2(s->logits, s->M, s->V), dy = t2(s->dlogits, s->M, s->V);
  if (bwd) gv_linear_bwd(&s->be, &dx, &dw, NULL, &dy, &x, &w, GV_ACC_DW);
  else gv_linear_fwd(&s->be, &y, &x, &w, NULL);
}
static void head_fwd(struct bench *s) { head(s, 0); }
static void head_bwd(struct bench *s) { head(s, 1); }

static void xent(struct bench *s, int bwd)
{
  struct gv_tensor l = t2(s->logits, s->M, s->V), dl = t2(s->dlogits, s->M, s->V),
                   t = gv_tensor_4d(s->targets, GV_DTYPE_I32, s->M, 0, 0, 0),
                   lse = gv_tensor_4d(s->rstd, GV_DTYPE_F32, s->M, 0, 0, 0),
                   loss = gv_tensor_4d(s->loss, GV_DTYPE_F32, 1, 0, 0, 0);
  if (bwd) gv_xent_bwd(&s->be, &dl, &l, &lse, &t, 1.0f / (float)s->M);
  else gv_xent_fwd(&s->be, &loss, &lse, &l, &t, 1.0f / (float)s->M);
}
static void xent_fwd(struct bench *s) { xent(s, 0); }
static void xent_bwd(struct bench *s) { xent(s, 1); }

/* ---- timing ---- */

/* The peak again at the end, with the machine's default OpenBLAS threading restored: the
 * larger of the two is the reference (this machine is shared, so one of them may be low). */
static double sgemm_peak_now(struct bench *s)
{
  openblas_set_num_threads(s->threads);
  double p = sgemm_peak();
  openblas_set_num_threads(1);
  return p;
}

static double best_ms(struct bench *s, kernel_fn fn)
{
  double best = 1e30;
  fn(s);
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    fn(s);
    double dt = now() - t0;
    best = dt < best ? dt : best;
  }
  return best * 1e3;
}

static void row(struct bench *s, const char *name, kernel_fn fn, int per_layer, double gflop_one)
{
  double ms = best_ms(s, fn), tot = ms * (double)(per_layer * s->L), gf = gflop_one * per_layer * s->L;
  s->total_ms += tot;
  s->total_gflop += gf;
  if (gflop_one > 0)
    printf("%-22s %6d %9.3f %10.2f %9.1f %7.1f%%\n", name, per_layer, ms, tot, gflop_one / ms * 1e3,
           100.0 * gflop_one / ms * 1e3 / s->peak);
  else
    printf("%-22s %6d %9.3f %10.2f %9s %8s\n", name, per_layer, ms, tot, "-", "-");
}

int main(int argc, char **argv)
{
  struct bench s = {.L = 6, .C = 384, .H = 6, .T = 256, .B = 8, .V = 50304};
  if (argc >= 6) s.L = atoi(argv[1]), s.C = atoi(argv[2]), s.H = atoi(argv[3]), s.T = atoi(argv[4]), s.B = atoi(argv[5]);
  if (argc >= 7) s.V = atoi(argv[6]);
  s.F = 4 * s.C, s.M = s.B * s.T;
  s.threads = openblas_get_num_threads();
  s.peak = sgemm_peak();                 /* before the backend makes OpenBLAS single-threaded */
  gv_backend_init(&s.be, "cpu", 0);
  size_t ws = gv_backend_workspace_bytes(&s.be, s.B, s.T, s.T, s.H, s.H, s.C / s.H);
  gv_backend_set_workspace(&s.be, gv_dev_alloc(&s.be, ws), ws);
  int64_t MF = s.M * s.F, MC = s.M * s.C;
  s.x = buf(&s, MF), s.y = buf(&s, MC), s.dx = buf(&s, MF), s.dy = buf(&s, MC), s.h = buf(&s, MF),
  s.dh = buf(&s, MF), s.w = buf(&s, s.F * s.C), s.dw = buf(&s, s.F * s.C), s.bias = buf(&s, s.F),
  s.dbias = buf(&s, s.F), s.q = buf(&s, MC), s.k = buf(&s, MC), s.v = buf(&s, MC), s.o = buf(&s, MC),
  s.dq = buf(&s, MC), s.dk = buf(&s, MC), s.dv = buf(&s, MC), s.lse = buf(&s, s.B * s.H * s.T),
  s.mean = buf(&s, s.M), s.rstd = buf(&s, s.M), s.g = buf(&s, s.C), s.gb = buf(&s, s.C);
  attn_fwd(&s);                                         /* a valid lse for the backward */

  double M = (double)s.M, C = (double)s.C, F = (double)s.F, D = C / (double)s.H;
  double att = 2.0 * s.B * s.H * (double)s.T * s.T * D / 1e9;   /* causal fwd: 4BHT^2D / 2 */
  printf("GPT block stack: L=%lld C=%lld H=%lld T=%lld B=%lld (F=%lld); sgemm peak %.1f GFLOP/s\n",
         (long long)s.L, (long long)s.C, (long long)s.H, (long long)s.T, (long long)s.B, (long long)s.F,
         s.peak);
  printf("%-22s %6s %9s %10s %9s %8s\n", "kernel", "/layer", "ms/call", "ms/step", "GFLOP/s", "%peak");
  row(&s, "linear qkvo fwd", qkvo_fwd, 4, 2 * M * C * C / 1e9);
  row(&s, "linear up fwd", up_fwd, 1, 2 * M * C * F / 1e9);
  row(&s, "linear down fwd", down_fwd, 1, 2 * M * C * F / 1e9);
  row(&s, "attention fwd", attn_fwd, 1, att);
  row(&s, "layernorm fwd", ln_fwd, 2, 0);
  row(&s, "gelu fwd", gelu_fwd, 1, 0);
  row(&s, "residual add fwd", residual, 2, 0);
  row(&s, "linear qkvo bwd", qkvo_bwd, 4, 4 * M * C * C / 1e9);
  row(&s, "linear up bwd", up_bwd, 1, 4 * M * C * F / 1e9);
  row(&s, "linear down bwd", down_bwd, 1, 4 * M * C * F / 1e9);
  row(&s, "attention bwd", attn_bwd, 1, 2.5 * att);
  row(&s, "layernorm bwd", ln_bwd, 2, 0);
  row(&s, "gelu bwd", gelu_bwd, 1, 0);
  row(&s, "residual axpy bwd", residual_bwd, 2, 0);
  double again = sgemm_peak_now(&s);
  if (again > s.peak) printf("(sgemm peak re-measured after the kernels: %.1f GFLOP/s)\n", again);
  printf("total: %.1f ms per fwd+bwd step of the block stack, %.2f GFLOP, %.1f GFLOP/s = %.1f%% of sgemm peak\n",
         s.total_ms, s.total_gflop, s.total_gflop / s.total_ms * 1e3,
         100.0 * s.total_gflop / s.total_ms * 1e3 / (again > s.peak ? again : s.peak));
  if (s.H % 2 == 0) {
    printf("LLaMA-block kernels, same shapes (not in the total):\n");
    s.total_ms = s.total_gflop = 0;
    row(&s, "rmsnorm fwd", rms_fwd, 2, 0);
    row(&s, "rmsnorm bwd", rms_bwd, 2, 0);
    row(&s, "rope fwd (q)", rope_fwd, 2, 0);
    row(&s, "rope bwd (q)", rope_bwd, 2, 0);
    row(&s, "swiglu fwd", swiglu_fwd, 1, 0);
    row(&s, "swiglu bwd", swiglu_bwd, 1, 0);
    gqa_fwd(&s);
    row(&s, "attention GQA H/2 fwd", gqa_fwd, 1, att);
    row(&s, "attention GQA H/2 bwd", gqa_bwd, 1, 2.5 * att);
  }
  if (s.V > 0) {
    printf("LM head and cross-entropy, V=%lld, once a step (/layer column: 1 = per step):\n", (long long)s.V);
    double V = (double)s.V;
    s.logits = buf(&s, s.M * s.V), s.dlogits = buf(&s, s.M * s.V), s.wte = buf(&s, s.V * s.C),
    s.dwte = buf(&s, s.V * s.C), s.loss = buf(&s, 1);
    s.targets = gv_dev_alloc(&s.be, (size_t)s.M * sizeof(int32_t));
    for (int64_t i = 0; i < s.M; i++) s.targets[i] = (int32_t)((i * 2654435761u) % (uint64_t)s.V);
    s.total_ms = s.total_gflop = 0;
    s.L = 1;
    row(&s, "lm head fwd", head_fwd, 1, 2 * M * C * V / 1e9);
    row(&s, "xent fwd", xent_fwd, 1, 0);
    row(&s, "xent bwd", xent_bwd, 1, 0);
    row(&s, "lm head bwd (dx, dw)", head_bwd, 1, 4 * M * C * V / 1e9);
    printf("head total: %.1f ms, %.1f GFLOP/s = %.1f%% of sgemm peak\n", s.total_ms,
           s.total_gflop / s.total_ms * 1e3, 100.0 * s.total_gflop / s.total_ms * 1e3 / s.peak);
  }
  return 0;
}
