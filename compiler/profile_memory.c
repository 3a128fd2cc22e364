/* profile_memory.c - `gvc profile memory`: Galvatron's memory profile of a .gvm model. The
 * static memory plan gives every arena exactly, so the sizes come from lowering (no run):
 * the model with --layernum_min and --layernum_max layers per tp degree 1 .. --max_tp_deg,
 * with and without Megatron sequence parallelism (keys with and without `_sp`) and with
 * checkpointing, and on two pipeline stages for the first and last positions; per layer is
 * the difference per added layer, the rest is "other". What lies outside the arenas (the
 * program, OpenBLAS's buffers and host staging on CPU ranks; the CUDA context, cuBLAS and
 * NCCL on GPUs) is measured in one run and kept under "gvc" as context_mem_mb, which the
 * search uses as Galvatron's pytorch_context_mem. MB = 2^20 bytes. A model of several
 * layer types is lowered stack by stack (pm_programs), one layertype_k entry per type. */
#define _POSIX_C_SOURCE 200809L

#include "cmd.h"
#include "diag.h"
#include "profile.h"
#include "profile_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS_MB 1e-6 /* Galvatron's readers take any size, gvc's want them positive */

typedef struct MemProfile {
  int ntp;                               /* degrees 1 .. 2^(ntp-1) */
  int T;                                 /* layer types */
  double param[PROF_MAXTYPES];           /* MB, fp32-equivalent of one layer (states / 4) */
  double act[PROF_MAXTYPES][2][PROF_LOGMAX], ckpt[PROF_MAXTYPES]; /* [sp] MB per sample per layer */
  ProfOtherMem off[2], first[2], last[2];
  double planned_mb, peak_mb, outside_mb, rss_before_mb;
  double param_lo_mb, per_param;         /* fp32 MB of parameters of the Lmin program; outside's growth per MB */
} MemProfile;

static double pos(double v) { return v > EPS_MB ? v : EPS_MB; }

/* Every program of pg lowered at one degree (ckpt: every block checkpointed); 1 with *why. */
static int lower_all(const PmOptions *o, const PmPrograms *pg, PmPoint p, int tp, int sp, int ckpt, PmStage (*st)[2],
                     const char **why, char *buf, size_t n)
{
  for (int w = 0; w < pg->n; w++) {
    PmOptions po = pm_program_opts(o, pg, w);
    if (pm_lower(&po, pg->layers[w], 1, tp, sp, ckpt, p, st[w], why, buf, n)) return 1;
  }
  return 0;
}

/* Per layer type and the rest from the programs at one degree. */
static int profile_degree(const PmOptions *o, const PmPrograms *pg, PmPoint p, int sp, int tp, MemProfile *mp, int *stop)
{
  int l = prof_log2(tp), lpp = o->layernum_min > 1 ? o->layernum_min : 2, T = mp->T;
  PmStage st[PM_MAXPROGS][2], c[2];
  char buf[512];
  const char *why;
  PmOptions all = *o;
  all.vary = -1;
  if (lower_all(o, pg, p, tp, sp, 0, st, &why, buf, sizeof buf) || pm_lower(&all, lpp, 2, tp, sp, 0, p, c, &why, buf, sizeof buf)) {
    if (tp == 1) { diag_plain(NULL, "%s --model %s, batch %d, seq %d: %s", o->file, o->model, p.bsz, p.seq, why); return 1; }
    *stop = 1; /* larger degrees do not divide the model: the dicts end here */
    return 0;
  }
  double v[PM_MAXPROGS], S[PROF_MAXTYPES], A[PROF_MAXTYPES], rest;
  for (int w = 0; w < pg->n; w++) v[w] = st[w][0].states;
  pm_per_type(o, pg, v, 1, "model states", p, 0, S, &rest);
  mp->off[sp].ms[l] = pos(rest);
  for (int w = 0; w < pg->n; w++) v[w] = st[w][0].slot;
  pm_per_type(o, pg, v, p.bsz, "activation", p, 0, A, &rest);
  double act0 = (st[0][0].slot + st[0][0].transient) / p.bsz;
  for (int k = 0; k < T; k++) {
    mp->act[k][sp][l] = pos(A[k]);
    if (tp == 1) mp->param[k] = S[k] / 4;
    act0 -= pg->blocks[0][k] * A[k];
  }
  mp->off[sp].act[l] = pos(act0);
  ProfOtherMem *pos_mem[2] = {&mp->first[sp], &mp->last[sp]};
  for (int s = 0; s < 2; s++) {
    double ms = c[s].states, act = (c[s].slot + c[s].transient) / p.bsz;
    for (int k = 0; k < T; k++) ms -= c[s].type_blocks[k] * S[k], act -= c[s].type_blocks[k] * A[k];
    pos_mem[s]->ms[l] = pos(ms);
    pos_mem[s]->act[l] = pos(act);
  }
  if (tp == 1 && sp == 0) {
    if (lower_all(o, pg, p, 1, 0, 1, st, &why, buf, sizeof buf)) {
      diag_plain(NULL, "%s --model %s with checkpointing: %s", o->file, o->model, why);
      return 1;
    }
    for (int w = 0; w < pg->n; w++) v[w] = st[w][0].slot;
    pm_per_type(o, pg, v, p.bsz, "checkpointed activation", p, 0, A, &rest);
    for (int k = 0; k < T; k++) mp->ckpt[k] = pos(A[k]);
  }
  return 0;
}

static void put_dict(FILE *f, const char *name, const double *v, int ntp, const double *ckpt, const char *end)
{
  fprintf(f, "\"%s\": {", name);
  for (int l = 0; l < ntp; l++) fprintf(f, "%s\"%d\": %.12g", l ? ", " : "", 1 << l, v[l]);
  if (ckpt) fprintf(f, ", \"checkpoint\": %.12g", *ckpt);
  fprintf(f, "}%s", end);
}

typedef struct Result { PmPoint p; const MemProfile *mp; } Result;

static void write_json(FILE *f, const PmOptions *o, const void *arg)
{
  PmPoint p = ((const Result *)arg)->p;
  const MemProfile *mp = ((const Result *)arg)->mp;
  char sk[16 * PROF_MAXTYPES];
  pm_seq_key(o, p.seq, sk, sizeof sk);
  fprintf(f, "{\n");
  for (int sp = 0; sp < 2; sp++) {
    const char *suf = sp ? "_sp" : "";
    for (int k = 0; k < mp->T; k++) {
      fprintf(f, "    \"layertype_%d%s\": {\"%d\": {\"parameter_size\": %.12g, ", k, suf, pm_type_seq(o, k, p.seq), mp->param[k]);
      put_dict(f, "tp_activation_per_bsz_dict", mp->act[k][sp], mp->ntp, &mp->ckpt[k], "}},\n");
    }
    const char *names[3] = {"other_memory_pp_off", "other_memory_pp_on_first", "other_memory_pp_on_last"};
    const ProfOtherMem *om[3] = {&mp->off[sp], &mp->first[sp], &mp->last[sp]};
    for (int k = 0; k < 3; k++) {
      fprintf(f, "    \"%s%s\": {\"%s\": {", names[k], suf, sk);
      put_dict(f, "model_states", om[k]->ms, mp->ntp, NULL, ", ");
      put_dict(f, "activation", om[k]->act, mp->ntp, NULL, "}},\n");
    }
  }
  fprintf(f, "    \"gvc\": {\"device\": \"%s\", \"bsz\": %d, \"seq\": %d, ", o->device, p.bsz, p.seq);
  if (o->src_seq > 0) fprintf(f, "\"src_seq\": %d, ", o->src_seq);
  fprintf(f, "\"layernum_min\": %d, \"layernum_max\": %d", o->layernum_min, o->layernum_max);
  if (!isnan(mp->outside_mb)) /* --context_ranks 0: not measured */
    fprintf(f, ",\n            \"context_mem_mb\": %.12g, \"measured_peak_mb\": %.12g, \"planned_mb\": %.12g, \"rss_before_arenas_mb\": %.12g,"
               "\n            \"context_param_mb\": %.12g, \"context_per_param_mb\": %.12g",
            mp->outside_mb, mp->peak_mb, mp->planned_mb, mp->rss_before_mb, mp->param_lo_mb, mp->per_param);
  fprintf(f, "}\n}\n");
}

static void write_table(FILE *f, const PmOptions *o, const void *arg)
{
  PmPoint p = ((const Result *)arg)->p;
  const MemProfile *mp = ((const Result *)arg)->mp;
  fprintf(f, "gvc profile memory: %s (%s), %s, batch %d, seq %d", o->model, o->file, o->precision, p.bsz, p.seq);
  if (o->src_seq > 0) fprintf(f, " (source %d)", o->src_seq);
  fprintf(f, "; layers %d and %d; MB = 2^20 bytes, activations per sample\n\n", o->layernum_min, o->layernum_max);
  for (int k = 0; k < mp->T; k++) {
    if (mp->T > 1 && o->src_seq > 0) fprintf(f, "layer type %d (%s, seq %d) ", k, o->type_names[k], pm_type_seq(o, k, p.seq));
    else if (mp->T > 1) fprintf(f, "layer type %d (%s) ", k, o->type_names[k]);
    fprintf(f, "per layer: parameter_size %.4f MB (model states %.4f MB unsharded), checkpointed activation %.4f MB\n", mp->param[k],
            4 * mp->param[k], mp->ckpt[k]);
  }
  fprintf(f, "\n   tp  sp  layer act   off states    off act  first states  first act  last states   last act\n");
  for (int sp = 0; sp < 2; sp++)
    for (int l = 0; l < mp->ntp; l++) {
      fprintf(f, "%5d %3d", 1 << l, sp);
      for (int k = 0; k < mp->T; k++) fprintf(f, "%s%10.4f", k ? "," : " ", mp->act[k][sp][l]);
      fprintf(f, " %12.4f %10.4f %13.4f %10.4f %12.4f %10.4f\n", mp->off[sp].ms[l], mp->off[sp].act[l], mp->first[sp].ms[l],
              mp->first[sp].act[l], mp->last[sp].ms[l], mp->last[sp].act[l]);
    }
  if (isnan(mp->outside_mb)) {
    fprintf(f, "\noutside the plan: not measured (--context_ranks 0)\n");
    return;
  }
  fprintf(f, "\noutside the plan (measured, %s): %.1f MB = peak %.1f MB - arenas %.1f MB (%d layers, batch %d, %d rank%s)\n",
          strcmp(o->device, "cpu") ? "device memory in use" : "peak resident set", mp->outside_mb, mp->peak_mb, mp->planned_mb,
          o->layernum_min, p.bsz, o->context_ranks, o->context_ranks > 1 ? "s, the largest" : "");
  fprintf(f, "it grows by %.3f MB per MB of parameters whose gradients are reduced across the ranks (%d layers against %d)\n",
          mp->per_param, o->layernum_max, o->layernum_min);
}


/* What lies outside the plan: the Lmin program on --context_ranks data-parallel ranks
 * (its outside is context_mem_mb), and the Lmax program, whose larger gradients tell how
 * much the reductions' buffers add per MB of parameters (MPI's on CPU ranks). */
static int measure_outside(const PmOptions *o, const PmPrograms *pg, PmPoint p, MemProfile *mp, PmProgress *pr)
{
  char tmp[4200];
  PmRun r[2];
  int rc = pm_mktmp(o, tmp, sizeof tmp), dev = strcmp(o->device, "cpu") != 0;
  if (rc) return rc;
  for (int w = 0; w < 2 && !rc; w++) {
    PmOptions po = pm_program_opts(o, pg, w);
    rc = pm_run(&po, tmp, pg->layers[w], p, 1, o->context_ranks, NULL, &r[w]);
    if (!rc) pm_progress(pr, w ? "run: outside the plan, more layers" : "run: outside the plan");
  }
  pm_rmtmp(tmp);
  if (rc) return rc;
  double out[2], added = 0;
  for (int w = 0; w < 2; w++) out[w] = fmax(0, (dev ? r[w].device_used_mb : r[w].peak_rss_mb) - r[w].arena_mb);
  mp->planned_mb = r[0].arena_mb;
  mp->peak_mb = dev ? r[0].device_used_mb : r[0].peak_rss_mb;
  mp->outside_mb = out[0];
  mp->rss_before_mb = r[0].rss_before_mb;
  mp->param_lo_mb = mp->off[0].ms[0] / 4;
  for (int k = 0; k < mp->T; k++) {
    mp->param_lo_mb += pg->blocks[0][k] * mp->param[k];
    added += (pg->blocks[1][k] - pg->blocks[0][k]) * mp->param[k];
  }
  mp->per_param = o->context_ranks > 1 && added > 0 ? fmax(0, (out[1] - out[0]) / added) : 0;
  return 0;
}

int cmd_profile_memory(int argc, char **argv)
{
  PmOptions o;
  PmPoint pts[PM_MAXPTS];
  PmPrograms pg;
  int n = 0, rc = pm_parse("memory", argc, argv, &o, pts, &n);
  if (rc) return rc == 2 ? 0 : 1;
  if (pm_programs(&o, &pg)) return 1;
  PmPoint p = pts[0]; /* static: the one point; sequence: the longest (the reader scales it) */
  for (int i = 1; i < n; i++) if (pts[i].seq > p.seq) p = pts[i];
  PmOptions hi = pm_program_opts(&o, &pg, 1);
  if (o.context_ranks > 0 && pm_check_fit(&hi, pg.layers[1], &p, 1)) return 1; /* the runs outside the plan */
  MemProfile *mp = calloc(1, sizeof *mp);
  mp->T = o.ntypes > 1 ? o.ntypes : 1;
  for (int k = 0; k < PROF_MAXTYPES; k++)
    for (int sp = 0; sp < 2; sp++)
      for (int l = 0; l < PROF_LOGMAX; l++) mp->act[k][sp][l] = NAN;
  PmProgress pr = {.what = "memory", .t0 = pm_now_s(), .quiet = o.quiet};
  for (int t = 1; t <= o.max_tp_deg; t *= 2) pr.total += 2;
  pr.total += 2 * (o.context_ranks > 0);
  char item[64];
  int stop = 0;
  for (int t = 1; t <= o.max_tp_deg && !rc && !stop; t *= 2)
    for (int sp = 0; sp < 2 && !rc && !stop; sp++) {
      rc = profile_degree(&o, &pg, p, sp, t, mp, &stop);
      if (!stop) mp->ntp = prof_log2(t) + 1;
      snprintf(item, sizeof item, "plan: tp %d%s", t, sp ? " + sp" : "");
      if (!rc && !stop) pm_progress(&pr, item);
    }
  if (stop && !o.quiet) fprintf(stderr, "\ngvc profile memory: tp degrees above %d do not divide %s: the dicts stop there\n", 1 << (mp->ntp - 1), o.model);
  pr.total = pr.done + 2 * (o.context_ranks > 0); /* the degrees that lowered, and the runs */
  if (!rc && !o.context_ranks) pm_progress(&pr, NULL);
  mp->outside_mb = NAN;
  if (!rc && o.context_ranks > 0) rc = measure_outside(&o, &pg, p, mp, &pr);
  Result res = {p, mp};
  if (!rc) rc = pm_write_files(&o, "memory_profiling", write_json, write_table, &res);
  free(mp);
  return rc;
}
