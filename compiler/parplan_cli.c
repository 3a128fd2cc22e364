/* parplan_cli.c - the settings door of the plan (parplan_cli.h): command-line options and
 * .gvm strategy settings, already checked against options.c's accepted values, applied to
 * a ParPlan in one function. */
#include "parplan_cli.h"

#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "options.h"

void par_settings_init(ParSettings *s, const char *model)
{
  memset(s, 0, sizeof *s);
  s->block.file = -1;
  s->model = model;
}

void par_settings_add(Arena *a, ParSettings *s, const char *key, const char *value, Loc at)
{
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 32;
    s->v = arena_realloc(a, s->v, sizeof *s->v * (size_t)s->cap, sizeof *s->v * (size_t)cap);
    s->cap = cap;
  }
  s->v[s->n++] = (ParSetting){key, value, at};
}

const ParSetting *par_settings_find(const ParSettings *s, const char *key)
{
  for (int i = s->n - 1; key && i >= 0; i--)
    if (!strcmp(s->v[i].key, key))
      return &s->v[i];
  return NULL;
}

void par_settings_block_note(Ctx *cx, const ParSettings *s)
{
  if (s->block.file >= 0)
    diag_note(cx, s->block, "with the options of the strategy block for '%s'", s->model);
}

void par_settings_error(Ctx *cx, const ParSettings *s, const char *key, const char *msg)
{
  const ParSetting *at = par_settings_find(s, key);
  if (at && at->at.file >= 0) {
    diag_error(cx, at->at, "%s", msg);
    return;
  }
  diag_plain(cx, "%s", msg);
  par_settings_block_note(cx, s);
}

int par_settings_world_given(const ParSettings *s)
{
  return par_settings_find(s, "num_nodes") || par_settings_find(s, "num_gpus_per_node");
}

static const char *text(const ParSettings *s, const char *key)
{
  const ParSetting *v = par_settings_find(s, key);
  return v ? v->value : NULL;
}

/* An integer setting (its value already checked) into *dst, when given. */
static void num(const ParSettings *s, const char *key, int *dst)
{
  const char *v = text(s, key);
  if (v)
    *dst = (int)strtoll(v, NULL, 10);
}

/* The world: nodes x GPUs per node, at most OPTIONS_MAX_WORLD ranks. */
static int world(Ctx *cx, const ParSettings *s, ParPlan *p)
{
  num(s, "num_nodes", &p->nodes);
  num(s, "num_gpus_per_node", &p->gpus_per_node);
  int64_t w = (int64_t)p->nodes * p->gpus_per_node;
  if (w > OPTIONS_MAX_WORLD) {
    diag_plain(cx, "--num_nodes %d x --num_gpus_per_node %d = %lld ranks: expected at most %d", p->nodes,
               p->gpus_per_node, (long long)w, OPTIONS_MAX_WORLD);
    return 1;
  }
  p->world = (int)w;
  return 0;
}

/* The plan's global settings: pipeline, schedule, batch, degrees, dp type, precision. */
static int scalars(Ctx *cx, Arena *a, const IrModel *m, const ParSettings *s, ParPlan *p)
{
  const char *v;
  int sdp = 0, mb = 0, seq = 0, src = 0;
  num(s, "pp_deg", &p->pp);
  num(s, "chunks", &p->chunks);
  num(s, "global_tp_deg", &p->tp);
  num(s, "global_tp_consec", &p->tp_consec);
  num(s, "sequence_parallel", &p->sp);
  num(s, "use_ulysses", &p->ulysses);
  num(s, "vocab_tp", &p->vtp);
  num(s, "vocab_sp", &p->vsp);
  if (p->vsp) { /* Galvatron's vocab_sp: the vocabulary degree is a sequence degree */
    p->vsp = p->vtp;
    p->vtp = 1;
  }
  num(s, "global_cp_deg", &p->cp);
  num(s, "global_ep_deg", &p->ep);
  num(s, "global_tp_of_ep_deg", &p->tp_of_ep);
  num(s, "ep_dispatch_per_linear", &p->ep_per_linear);
  num(s, "no_async_grad_reduce", &p->no_async_grad_reduce);
  num(s, "global_train_batch_size", &p->global_batch);
  num(s, "micro_batch", &mb);
  num(s, "seq", &seq);
  num(s, "src_seq", &src);
  num(s, "sdp", &sdp);
  p->micro_batch = mb;
  p->pipeline_1f1b = !(v = text(s, "pipeline_type")) || strcmp(v, "gpipe") != 0;
  v = sdp ? "zero3" : text(s, "default_dp_type");
  p->dp_type = !v ? DP_DDP : !strcmp(v, "zero3") ? DP_ZERO3 : !strcmp(v, "zero2") ? DP_ZERO2 : DP_DDP;
  p->bf16 = (v = text(s, "mixed_precision")) && !strcmp(v, "bf16");
  p->seq = seq ? seq : parplan_default_seq(m);
  if (m->max_seq && p->seq > m->max_seq) {
    par_settings_error(cx, s, "seq", arena_printf(a, "--seq %lld exceeds %s's %lld positions", (long long)p->seq, m->name,
                                                  (long long)m->max_seq));
    return 1;
  }
  if (src && m->src_value < 0) {
    char msg[256];
    parplan_no_source(msg, sizeof msg, arena_printf(a, "--src_seq %d", src), m->name);
    par_settings_error(cx, s, "src_seq", arena_strdup(a, msg));
    return 1;
  }
  p->src_seq = src;
  if (!(v = text(s, "pp_division")))
    return 0;
  int *div = ARENA_ARRAY(a, int, p->pp), n = 0;
  if (options_int_list("pp_division", v, div, p->pp, &n))
    return 1;
  if (n != p->pp) {
    par_settings_error(cx, s, "pp_division", arena_printf(a, "--pp_division '%s': %d entries for --pp_deg %d (one layer "
                                                          "count per pipeline stage)", v, n, p->pp));
    return 1;
  }
  p->division = div;
  return 0;
}

/* Per-layer flags from "none", "all" (every block) or a comma list of layer names/indices;
 * key names the option in errors. */
static unsigned char *layer_flags(Ctx *cx, Arena *a, const IrModel *m, const ParSettings *s, const char *key)
{
  const char *spec = text(s, key);
  unsigned char *f = ARENA_ARRAY(a, unsigned char, m->nlayers);
  if (!spec || !strcmp(spec, "none"))
    return f;
  if (!strcmp(spec, "all")) {
    for (int i = 0; i < m->nlayers; i++)
      f[i] = m->layers[i].kind == IR_LAYER_BLOCK;
    return f;
  }
  char *copy = arena_strdup(a, spec), *save = NULL;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *end;
    long idx = strtol(t, &end, 10);
    const IrLayer *ly = *end ? ir_find_layer(m, t) : (idx >= 0 && idx < m->nlayers ? &m->layers[idx] : NULL);
    if (!ly) {
      par_settings_error(cx, s, key, arena_printf(a, "--%s: '%s' is not a layer of %s", key, t, m->name));
      return NULL;
    }
    f[ly - m->layers] = 1;
  }
  return f;
}

/* --tp_sizes_enc: one tp degree per block, into the rows. */
static int layer_degrees(Ctx *cx, Arena *a, const IrModel *m, const ParSettings *s, ParPlan *p)
{
  const char *spec = text(s, "tp_sizes_enc");
  int *deg = ARENA_ARRAY(a, int, m->nblocks + 1), n = 0;
  if (!spec)
    return 0;
  if (options_int_list("tp_sizes_enc", spec, deg, (int)m->nblocks, &n))
    return 1;
  if (n != (int)m->nblocks) {
    par_settings_error(cx, s, "tp_sizes_enc", arena_printf(a, "--tp_sizes_enc '%s': needs one degree per block (%s has "
                                                           "%lld)", spec, m->name, (long long)m->nblocks));
    return 1;
  }
  for (int i = 0, b = 0; i < m->nlayers; i++)
    if (m->layers[i].kind == IR_LAYER_BLOCK)
      p->layer[i].tp = deg[b++];
  return 0;
}

/* The per-layer lists into the rows: checkpointing, tp degrees, ZeRO-3 blocks (the others
 * keep the default type, ddp or ZeRO-2 per parameter). */
static int layer_lists(Ctx *cx, Arena *a, const IrModel *m, const ParSettings *s, ParPlan *p)
{
  const ParSetting *gc = par_settings_find(s, "global_checkpoint");
  int all = gc && !par_settings_find(s, "checkpoint") && !strcmp(gc->value, "1");
  unsigned char *ck = all ? NULL : layer_flags(cx, a, m, s, "checkpoint");
  if ((!all && !ck) || layer_degrees(cx, a, m, s, p))
    return 1;
  for (int i = 0; i < m->nlayers; i++)
    p->layer[i].ckpt = m->layers[i].kind == IR_LAYER_BLOCK && (all || ck[i]);
  if (!par_settings_find(s, "zero3_layers"))
    return 0;
  unsigned char *z = layer_flags(cx, a, m, s, "zero3_layers");
  if (!z)
    return 1;
  for (int i = 0; i < m->nlayers; i++) {
    if (z[i] && m->layers[i].kind != IR_LAYER_BLOCK) {
      par_settings_error(cx, s, "zero3_layers", arena_printf(a, "--zero3_layers: '%s' is not a block (only blocks' "
                                                             "parameters are sharded by ZeRO-3)", m->layers[i].name));
      return 1;
    }
    if (m->layers[i].kind == IR_LAYER_BLOCK)
      p->layer[i].dp_type = z[i] ? DP_ZERO3 : p->dp_type == DP_ZERO2 ? DP_ZERO2 : DP_DDP;
  }
  return 0;
}

int parplan_from_settings(Ctx *cx, Arena *a, const IrModel *m, const ParSettings *s, ParPlan *p)
{
  parplan_defaults(p);
  if (world(cx, s, p) || scalars(cx, a, m, s, p))
    return 1;
  parplan_layers(a, m, p);
  return layer_lists(cx, a, m, s, p);
}
