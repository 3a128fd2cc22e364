/* test_cpu_bf16.c - bf16 tensors on the CPU backend (runtime/cpu/bf16.c). The contract under
 * test: a bf16 call equals "fp32 math on the bf16 inputs, one rounding", BIT for bit.
 * For every wrapped table entry, random inputs (fixed seed) are rounded to bf16; the op runs
 * (A) on bf16 tensors through the checked gv_* entry point on the "cpu" backend, and
 * (B) on f32 tensors holding the same rounded values (the f32 kernel), whose outputs are then
 * rounded to bf16 with gv_bf16_from_float; A must equal round(B) bit for bit.
 * An output a backward accumulates into (GV_ACC_DX/GV_ACC_DW, embedding_fwd's accumulate)
 * holds random bf16 in A, and B computes into a zeroed buffer with the same flags:
 * A must equal round(float(old) + B). Every flag combination is run; every NULL-allowed
 * operand is left out in some case; the aliasing forms (norm/rope y == x, xent dlogits ==
 * logits, dx == dy, ...) alias in both runs (B's alias holds the input, so A = round(B)).
 * f32 statistics (mean, rstd, lse, part, loss) and sumsq's double must be bit-identical in
 * A and B. A dtype mismatch (bf16 with an f32 operand, or a bf16 statistic) must be fatal,
 * naming the op and the operand (checked in a forked child). Shapes are off round numbers. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops/cpu/opcheck.h"

enum { MAXOP = 10 };

/* Operand kinds: a float input, a float output, one updated in place from its own value
 * (axpy, scale), an f32 statistic (same contents in A and B, compared after), i32 ids, an
 * omitted (NULL) operand. */
enum { K_NULL, K_IN, K_OUT, K_INOUT, K_STAT, K_IDS };

struct opnd {
  const char *name;
  int kind;
  int64_t d[4];       /* shape; trailing zeros end it */
  int accbit;         /* K_OUT: the flag that makes the call accumulate into it */
  int alias;          /* 1 + index of an earlier operand whose memory this one uses; 0: own */
  double lo, hi;      /* value range (floats default to [-2, 2)) */
};

struct prm {
  int tanh_form, causal, stage;
  float f;            /* eps, base, p, scale, alpha, value */
  int64_t i;          /* pos_offset, lo */
  int64_t rot;        /* rope's rotated dims (0: all) */
};

struct bcase {
  const char *name;
  double (*call)(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int flags);
  struct prm p;
  int bwd;            /* run flags 0, DX, DW, DX|DW (else only 0) */
  struct opnd o[MAXOP];
};

/* ---- the calls (operands in case order) ---- */

static double c_linear_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_linear_fwd(be, t[0], t[1], t[2], t[3]);
  return 0;
}
static double c_linear_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_linear_bwd(be, t[0], t[1], t[2], t[3], t[4], t[5], f);
  return 0;
}
static double c_emb_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_embedding_fwd(be, t[0], t[1], t[2], p->i, f & GV_ACC_DX);
  return 0;
}
static double c_emb_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_embedding_bwd(be, t[0], t[1], t[2], p->i, f);
  return 0;
}
static double c_embs_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_embedding_shard_fwd(be, t[0], t[1], t[2], p->i);
  return 0;
}
static double c_embs_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_embedding_shard_bwd(be, t[0], t[1], t[2], p->i, f);
  return 0;
}
static double c_ln_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_layernorm_fwd(be, t[0], t[1], t[2], t[3], t[4], t[5], p->f);
  return 0;
}
static double c_ln_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_layernorm_bwd(be, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], f);
  return 0;
}
static double c_rms_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_rmsnorm_fwd(be, t[0], t[1], t[2], t[3], p->f);
  return 0;
}
static double c_rms_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_rmsnorm_bwd(be, t[0], t[1], t[2], t[3], t[4], t[5], f);
  return 0;
}
static double c_gelu_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_gelu_fwd(be, t[0], t[1], p->tanh_form);
  return 0;
}
static double c_gelu_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_gelu_bwd(be, t[0], t[1], t[2], p->tanh_form, f);
  return 0;
}
static double c_silu_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_silu_fwd(be, t[0], t[1]);
  return 0;
}
static double c_silu_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_silu_bwd(be, t[0], t[1], t[2], f);
  return 0;
}
static double c_relu_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_relu_fwd(be, t[0], t[1]);
  return 0;
}
static double c_relu_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_relu_bwd(be, t[0], t[1], t[2], f);
  return 0;
}
static double c_swiglu_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_swiglu_fwd(be, t[0], t[1], t[2]);
  return 0;
}
static double c_swiglu_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_swiglu_bwd(be, t[0], t[1], t[2], t[3], t[4], f);
  return 0;
}
static double c_mul_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_mul_fwd(be, t[0], t[1], t[2]);
  return 0;
}
static double c_mul_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_mul_bwd(be, t[0], t[1], t[2], t[3], t[4], f);
  return 0;
}
static double c_add_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_add_fwd(be, t[0], t[1], t[2]);
  return 0;
}
static double c_affine(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_affine(be, t[0], t[1], p->f, 0.25f, f);
  return 0;
}
static double c_softmax_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_softmax_fwd(be, t[0], t[1]);
  return 0;
}
static double c_softmax_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_softmax_bwd(be, t[0], t[1], t[2], f);
  return 0;
}
static double c_copy_cols(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_copy_cols(be, t[0], p->i, t[1], 3, 50, f);   /* 50 of src's columns from 3 into dst's from i */
  return 0;
}
static double c_rope_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_rope_fwd(be, t[0], t[1], p->f, p->rot, p->i);
  return 0;
}
static double c_rope_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_rope_bwd(be, t[0], t[1], p->f, p->rot, p->i, f);
  return 0;
}
static double c_attn_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_attention_fwd(be, t[0], t[1], t[2], t[3], t[4], p->causal);
  return 0;
}
static double c_attn_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_attention_bwd(be, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], p->causal, f);
  return 0;
}
static double c_drop_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_dropout_fwd(be, t[0], t[1], p->f, 1234567, (uint64_t)p->i);
  return 0;
}
static double c_drop_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_dropout_bwd(be, t[0], t[1], p->f, 1234567, (uint64_t)p->i, f);
  return 0;
}
static double c_xent_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_xent_fwd(be, t[0], t[1], t[2], t[3], p->f);
  return 0;
}
static double c_xent_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_xent_bwd(be, t[0], t[1], t[2], t[3], p->f);
  return 0;
}
static double c_xents_fwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_xent_shard_fwd(be, t[0], t[1], t[2], t[3], t[4], p->i, p->f, p->stage);
  return 0;
}
static double c_xents_bwd(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_xent_shard_bwd(be, t[0], t[1], t[2], t[3], p->i, p->f);
  return 0;
}
static double c_sumsq(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  return gv_sumsq(be, t[0]);
}
static double c_fill(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_fill(be, t[0], p->f);
  return 0;
}
static double c_axpy(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_axpy(be, t[0], p->f, t[1]);
  return 0;
}
static double c_scale(struct gv_backend *be, struct gv_tensor **t, const struct prm *p, int f)
{
  gv_scale(be, t[0], p->f);
  return 0;
}

/* ---- the cases ---- */

enum { M = 37, C = 203, N = 61, V = 29 };
#define X2 {M, C}
#define ROW {C}
#define STATS {M}
#define IN(n) {n, K_IN, X2}
#define OUT(n, bit) {n, K_OUT, X2, bit}
#define OMIT(n) {n, K_NULL}
#define ALIAS(n, kind, of, bit) {n, kind, X2, bit, 1 + (of)}
#define STAT(n, lo, hi) {n, K_STAT, STATS, 0, 0, lo, hi}
#define IDS(n, lo, hi) {n, K_IDS, {M}, 0, 0, lo, hi}
#define DX GV_ACC_DX
#define DW GV_ACC_DW

static const struct bcase cases[] = {
  {"linear_fwd", c_linear_fwd, {0}, 0, {{"y", K_OUT, {M, N}}, IN("x"), {"w", K_IN, {N, C}}, {"b", K_IN, {N}}}},
  {"linear_fwd nobias", c_linear_fwd, {0}, 0, {{"y", K_OUT, {M, N}}, IN("x"), {"w", K_IN, {N, C}}, OMIT("b")}},
  {"linear_bwd", c_linear_bwd, {0}, 1,
   {OUT("dx", DX), {"dw", K_OUT, {N, C}, DW}, {"db", K_OUT, {N}, DW}, {"dy", K_IN, {M, N}}, IN("x"),
    {"w", K_IN, {N, C}}}},
  {"linear_bwd dx only", c_linear_bwd, {0}, 1,
   {OUT("dx", DX), OMIT("dw"), OMIT("db"), {"dy", K_IN, {M, N}}, IN("x"), {"w", K_IN, {N, C}}}},
  {"linear_bwd dw db", c_linear_bwd, {0}, 1,
   {OMIT("dx"), {"dw", K_OUT, {N, C}, DW}, {"db", K_OUT, {N}, DW}, {"dy", K_IN, {M, N}}, IN("x"),
    {"w", K_IN, {N, C}}}},
  {"embedding_fwd", c_emb_fwd, {0}, 1, {OUT("y", DX), IDS("ids", 0, V), {"table", K_IN, {V, C}}}},
  {"embedding_fwd positions", c_emb_fwd, {.i = 5}, 1,
   {{"y", K_OUT, {3, 9, C}, DX}, OMIT("ids"), {"table", K_IN, {V, C}}}},
  {"embedding_bwd", c_emb_bwd, {0}, 1, {{"dtable", K_OUT, {V, C}, DW}, IN("dy"), IDS("ids", 0, V)}},
  {"embedding_bwd positions", c_emb_bwd, {.i = 5}, 1,
   {{"dtable", K_OUT, {V, C}, DW}, {"dy", K_IN, {3, 9, C}}, OMIT("ids")}},
  {"embedding_shard_fwd", c_embs_fwd, {.i = 20}, 0, {OUT("y", 0), IDS("ids", 0, 60), {"table", K_IN, {V, C}}}},
  {"embedding_shard_bwd", c_embs_bwd, {.i = 20}, 1,
   {{"dtable", K_OUT, {V, C}, DW}, IN("dy"), IDS("ids", 0, 60)}},
  {"layernorm_fwd", c_ln_fwd, {.f = 1e-5f}, 0,
   {OUT("y", 0), STAT("mean", 0, 1), STAT("rstd", 0, 1), IN("x"), {"w", K_IN, ROW}, {"b", K_IN, ROW}}},
  {"layernorm_fwd nobias y=x", c_ln_fwd, {.f = 1e-5f}, 0,
   {OUT("y", 0), STAT("mean", 0, 1), STAT("rstd", 0, 1), ALIAS("x", K_IN, 0, 0), {"w", K_IN, ROW}, OMIT("b")}},
  {"layernorm_bwd", c_ln_bwd, {0}, 1,
   {OUT("dx", DX), {"dw", K_OUT, ROW, DW}, {"db", K_OUT, ROW, DW}, IN("dy"), IN("x"), {"w", K_IN, ROW},
    STAT("mean", -0.5, 0.5), STAT("rstd", 0.5, 1.5)}},
  {"layernorm_bwd dx only", c_ln_bwd, {0}, 1,
   {OUT("dx", DX), OMIT("dw"), OMIT("db"), IN("dy"), IN("x"), {"w", K_IN, ROW}, STAT("mean", -0.5, 0.5),
    STAT("rstd", 0.5, 1.5)}},
  {"layernorm_bwd dw only", c_ln_bwd, {0}, 1,
   {OMIT("dx"), {"dw", K_OUT, ROW, DW}, OMIT("db"), IN("dy"), IN("x"), {"w", K_IN, ROW}, STAT("mean", -0.5, 0.5),
    STAT("rstd", 0.5, 1.5)}},
  {"rmsnorm_fwd", c_rms_fwd, {.f = 1e-6f}, 0, {OUT("y", 0), STAT("rstd", 0, 1), IN("x"), {"w", K_IN, ROW}}},
  {"rmsnorm_fwd y=x", c_rms_fwd, {.f = 1e-6f}, 0,
   {OUT("y", 0), STAT("rstd", 0, 1), ALIAS("x", K_IN, 0, 0), {"w", K_IN, ROW}}},
  {"rmsnorm_bwd", c_rms_bwd, {0}, 1,
   {OUT("dx", DX), {"dw", K_OUT, ROW, DW}, IN("dy"), IN("x"), {"w", K_IN, ROW}, STAT("rstd", 0.5, 1.5)}},
  {"rmsnorm_bwd dx only", c_rms_bwd, {0}, 1,
   {OUT("dx", DX), OMIT("dw"), IN("dy"), IN("x"), {"w", K_IN, ROW}, STAT("rstd", 0.5, 1.5)}},
  {"rmsnorm_bwd dw only", c_rms_bwd, {0}, 1,
   {OMIT("dx"), {"dw", K_OUT, ROW, DW}, IN("dy"), IN("x"), {"w", K_IN, ROW}, STAT("rstd", 0.5, 1.5)}},
  {"gelu_fwd tanh", c_gelu_fwd, {.tanh_form = 1}, 0, {OUT("y", 0), IN("x")}},
  {"gelu_fwd erf", c_gelu_fwd, {0}, 0, {OUT("y", 0), IN("x")}},
  {"gelu_bwd tanh", c_gelu_bwd, {.tanh_form = 1}, 1, {OUT("dx", DX), IN("dy"), IN("x")}},
  {"gelu_bwd erf dx=dy", c_gelu_bwd, {0}, 1, {OUT("dx", DX), ALIAS("dy", K_IN, 0, 0), IN("x")}},
  {"silu_fwd", c_silu_fwd, {0}, 0, {OUT("y", 0), IN("x")}},
  {"silu_bwd", c_silu_bwd, {0}, 1, {OUT("dx", DX), IN("dy"), IN("x")}},
  {"silu_bwd dx=dy", c_silu_bwd, {0}, 1, {OUT("dx", DX), ALIAS("dy", K_IN, 0, 0), IN("x")}},
  {"relu_fwd", c_relu_fwd, {0}, 0, {OUT("y", 0), IN("x")}},
  {"relu_bwd", c_relu_bwd, {0}, 1, {OUT("dx", DX), IN("dy"), IN("x")}},
  {"swiglu_fwd", c_swiglu_fwd, {0}, 0, {OUT("y", 0), IN("gate"), IN("up")}},
  {"swiglu_bwd", c_swiglu_bwd, {0}, 1, {OUT("dgate", DX), OUT("dup", DX), IN("dy"), IN("gate"), IN("up")}},
  {"swiglu_bwd dgate=gate", c_swiglu_bwd, {0}, 1,
   {OUT("dgate", DX), OUT("dup", DX), IN("dy"), ALIAS("gate", K_IN, 0, 0), IN("up")}},
  {"swiglu_bwd no dgate", c_swiglu_bwd, {0}, 1, {OMIT("dgate"), OUT("dup", DX), IN("dy"), IN("gate"), IN("up")}},
  {"swiglu_bwd no dup", c_swiglu_bwd, {0}, 1, {OUT("dgate", DX), OMIT("dup"), IN("dy"), IN("gate"), IN("up")}},
  {"mul_fwd", c_mul_fwd, {0}, 0, {OUT("y", 0), IN("a"), IN("b")}},
  {"mul_fwd y=a", c_mul_fwd, {0}, 0, {OUT("y", 0), ALIAS("a", K_IN, 0, 0), IN("b")}},
  {"mul_bwd", c_mul_bwd, {0}, 1, {OUT("da", DX), OUT("db", DX), IN("dy"), IN("a"), IN("b")}},
  {"mul_bwd no db da=dy", c_mul_bwd, {0}, 1, {OUT("da", DX), OMIT("db"), ALIAS("dy", K_IN, 0, 0), IN("a"), IN("b")}},
  {"mul_bwd no da", c_mul_bwd, {0}, 1, {OMIT("da"), OUT("db", DX), IN("dy"), IN("a"), IN("b")}},
  {"add_fwd", c_add_fwd, {0}, 0, {OUT("y", 0), IN("a"), IN("b")}},
  {"add_fwd y=b", c_add_fwd, {0}, 0, {OUT("y", 0), IN("a"), ALIAS("b", K_IN, 0, 0)}},
  {"affine", c_affine, {.f = 1.7f}, 1, {OUT("y", DX), IN("x")}},
  {"affine y=x", c_affine, {.f = -0.6f}, 1, {OUT("y", DX), ALIAS("x", K_IN, 0, 0)}},
  {"softmax_fwd", c_softmax_fwd, {0}, 0, {OUT("y", 0), {"x", K_IN, X2, 0, 0, -6, 6}}},
  {"softmax_fwd y=x", c_softmax_fwd, {0}, 0, {OUT("y", 0), {"x", K_IN, X2, 0, 1, -6, 6}}},
  {"softmax_bwd", c_softmax_bwd, {0}, 1, {OUT("dx", DX), IN("dy"), {"y", K_IN, X2, 0, 0, 0, 0.05}}},
  {"softmax_bwd dx=dy", c_softmax_bwd, {0}, 1,
   {OUT("dx", DX), ALIAS("dy", K_IN, 0, 0), {"y", K_IN, X2, 0, 0, 0, 0.05}}},
  {"copy_cols", c_copy_cols, {.i = 7}, 1, {{"dst", K_OUT, {M, N}, DX}, {"src", K_IN, {M, 59}}}},
  {"rope_fwd", c_rope_fwd, {.f = 10000.0f, .i = 3}, 0,
   {{"y", K_OUT, {2, 7, 3, 18}}, {"x", K_IN, {2, 7, 3, 18}}}},
  {"rope_fwd y=x", c_rope_fwd, {.f = 10000.0f, .i = 3}, 0,
   {{"y", K_OUT, {2, 7, 3, 18}}, {"x", K_IN, {2, 7, 3, 18}, 0, 1}}},
  {"rope_bwd", c_rope_bwd, {.f = 500000.0f, .i = 11}, 1,
   {{"dx", K_OUT, {2, 7, 3, 18}, DX}, {"dy", K_IN, {2, 7, 3, 18}}}},
  {"rope_bwd dx=dy", c_rope_bwd, {.f = 500000.0f, .i = 11}, 1,
   {{"dx", K_OUT, {2, 7, 3, 18}, DX}, {"dy", K_IN, {2, 7, 3, 18}, 0, 1}}},
  {"rope_fwd partial", c_rope_fwd, {.f = 10000.0f, .i = 3, .rot = 6}, 0,
   {{"y", K_OUT, {2, 7, 3, 18}}, {"x", K_IN, {2, 7, 3, 18}}}},
  {"rope_fwd partial y=x", c_rope_fwd, {.f = 10000.0f, .i = 3, .rot = 6}, 0,
   {{"y", K_OUT, {2, 7, 3, 18}}, {"x", K_IN, {2, 7, 3, 18}, 0, 1}}},
  {"rope_bwd partial", c_rope_bwd, {.f = 10000.0f, .i = 5, .rot = 6}, 1,
   {{"dx", K_OUT, {2, 7, 3, 18}, DX}, {"dy", K_IN, {2, 7, 3, 18}}}},
  {"rope_bwd partial dx=dy", c_rope_bwd, {.f = 10000.0f, .i = 5, .rot = 6}, 1,
   {{"dx", K_OUT, {2, 7, 3, 18}, DX}, {"dy", K_IN, {2, 7, 3, 18}, 0, 1}}},
  {"attention_fwd", c_attn_fwd, {0}, 0,
   {{"o", K_OUT, {2, 13, 4, 24}}, {"lse", K_STAT, {2, 4, 13}}, {"q", K_IN, {2, 13, 4, 24}, 0, 0, -1, 1},
    {"k", K_IN, {2, 17, 2, 24}, 0, 0, -1, 1}, {"v", K_IN, {2, 17, 2, 24}}}},
  {"attention_fwd causal", c_attn_fwd, {.causal = 1}, 0,
   {{"o", K_OUT, {2, 13, 4, 24}}, {"lse", K_STAT, {2, 4, 13}}, {"q", K_IN, {2, 13, 4, 24}, 0, 0, -1, 1},
    {"k", K_IN, {2, 17, 2, 24}, 0, 0, -1, 1}, {"v", K_IN, {2, 17, 2, 24}}}},
  {"attention_bwd causal", c_attn_bwd, {.causal = 1}, 1,
   {{"dq", K_OUT, {2, 13, 4, 24}, DX}, {"dk", K_OUT, {2, 17, 2, 24}, DX}, {"dv", K_OUT, {2, 17, 2, 24}, DX},
    {"dout", K_IN, {2, 13, 4, 24}}, {"q", K_IN, {2, 13, 4, 24}, 0, 0, -1, 1},
    {"k", K_IN, {2, 17, 2, 24}, 0, 0, -1, 1}, {"v", K_IN, {2, 17, 2, 24}}, {"o", K_IN, {2, 13, 4, 24}},
    {"lse", K_STAT, {2, 4, 13}, 0, 0, 1, 3}}},
  {"dropout_fwd", c_drop_fwd, {.f = 0.25f, .i = 7}, 0, {OUT("y", 0), IN("x")}},
  {"dropout_bwd", c_drop_bwd, {.f = 0.25f, .i = 7}, 1, {OUT("dx", DX), IN("dy")}},
  {"dropout_bwd dx=dy", c_drop_bwd, {.f = 0.1f, .i = 3}, 1, {OUT("dx", DX), ALIAS("dy", K_IN, 0, 0)}},
  {"xent_fwd", c_xent_fwd, {.f = 0.03f}, 0,
   {{"loss", K_STAT, {1}}, STAT("lse", 0, 1), {"logits", K_IN, X2, 0, 0, -4, 4}, IDS("targets", -1, C)}},
  {"xent_bwd", c_xent_bwd, {.f = 0.03f}, 0,
   {OUT("dlogits", 0), {"logits", K_IN, X2, 0, 0, -4, 4}, STAT("lse", 5, 7), IDS("targets", -1, C)}},
  {"xent_bwd dlogits=logits", c_xent_bwd, {.f = 0.03f}, 0,
   {OUT("dlogits", 0), {"logits", K_IN, X2, 0, 1, -4, 4}, STAT("lse", 5, 7), IDS("targets", -1, C)}},
  {"xent_shard_fwd max", c_xents_fwd, {.f = 0.03f, .i = 50, .stage = GV_XSHARD_MAX}, 0,
   {{"loss", K_STAT, {1}}, STAT("lse", 0, 1), STAT("part", 0, 1), {"logits", K_IN, {M, N}, 0, 0, -4, 4},
    IDS("targets", -1, 300)}},
  {"xent_shard_fwd sumexp", c_xents_fwd, {.f = 0.03f, .i = 50, .stage = GV_XSHARD_SUMEXP}, 0,
   {{"loss", K_STAT, {1}}, STAT("lse", 3, 4), STAT("part", 0, 1), {"logits", K_IN, {M, N}, 0, 0, -4, 4},
    IDS("targets", -1, 300)}},
  {"xent_shard_fwd loss", c_xents_fwd, {.f = 0.03f, .i = 0, .stage = GV_XSHARD_LOSS}, 0,
   {{"loss", K_STAT, {1}}, STAT("lse", 3, 4), STAT("part", 1, 9), {"logits", K_IN, {M, N}, 0, 0, -4, 4},
    IDS("targets", -1, 300)}},
  {"xent_shard_bwd dlogits=logits", c_xents_bwd, {.f = 0.03f, .i = 50}, 0,
   {{"dlogits", K_OUT, {M, N}}, {"logits", K_IN, {M, N}, 0, 1, -4, 4}, STAT("lse", 5, 7), IDS("targets", -1, 300)}},
  {"xent_shard_bwd", c_xents_bwd, {.f = 0.03f, .i = 50}, 0,
   {{"dlogits", K_OUT, {M, N}}, {"logits", K_IN, {M, N}, 0, 0, -4, 4}, STAT("lse", 5, 7), IDS("targets", -1, 300)}},
  {"sumsq", c_sumsq, {0}, 0, {IN("x")}},
  {"fill", c_fill, {.f = 0.3f}, 0, {OUT("x", 0)}},
  {"axpy", c_axpy, {.f = 0.7f}, 0, {{"y", K_INOUT, X2}, IN("x")}},
  {"scale", c_scale, {.f = 1.3f}, 0, {{"x", K_INOUT, X2}}},
};

/* ---- the harness ---- */

static uint64_t seed = 0x5eedbf16ull;

static int64_t numel(const struct opnd *o)
{
  int64_t n = 1;
  for (int k = 0; k < 4 && o->d[k]; k++) n *= o->d[k];
  return n;
}

static int ndim(const struct opnd *o)
{
  int k = 0;
  while (k < 4 && o->d[k]) k++;
  return k;
}

static int is_float(int kind) { return kind == K_IN || kind == K_OUT || kind == K_INOUT; }

/* The buffers of one operand: A's (bf16, or f32 for statistics, i32 ids) and B's (f32). */
struct bufs {
  void *a, *b;
  uint16_t *old;      /* A's contents before the call */
  int zeroed;         /* B computed into zeros: A must be round(old + B) */
};

static void fill_operand(const struct opnd *o, struct bufs *u, int written_by_alias)
{
  int64_t n = numel(o);
  double lo = o->lo, hi = o->hi;
  if (lo == hi) lo = -2, hi = 2;
  if (o->kind == K_IDS) {
    int32_t *ids = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)floor(oc_uniform(&seed, lo, hi));
    u->a = u->b = ids;
    return;
  }
  float *fb = malloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) fb[i] = (float)oc_uniform(&seed, lo, hi);
  if (o->kind == K_STAT) {
    u->a = malloc((size_t)n * 4);
    memcpy(u->a, fb, (size_t)n * 4);
    u->b = fb;
    return;
  }
  uint16_t *h = malloc((size_t)n * 2);
  u->old = malloc((size_t)n * 2);
  for (int64_t i = 0; i < n; i++) {
    h[i] = u->old[i] = gv_bf16_from_float(fb[i]);
    fb[i] = u->zeroed && !written_by_alias ? 0.0f : gv_bf16_to_float(h[i]);
  }
  u->a = h;
  u->b = fb;
}

static struct gv_tensor make(const struct opnd *o, void *data, enum gv_dtype dt)
{
  return gv_tensor_make(data, dt, ndim(o), o->d);
}

/* Compares A with round(B) (or round(old + B)) for a float operand, bit for bit. */
static void compare_float(const char *what, const struct opnd *o, const struct bufs *u)
{
  int64_t n = numel(o), bad = 0;
  const uint16_t *h = u->a;
  const float *fb = u->b;
  for (int64_t i = 0; i < n; i++) {
    uint16_t want = gv_bf16_from_float(u->zeroed ? gv_bf16_to_float(u->old[i]) + fb[i] : fb[i]);
    if (h[i] != want && bad++ < 3)
      fprintf(stderr, "  %s %s[%lld]: bf16 0x%04x, want 0x%04x\n", what, o->name, (long long)i, h[i], want);
  }
  tu_checks++;
  if (bad) {
    tu_failures++;
    fprintf(stderr, "%s: %s: %lld of %lld elements differ\n", what, o->name, (long long)bad, (long long)n);
  }
}

static void compare_stat(const char *what, const struct opnd *o, const struct bufs *u)
{
  tu_checks++;
  if (memcmp(u->a, u->b, (size_t)numel(o) * 4)) {
    tu_failures++;
    fprintf(stderr, "%s: statistic %s differs between the bf16 and f32 runs\n", what, o->name);
  }
}

static void run_case(struct gv_backend *be, const struct bcase *c, int flags)
{
  struct bufs u[MAXOP] = {{0}};
  struct gv_tensor ta[MAXOP], tb[MAXOP], *pa[MAXOP], *pb[MAXOP];
  int written[MAXOP] = {0};
  char what[128];
  snprintf(what, sizeof what, "%s flags %d", c->name, flags);
  for (int i = 0; i < MAXOP; i++)   /* an owner whose memory an input aliases holds input data */
    if (c->o[i].name && c->o[i].alias) written[c->o[i].alias - 1] = 1;
  for (int i = 0; i < MAXOP && c->o[i].name; i++) {
    const struct opnd *o = &c->o[i];
    pa[i] = pb[i] = NULL;
    if (o->kind == K_NULL) continue;
    if (o->alias) {
      const struct bufs *w = &u[o->alias - 1];
      ta[i] = make(o, w->a, GV_DTYPE_BF16);
      tb[i] = make(o, w->b, GV_DTYPE_F32);
    } else {
      u[i].zeroed = o->kind == K_OUT && (flags & o->accbit) && !written[i];
      fill_operand(o, &u[i], written[i]);
      enum gv_dtype da = o->kind == K_IDS ? GV_DTYPE_I32 : o->kind == K_STAT ? GV_DTYPE_F32 : GV_DTYPE_BF16;
      ta[i] = make(o, u[i].a, da);
      tb[i] = make(o, u[i].b, o->kind == K_IDS ? GV_DTYPE_I32 : GV_DTYPE_F32);
    }
    pa[i] = &ta[i];
    pb[i] = &tb[i];
  }
  double ra = c->call(be, pa, &c->p, flags), rb = c->call(be, pb, &c->p, flags);
  tu_checks++;
  if (memcmp(&ra, &rb, sizeof ra)) {
    tu_failures++;
    fprintf(stderr, "%s: returned %.17g (bf16) vs %.17g (f32)\n", what, ra, rb);
  }
  for (int i = 0; i < MAXOP && c->o[i].name; i++) {
    const struct opnd *o = &c->o[i];
    if (o->kind == K_NULL || o->alias || o->kind == K_IDS) continue;
    if (is_float(o->kind)) compare_float(what, o, &u[i]);
    else compare_stat(what, o, &u[i]);
  }
  for (int i = 0; i < MAXOP; i++) {
    if (u[i].a != u[i].b) free(u[i].a);
    free(u[i].b);
    free(u[i].old);
  }
}

/* ---- copy, copy2d on bf16 ---- */

static void test_copies(struct gv_backend *be)
{
  enum { R = 11, CO = 23, LD = 29 };
  float f[R * LD], back[R * LD];
  uint16_t h[R * LD], d2[R * CO];
  for (int i = 0; i < R * LD; i++) f[i] = (float)oc_uniform(&seed, -3, 3);
  struct gv_tensor tf = gv_tensor_4d(f, GV_DTYPE_F32, R, LD, 0, 0), th = gv_tensor_4d(h, GV_DTYPE_BF16, R, LD, 0, 0),
                   tback = gv_tensor_4d(back, GV_DTYPE_F32, R, LD, 0, 0);
  gv_copy(be, &th, &tf);
  gv_copy(be, &tback, &th);
  int ok = 1;
  for (int i = 0; i < R * LD; i++) ok &= h[i] == gv_bf16_from_float(f[i]) && back[i] == gv_bf16_to_float(h[i]);
  CHECK(ok);
  gv_copy2d(be, d2, CO, h + 3, LD, R, CO, GV_DTYPE_BF16);
  ok = 1;
  for (int r = 0; r < R; r++)
    for (int j = 0; j < CO; j++) ok &= d2[r * CO + j] == h[r * LD + 3 + j];
  CHECK(ok);
}

/* ---- fatal dtype mismatches (in a forked child, before any OpenMP region) ---- */

static struct gv_backend fatal_be;

static void mixed_gelu(void)
{
  uint16_t y[6];
  float x[6] = {0};
  struct gv_tensor ty = gv_tensor_4d(y, GV_DTYPE_BF16, 2, 3, 0, 0), tx = gv_tensor_4d(x, GV_DTYPE_F32, 2, 3, 0, 0);
  gv_gelu_fwd(&fatal_be, &ty, &tx, 1);
}

static void bf16_rstd(void)
{
  uint16_t y[6], x[6] = {0}, w[3] = {0}, rstd[2];
  struct gv_tensor ty = gv_tensor_4d(y, GV_DTYPE_BF16, 2, 3, 0, 0), tx = gv_tensor_4d(x, GV_DTYPE_BF16, 2, 3, 0, 0),
                   tw = gv_tensor_4d(w, GV_DTYPE_BF16, 3, 0, 0, 0), tr = gv_tensor_4d(rstd, GV_DTYPE_BF16, 2, 0, 0, 0);
  gv_rmsnorm_fwd(&fatal_be, &ty, &tr, &tx, &tw, 1e-5f);
}

/* Runs fn in a child with stderr into a file; 1 when the child did not exit 0 and its
 * stderr holds msg. */
static int fatal_with(void (*fn)(void), const char *msg)
{
  char path[] = "/tmp/test_cpu_bf16_XXXXXX", err[4096] = {0};
  int fd = mkstemp(path), st = 0;
  if (fd < 0) return 0;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd, 2);
    fn();
    _exit(0);
  }
  waitpid(pid, &st, 0);
  ssize_t got = pread(fd, err, sizeof err - 1, 0);
  close(fd);
  unlink(path);
  if (got < 0) return 0;
  int died = !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  if (!died || !strstr(err, msg)) fprintf(stderr, "child (died %d) said: %s\n", died, err);
  return died && strstr(err, msg) != NULL;
}

int main(void)
{
  gv_backend_init(&fatal_be, "cpu", 0);
  CHECK(fatal_with(mixed_gelu, "gelu_fwd: x is f32 but y is bf16"));
  CHECK(fatal_with(bf16_rstd, "rmsnorm_fwd: rstd must be f32"));
  gv_backend_free(&fatal_be);

  struct gv_backend be;
  oc_backend(&be, 64);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
    for (int flags = 0; flags <= (cases[k].bwd ? 3 : 0); flags++) run_case(&be, &cases[k], flags);
  test_copies(&be);
  oc_backend_free(&be);
  return tu_report("test_cpu_bf16");
}
