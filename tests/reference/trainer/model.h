/* model.h - the hand-written single-rank reference trainer: tiny GPT-2-style and
 * LLaMA-style models wired by hand from libgvrt's public ops, with parameters, gradients,
 * AdamW state and activations in the four arenas of one little memory plan (built here,
 * the way the compiler's plan.c will). It is what generated programs are checked against,
 * so it is plain and unfused: one gv_* call per primitive, names as in CONVENTIONS.md.
 * CPU backend only: AdamW and clipping (gvrt_train.h) read host memory. */
#ifndef GV_REF_MODEL_H
#define GV_REF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gvrt.h"

enum { REF_GPT = 1, REF_LLAMA = 2 };

struct ref_config {
  int model;                  /* REF_GPT or REF_LLAMA */
  int V, C, L, H, KV, F, S;   /* S: max positions (GPT) */
  int B, T;
  float norm_eps, rope_base;
};

/* Pointers into an arena for one layer's tensors; unused ones stay NULL. The same struct
 * holds weights, gradients, and Adam's m and v. */
struct ref_layer {
  float *ln1w, *ln1b, *qw, *qb, *kw, *kb, *vw, *vb, *ow, *ob;
  float *ln2w, *ln2b, *gatew, *upw, *upb, *downw, *downb;
};
struct ref_top {
  float *emb, *pos, *lnfw, *lnfb, *head;
  struct ref_layer *layer;   /* [L] */
};

/* Saved activations of one layer (fwd) for backward. */
struct ref_acts {
  float *x_mid, *h1, *mean1, *rstd1, *q, *k, *v, *o, *lse, *h2, *mean2, *rstd2;
  float *u, *g;              /* GPT: up output, gelu output;  LLaMA: gate, up outputs */
  float *s;                  /* LLaMA: swiglu output */
};

struct ref_param {
  char name[64];
  int layer;                  /* -1: top level */
  size_t off;                 /* offset of its pointer in struct ref_top / ref_layer */
  int ndim;
  int64_t dims[2];
  size_t numel;
  float *w, *g, *m, *v;
};

struct ref_model {
  struct ref_config c;
  struct gv_backend *be;
  int nparams;
  struct ref_param *par;
  struct ref_top w, g, m, v;
  struct ref_acts *act;       /* [L] */
  float **res;                /* [L+1] residual stream at each layer input, res[L] final */
  float *hf, *meanf, *rstdf, *logits, *dlogits, *lsex, *loss;
  int32_t *tokens, *labels;
  /* backward scratch, shared by all layers */
  float *tmp, *dres, *dh, *dq, *dk, *dv, *do_, *dq2, *dk2, *du, *dg, *ds;
  /* the plan */
  int nbufs, capbufs;
  struct gv_plan_buf *bufs;
  char (*bufnames)[80];
  void ***slots;
  struct gv_plan plan;
  struct gv_arenas arenas;
  int t;                      /* AdamW steps taken */
};

/* Builds the plan and allocates its arenas on be (which must be the CPU backend). */
void ref_model_init(struct ref_model *m, const struct ref_config *c, struct gv_backend *be);
void ref_model_free(struct ref_model *m);

/* The parameter called name, or NULL. */
struct ref_param *ref_model_param(struct ref_model *m, const char *name);
/* GPT-2 init from the counter-based Philox init (gvrt_train.h): N(0, 0.02), o/down
 * N(0, 0.02/sqrt(2L)), biases 0, norm weights 1. */
void ref_model_init_params(struct ref_model *m, uint64_t seed);

void ref_model_set_batch(struct ref_model *m, const int32_t *tokens, const int32_t *labels);
/* Forward of the current batch; returns the mean loss. Logits stay in m->logits. */
float ref_model_forward(struct ref_model *m);
/* Zeroes the gradients, then backward of the last forward. */
void ref_model_backward(struct ref_model *m);
/* Global-norm clip at max_norm (0: off), then one AdamW step at lr (decay on rank >= 2
 * params only). Returns the pre-clip gradient norm. */
double ref_model_update(struct ref_model *m, const struct gv_adamw *opt, float lr, float max_norm);

#endif
