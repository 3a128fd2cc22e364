/* model.c - the reference trainer's model: the plan (every parameter, gradient, Adam
 * moment and activation is one named plan buffer; nothing is allocated after init), the
 * forward and backward of the tiny GPT-2-style (pre-LN, learned positions, GELU tanh,
 * biases, tied head) and LLaMA-style (RMSNorm, RoPE, GQA, SwiGLU, untied head) models
 * from CONVENTIONS.md, and the update (clip + AdamW). Backward zeroes the gradient arena
 * and then accumulates every parameter gradient (GV_ACC_DW), so the tied embedding gets
 * its head and lookup contributions; the residual-stream gradient dres is accumulated in
 * place by each norm's backward (GV_ACC_DX). */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tensor views ---- */

static struct gv_tensor t1(void *p, int64_t n) { return gv_tensor_4d(p, GV_DTYPE_F32, n, 0, 0, 0); }
static struct gv_tensor t2(void *p, int64_t a, int64_t b) { return gv_tensor_4d(p, GV_DTYPE_F32, a, b, 0, 0); }
static struct gv_tensor t3(void *p, int64_t a, int64_t b, int64_t c)
{
  return gv_tensor_4d(p, GV_DTYPE_F32, a, b, c, 0);
}
static struct gv_tensor t4(void *p, int64_t a, int64_t b, int64_t c, int64_t d)
{
  return gv_tensor_4d(p, GV_DTYPE_F32, a, b, c, d);
}
static struct gv_tensor ti(int32_t *p, int64_t n) { return gv_tensor_4d(p, GV_DTYPE_I32, n, 0, 0, 0); }

/* ---- the plan ---- */

static void plan_add(struct ref_model *m, enum gv_mem_kind kind, size_t bytes, void **slot,
                     const char *fmt, ...) GV_PRINTF(5, 6);

static void plan_add(struct ref_model *m, enum gv_mem_kind kind, size_t bytes, void **slot,
                     const char *fmt, ...)
{
  if (m->nbufs == m->capbufs) {
    m->capbufs = m->capbufs ? 2 * m->capbufs : 256;
    m->bufs = realloc(m->bufs, (size_t)m->capbufs * sizeof *m->bufs);
    m->bufnames = realloc(m->bufnames, (size_t)m->capbufs * sizeof *m->bufnames);
    m->slots = realloc(m->slots, (size_t)m->capbufs * sizeof *m->slots);
    GV_CHECK(m->bufs && m->bufnames && m->slots, "out of memory for the plan");
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->bufnames[m->nbufs], sizeof m->bufnames[0], fmt, ap);
  va_end(ap);
  size_t off = (m->plan.arena_bytes[kind] + 63) & ~(size_t)63;
  m->bufs[m->nbufs] = (struct gv_plan_buf){NULL, kind, off, bytes};
  m->plan.arena_bytes[kind] = off + bytes;
  m->slots[m->nbufs++] = slot;
}

static float **field(struct ref_top *top, int layer, size_t off)
{
  char *base = layer < 0 ? (char *)top : (char *)&top->layer[layer];
  return (float **)(void *)(base + off);
}

/* One parameter: its weight, gradient and two Adam moments, all the same shape. */
static void add_param(struct ref_model *m, int layer, const char *name, size_t off, int64_t d0,
                      int64_t d1)
{
  struct ref_param *p = &m->par[m->nparams++];
  if (layer < 0)
    snprintf(p->name, sizeof p->name, "%s", name);
  else
    snprintf(p->name, sizeof p->name, "layers.%d.%s", layer, name);
  p->layer = layer;
  p->off = off;
  p->ndim = d1 ? 2 : 1;
  p->dims[0] = d0;
  p->dims[1] = d1;
  p->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
  size_t bytes = p->numel * sizeof(float);
  plan_add(m, GV_MEM_PARAMS, bytes, (void **)&p->w, "%s", p->name);
  plan_add(m, GV_MEM_GRADS, bytes, (void **)&p->g, "grad/%s", p->name);
  plan_add(m, GV_MEM_OPTIM, bytes, (void **)&p->m, "adam_m/%s", p->name);
  plan_add(m, GV_MEM_OPTIM, bytes, (void **)&p->v, "adam_v/%s", p->name);
}

#define LOFF(f) offsetof(struct ref_layer, f)
#define TOFF(f) offsetof(struct ref_top, f)

/* Parameters in CONVENTIONS.md order (the fixture order). */
static void plan_params(struct ref_model *m)
{
  const struct ref_config *c = &m->c;
  const int64_t C = c->C, F = c->F, D = c->C / c->H, HD = c->H * D, KVD = c->KV * D;
  const int gpt = c->model == REF_GPT;
  add_param(m, -1, "embedding.weight", TOFF(emb), c->V, C);
  if (gpt)
    add_param(m, -1, "pos_embedding.weight", TOFF(pos), c->S, C);
  for (int l = 0; l < c->L; l++) {
    add_param(m, l, "ln1.weight", LOFF(ln1w), C, 0);
    if (gpt)
      add_param(m, l, "ln1.bias", LOFF(ln1b), C, 0);
    const struct { const char *w, *b; size_t ow, ob; int64_t out, in; } lin[4] = {
      {"attn.q.weight", "attn.q.bias", LOFF(qw), LOFF(qb), HD, C},
      {"attn.k.weight", "attn.k.bias", LOFF(kw), LOFF(kb), KVD, C},
      {"attn.v.weight", "attn.v.bias", LOFF(vw), LOFF(vb), KVD, C},
      {"attn.o.weight", "attn.o.bias", LOFF(ow), LOFF(ob), C, HD}};
    for (int i = 0; i < 4; i++) {
      add_param(m, l, lin[i].w, lin[i].ow, lin[i].out, lin[i].in);
      if (gpt)
        add_param(m, l, lin[i].b, lin[i].ob, lin[i].out, 0);
    }
    add_param(m, l, "ln2.weight", LOFF(ln2w), C, 0);
    if (gpt) {
      add_param(m, l, "ln2.bias", LOFF(ln2b), C, 0);
      add_param(m, l, "mlp.up.weight", LOFF(upw), F, C);
      add_param(m, l, "mlp.up.bias", LOFF(upb), F, 0);
      add_param(m, l, "mlp.down.weight", LOFF(downw), C, F);
      add_param(m, l, "mlp.down.bias", LOFF(downb), C, 0);
    } else {
      add_param(m, l, "mlp.gate.weight", LOFF(gatew), F, C);
      add_param(m, l, "mlp.up.weight", LOFF(upw), F, C);
      add_param(m, l, "mlp.down.weight", LOFF(downw), C, F);
    }
  }
  add_param(m, -1, "final_norm.weight", TOFF(lnfw), C, 0);
  if (gpt)
    add_param(m, -1, "final_norm.bias", TOFF(lnfb), C, 0);
  else
    add_param(m, -1, "head.weight", TOFF(head), c->V, C);
}

static void act(struct ref_model *m, float **slot, size_t n, const char *name, int layer)
{
  if (layer < 0)
    plan_add(m, GV_MEM_ACTS, n * sizeof(float), (void **)slot, "act/%s", name);
  else
    plan_add(m, GV_MEM_ACTS, n * sizeof(float), (void **)slot, "act/layers.%d.%s", layer, name);
}

/* Saved activations per layer, then the head's, then the shared backward scratch. */
static void plan_acts(struct ref_model *m)
{
  const struct ref_config *c = &m->c;
  const size_t M = (size_t)c->B * c->T, C = (size_t)c->C, F = (size_t)c->F, D = C / (size_t)c->H;
  const size_t HD = (size_t)c->H * D, KVD = (size_t)c->KV * D, BHT = M * (size_t)c->H;
  const int gpt = c->model == REF_GPT;
  for (int l = 0; l <= c->L; l++)
    act(m, &m->res[l], M * C, "x_in", l);
  for (int l = 0; l < c->L; l++) {
    struct ref_acts *a = &m->act[l];
    act(m, &a->h1, M * C, "h1", l);
    act(m, &a->rstd1, M, "rstd1", l);
    act(m, &a->q, M * HD, "q", l);
    act(m, &a->k, M * KVD, "k", l);
    act(m, &a->v, M * KVD, "v", l);
    act(m, &a->o, M * HD, "o", l);
    act(m, &a->lse, BHT, "lse", l);
    act(m, &a->x_mid, M * C, "x_mid", l);
    act(m, &a->h2, M * C, "h2", l);
    act(m, &a->rstd2, M, "rstd2", l);
    act(m, &a->u, M * F, gpt ? "up" : "gate", l);
    act(m, &a->g, M * F, gpt ? "gelu" : "up", l);
    if (gpt) {
      act(m, &a->mean1, M, "mean1", l);
      act(m, &a->mean2, M, "mean2", l);
    } else {
      act(m, &a->s, M * F, "swiglu", l);
    }
  }
  act(m, &m->hf, M * C, "final_norm", -1);
  act(m, &m->rstdf, M, "final_norm.rstd", -1);
  if (gpt)
    act(m, &m->meanf, M, "final_norm.mean", -1);
  act(m, &m->logits, M * (size_t)c->V, "logits", -1);
  act(m, &m->dlogits, M * (size_t)c->V, "dlogits", -1);
  act(m, &m->lsex, M, "xent.lse", -1);
  act(m, &m->loss, 1, "loss", -1);
  plan_add(m, GV_MEM_ACTS, M * sizeof(int32_t), (void **)&m->tokens, "tokens");
  plan_add(m, GV_MEM_ACTS, M * sizeof(int32_t), (void **)&m->labels, "labels");
  float **scratch[] = {&m->tmp, &m->dres, &m->dh, &m->dq, &m->dk, &m->dv, &m->do_, &m->dq2, &m->dk2};
  const size_t size[] = {M * C, M * C, M * C, M * HD, M * KVD, M * KVD, M * HD, M * HD, M * KVD};
  for (size_t i = 0; i < sizeof size / sizeof size[0]; i++)
    act(m, scratch[i], size[i], "scratch", -1);
  act(m, &m->du, M * F, "scratch", -1);
  act(m, &m->dg, M * F, "scratch", -1);
  act(m, &m->ds, M * F, "scratch", -1);
  size_t ws = gv_backend_workspace_bytes(m->be, c->B, c->T, c->T, c->H, c->KV, (int64_t)D);
  plan_add(m, GV_MEM_WORKSPACE, ws, NULL, "workspace");
}

/* Allocates the arenas and points every slot and every parameter field at its buffer. */
static void plan_realise(struct ref_model *m)
{
  for (int i = 0; i < m->nbufs; i++)
    m->bufs[i].name = m->bufnames[i];
  m->plan.bufs = m->bufs;
  m->plan.nbufs = m->nbufs;
  gv_arenas_init(&m->arenas, m->be, &m->plan);
  for (int i = 0; i < m->nbufs; i++)
    if (m->slots[i])
      *m->slots[i] = gv_arenas_ptr(&m->arenas, &m->bufs[i]);
  for (int i = 0; i < m->nparams; i++) {
    struct ref_param *p = &m->par[i];
    *field(&m->w, p->layer, p->off) = p->w;
    *field(&m->g, p->layer, p->off) = p->g;
    *field(&m->m, p->layer, p->off) = p->m;
    *field(&m->v, p->layer, p->off) = p->v;
  }
  struct gv_tensor opt = t1(m->arenas.base[GV_MEM_OPTIM], (int64_t)(m->arenas.bytes[GV_MEM_OPTIM] / 4));
  gv_fill(m->be, &opt, 0.0f);
}

void ref_model_init(struct ref_model *m, const struct ref_config *c, struct gv_backend *be)
{
  memset(m, 0, sizeof *m);
  GV_CHECK(!strcmp(be->ops->name, "cpu"), "the reference trainer runs on the cpu backend, not %s",
           be->ops->name);
  GV_CHECK(c->C % c->H == 0 && c->H % c->KV == 0, "hidden %d, heads %d, kv heads %d do not divide",
           c->C, c->H, c->KV);
  GV_CHECK(c->model == REF_LLAMA || c->T <= c->S, "seq %d exceeds max positions %d", c->T, c->S);
  m->c = *c;
  m->be = be;
  m->par = calloc((size_t)(8 + 20 * c->L), sizeof *m->par);
  m->act = calloc((size_t)c->L, sizeof *m->act);
  m->res = calloc((size_t)c->L + 1, sizeof *m->res);
  struct ref_top *tops[4] = {&m->w, &m->g, &m->m, &m->v};
  for (int i = 0; i < 4; i++)
    tops[i]->layer = calloc((size_t)c->L, sizeof(struct ref_layer));
  GV_CHECK(m->par && m->act && m->res && m->w.layer && m->g.layer && m->m.layer && m->v.layer,
           "out of memory for the model tables");
  plan_params(m);
  plan_acts(m);
  plan_realise(m);
}

void ref_model_free(struct ref_model *m)
{
  gv_arenas_free(&m->arenas);
  struct ref_top *tops[4] = {&m->w, &m->g, &m->m, &m->v};
  for (int i = 0; i < 4; i++)
    free(tops[i]->layer);
  free(m->par);
  free(m->act);
  free(m->res);
  free(m->bufs);
  free(m->bufnames);
  free(m->slots);
  memset(m, 0, sizeof *m);
}

struct ref_param *ref_model_param(struct ref_model *m, const char *name)
{
  for (int i = 0; i < m->nparams; i++)
    if (!strcmp(m->par[i].name, name))
      return &m->par[i];
  return NULL;
}

static int is_residual_out(const char *name)
{
  return strstr(name, ".attn.o.weight") || strstr(name, ".mlp.down.weight");
}

void ref_model_init_params(struct ref_model *m, uint64_t seed)
{
  const float std_out = 0.02f / sqrtf(2.0f * (float)m->c.L);
  for (int i = 0; i < m->nparams; i++) {
    struct ref_param *p = &m->par[i];
    if (p->ndim == 2)
      gv_init_normal(p->w, p->numel, gv_init_key(seed, p->name), 0, 0.0f,
                     is_residual_out(p->name) ? std_out : 0.02f);
    else
      gv_init_fill(p->w, p->numel, strstr(p->name, ".bias") ? 0.0f : 1.0f);
  }
}

void ref_model_set_batch(struct ref_model *m, const int32_t *tokens, const int32_t *labels)
{
  size_t n = (size_t)m->c.B * (size_t)m->c.T * sizeof(int32_t);
  memcpy(m->tokens, tokens, n);
  memcpy(m->labels, labels, n);
}

/* ---- forward ---- */

static void norm_fwd(struct ref_model *m, float *y, float *mean, float *rstd, float *x, float *w,
                     float *b)
{
  const int64_t M = (int64_t)m->c.B * m->c.T, C = m->c.C;
  struct gv_tensor ty = t2(y, M, C), tx = t2(x, M, C), tw = t1(w, C), tr = t1(rstd, M);
  if (m->c.model == REF_GPT) {
    struct gv_tensor tb = t1(b, C), tm = t1(mean, M);
    gv_layernorm_fwd(m->be, &ty, &tm, &tr, &tx, &tw, &tb, m->c.norm_eps);
  } else {
    gv_rmsnorm_fwd(m->be, &ty, &tr, &tx, &tw, m->c.norm_eps);
  }
}

/* y [M, out] = x [M, in] w^T (+ b) */
static void lin_fwd(struct ref_model *m, float *y, float *x, float *w, float *b, int64_t out,
                    int64_t in)
{
  const int64_t M = (int64_t)m->c.B * m->c.T;
  struct gv_tensor ty = t2(y, M, out), tx = t2(x, M, in), tw = t2(w, out, in), tb = t1(b, out);
  gv_linear_fwd(m->be, &ty, &tx, &tw, b ? &tb : NULL);
}

static void attn_fwd(struct ref_model *m, struct ref_acts *a, const struct ref_layer *w, float *x)
{
  const struct ref_config *c = &m->c;
  const int64_t B = c->B, T = c->T, H = c->H, KV = c->KV, D = c->C / c->H;
  norm_fwd(m, a->h1, a->mean1, a->rstd1, x, w->ln1w, w->ln1b);
  lin_fwd(m, a->q, a->h1, w->qw, w->qb, H * D, c->C);
  lin_fwd(m, a->k, a->h1, w->kw, w->kb, KV * D, c->C);
  lin_fwd(m, a->v, a->h1, w->vw, w->vb, KV * D, c->C);
  struct gv_tensor q = t4(a->q, B, T, H, D), k = t4(a->k, B, T, KV, D), v = t4(a->v, B, T, KV, D);
  if (c->model == REF_LLAMA) {                       /* rotated in place: backward needs no pre-rope q, k */
    gv_rope_fwd(m->be, &q, &q, c->rope_base, 0, 0);
    gv_rope_fwd(m->be, &k, &k, c->rope_base, 0, 0);
  }
  struct gv_tensor o = t4(a->o, B, T, H, D), lse = t1(a->lse, B * H * T);
  gv_attention_fwd(m->be, &o, &lse, &q, &k, &v, 1);
  lin_fwd(m, m->tmp, a->o, w->ow, w->ob, c->C, H * D);
  struct gv_tensor xm = t2(a->x_mid, B * T, c->C), tx = t2(x, B * T, c->C), tt = t2(m->tmp, B * T, c->C);
  gv_add_fwd(m->be, &xm, &tx, &tt);
}

static void mlp_fwd(struct ref_model *m, struct ref_acts *a, const struct ref_layer *w, float *out)
{
  const struct ref_config *c = &m->c;
  const int64_t M = (int64_t)c->B * c->T;
  norm_fwd(m, a->h2, a->mean2, a->rstd2, a->x_mid, w->ln2w, w->ln2b);
  struct gv_tensor u = t2(a->u, M, c->F), g = t2(a->g, M, c->F);
  if (c->model == REF_GPT) {
    lin_fwd(m, a->u, a->h2, w->upw, w->upb, c->F, c->C);
    gv_gelu_fwd(m->be, &g, &u, 1);
    lin_fwd(m, m->tmp, a->g, w->downw, w->downb, c->C, c->F);
  } else {
    struct gv_tensor s = t2(a->s, M, c->F);
    lin_fwd(m, a->u, a->h2, w->gatew, NULL, c->F, c->C);
    lin_fwd(m, a->g, a->h2, w->upw, NULL, c->F, c->C);
    gv_swiglu_fwd(m->be, &s, &u, &g);
    lin_fwd(m, m->tmp, a->s, w->downw, NULL, c->C, c->F);
  }
  struct gv_tensor y = t2(out, M, c->C), xm = t2(a->x_mid, M, c->C), tt = t2(m->tmp, M, c->C);
  gv_add_fwd(m->be, &y, &xm, &tt);
}

float ref_model_forward(struct ref_model *m)
{
  const struct ref_config *c = &m->c;
  const int64_t M = (int64_t)c->B * c->T;
  struct gv_tensor x0 = t2(m->res[0], M, c->C), tok = ti(m->tokens, M), emb = t2(m->w.emb, c->V, c->C);
  gv_embedding_fwd(m->be, &x0, &tok, &emb, 0, 0);
  if (c->model == REF_GPT) {
    struct gv_tensor x3 = t3(m->res[0], c->B, c->T, c->C), pos = t2(m->w.pos, c->S, c->C);
    gv_embedding_fwd(m->be, &x3, NULL, &pos, 0, 1);
  }
  for (int l = 0; l < c->L; l++) {
    attn_fwd(m, &m->act[l], &m->w.layer[l], m->res[l]);
    mlp_fwd(m, &m->act[l], &m->w.layer[l], m->res[l + 1]);
  }
  norm_fwd(m, m->hf, m->meanf, m->rstdf, m->res[c->L], m->w.lnfw, m->w.lnfb);
  lin_fwd(m, m->logits, m->hf, c->model == REF_GPT ? m->w.emb : m->w.head, NULL, c->V, c->C);
  struct gv_tensor logits = t2(m->logits, M, c->V), lse = t1(m->lsex, M), loss = t1(m->loss, 1);
  struct gv_tensor lab = ti(m->labels, M);
  gv_xent_fwd(m->be, &loss, &lse, &logits, &lab, 1.0f / (float)M);
  return m->loss[0];
}

/* ---- backward ---- */

/* dx (+)= d norm(x) / dx . dy; parameter grads accumulate. */
static void norm_bwd(struct ref_model *m, float *dx, float *gw, float *gb, float *dy, float *x,
                     float *w, float *mean, float *rstd, int flags)
{
  const int64_t M = (int64_t)m->c.B * m->c.T, C = m->c.C;
  struct gv_tensor tdx = t2(dx, M, C), tdy = t2(dy, M, C), tx = t2(x, M, C), tw = t1(w, C);
  struct gv_tensor tgw = t1(gw, C), tr = t1(rstd, M);
  if (m->c.model == REF_GPT) {
    struct gv_tensor tgb = t1(gb, C), tm = t1(mean, M);
    gv_layernorm_bwd(m->be, &tdx, &tgw, &tgb, &tdy, &tx, &tw, &tm, &tr, flags | GV_ACC_DW);
  } else {
    gv_rmsnorm_bwd(m->be, &tdx, &tgw, &tdy, &tx, &tw, &tr, flags | GV_ACC_DW);
  }
}

static void lin_bwd(struct ref_model *m, float *dx, float *gw, float *gb, float *dy, float *x,
                    float *w, int64_t out, int64_t in, int flags)
{
  const int64_t M = (int64_t)m->c.B * m->c.T;
  struct gv_tensor tdx = t2(dx, M, in), tgw = t2(gw, out, in), tgb = t1(gb, out);
  struct gv_tensor tdy = t2(dy, M, out), tx = t2(x, M, in), tw = t2(w, out, in);
  gv_linear_bwd(m->be, &tdx, &tgw, gb ? &tgb : NULL, &tdy, &tx, &tw, flags | GV_ACC_DW);
}

/* In: dres = dL/d(layer output). Out: dres = dL/d x_mid. */
static void mlp_bwd(struct ref_model *m, struct ref_acts *a, const struct ref_layer *w,
                    const struct ref_layer *g)
{
  const struct ref_config *c = &m->c;
  const int64_t M = (int64_t)c->B * c->T, C = c->C, F = c->F;
  struct gv_tensor u = t2(a->u, M, F), tg = t2(a->g, M, F), du = t2(m->du, M, F), dg = t2(m->dg, M, F);
  if (c->model == REF_GPT) {
    lin_bwd(m, m->dg, g->downw, g->downb, m->dres, a->g, w->downw, C, F, 0);
    gv_gelu_bwd(m->be, &du, &dg, &u, 1, 0);
    lin_bwd(m, m->dh, g->upw, g->upb, m->du, a->h2, w->upw, F, C, 0);
  } else {
    struct gv_tensor ds = t2(m->ds, M, F);
    lin_bwd(m, m->ds, g->downw, NULL, m->dres, a->s, w->downw, C, F, 0);
    gv_swiglu_bwd(m->be, &du, &dg, &ds, &u, &tg, 0);
    lin_bwd(m, m->dh, g->gatew, NULL, m->du, a->h2, w->gatew, F, C, 0);
    lin_bwd(m, m->dh, g->upw, NULL, m->dg, a->h2, w->upw, F, C, GV_ACC_DX);
  }
  norm_bwd(m, m->dres, g->ln2w, g->ln2b, m->dh, a->x_mid, w->ln2w, a->mean2, a->rstd2, GV_ACC_DX);
}

/* In: dres = dL/d x_mid. Out: dres = dL/d(layer input) x. */
static void attn_bwd(struct ref_model *m, struct ref_acts *a, const struct ref_layer *w,
                     const struct ref_layer *g, float *x)
{
  const struct ref_config *c = &m->c;
  const int64_t B = c->B, T = c->T, H = c->H, KV = c->KV, D = c->C / c->H, C = c->C;
  lin_bwd(m, m->do_, g->ow, g->ob, m->dres, a->o, w->ow, C, H * D, 0);
  struct gv_tensor q = t4(a->q, B, T, H, D), k = t4(a->k, B, T, KV, D), v = t4(a->v, B, T, KV, D);
  struct gv_tensor o = t4(a->o, B, T, H, D), lse = t1(a->lse, B * H * T), dout = t4(m->do_, B, T, H, D);
  struct gv_tensor dq = t4(m->dq, B, T, H, D), dk = t4(m->dk, B, T, KV, D), dv = t4(m->dv, B, T, KV, D);
  gv_attention_bwd(m->be, &dq, &dk, &dv, &dout, &q, &k, &v, &o, &lse, 1, 0);
  float *dqp = m->dq, *dkp = m->dk;
  if (c->model == REF_LLAMA) {
    struct gv_tensor dq2 = t4(m->dq2, B, T, H, D), dk2 = t4(m->dk2, B, T, KV, D);
    gv_rope_bwd(m->be, &dq2, &dq, c->rope_base, 0, 0, 0);
    gv_rope_bwd(m->be, &dk2, &dk, c->rope_base, 0, 0, 0);
    dqp = m->dq2, dkp = m->dk2;
  }
  lin_bwd(m, m->dh, g->qw, g->qb, dqp, a->h1, w->qw, H * D, C, 0);
  lin_bwd(m, m->dh, g->kw, g->kb, dkp, a->h1, w->kw, KV * D, C, GV_ACC_DX);
  lin_bwd(m, m->dh, g->vw, g->vb, m->dv, a->h1, w->vw, KV * D, C, GV_ACC_DX);
  norm_bwd(m, m->dres, g->ln1w, g->ln1b, m->dh, x, w->ln1w, a->mean1, a->rstd1, GV_ACC_DX);
}

void ref_model_backward(struct ref_model *m)
{
  const struct ref_config *c = &m->c;
  const int64_t M = (int64_t)c->B * c->T;
  struct gv_tensor grads = t1(m->arenas.base[GV_MEM_GRADS], (int64_t)(m->arenas.bytes[GV_MEM_GRADS] / 4));
  gv_fill(m->be, &grads, 0.0f);

  struct gv_tensor logits = t2(m->logits, M, c->V), dlogits = t2(m->dlogits, M, c->V);
  struct gv_tensor lse = t1(m->lsex, M), lab = ti(m->labels, M);
  gv_xent_bwd(m->be, &dlogits, &logits, &lse, &lab, 1.0f / (float)M);
  int tied = c->model == REF_GPT;
  lin_bwd(m, m->dh, tied ? m->g.emb : m->g.head, NULL, m->dlogits, m->hf, tied ? m->w.emb : m->w.head,
          c->V, c->C, 0);
  norm_bwd(m, m->dres, m->g.lnfw, m->g.lnfb, m->dh, m->res[c->L], m->w.lnfw, m->meanf, m->rstdf, 0);
  for (int l = c->L - 1; l >= 0; l--) {
    mlp_bwd(m, &m->act[l], &m->w.layer[l], &m->g.layer[l]);
    attn_bwd(m, &m->act[l], &m->w.layer[l], &m->g.layer[l], m->res[l]);
  }
  struct gv_tensor dres = t2(m->dres, M, c->C), tok = ti(m->tokens, M), gemb = t2(m->g.emb, c->V, c->C);
  gv_embedding_bwd(m->be, &gemb, &dres, &tok, 0, GV_ACC_DW);
  if (c->model == REF_GPT) {
    struct gv_tensor dres3 = t3(m->dres, c->B, c->T, c->C), gpos = t2(m->g.pos, c->S, c->C);
    gv_embedding_bwd(m->be, &gpos, &dres3, NULL, 0, GV_ACC_DW);
  }
}

/* ---- update ---- */

double ref_model_update(struct ref_model *m, const struct gv_adamw *opt, float lr, float max_norm)
{
  double sq = 0.0;
  for (int i = 0; i < m->nparams; i++)
    sq += gv_optim_sq_sum(m->par[i].g, m->par[i].numel);
  double norm = sqrt(sq);
  float coef = max_norm > 0.0f ? gv_optim_clip_coef(norm, max_norm) : 1.0f;
  m->t++;
  for (int i = 0; i < m->nparams; i++) {
    struct ref_param *p = &m->par[i];
    gv_optim_scale(p->g, p->numel, coef);
    gv_optim_adamw_step(opt, p->w, p->g, p->m, p->v, p->numel, m->t, lr, gv_optim_decays(p->ndim, 1));
  }
  return norm;
}
