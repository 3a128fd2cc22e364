/* profile_hw_write.c - the files of `gvc profile hardware`: Galvatron's
 * allreduce_bandwidth_*, p2p_bandwidth_*, overlap_coefficient.json and sp_time_* (its
 * names, keys, key order and units, json.dump's indent of 4), gvc_hardware_*.json for
 * what Galvatron does not read, and the summary table (stdout and hardware_*.txt).
 * Every file is written to FILE.tmp and renamed, so no reader ever sees half a file. */
#define _POSIX_C_SOURCE 200809L

#include "profile_hw.h"
#include "diag.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct Out { FILE *f; char path[1024], tmp[1040]; int n; } Out;

static int out_open(Out *o, const HwOptions *opt, const char *fmt, int per_world)
{
  char name[256];
  if (per_world) snprintf(name, sizeof name, fmt, opt->num_nodes, opt->gpus_per_node);
  else snprintf(name, sizeof name, "%s", fmt);
  snprintf(o->path, sizeof o->path, "%s/%s", opt->out_dir, name);
  snprintf(o->tmp, sizeof o->tmp, "%s.tmp", o->path);
  o->n = 0;
  o->f = fopen(o->tmp, "w");
  if (!o->f) diag_plain(NULL, "%s: cannot write (%s)", o->tmp, strerror(errno));
  return !o->f;
}

/* one "key": value line of a flat JSON object */
static void out_num(Out *o, const char *key, double v)
{
  fprintf(o->f, "%s    \"%s\": %.10g", o->n++ ? ",\n" : "{\n", key, v);
}

static void out_str(Out *o, const char *key, const char *v)
{
  fprintf(o->f, "%s    \"%s\": \"%s\"", o->n++ ? ",\n" : "{\n", key, v);
}

static int out_close(Out *o, int json)
{
  if (json) fprintf(o->f, "%s}\n", o->n ? "\n" : "{");
  int bad = ferror(o->f) | fclose(o->f);
  if (bad || rename(o->tmp, o->path)) {
    diag_plain(NULL, "%s: cannot write (%s)", o->path, strerror(errno));
    remove(o->tmp);
    return 1;
  }
  return 0;
}

/* Galvatron's order: group size world, world/2, .. 2; consec 1 then 0 (the world: 1 only) */
static void out_bandwidths(Out *o, const char *op, const double (*bw)[2], int world)
{
  char key[96];
  for (int k = world; k >= 2; k /= 2)
    for (int c = 1; c >= 0; c--) {
      double v = bw[prof_log2(k)][c];
      if (isnan(v)) continue;
      snprintf(key, sizeof key, "%s_size_%d_consec_%d", op, k, c);
      out_num(o, key, v);
    }
}

static int write_galvatron(const HwOptions *opt, const HwResults *r)
{
  Out o;
  char key[96];
  if (out_open(&o, opt, "allreduce_bandwidth_%dnodes_%dgpus_per_node.json", 1)) return 1;
  out_bandwidths(&o, "allreduce", r->allreduce, r->world);
  if (out_close(&o, 1) || out_open(&o, opt, "p2p_bandwidth_%dnodes_%dgpus_per_node.json", 1)) return 1;
  for (int p = 2; p <= r->world; p *= 2)
    if (!isnan(r->p2p[prof_log2(p)])) { snprintf(key, sizeof key, "pp_size_%d", p); out_num(&o, key, r->p2p[prof_log2(p)]); }
  if (out_close(&o, 1) || out_open(&o, opt, "overlap_coefficient.json", 0)) return 1;
  out_num(&o, "overlap_coe", r->overlap_coe);
  if (out_close(&o, 1) || out_open(&o, opt, "sp_time_%dnodes_%dgpus_per_node.json", 1)) return 1;
  for (int w = 0; w < 2; w++)
    for (int k = r->world; k >= 2; k /= 2)
      for (int i = 0; i < r->nsp; i++) {
        double v = (w ? r->sp_all2all : r->sp_allreduce)[prof_log2(k)][i];
        if (isnan(v)) continue;
        snprintf(key, sizeof key, "%s_size_%d_%dMB_time", w ? "all2all" : "allreduce", k, r->sp_mb[i]);
        out_num(&o, key, v);
      }
  return out_close(&o, 1);
}

static int write_gvc(const HwOptions *opt, const HwResults *r)
{
  Out o;
  if (out_open(&o, opt, "gvc_hardware_%dnodes_%dgpus_per_node.json", 1)) return 1;
  out_str(&o, "device", r->device);
  out_str(&o, "backend", r->backend);
  out_num(&o, "world_size", r->world);
  out_bandwidths(&o, "allgather", r->allgather, r->world);
  out_bandwidths(&o, "reducescatter", r->reducescatter, r->world);
  out_num(&o, "overlap_compute_ms", r->compute_ms);
  out_num(&o, "overlap_allreduce_ms", r->comm_ms);
  out_num(&o, "overlap_allreduce_slowdown", r->comm_delay);
  out_num(&o, "overlap_compute_slowdown", r->compute_delay);
  return out_close(&o, 1);
}

void hw_table(FILE *f, const HwOptions *o, const HwResults *r)
{
  fprintf(f, "gvc profile hardware: %d node(s) x %d, world %d, %s ranks, %s collectives\n", o->num_nodes, o->gpus_per_node,
          r->world, r->device, r->backend);
  fprintf(f, "bandwidth sweep %d..%d MB (x%d), sp_time 1..%d MB; %d warm-up + %d timed runs per size, median; MB = 2^20 bytes\n\n",
          o->start_mb, o->end_mb, o->scale, o->sp_max_mb, o->warmup, o->repeats);
  fprintf(f, "bus bandwidth (MB/ms, ~GB/s)\n%6s %-7s %11s %11s %15s\n", "group", "ranks", "all-reduce", "all-gather", "reduce-scatter");
  for (int k = r->world; k >= 2; k /= 2)
    for (int c = 1; c >= 0; c--) {
      int l = prof_log2(k);
      if (isnan(r->allreduce[l][c])) continue;
      fprintf(f, "%6d %-7s %11.3f %11.3f %15.3f\n", k, c ? "consec" : "strided", r->allreduce[l][c], r->allgather[l][c],
              r->reducescatter[l][c]);
    }
  fprintf(f, "\npoint-to-point (MB/ms)\n%6s %11s\n", "pp", "send/recv");
  for (int p = 2; p <= r->world; p *= 2)
    if (!isnan(r->p2p[prof_log2(p)])) fprintf(f, "%6d %11.3f\n", p, r->p2p[prof_log2(p)]);
  fprintf(f, "\noverlap: compute %.3f ms, all-reduce %.3f ms alone; all-reduce x%.3f beside compute, compute x%.3f beside "
             "all-reduce -> overlap_coe %.4f\n", r->compute_ms, r->comm_ms, r->comm_delay, r->compute_delay, r->overlap_coe);
  fprintf(f, "\nsp_time (ms)\n%-16s", "op, group");
  for (int i = 0; i < r->nsp; i++) fprintf(f, " %8dMB", r->sp_mb[i]);
  fprintf(f, "\n");
  for (int w = 0; w < 2; w++)
    for (int k = r->world; k >= 2; k /= 2) {
      const double *v = (w ? r->sp_all2all : r->sp_allreduce)[prof_log2(k)];
      if (r->nsp == 0 || isnan(v[0])) continue;
      fprintf(f, "%-10s %5d", w ? "all-to-all" : "all-reduce", k);
      for (int i = 0; i < r->nsp; i++) fprintf(f, " %10.4f", v[i]);
      fprintf(f, "\n");
    }
}

int hw_write(const HwOptions *opt, const HwResults *r)
{
  if (mkdir(opt->out_dir, 0777) && errno != EEXIST) {
    diag_plain(NULL, "%s: cannot create the directory (%s)", opt->out_dir, strerror(errno));
    return 1;
  }
  if (write_galvatron(opt, r) || write_gvc(opt, r)) return 1;
  Out o;
  if (out_open(&o, opt, "hardware_%dnodes_%dgpus_per_node.txt", 1)) return 1;
  hw_table(o.f, opt, r);
  return out_close(&o, 0);
}
