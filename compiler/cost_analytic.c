/* cost_analytic.c - the cost model's inputs computed from the IR instead of profiles:
 * forward time from FLOPs (and bytes, roofline) at a device peak times an efficiency,
 * memory from parameter counts and the IR's saved-activation bytes, bandwidths from
 * defaults. The formulas downstream are Galvatron's, so analytic and profiled numbers
 * are comparable; the output says which one was used. */
#include "cost.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MB (1024.0 * 1024.0)

static void set_bandwidths(CostModel *cm, const AnalyticHw *hw)
{
  int gpn = hw->gpus_per_node > 0 ? hw->gpus_per_node : cm->world;
  for (int l = 0; l < PROF_LOGMAX; l++) {
    int g = 1 << l;
    double intra = 1.0 / hw->intra_gbps, inter = 1.0 / hw->inter_gbps;
    cm->hw.ar_coe[l][1] = l == 0 ? 0 : g <= gpn ? intra : inter;
    cm->hw.ar_coe[l][0] = l == 0 ? 0 : 2 * g <= gpn ? intra : inter; /* strided groups leave the node sooner */
    cm->hw.p2p_coe[l] = cm->world > gpn ? inter : intra;
  }
  cm->hw.overlap = 1.1;
  cost_latency_from_bandwidth(cm);
}

/* The target and source lengths (T, S) layer type k is costed at: an encoder-decoder's
 * (a model reading src_tokens) types are its encoder's first and its decoder's last, as
 * Galvatron's [encoder, decoder] sequence tuple; k < 0: the non-block layers. Other models:
 * the type's own sequence, no source. */
static void lengths(const CostModel *cm, const IrModel *m, int k, int64_t *T, int64_t *S)
{
  int n = cost_ntypes(cm);
  if (cm->ntypes > 1 && m->src_value >= 0) {
    *S = cm->type_seq[0];
    *T = cm->type_seq[n - 1];
    return;
  }
  *T = cm->ntypes > 1 && k >= 0 ? cm->type_seq[k] : cm->seq;
  *S = 0;
}

int cost_analytic_init(CostModel *cm, const IrModel *m, const AnalyticHw *hw)
{
  int bytes = cm->mixed ? 2 : 4, rep[PROF_MAXTYPES], nb = 0;
  double peak = hw->tflops * 1e12 * hw->efficiency; /* FLOP/s */
  double other_flops = 0, first_params = 0, last_params = 0, first_act = 0, last_act = 0;
  for (int k = 0; k < PROF_MAXTYPES; k++) rep[k] = -1;
  int64_t T, S;
  lengths(cm, m, -1, &T, &S);
  for (int i = 0; i < m->nlayers; i++) {
    IrCost c = ir_layer_cost(m, i, 1, T, S, bytes);
    if (m->layers[i].kind == IR_LAYER_BLOCK) { /* each layer type's first block stands for the type */
      int k = nb < cm->nlayers ? cost_type_of(cm, nb) : 0;
      if (rep[k] < 0) rep[k] = i;
      nb++;
      continue;
    }
    other_flops += c.flops_fwd;
    if (!nb) { first_params += c.params; first_act += c.act_bytes; }
    else { last_params += c.params; last_act += c.act_bytes; }
  }
  if (rep[0] < 0) return 1;
  for (int k = 0; k < cost_ntypes(cm); k++) {
    lengths(cm, m, k, &T, &S);
    IrCost b = ir_layer_cost(m, rep[k] >= 0 ? rep[k] : rep[0], 1, T, S, bytes);
    double t_flops = b.flops_fwd / peak, t_bytes = (b.params * bytes + b.act_bytes) / (hw->intra_gbps * 1e9 * 10);
    cm->time.layer_m[k] = 1e3 * fmax(t_flops, t_bytes);
    cm->time.layer_c[k] = 0;
    cm->mem.param[k] = b.params * 4.0 / MB;
    cm->mem.act_ckpt[k] = b.boundary_bytes / MB;
    for (int l = 0; l < PROF_LOGMAX; l++) cm->mem.act[k][l] = b.act_bytes / MB / (1 << l);
  }
  cm->time.other_m = 1e3 * other_flops / peak;
  cm->time.other_c = 0;
  for (int l = 0; l < PROF_LOGMAX; l++) {
    double t = 1 << l;
    ProfOtherMem *o[3] = {&cm->mem.off, &cm->mem.first, &cm->mem.last};
    double ps[3] = {first_params + last_params, first_params, last_params};
    double as[3] = {first_act + last_act, first_act, last_act};
    for (int k = 0; k < 3; k++) {
      o[k]->ms[l] = ps[k] * 16.0 / MB / t; /* bf16 weights+grads, fp32 master and Adam moments */
      o[k]->act[l] = as[k] / MB / t;
    }
  }
  set_bandwidths(cm, hw);
  cm->analytic = 1;
  return 0;
}

int cost_types_from_ir(CostModel *cm, const IrModel *m, unsigned char *types, char (*names)[64])
{
  int ir_id[PROF_MAXTYPES], nt = 0, nb = 0;
  for (int i = 0; i < m->nlayers; i++) {
    const IrLayer *ly = &m->layers[i];
    if (ly->kind != IR_LAYER_BLOCK) continue;
    int k = 0;
    while (k < nt && ir_id[k] != ly->type_id) k++;
    if (k == nt) {
      if (nt == PROF_MAXTYPES) return -1;
      ir_id[nt] = ly->type_id;
      int v = ly->out_value >= 0 ? ly->out_value : ly->in_value;
      cm->type_hidden[nt] = v >= 0 ? (int)m->values[v].shape.d[m->values[v].shape.rank - 1] : (int)m->hidden;
      cm->type_seq[nt] = cm->seq;
      cm->type_layers[nt] = 0;
      if (names) snprintf(names[nt], 64, "%s", ly->name);
      nt++;
    }
    cm->type_layers[k]++;
    types[nb++] = (unsigned char)k;
  }
  cm->ntypes = nt;
  cm->nlayers = nb;
  cm->type_of = types;
  return nt;
}

int cost_types_src(const IrModel *m, const unsigned char *types, int *src)
{
  for (int k = 0; k < PROF_MAXTYPES; k++) src[k] = 0;
  if (!m || m->src_value < 0 || !types) return 0;
  for (int i = 0, b = 0; i < m->nlayers && b < m->nblocks; i++) {
    const IrLayer *ly = &m->layers[i];
    if (ly->kind != IR_LAYER_BLOCK) continue;
    if (ly->in_value >= 0 && ir_len_dim(&m->values[ly->in_value].shape) == IR_DIM_S) src[types[b]] = 1;
    b++;
  }
  return 1;
}
