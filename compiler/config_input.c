/* config_input.c - a Galvatron strategy file (galvatron_config_*.json, read by profile.c)
 * turned into the lowering's options: pipeline degree and division, schedule, chunks,
 * the tensor-parallel degree and layout of the blocks (per layer when they differ),
 * Ulysses per layer (use_sp), a vocabulary degree (vtp) at or above the blocks', the
 * data-parallel type, per-layer ZeRO-3 and the per-layer checkpoint flags. What the
 * lowering cannot run yet (per-layer tp with SP, Ulysses or strided groups; a vtp between
 * 1 and the blocks') is an error that names the key and layer; vsp (Ulysses for the
 * vocabulary layers) runs them replicated over their group, with a note. */
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

int config_apply(Arena *a, const IrModel *m, const char *path, int world_given, LowerOptions *o)
{
  GalConfig c;
  memset(&c, 0, sizeof c);
  if (prof_config_read(path, &c))
    return 1;
  int rc = config_apply_galvatron(a, m, &c, path, world_given, o);
  prof_config_free(&c);
  return rc;
}

int config_apply_galvatron(Arena *a, const IrModel *m, const GalConfig *config, const char *path, int world_given,
                           LowerOptions *o)
{
  const GalConfig c = *config; /* read only; its arrays stay the caller's */
  int rc = 1, bad = 0;
  const char *err = NULL;
  if (c.nlayers != (int)m->nblocks) {
    diag_plain(NULL, "%s: key 'tp_sizes_enc': %d layers, but %s has %lld blocks", path, c.nlayers,
               m->name, (long long)m->nblocks);
    goto out;
  }
  int per_layer = !uniform(c.tp, c.nlayers, &bad), tmax = 0;
  if (!uniform(c.consec, c.nlayers, &bad) || (per_layer && !c.consec[0])) {
    diag_plain(NULL, "%s: key 'tp_consecutive_flags': layer %d has %d but layer 0 has %d: %s", path, bad,
               c.consec[bad], c.consec[0], per_layer ? "different tp degrees per layer need consecutive tp groups (1) on "
               "every layer" : "mixed tp group layouts are not supported yet");
    goto out;
  }
  for (int i = 0; i < c.nlayers; i++)
    tmax = c.tp[i] > tmax ? c.tp[i] : tmax;
  for (int i = 0; per_layer && i < c.nlayers; i++)
    if (c.tp[i] < 1 || tmax % c.tp[i]) {
      diag_plain(NULL, "%s: key 'tp_sizes_enc': layer %d has tp=%d, which does not divide the largest "
                 "degree %d", path, i, c.tp[i], tmax);
      goto out;
    }
  int vtp = c.vtp;
  if (c.vsp) { /* Ulysses for the vocabulary layers: each rank of the group would take its sequence chunk */
    diag_plain_note(NULL, "%s: key 'vsp': the embedding and head run replicated over their group of %d (the "
                    "same numbers; Galvatron gives each rank 1/%d of the sequence, so their activations here are %dx "
                    "what its cost model counts)", path, c.vtp, c.vtp, c.vtp);
    vtp = 1;
  }
  if (c.embed_sdp) /* the lowering shards blocks only */
    diag_plain_note(NULL, "%s: key 'embed_sdp': the embedding and head keep the default data-parallel type (ZeRO-3 "
                    "shards the blocks' parameters only), so they hold more memory than the search counted", path);
  if (c.world_size && !world_given) /* the config's world, unless the command gives one */
    o->world = c.world_size;
  else if (c.world_size && c.world_size != o->world) {
    diag_plain(NULL, "%s: key 'world_size': %d, but the command gives a world of %d ranks (--num_nodes x "
               "--num_gpus_per_node)", path, c.world_size, o->world);
    goto out;
  }
  if (c.cp && !uniform(c.cp, c.nlayers, &bad)) {
    diag_plain(NULL, "%s: key 'cp_sizes_enc': layer %d has cp=%d but layer 0 has %d: one context-parallel degree "
               "for every layer is supported so far", path, bad, c.cp[bad], c.cp[0]);
    goto out;
  }
  o->cp = c.cp ? c.cp[0] : 1;
  o->pp = c.pp_deg;
  o->tp = tmax;
  o->layer_tp = NULL;
  if (per_layer) { /* each block its own degree; the embedding and head on the largest */
    int *lt = ARENA_ARRAY(a, int, m->nlayers);
    for (int i = 0, b = 0; i < m->nlayers; i++)
      lt[i] = m->layers[i].kind == IR_LAYER_BLOCK ? c.tp[b++] : tmax;
    o->layer_tp = lt;
  }
  if ((err = lower_vocab_degree(a, m, vtp, o))) { /* the embedding and head on a larger degree */
    diag_plain(NULL, "%s: key 'vtp': %s", path, err);
    goto out;
  }
  o->tp_consec = c.consec[0];
  int nul = 0; /* use_sp: Ulysses per layer (Megatron tp on the others) */
  unsigned char *ul = ARENA_ARRAY(a, unsigned char, m->nlayers);
  for (int i = 0, b = 0; c.use_sp && i < m->nlayers; i++)
    if (m->layers[i].kind == IR_LAYER_BLOCK && b < c.nlayers)
      nul += ul[i] = (unsigned char)(c.use_sp[b++] != 0);
  o->ulysses = nul > 0 && o->tp > 1;
  if (o->ulysses && nul < c.nlayers)
    o->ulysses_layers = ul;
  o->vtp = vtp > 1;
  /* dp_types_enc: 1 = ZeRO-3 (sdp) for that layer, 0 = default_dp_type */
  int nz3 = 0;
  unsigned char *z3 = ARENA_ARRAY(a, unsigned char, m->nlayers);
  for (int i = 0, b = 0; i < m->nlayers; i++)
    if (m->layers[i].kind == IR_LAYER_BLOCK && b < c.nlayers)
      nz3 += z3[i] = (unsigned char)(c.dp_type[b++] == 1);
  if (!strcmp(c.default_dp_type, "zero3") || nz3 == c.nlayers)
    o->zero = 3;
  else if (nz3) /* the other layers keep the default: ddp, or ZeRO-2 per parameter */
    o->zero = 3, o->zero3_layers = z3, o->zero2_rest = !strcmp(c.default_dp_type, "zero2");
  else
    o->zero = !strcmp(c.default_dp_type, "zero2") ? 2 : 0;

  o->pipeline_1f1b = strcmp(c.pipeline_type, "gpipe") != 0;
  o->chunks = c.chunks > 0 ? c.chunks : o->pp;
  if (c.n_division) {
    if (c.n_division != o->pp) {
      diag_plain(NULL, "%s: key 'pp_division': %d entries for pp_deg %d", path, c.n_division, o->pp);
      goto out;
    }
    if (!(o->stage_of_layer = lower_partition(a, m, o->pp, c.pp_division, &err))) {
      diag_plain(NULL, "%s: key 'pp_division': %s", path, err);
      goto out;
    }
  }
  unsigned char *ckpt = ARENA_ARRAY(a, unsigned char, m->nlayers);
  for (int i = 0, b = 0; i < m->nlayers; i++)
    if (m->layers[i].kind == IR_LAYER_BLOCK)
      ckpt[i] = c.ckpt && b < c.nlayers ? (unsigned char)c.ckpt[b++] : 0;
  o->checkpoint = ckpt;
  o->global_batch = c.global_bsz;
  int64_t per = (int64_t)o->chunks * (lower_dp(o, o->tp) / (o->cp > 1 ? o->cp : 1)); /* cp ranks share samples */
  if (!o->micro_batch && c.global_bsz > 0 && per > 0 && !(o->world % ((int64_t)o->pp * o->tp))) {
    /* the micro-batch the strategy implies (an impossible world is lower_check's to report) */
    if (c.global_bsz % per) {
      diag_plain(NULL, "%s: key 'global_bsz': %d is not divisible by chunks %d x dp %d", path,
                 c.global_bsz, o->chunks, (int)(per / o->chunks));
      goto out;
    }
    o->micro_batch = c.global_bsz / per;
  }
  rc = 0;
out:
  return rc;
}
