/* steplog.c - a training binary's --step_json FILE, what `gvc profile` reads: the time of
 * every step (the slowest rank's, optimizer included), each rank's forward and backward
 * time per step (its micro-batches summed, the device synchronised at each mark), and each
 * rank's memory: the plan's arenas, the peak resident set before they were allocated and
 * at the end (what lies outside the plan: the program, OpenBLAS's and MPI's buffers, host
 * staging; the arenas are zeroed at start, so they are resident), and on a device the
 * memory in use. Rank 0 writes FILE through FILE.tmp and a rename. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "program/run.h"

#define MIB (1024.0 * 1024.0)
#define SL_RANK_VALUES 6 /* arena, allocated, rss before arenas, peak rss, device used, stage */

static double peak_rss_mb(void)
{
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_maxrss / 1024.0; /* KiB on Linux */
}

void gv_run_sl_start(struct gv_run *r)
{
  if (r->args.step_json)
    r->sl.rss_before_mb = peak_rss_mb();
}

void gv_run_sl_mark(struct gv_run *r, int what)
{
  struct gv_run_steplog *s = &r->sl;
  if (!r->args.step_json || r->evaluating)
    return;
  gv_backend_sync(&r->be);
  double t = gv_run_now_s();
  if (what == 0 || what == 2)
    s->open = t;
  else
    *(what == 1 ? &s->fwd : &s->bwd) += t - s->open;
}

void gv_run_sl_step(struct gv_run *r, double seconds)
{
  struct gv_run_steplog *s = &r->sl;
  if (!r->args.step_json)
    return;
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->step_ms = realloc(s->step_ms, sizeof(double) * (size_t)s->cap);
    s->fwd_ms = realloc(s->fwd_ms, sizeof(double) * (size_t)s->cap);
    s->bwd_ms = realloc(s->bwd_ms, sizeof(double) * (size_t)s->cap);
    GV_CHECK(s->step_ms && s->fwd_ms && s->bwd_ms, "out of host memory");
  }
  s->step_ms[s->n] = 1e3 * seconds;
  s->fwd_ms[s->n] = 1e3 * s->fwd;
  s->bwd_ms[s->n] = 1e3 * s->bwd;
  s->n++;
  s->fwd = s->bwd = 0;
}

static void write_list(FILE *f, const double *v, int n)
{
  fputc('[', f);
  for (int i = 0; i < n; i++)
    fprintf(f, "%s%.6f", i ? ", " : "", v[i]);
  fputc(']', f);
}

static void write_file(const struct gv_run *r, const double *all, const double *step_ms, int W, int K)
{
  const struct gv_run_steplog *s = &r->sl;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", r->args.step_json);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    gv_log(GV_LOG_WARN, "--step_json %s: cannot write the file", r->args.step_json);
    return;
  }
  fprintf(f, "{\n  \"model\": \"%s\",\n  \"world\": %d,\n  \"pp\": %lld,\n  \"micro_batch\": %lld,\n  \"seq\": %lld,\n",
          r->model, W, (long long)r->pp, (long long)r->micro_batch, (long long)r->seq);
  fprintf(f, "  \"global_batch\": %d,\n  \"device\": \"%s\",\n  \"step_ms\": ", r->args.global_batch, r->args.device);
  write_list(f, step_ms, s->n);
  fprintf(f, ",\n  \"ranks\": [\n");
  for (int w = 0; w < W; w++) {
    const double *me = all + (size_t)w * K, *m = me + 2 * s->n;
    fprintf(f, "    {\"rank\": %d, \"stage\": %d, \"fwd_ms\": ", w, (int)m[5]);
    write_list(f, me, s->n);
    fprintf(f, ", \"bwd_ms\": ");
    write_list(f, me + s->n, s->n);
    fprintf(f, ",\n     \"arena_mb\": %.6f, \"allocated_mb\": %.6f, \"rss_before_arenas_mb\": %.3f, \"peak_rss_mb\": %.3f, "
               "\"device_used_mb\": %.3f}%s\n", m[0], m[1], m[2], m[3], m[4], w + 1 < W ? "," : "");
  }
  fprintf(f, "  ]\n}\n");
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, r->args.step_json)) {
    remove(tmp);
    gv_log(GV_LOG_WARN, "--step_json %s: cannot write the file", r->args.step_json);
  }
}

void gv_run_sl_write(struct gv_run *r)
{
  struct gv_run_steplog *s = &r->sl;
  if (!r->args.step_json)
    return;
  int W = gv_comm_size(r->world), me = gv_comm_rank(r->world), K = 2 * s->n + SL_RANK_VALUES;
  double *all = calloc((size_t)W * (size_t)K, sizeof(double));
  double *step_ms = calloc((size_t)(s->n ? s->n : 1), sizeof(double));
  GV_CHECK(all && step_ms, "out of host memory");
  double *mine = all + (size_t)me * K, *m = mine + 2 * s->n;
  memcpy(mine, s->fwd_ms, sizeof(double) * (size_t)s->n);
  memcpy(mine + s->n, s->bwd_ms, sizeof(double) * (size_t)s->n);
  memcpy(step_ms, s->step_ms, sizeof(double) * (size_t)s->n);
  size_t planned = 0, used = 0, total = 0;
  for (int k = 0; k < GV_MEM_KINDS; k++)
    planned += r->plan.arena_bytes[k];
  gv_backend_mem_info(&r->be, &used, &total);
  m[0] = (double)planned / MIB;
  m[1] = (double)r->be.allocated_bytes / MIB;
  m[2] = s->rss_before_mb;
  m[3] = peak_rss_mb();
  m[4] = (double)used / MIB;
  m[5] = r->stage;
  if (W > 1) { /* each rank fills its own slot: the sum is the gather */
    gv_comm_all_reduce_host(r->world, all, (size_t)W * (size_t)K, GV_DTYPE_F64, GV_REDUCE_SUM);
    if (s->n)
      gv_comm_all_reduce_host(r->world, step_ms, (size_t)s->n, GV_DTYPE_F64, GV_REDUCE_MAX);
  }
  if (me == 0)
    write_file(r, all, step_ms, W, K);
  free(all);
  free(step_ms);
  free(s->step_ms);
  free(s->fwd_ms);
  free(s->bwd_ms);
  s->step_ms = s->fwd_ms = s->bwd_ms = NULL;
}
