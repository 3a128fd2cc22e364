/* decode.c - generation with a KV cache: the program's decode step (gvp_decode_s0, lowered
 * from the same IR as the training forward at one token) run once per position, with the
 * keys and values of earlier positions kept per attention instead of recomputed. The
 * runtime owns the position, the caches (device memory, allocated when first used) and the
 * step's activations arena; the gv_gen_decode_* entries below are the only position-
 * dependent calls of the step. */
#include <stdlib.h>
#include <string.h>

#include "program/run.h"

static struct gv_run_decode *dec_of(void *ctx) { return &((struct gv_run *)ctx)->dec; }

void gv_run_decode_begin(struct gv_run *r, int64_t cap)
{
  struct gv_run_decode *d = &r->dec;
  GV_CHECK(d->fn != NULL, "this program has no decode step");
  d->pos = 0;
  d->cap = cap;
  memcpy(d->bases, r->bases, sizeof d->bases);
  d->bases[GV_MEM_ACTS] = gv_dev_alloc(&r->be, (size_t)d->acts_bytes);
  d->kv = calloc((size_t)(2 * d->caches + 1), sizeof *d->kv);
  d->kv_bytes = calloc((size_t)(2 * d->caches + 1), sizeof *d->kv_bytes);
  GV_CHECK(d->kv && d->kv_bytes, "out of host memory");
  /* attention of one query over up to cap keys; at least the training plan's workspace */
  size_t ws = gv_backend_workspace_bytes(&r->be, 1, 1, cap, r->attn[3], r->attn[4], r->attn[5]);
  d->ws_bytes = ws > r->be.workspace_bytes ? ws : r->be.workspace_bytes;
  d->ws = gv_dev_alloc(&r->be, d->ws_bytes);
  d->bases[GV_MEM_WORKSPACE] = d->ws;
}

const void *gv_run_decode_step(struct gv_run *r, int32_t token)
{
  struct gv_run_decode *d = &r->dec;
  GV_CHECK(d->pos < d->cap, "decode position %lld past the cache's %lld rows", (long long)d->pos, (long long)d->cap);
  void *saved = r->be.workspace;
  size_t saved_bytes = r->be.workspace_bytes;
  gv_backend_set_workspace(&r->be, d->ws, d->ws_bytes);
  gv_dev_memcpy(&r->be, d->bases[GV_MEM_ACTS] + d->tokens_off, &token, sizeof token, GV_COPY_H2D);
  d->fn(r, d->bases, 0);
  gv_backend_set_workspace(&r->be, saved, saved_bytes);
  d->pos++;
  return d->bases[GV_MEM_ACTS] + d->logits_off;
}

void gv_run_decode_end(struct gv_run *r)
{
  struct gv_run_decode *d = &r->dec;
  for (int64_t i = 0; d->kv && i < 2 * d->caches; i++)
    if (d->kv[i])
      gv_dev_free(&r->be, &d->kv[i], d->kv_bytes[i]);
  free(d->kv);
  free(d->kv_bytes);
  d->kv = NULL;
  d->kv_bytes = NULL;
  gv_dev_free(&r->be, (void **)&d->bases[GV_MEM_ACTS], (size_t)d->acts_bytes);
  gv_dev_free(&r->be, &d->ws, d->ws_bytes);
}

void gv_gen_decode_pos_embedding(void *ctx, void *y, void *table, int64_t V, int64_t C, int64_t accumulate)
{
  struct gv_run *r = ctx;
  GV_CHECK(r->dec.pos < V, "position %lld is past the model's %lld learned positions", (long long)r->dec.pos,
           (long long)V);
  struct gv_tensor Y = gv_tensor_4d(y, r->fdt, 1, 1, C, 0), TB = gv_tensor_4d(table, r->fdt, V, C, 0, 0);
  gv_embedding_fwd(&r->be, &Y, NULL, &TB, r->dec.pos, (int)accumulate);
}

void gv_gen_decode_rope(void *ctx, void *y, void *x, int64_t H, int64_t D, int64_t rot, float base)
{
  struct gv_run *r = ctx;
  struct gv_tensor Y = gv_tensor_4d(y, r->fdt, 1, 1, H, D), X = gv_tensor_4d(x, r->fdt, 1, 1, H, D);
  gv_rope_fwd(&r->be, &Y, &X, base, rot, r->dec.pos);
}

/* The cache's rows: K (or V) of positions 0..cap-1, [cap, KV, D], allocated when first used. */
static char *cache_rows(struct gv_run *r, int64_t i, size_t row)
{
  struct gv_run_decode *d = dec_of(r);
  GV_CHECK(i >= 0 && i < 2 * d->caches, "KV cache %lld of %lld", (long long)i / 2, (long long)d->caches);
  if (!d->kv[i]) {
    d->kv_bytes[i] = row * (size_t)d->cap;
    d->kv[i] = gv_dev_alloc(&r->be, d->kv_bytes[i]);
  }
  return d->kv[i];
}

void gv_gen_decode_attention(void *ctx, void *o, void *lse, void *q, void *k, void *v, int64_t cache, int64_t H,
                             int64_t KV, int64_t D)
{
  struct gv_run *r = ctx;
  int64_t p = r->dec.pos;
  size_t row = (size_t)(KV * D) * gv_run_fsz(r);
  char *kc = cache_rows(r, 2 * cache, row), *vc = cache_rows(r, 2 * cache + 1, row);
  gv_dev_memcpy(&r->be, kc + (size_t)p * row, k, row, GV_COPY_D2D);
  gv_dev_memcpy(&r->be, vc + (size_t)p * row, v, row, GV_COPY_D2D);
  struct gv_tensor O = gv_tensor_4d(o, r->fdt, 1, 1, H, D), L = gv_tensor_4d(lse, GV_DTYPE_F32, 1, H, 1, 0),
                   Q = gv_tensor_4d(q, r->fdt, 1, 1, H, D), K = gv_tensor_4d(kc, r->fdt, 1, p + 1, KV, D),
                   V = gv_tensor_4d(vc, r->fdt, 1, p + 1, KV, D);
  gv_attention_fwd(&r->be, &O, &L, &Q, &K, &V, 1);
}
