/* cost_load.c - fills a CostModel from Galvatron's profile files (profile.c does the
 * parsing). Hardware files are optional only where the model never reads them: with no
 * sp_time file, TP/Ulysses latencies are derived from the allreduce bandwidths. */
#include "cost.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* all-gather = half an allreduce at the bus bandwidth; all-to-all ~ (g-1)/g of the data */
void cost_latency_from_bandwidth(CostModel *cm)
{
  for (int l = 1; l < PROF_LOGMAX && (1 << l) <= cm->world; l++) {
    double c = cm->hw.ar_coe[l][1], g = 1 << l;
    cm->hw.ag[l] = (ProfLatency){.m = 0.5 * c, .c = 0.02, .valid = 1};
    cm->hw.a2a[l] = (ProfLatency){.m = c * (g - 1) / g, .c = 0.03, .valid = 1};
  }
}

/* The sequence lengths the profiles are keyed by, one per layer type. */
static ProfSeqs seqs_of(const CostModel *cm)
{
  ProfSeqs q = {cost_ntypes(cm), {0}};
  for (int k = 0; k < q.n; k++) q.seq[k] = cm->ntypes > 1 ? cm->type_seq[k] : cm->seq;
  return q;
}

int cost_model_load(CostModel *cm, const CostFiles *f)
{
  ProfSeqs q = seqs_of(cm);
  if (f->allreduce && prof_read_allreduce(f->allreduce, cm->world, &cm->hw)) return 1;
  if (f->p2p && prof_read_p2p(f->p2p, &cm->hw)) return 1;
  cm->hw.overlap = 1.0;
  if (f->overlap && prof_read_overlap(f->overlap, &cm->hw)) return 1;
  if (f->sp_time) {
    if (prof_read_sp_time(f->sp_time, &cm->hw)) return 1;
  } else {
    cost_latency_from_bandwidth(cm);
  }
  if (f->time && prof_read_time(f->time, f->time_mode, &q, &cm->time)) return 1;
  if (f->memory && prof_read_memory(f->memory, f->memory_mode, &q, cm->sequence_parallel, &cm->mem)) return 1;
  return 0;
}

/* gvc profile hardware's own file beside Galvatron's (its name with `from` replaced by `to`) */
static int read_beside(const char *path, const char *from, const char *to, ProfHardware *hw)
{
  char other[4200];
  const char *base = strrchr(path, '/'), *at = strstr(base ? base : path, from);
  if (!at || strlen(path) + strlen(to) >= sizeof other) return prof_read_zero_bandwidths("", hw); /* (leaves them NaN) */
  snprintf(other, sizeof other, "%.*s%s%s", (int)(at - path), path, to, at + strlen(from));
  return prof_read_zero_bandwidths(other, hw);
}

static void note(CostModel *cm, const char *what)
{
  size_t n = strlen(cm->calibrated);
  snprintf(cm->calibrated + n, sizeof cm->calibrated - n, "%s%s", n ? ", " : "", what);
}

int cost_model_calibrate(CostModel *cm, const CostFiles *f)
{
  ProfSeqs q = seqs_of(cm);
  cm->calibrated[0] = 0;
  if (f->time) {
    if (prof_read_time(f->time, f->time_mode, &q, &cm->time)) return 1;
    ProfTime *t = &cm->time; /* a batch fit below 0 at small batches: the line through 0 (profile.c warns) */
    for (int k = 0; k < q.n; k++)
      if (t->layer_c[k] < 0) t->layer_m[k] = t->layer_m0[k], t->layer_c[k] = 0;
    if (t->other_c < 0) t->other_m = t->other_m0, t->other_c = 0;
    note(cm, "time");
  }
  if (f->memory) {
    if (prof_read_memory(f->memory, f->memory_mode, &q, cm->sequence_parallel, &cm->mem)) return 1;
    note(cm, "memory");
  }
  if (f->allreduce || f->p2p || f->overlap || f->sp_time) {
    if ((f->allreduce && prof_read_allreduce(f->allreduce, cm->world, &cm->hw)) || (f->p2p && prof_read_p2p(f->p2p, &cm->hw)) ||
        (f->overlap && prof_read_overlap(f->overlap, &cm->hw)))
      return 1;
    if (f->sp_time ? prof_read_sp_time(f->sp_time, &cm->hw) : (cost_latency_from_bandwidth(cm), 0)) return 1;
    if (f->allreduce && read_beside(f->allreduce, "allreduce_bandwidth_", "gvc_hardware_", &cm->hw)) return 1;
    note(cm, "hardware");
  }
  return 0;
}
