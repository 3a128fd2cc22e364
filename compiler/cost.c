/* cost.c - Galvatron's cost model, formula for formula (design/galvatron-search.md §2),
 * including its quirks: lbsz is an integer division by dp (not dp*sp), Ulysses with dp 1
 * pays no gradient sync, ZeRO-3's all-gather is not overlapped, the transition cost is in
 * bytes*ms/MB*1e-7. Keeping the quirks is what lets the golden cost vectors match. */
#include "cost.h"

#include <math.h>
#include <string.h>

#define MB (1024.0 * 1024.0)

void cost_model_defaults(CostModel *cm)
{
  memset(cm, 0, sizeof *cm);
  cm->mixed = 1;
  cm->sequence_parallel = 1;
  cm->pipeline_1f1b = 1;
  cm->async_grad_reduce = 1;
  cm->global_memory_buffer = 1;
  cm->default_dp_type = DP_ZERO2;
  cm->context_mem = 1024;
  cm->costmodel_coe = 1.0;
  for (int l = 0; l < PROF_LOGMAX; l++) /* not profiled (gvc_hardware_*.json): Galvatron's ZeRO terms */
    cm->hw.ag_coe[l][0] = cm->hw.ag_coe[l][1] = cm->hw.rs_coe[l][0] = cm->hw.rs_coe[l][1] = NAN;
}

static int lg(int v) { return prof_log2(v); }

/* A layer type's layer count, sequence length and hidden size (one type: the model's). */
static int type_layers(const CostModel *cm, int k) { return cm->ntypes > 1 ? cm->type_layers[k] : cm->nlayers; }
static int type_seq(const CostModel *cm, int k) { return cm->ntypes > 1 ? cm->type_seq[k] : cm->seq; }
static int type_hidden(const CostModel *cm, int k) { return cm->ntypes > 1 ? cm->type_hidden[k] : cm->hidden; }

/* ---- gvc's calibrated model (cm->analytic) only: what gvc's runtime does that Galvatron's
 * model leaves out, each measured by gvc profile (docs/profile.md, "Fidelity") ---- */

/* The share of a layer's parameters one rank steps and keeps gradients of: split by tp,
 * and by the sharding group under ZeRO. */
static double param_share(const Strategy *s)
{
  return 1.0 / s->tp / (s->dp_type == DP_DDP ? 1 : strategy_sdp(s));
}

/* ms: the optimizer step (with the gradients' zeroing and norm) of a layer, once per iteration */
static double layer_opt_ms(const CostModel *cm, const Strategy *s)
{
  return cm->analytic ? cm->time.opt_layer_ms * param_share(s) : 0;
}

double cost_layer_opt(const CostModel *cm, const Strategy *s)
{
  return layer_opt_ms(cm, s) * 0.001 * cm->costmodel_coe;
}

void cost_embed_opt(const CostModel *cm, const CostTask *t, const Strategy *e, double *out)
{
  double v = cm->analytic ? cm->time.opt_other_ms * param_share(e) * 0.001 * cm->costmodel_coe : 0;
  for (int i = 0; i < t->pp; i++) out[i] = 0;
  out[0] += t->pp == 1 ? v : v / 2; /* embedding on the first stage, final norm and head on the last */
  if (t->pp > 1) out[t->pp - 1] += v / 2;
}

/* MB outside the plan for gradients reduced whole across data-parallel ranks (the MPI
 * collective's buffers on CPU ranks: ddp's all-reduces in flight together, ZeRO-2's flat
 * reduce-scatter), per fp32 MB of those parameters; ZeRO-3 reduces layer by layer, and
 * Ulysses' sequence group parameter by parameter after the step */
static double reduce_buffer(const CostModel *cm, const Strategy *s, double param_mb)
{
  int whole = s->dp > 1 && s->dp_type != DP_ZERO3;
  return cm->analytic && whole ? cm->mem.context_per_param * param_mb : 0;
}

/* ms per layer of ZeRO's collectives as gvc's runtime runs them, blocking, at the profiled
 * all-gather and reduce-scatter bandwidths: ZeRO-2 reduce-scatters the gradients after the
 * last backward and all-gathers the weights after the step; ZeRO-3 gathers a layer's
 * weights for its forward and backward (and recomputation) and reduce-scatters its
 * gradients in its backward. -1: not this model, not ZeRO, or no profile of them. */
static double zero_comm(const CostModel *cm, const Strategy *s, int type, int sync)
{
  int sdp = strategy_sdp(s), l = lg(sdp), c = s->tp != 1 ? 0 : 1;
  if (!cm->analytic || s->dp_type == DP_DDP || sdp < 2 || isnan(cm->hw.ag_coe[l][c]) || isnan(cm->hw.rs_coe[l][c])) return -1;
  double mb = cm->mem.param[type] / s->tp * (cm->mixed ? 0.5 : 1) * (sdp - 1) / sdp;
  double ag = mb * cm->hw.ag_coe[l][c], rs = mb * cm->hw.rs_coe[l][c];
  if (s->dp_type == DP_ZERO2) return sync ? rs + ag : 0;
  return (2 + s->ckpt) * ag + (sync ? rs : 0);
}

/* The profiled split of a layer (PROF_SPLIT_*) that s runs, or -1 */
static int split_of(const CostModel *cm, const Strategy *s)
{
  int v = s->sp > 1 ? PROF_SPLIT_ULYSSES : cm->sequence_parallel ? PROF_SPLIT_TP_SP : PROF_SPLIT_TP;
  int ok = cm->analytic && strategy_tp_sp(s) > 1 && strategy_tp_sp(s) == cm->time.split_deg;
  return ok && cm->time.split_fwd[v] > 0 && cm->time.split_bwd[v] > 0 ? v : -1;
}

double cost_iteration(const CostModel *cm, int pp, int chunks, const double *wg, const double *c, const double *opt)
{
  double w[COST_MAXPP], most = 0;
  if (!cm->analytic) return cost_pipeline(pp, chunks, wg, c);
  for (int i = 0; i < pp; i++) {
    w[i] = wg[i] - opt[i];
    most = fmax(most, opt[i]);
  }
  return cost_pipeline(pp, chunks, w, c) + most;
}

double cost_layer_peak_mem(const CostModel *cm, const CostTask *t, const Strategy *s, int type)
{
  if (!cm->analytic) return 0;
  int lbsz = t->gbsz / t->chunks / s->dp;
  double recompute = s->ckpt ? cm->mem.act[type][lg(strategy_tp_sp(s))] * lbsz : 0;
  double zero3 = s->dp > 1 && s->dp_type == DP_ZERO3 ? cm->mem.context_per_param * cm->mem.param[type] / s->tp : 0;
  return recompute + zero3;
}

static double coe(const CostModel *cm, int g, int consec)
{
  return g <= 1 ? 0 : cm->hw.ar_coe[lg(g)][consec];
}

/* ---- layer time (§2.1-2.4) ---- */

static double overlap(double msg, double bct, double dc, double ov)
{
  double dco = dc * ov, a = msg * dco, b = bct * ov;
  if (a > b) return b + (msg - b / dco) * dc;
  if (a < b) return a + (bct - a / ov);
  return b;
}

static double tp_comm(const CostModel *cm, const Strategy *s, int type, int lbsz, double calls)
{
  double msg = (double)lbsz * type_seq(cm, type) / strategy_cp(s) * type_hidden(cm, type) * (cm->mixed ? 2 : 4) / MB;
  const ProfLatency *l = s->tp == 1 ? &cm->hw.a2a[lg(s->sp)] : &cm->hw.ag[lg(s->tp)];
  return calls * prof_latency(l, msg);
}

/* backward / forward of the embedding and head: measured (gvc profile computation), else Galvatron's 2 */
static double embed_bwd_ratio(const CostModel *cm)
{
  return cm->time.other_bwd_ratio > 0 ? cm->time.other_bwd_ratio : 2;
}

/* Context parallelism's ring (ms per layer, all of the type's layers as the other terms):
 * K and V blocks of this rank's tokens (at most hidden / tp columns each: kv heads <= heads)
 * go round cp - 1 times in forward; in backward they go round again and dK/dV cp times, at
 * the hardware profile's point-to-point cost for a group of cp (p2p_bandwidth, ms/MB).
 * Each step's transfer runs beside the previous block's attention, so only what exceeds the
 * layer's compute of that pass is exposed. */
static double ring_exposed(const CostModel *cm, const Strategy *s, int type, int lbsz, double fct, double bct, double Lt)
{
  int cp = strategy_cp(s);
  if (cp <= 1) return 0;
  double kv = 2.0 * lbsz * ((double)type_seq(cm, type) / cp) * type_hidden(cm, type) / s->tp * (cm->mixed ? 2 : 4) / MB;
  double c = cm->hw.p2p_coe[lg(cp)] > 0 ? cm->hw.p2p_coe[lg(cp)] : cm->hw.p2p_coe[1];
  double fwd = (cp - 1) * kv * c * Lt, bwd = (2 * cp - 1) * kv * c * Lt;
  return fmax(0, fwd - fct) + fmax(0, bwd - bct);
}

double cost_layer_time(const CostModel *cm, const CostTask *t, const Strategy *s, int type, int sync, LayerCostDetail *d)
{
  double Lt = type_layers(cm, type);
  int lbsz = t->gbsz / t->chunks / s->dp, tpsp = strategy_tp_sp(s), sdp = strategy_sdp(s), cp = strategy_cp(s);
  double x = (double)lbsz / tpsp / cp; /* cp: each rank computes 1/cp of the tokens (zigzag: of the attention too) */
  double fct = fmax(0, cm->time.layer_m[type] * x + cm->time.layer_c[type]) * Lt; /* a noisy batch fit may cross 0 (profile.c warns) */
  double bct = (cm->time.bwd_ratio[type] > 0 ? cm->time.bwd_ratio[type] : 2) * fct + (s->ckpt ? fct : 0);
  double P = cm->mem.param[type] / s->tp;
  double dpmsg = 2.0 * (sdp - 1) * (P / sdp) * Lt / (cm->mixed ? 2 : 1);
  double dc = coe(cm, sdp, s->tp != 1 ? 0 : 1), ov = cm->hw.overlap;
  double tpt = 0;
  int split = split_of(cm, s);
  if (split >= 0) { /* gvc's calibrated model: the split layer as profiled, its collectives included */
    double f = fct * cm->time.split_fwd[split];
    bct = (cm->time.bwd_ratio[type] > 0 ? cm->time.bwd_ratio[type] : 2) * fct * cm->time.split_bwd[split] + (s->ckpt ? f : 0);
    fct = f;
  } else if (tpsp > 1) tpt = tp_comm(cm, s, type, lbsz, (s->tp == 1 ? 4 : 6) * Lt * (s->ckpt ? 1.5 : 1));
  double T;
  int dp = s->dp * cp; /* gradients reduce over dp x cp */
  if (tpsp == 1 && dp > 1) T = fct + overlap(dpmsg * sync, bct, dc, ov);
  else if (dp == 1 && tpsp > 1) T = fct + bct + tpt;
  else if (dp == 1 && tpsp == 1) T = fct + bct;
  else T = fct + overlap(dpmsg * sync, bct, dc, ov) + tpt;
  if (s->dp_type == DP_ZERO3) T += 0.5 * dpmsg * dc;
  double zc = zero_comm(cm, s, type, sync);
  if (zc >= 0) T = fct + bct + tpt + zc * Lt; /* gvc's runtime: ZeRO's collectives are not overlapped */
  T += ring_exposed(cm, s, type, lbsz, fct, bct, Lt);
  double p2p = 0;
  if (t->pp > 1) {
    p2p = t->pp * 2.0 * lbsz * type_seq(cm, type) / cp * type_hidden(cm, type) * 4 / MB / (cm->mixed ? 2 : 1);
    T += p2p * cm->hw.p2p_coe[lg(t->pp)];
  }
  if (sync) T += layer_opt_ms(cm, s) * Lt;
  if (d) *d = (LayerCostDetail){fct, bct, dpmsg, dc, tpt, p2p, lbsz};
  return T * 0.001 * cm->costmodel_coe / Lt;
}

/* ---- memory (§2.8-2.10) ---- */

static double zero_ratio(const CostModel *cm, int dp_type, int d, int chunks)
{
  double u = 1.0 / d + 0.003;
  if (dp_type == DP_DDP) return 1;
  if (cm->analytic) { /* gvc's runtime: the gradients stay whole (reduce-scattered in place), ZeRO-3 shards the weights too */
    double g = cm->mixed ? 2.0 / 16 : 1.0 / 4, whole = dp_type == DP_ZERO3 ? g : 2 * g; /* of p, g, (master,) m, v */
    return whole + (1 - whole) / d;
  }
  int z3 = dp_type == DP_ZERO3;
  if (chunks == 1) return z3 ? u : cm->mixed ? 7.0 / 8 * u + 1.0 / 8 : 3.0 / 4 * u + 1.0 / 4;
  if (cm->async_grad_reduce)
    return z3 ? (cm->mixed ? 7.0 / 8 * u + 1.0 / 8 : 3.0 / 4 * u + 1.0 / 4) : (cm->mixed ? 6.0 / 8 * u + 2.0 / 8 : 2.0 / 4 * u + 2.0 / 4);
  return z3 ? u * 5 / 4 : (cm->mixed ? (7.0 / 8 * u + 1.0 / 8) * 5 / 4 : 3.0 / 4 * u + 1.0 / 4);
}

double cost_layer_mem(const CostModel *cm, const CostTask *t, const Strategy *s, int type, int stage, double *ms, double *act)
{
  int lbsz = t->gbsz / t->chunks / s->dp, tpsp = strategy_tp_sp(s);
  int cum = t->pp == 1 ? 1 : cm->pipeline_1f1b ? t->pp - stage : t->chunks;
  double clbsz = (double)cum * lbsz;
  double M = 4 * (cm->mem.param[type] / s->tp) * zero_ratio(cm, s->dp_type, strategy_sdp(s), t->chunks);
  double A;
  if (s->ckpt) A = cm->mem.act_ckpt[type] * clbsz / ((s->sp > 1 || (s->tp > 1 && cm->sequence_parallel)) ? tpsp : 1);
  else A = cm->mem.act[type][lg(tpsp)] * clbsz;
  A /= strategy_cp(s); /* cp: every activation holds 1/cp of the tokens */
  if (ms) *ms = M;
  if (act) *act = A;
  return M + A + reduce_buffer(cm, s, cm->mem.param[type] / s->tp);
}

void cost_embed_mem(const CostModel *cm, const CostTask *t, const Strategy *e, double *ms, double *act, double *total)
{
  int pp = t->pp, lbsz = t->gbsz / t->chunks / e->dp, ltp = lg(e->tp), ltpsp = lg(strategy_tp_sp(e));
  double z = zero_ratio(cm, e->dp_type, strategy_sdp(e), t->chunks), cpf = 1.0 / strategy_cp(e);
  double m[COST_MAXPP] = {0}, a[COST_MAXPP] = {0};
  if (pp == 1) {
    m[0] = cm->mem.off.ms[ltp] * z;
    a[0] = cm->mem.off.act[ltpsp] * lbsz;
  } else {
    m[0] = cm->mem.first.ms[ltp] * z;
    m[pp - 1] = cm->mem.last.ms[ltp] * z;
    a[0] = cm->mem.first.act[ltpsp] * lbsz * (cm->pipeline_1f1b ? pp : t->chunks);
    a[pp - 1] = cm->mem.last.act[ltpsp] * lbsz * (cm->pipeline_1f1b ? 1 : t->chunks);
  }
  double ctx = cm->context_mem - (cm->analytic ? cm->mem.context_per_param * cm->mem.context_param_mb : 0);
  for (int i = 0; i < pp; i++) {
    if (ms) ms[i] = m[i];
    a[i] *= cpf;
    if (act) act[i] = a[i];
    double own = i == 0 || i == pp - 1 ? reduce_buffer(cm, e, (pp == 1 ? cm->mem.off.ms : i ? cm->mem.last.ms : cm->mem.first.ms)[ltp] / 4) : 0;
    if (total) total[i] = m[i] + a[i] + (cm->analytic ? ctx + own : cm->context_mem);
  }
}

double cost_global_buffer(const CostModel *cm, const CostTask *t, int buf, int sp_only)
{
  if (!cm->sequence_parallel || !cm->global_memory_buffer || sp_only || buf < 1) return 0;
  int cur_dp = cm->world / t->pp / buf;
  if (cur_dp < 1) cur_dp = 1;
  double cur_lbsz = (double)t->gbsz / t->chunks / cur_dp; /* with cp too: cp x dp ranks share the batch's tokens */
  int seq = cm->seq; /* several types: the longest sequence (dynamic_programming.py) */
  for (int k = 0; k < cm->ntypes; k++) if (cm->type_seq[k] > seq) seq = cm->type_seq[k];
  return cur_lbsz * cm->hidden * seq * 4 / MB / 2; /* Galvatron halves it even for fp32 */
}

/* ---- embedding / LM head time (§2.5) ---- */

static double ovl(double fc, double fp, double bc, double bp, double tp, double ov)
{
  double f2 = fp * ov, b2 = bp * ov;
  double fwd = f2 > fc ? fc + (f2 - fc) / ov : fc;
  double bwd = b2 > bc ? bc + (b2 - bc) / ov : bc;
  return fwd + bwd + tp;
}

void cost_embed_time(const CostModel *cm, const CostTask *t, const Strategy *e, int sync, double *out)
{
  int pp = t->pp, last = pp - 1, lbsz = t->gbsz / t->chunks / e->dp, sdp = strategy_sdp(e);
  double fctE = fmax(0, cm->time.other_m * ((double)lbsz / strategy_tp_sp(e) / strategy_cp(e)) + cm->time.other_c);
  double fct[COST_MAXPP] = {0}, msg[COST_MAXPP] = {0}, tp[COST_MAXPP] = {0};
  double dp_coe = sdp > 1 ? coe(cm, sdp, e->tp != 1 ? 0 : 1) * (sdp - 1) / sdp : 0;
  double half = cm->mixed ? 0.5 : 1;
  double tt[2] = {0, 0}; /* all-gather at the first and the last layer type's sequence (embedding_lmhead_cost.py) */
  for (int i = 0; i < 2 && e->tp > 1; i++) {
    double mb = (double)lbsz * type_seq(cm, i ? cost_ntypes(cm) - 1 : 0) / strategy_cp(e) * type_hidden(cm, 0) *
                (cm->mixed ? 2 : 4) / MB;
    tt[i] = prof_latency(&cm->hw.ag[lg(e->tp)], mb);
  }
  if (pp == 1) {
    fct[0] = fctE;
    msg[0] = cm->mem.off.ms[lg(e->tp)] / 4 * half;
    tp[0] = tt[0] + tt[1];
  } else {
    fct[0] = fct[last] = fctE / 2;
    msg[0] = cm->mem.first.ms[lg(e->tp)] / 4 * half;
    msg[last] = cm->mem.last.ms[lg(e->tp)] / 4 * half;
    tp[0] = tt[0];
    tp[last] = tt[1];
  }
  double ff = e->dp_type == DP_ZERO3 ? 0.5 : 0.0, bf = e->dp_type == DP_ZERO3 ? 1.0 : 0.5;
  if (!sync) bf -= 0.5;
  for (int i = 0; i < pp; i++) {
    if (i != 0 && i != last) { out[i] = 0; continue; }
    out[i] = 0.001 * ovl(msg[i] * dp_coe * ff, fct[i], msg[i] * dp_coe * bf, embed_bwd_ratio(cm) * fct[i], tp[i], cm->hw.overlap);
  }
}

/* ---- pipeline (§2.6) and transitions (§2.11) ---- */

double cost_pipeline(int pp, int chunks, const double *wg, const double *c)
{
  double sum = 0, rest = 0;
  for (int i = 0; i < pp; i++) sum += c[i];
  for (int i = 1; i < pp; i++) rest += c[i];
  double T1 = sum + c[pp - 1] * (chunks - 1);
  double w = (pp - 1 < chunks - 1 ? pp - 1 : chunks - 1) * c[0];
  double T2 = fmax(w / 3, rest / 3) + fmax(w * 2 / 3, rest * 2 / 3) + c[0] * fmax(0, chunks + 1 - pp);
  double T = fmax(T1, T2), R = 0, acc = 0;
  for (int i = 0; i < pp; i++) {
    acc += c[i];
    R = fmax(R, wg[i] - acc);
  }
  return T + R;
}

double cost_transition(const CostModel *cm, const CostTask *t, const Strategy *a, const Strategy *b, int type)
{
  if (!strategy_cmp(a, b)) return 0;
  int ga = strategy_tp_sp(a), gb = strategy_tp_sp(b);
  if (cm->sequence_parallel && ga != gb) {
    int g = ga > gb ? ga : gb, cur_dp = cm->world / t->pp / g;
    double cur_lbsz = (double)t->gbsz / t->chunks / cur_dp;
    double bytes = (g - 1.0) / g * cur_lbsz * type_seq(cm, type) * cm->hidden * (cm->mixed ? 2 : 4);
    double c = coe(cm, g, 1); /* 'g' and 'g_1' are the same value */
    return cm->transition_physical ? bytes / MB * c * 1e-3 : bytes * c * 1e-7;
  }
  double v = 0;
  int same4 = a->pp == b->pp && a->tp == b->tp && a->sp == b->sp && a->dp == b->dp;
  int same_tpsp = a->pp == b->pp && ga == gb && a->dp == b->dp;
  if (same_tpsp && a->ckpt == b->ckpt && a->dp_type == b->dp_type && a->sp != b->sp && b->sp > 1) v = 1e-10;
  if (same4 && a->ckpt == b->ckpt && a->dp_type != b->dp_type && b->dp_type == DP_ZERO3) v = 1e-9;
  if (same4 && a->dp_type == b->dp_type && a->ckpt != b->ckpt && b->ckpt) v = 2e-9;
  if (same4 && (a->dp_type != b->dp_type || a->ckpt != b->ckpt) && b->dp_type == DP_ZERO3 && b->ckpt) v = 3e-9;
  if (same4 && a->dp_type != b->dp_type && a->ckpt != b->ckpt && a->dp_type == DP_ZERO3 && b->ckpt) v = 1e-9;
  return v;
}

/* ---- whole plan ---- */

void cost_plan_eval(const CostModel *cm, const CostTask *t, const CostPlan *p, int gbuf_tp, CostResult *r)
{
  double wg[COST_MAXPP] = {0}, c[COST_MAXPP] = {0}, emem[COST_MAXPP];
  memset(r, 0, sizeof *r);
  cost_embed_time(cm, t, &p->embed, 0, c);
  cost_embed_opt(cm, t, &p->embed, r->opt_s);
  cost_embed_mem(cm, t, &p->embed, r->states_mb, r->act_mb, emem);
  int sp_only = 1;
  for (int i = 0; i < p->nlayers; i++) sp_only &= p->layers[i].tp == 1;
  double gmem = floor(cost_global_buffer(cm, t, gbuf_tp, sp_only));
  for (int k = 0, l = 0; k < t->pp; k++) {
    r->mem_mb[k] = emem[k] + gmem;
    r->buffer_mb[k] = gmem;
    r->context_mb[k] = emem[k] - r->states_mb[k] - r->act_mb[k];
    r->fwd_s[k] = c[k] / (1 + embed_bwd_ratio(cm)); /* the embedding/head's backward: ratio x its forward (cost_embed_time) */
    r->bwd_s[k] = c[k] - r->fwd_s[k];
    wg[k] = r->opt_s[k];
    double recompute = 0;
    for (int j = 0; j < p->division[k]; j++, l++) {
      const Strategy *s = &p->layers[l];
      int ty = cost_type_of(cm, l);
      LayerCostDetail d;
      double ms, act, nosync = cost_layer_time(cm, t, s, ty, 0, &d), sync = cost_layer_time(cm, t, s, ty, 1, NULL);
      wg[k] += sync;
      c[k] += nosync;
      double f = d.fct + d.bct > 0 ? nosync * d.fct / (d.fct + d.bct) : 0;
      r->fwd_s[k] += f;
      r->bwd_s[k] += nosync - f;
      double opt = cost_layer_opt(cm, s);
      r->opt_s[k] += opt;
      r->sync_s[k] += sync - nosync - opt;
      double lm = cost_layer_mem(cm, t, s, ty, k, &ms, &act);
      r->mem_mb[k] += lm;
      r->states_mb[k] += ms;
      r->act_mb[k] += act;
      r->context_mb[k] += lm - ms - act; /* the reductions' buffers (gvc's model) */
      recompute = fmax(recompute, cost_layer_peak_mem(cm, t, s, ty));
      if (l > 0) r->transition_s += cost_transition(cm, t, &p->layers[l - 1], s, ty);
    }
    r->mem_mb[k] += recompute; /* (a ZeRO-3 layer's buffer: counted as activation) */
    r->act_mb[k] += recompute;
  }
  r->time_s = cost_iteration(cm, t->pp, t->chunks, wg, c, r->opt_s);
}

/* ---- pipeline division over layers of several types ---- */

void cost_division_balanced(const CostModel *cm, const CostTask *t, int *div)
{
  int pp = t->pp, L = cm->nlayers;
  if (pp == 1) { div[0] = L; return; }
  CostModel g = *cm;
  g.pipeline_1f1b = 0; /* Galvatron copies the arguments with pipeline_type 'gpipe' */
  Strategy s = {pp, 1, 1, cm->world / pp, DP_ZERO2, 0, 1, 1};
  if (strategy_sdp(&s) == 1) s.dp_type = DP_DDP; /* LayerStrategy.__post_init__ */
  Strategy e = s;
  double per_type[PROF_MAXTYPES], other[COST_MAXPP], mem[COST_MAXPP], layers = 0, total = 0;
  for (int k = 0; k < cost_ntypes(cm); k++) per_type[k] = cost_layer_mem(&g, t, &s, k, 0, NULL, NULL);
  cost_embed_mem(&g, t, &e, NULL, NULL, other);
  for (int l = 0; l < L; l++) layers += per_type[cost_type_of(cm, l)];
  for (int i = 0; i < pp; i++) total += other[i];
  double avg = (layers + total) / pp;
  int idx = 0;
  for (int i = 0; i < pp; i++) {
    div[i] = 0;
    mem[i] = other[i];
    while (idx < L && !(i < pp - 1 && avg - mem[i] < 0.5 * per_type[cost_type_of(cm, idx)])) {
      mem[i] += per_type[cost_type_of(cm, idx++)];
      div[i]++;
    }
  }
  for (int i = 0, left = 0; i < pp - 1; left += div[i], i++) { /* no stage above 1.3x the average */
    int right = left + div[i];
    double cur = other[i];
    for (int l = left; l < right; l++) cur += per_type[cost_type_of(cm, l)];
    while (cur > avg * 1.3 && div[i] > 0) { /* (Galvatron's loop would run past the stage's first layer) */
      div[i]--;
      div[i + 1]++;
      cur -= per_type[cost_type_of(cm, --right)];
    }
  }
  for (int i = 0; i < pp - 1; i++) while (div[i] <= 0) { div[i]++; div[i + 1]--; }
  for (int i = pp - 1; i > 0; i--) while (div[i] <= 0) { div[i]++; div[i - 1]--; }
}
