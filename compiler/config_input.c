/* config_input.c - a Galvatron strategy file (galvatron_config_*.json, read by profile.c)
 * read into the resolved plan (parplan.h): pipeline degree and division, schedule, chunks,
 * the tensor-parallel degree and layout of the blocks (per layer when they differ),
 * Ulysses per layer (use_sp), a vocabulary degree (vtp) at or above the blocks', the
 * data-parallel type, per-layer ZeRO-3 and the per-layer checkpoint flags. What the
 * lowering cannot run yet (per-layer tp with SP, Ulysses or strided groups; a vtp between
 * 1 and the blocks') is an error that names the key and layer; vsp (Ulysses for the
 * vocabulary layers) is the plan's vsp degree (parplan.h). */
#include <stdio.h>
#include <string.h>

#include "config_input.h"
#include "profile.h"
#include "diag.h"

static int uniform(const int *v, int n, int *layer)
{
  for (int i = 1; i < n; i++)
    if (v[i] != v[0]) {
      *layer = i;
      return 0;
    }
  return 1;
}

int config_apply(Arena *a, const IrModel *m, const char *path, int world_given, ParPlan *p)
{
  GalConfig c;
  memset(&c, 0, sizeof c);
  if (prof_config_read(path, &c))
    return 1;
  int rc = config_plan(a, m, &c, path, world_given, p);
  prof_config_free(&c);
  return rc;
}

/* The per-layer tp degrees: each divides the largest, one layout of the groups; 1 after
 * printing why not. */
static int check_degrees(const GalConfig *c, const char *path, int per_layer, int tmax)
{
  int bad = 0;
  if (!uniform(c->consec, c->nlayers, &bad) || (per_layer && !c->consec[0])) {
    diag_plain(NULL, "%s: key 'tp_consecutive_flags': layer %d has %d but layer 0 has %d: %s", path, bad,
               c->consec[bad], c->consec[0], per_layer ? "different tp degrees per layer need consecutive tp groups (1) "
               "on every layer" : "mixed tp group layouts are not supported yet");
    return 1;
  }
  for (int i = 0; per_layer && i < c->nlayers; i++)
    if (c->tp[i] < 1 || tmax % c->tp[i]) {
      diag_plain(NULL, "%s: key 'tp_sizes_enc': layer %d has tp=%d, which does not divide the largest "
                 "degree %d", path, i, c->tp[i], tmax);
      return 1;
    }
  return 0;
}

/* The vocabulary layers: split by vocabulary over vtp ranks, or sequence-parallel (vsp: vtp is
 * then its degree, and the vocabulary stays whole); embed_sdp noted. */
static void vocab_strategy(int vtp, int vsp, int embed_sdp, const char *path, ParPlan *p)
{
  p->vtp = vsp ? 1 : vtp;
  p->vsp = vsp ? vtp : 0;
  p->embed_sdp = embed_sdp;
  if (embed_sdp) /* the lowering shards blocks only */
    diag_plain_note(NULL, "%s: key 'embed_sdp': the embedding and head keep the default data-parallel type (ZeRO-3 "
                    "shards the blocks' parameters only), so they hold more memory than the search counted", path);
}

/* Block row l from a Galvatron layer strategy: its tp or Ulysses degree, ZeRO-3 (sdp) or
 * the default type, checkpointing. */
static void block_row(ParLayer *l, int tp, int ulysses, int zero3, int ckpt)
{
  l->tp = tp;
  if (ulysses)
    l->sp = PAR_SP_ULYSSES;
  if (zero3)
    l->dp_type = DP_ZERO3;
  l->ckpt = ckpt;
}

/* The pipeline and schedule of a Galvatron strategy. */
static void pipeline(Arena *a, ParPlan *p, int pp, const int *division, int ndivision, int chunks, int gbsz,
                     int one_f_one_b)
{
  int *div = ndivision ? ARENA_ARRAY(a, int, ndivision) : NULL;
  for (int s = 0; s < ndivision; s++)
    div[s] = division[s];
  p->pp = pp;
  p->division = div;
  p->chunks = chunks > 0 ? chunks : pp;
  p->global_batch = gbsz;
  p->pipeline_1f1b = one_f_one_b;
}

int config_search_plan(Arena *a, const IrModel *m, const CostModel *cm, const SearchPlan *sp, ParPlan *p)
{
  const char *name = "the searched strategy";
  if (cm->nlayers != (int)m->nblocks) {
    diag_plain(NULL, "%s: %d layers, but %s has %lld blocks", name, cm->nlayers, m->name, (long long)m->nblocks);
    return 1;
  }
  p->world = cm->world;
  p->cp = sp->task.cp > 1 ? sp->task.cp : 1; /* one context-parallel degree for the plan */
  pipeline(a, p, sp->task.pp, sp->division, sp->task.pp, sp->task.chunks, sp->task.gbsz, cm->pipeline_1f1b);
  p->tp = 1;
  for (int b = 0; b < cm->nlayers; b++)
    p->tp = strategy_tp_sp(&sp->layers[b]) > p->tp ? strategy_tp_sp(&sp->layers[b]) : p->tp;
  p->tp_consec = 1;
  p->ulysses = 0;
  p->sp = cm->sequence_parallel; /* Megatron SP in the tp blocks, as the search priced them */
  p->dp_type = cm->default_dp_type == DP_ZERO2 ? DP_ZERO2 : DP_DDP;
  vocab_strategy(strategy_tp_sp(&sp->embed), sp->embed.sp > 1, sp->embed.dp_type == DP_ZERO3, name, p);
  parplan_layers(a, m, p);
  for (int i = 0, b = 0; i < m->nlayers && b < cm->nlayers; i++)
    if (m->layers[i].kind == IR_LAYER_BLOCK) {
      const Strategy *s = &sp->layers[b++];
      block_row(&p->layer[i], strategy_tp_sp(s), s->sp > 1, s->dp_type == DP_ZERO3, s->ckpt);
    }
  return 0;
}

int config_plan(Arena *a, const IrModel *m, const GalConfig *c, const char *path, int world_given, ParPlan *p)
{
  int bad = 0, tmax = 0;
  if (c->nlayers != (int)m->nblocks) {
    diag_plain(NULL, "%s: key 'tp_sizes_enc': %d layers, but %s has %lld blocks", path, c->nlayers, m->name,
               (long long)m->nblocks);
    return 1;
  }
  for (int i = 0; i < c->nlayers; i++)
    tmax = c->tp[i] > tmax ? c->tp[i] : tmax;
  if (check_degrees(c, path, !uniform(c->tp, c->nlayers, &bad), tmax))
    return 1;
  if (c->world_size && world_given && c->world_size != p->world) {
    diag_plain(NULL, "%s: key 'world_size': %d, but the command gives a world of %d ranks (--num_nodes x "
               "--num_gpus_per_node)", path, c->world_size, p->world);
    return 1;
  }
  if (c->world_size) /* the config's world, unless the command gives one */
    p->world = c->world_size;
  if (c->cp && !uniform(c->cp, c->nlayers, &bad)) {
    diag_plain(NULL, "%s: key 'cp_sizes_enc': layer %d has cp=%d but layer 0 has %d: one context-parallel degree "
               "for every layer is supported so far", path, bad, c->cp[bad], c->cp[0]);
    return 1;
  }
  p->cp = c->cp ? c->cp[0] : 1;
  if (c->ep && !uniform(c->ep, c->nlayers, &bad)) {
    diag_plain(NULL, "%s: key 'ep_sizes_enc': layer %d has ep=%d but layer 0 has %d: one expert-parallel degree "
               "for every layer is supported so far", path, bad, c->ep[bad], c->ep[0]);
    return 1;
  }
  p->ep = c->ep ? c->ep[0] : 1;
  if (c->tp_of_ep && !uniform(c->tp_of_ep, c->nlayers, &bad)) {
    diag_plain(NULL, "%s: key 'tp_of_ep_sizes_enc': layer %d has tp_of_ep=%d but layer 0 has %d: one degree of tensor "
               "parallelism inside experts for every layer is supported so far", path, bad, c->tp_of_ep[bad],
               c->tp_of_ep[0]);
    return 1;
  }
  p->tp_of_ep = c->tp_of_ep ? c->tp_of_ep[0] : 1;
  if (c->n_division && c->n_division != c->pp_deg) {
    diag_plain(NULL, "%s: key 'pp_division': %d entries for pp_deg %d", path, c->n_division, c->pp_deg);
    return 1;
  }
  pipeline(a, p, c->pp_deg, c->pp_division, c->n_division, c->chunks, c->global_bsz,
           strcmp(c->pipeline_type, "gpipe") != 0);
  p->tp = tmax;
  p->tp_consec = c->consec[0];
  p->ulysses = 0; /* Ulysses per layer (use_sp); Megatron SP stays the command's */
  p->dp_type = !strcmp(c->default_dp_type, "zero3") ? DP_ZERO3 : !strcmp(c->default_dp_type, "zero2") ? DP_ZERO2 : DP_DDP;
  vocab_strategy(c->vtp, c->vsp, c->embed_sdp, path, p);
  parplan_layers(a, m, p);
  for (int i = 0, b = 0; i < m->nlayers && b < c->nlayers; i++) /* the blocks' rows, in order; dp_types_enc: 1 = */
    if (m->layers[i].kind == IR_LAYER_BLOCK) {                 /* ZeRO-3 (sdp) for that layer, 0 = the default */
      block_row(&p->layer[i], c->tp[b], c->use_sp && c->use_sp[b], c->dp_type[b] == 1, c->ckpt && c->ckpt[b]);
      b++;
    }
  return 0;
}
