/* profile_hw.c - `gvc profile hardware`, run on every rank (mpirun -n WORLD gvc profile
 * hardware ...): Galvatron's hardware measurements with libgvrt's collectives. Each
 * measurement runs on the first group of its partition (Galvatron's default "first"),
 * times every run as the slowest member's, and keeps the median of the timed runs.
 * The whole plan is walked once without running (to weigh the progress line's ETA) and
 * once for real; rank 0 writes the files (profile_hw_write.c). */
#define _POSIX_C_SOURCE 200809L

#include "cli_opts.h"
#include "cmd.h"
#include "profile_hw.h"
#include "diag.h"

#include <gvrt_comm.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MB (1024.0 * 1024.0)

enum { OP_ALLREDUCE, OP_ALLGATHER, OP_REDUCESCATTER, OP_ALL2ALL, OP_P2P };

typedef struct Hw {
  const HwOptions *o;
  HwResults *r;
  struct gv_comm *world;
  struct gv_backend be, side;  /* side (GPUs): a second stream the collectives follow while compute runs */
  int on_device, rank, dry;
  void *buf[2];
  size_t cap;
  /* progress: work in MB moved (its rate measured as it goes) and fixed-length runs in s */
  double work_total, work_done, fixed_total, fixed_done, fixed_elapsed, t0, last_print;
  /* overlap workload: y = x w^T */
  struct gv_tensor x, w, y;
  void *cbuf;
  size_t comm_elems;
} Hw;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Counts one step of the plan (the dry walk adds it up) and prints the progress line:
 * the ETA is the remaining MB at the rate seen so far plus the remaining fixed runs. */
static void progress(Hw *h, const char *what, double work, double fixed_s)
{
  if (h->dry) { h->work_total += work; h->fixed_total += fixed_s; return; }
  h->work_done += work;
  h->fixed_done += fixed_s;
  double t = now_s(), el = t - h->t0, moved = el - h->fixed_elapsed;
  int last = !what;
  if (h->rank || h->o->quiet || (t - h->last_print < 0.5 && !last && fixed_s == 0)) return;
  h->last_print = t;
  double rate = h->work_done > 0 ? moved / h->work_done : 0;
  double eta = (h->work_total - h->work_done) * rate + (h->fixed_total - h->fixed_done);
  if (eta < 0 || last) eta = 0;
  fprintf(stderr, "\rgvc profile hardware: %3.0f%% %-34s %.1fs elapsed, ETA %.1fs ", el + eta > 0 ? 100 * el / (el + eta) : 0,
          last ? "done" : what, el, eta);
  if (last) fprintf(stderr, "\n");
}

/* ---- groups ---- */

/* Galvatron's groups: consecutive ranks [i*k, (i+1)*k), or strided i, i+W/k, ...;
 * pipelines are strided. Returns this rank's group, *member = 1 in the first group. */
static struct gv_comm *group(Hw *h, int k, int consec, int *member)
{
  int W = h->r->world, *colors = malloc(sizeof(int) * (size_t)W);
  for (int i = 0; i < W; i++) colors[i] = consec ? i / k : i % (W / k);
  struct gv_comm *g = gv_comm_partition(h->world, colors);
  *member = colors[h->rank] == colors[0];
  free(colors);
  return g;
}

/* ---- one collective ---- */

static void run_op(Hw *h, struct gv_comm *g, int op, size_t bytes)
{
  int k = gv_comm_size(g), r = gv_comm_rank(g);
  size_t n = bytes / sizeof(float);
  switch (op) {
  case OP_ALLREDUCE: gv_comm_all_reduce(g, h->buf[0], n, GV_DTYPE_F32, GV_REDUCE_SUM); break;
  case OP_ALLGATHER: gv_comm_all_gather(g, h->buf[1], h->buf[0], n / (size_t)k, GV_DTYPE_F32); break;
  case OP_REDUCESCATTER: gv_comm_reduce_scatter(g, h->buf[1], h->buf[0], n / (size_t)k, GV_DTYPE_F32); break;
  case OP_ALL2ALL: gv_comm_all_to_all(g, h->buf[1], h->buf[0], n / (size_t)k, GV_DTYPE_F32); break;
  default: gv_comm_sendrecv(g, h->buf[0], n, (r + 1) % k, h->buf[1], n, (r + k - 1) % k, GV_DTYPE_F32, 7); break;
  }
  if (h->on_device) gv_backend_sync(&h->side); /* the collectives follow the side stream (hw_start) */
}

static int cmp_dbl(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median over the timed runs of the slowest member's time (ms), on the first group. */
static double time_op(Hw *h, int op, int k, int consec, int mb, const char *what)
{
  progress(h, what, (mb + 0.25) * (h->o->warmup + h->o->repeats), 0);
  if (h->dry) return NAN;
  int member;
  struct gv_comm *g = group(h, k, consec, &member);
  if (!member) return NAN;
  size_t bytes = (size_t)mb * (size_t)MB;
  double t[64];
  int R = h->o->repeats;
  for (int i = 0; i < h->o->warmup; i++) run_op(h, g, op, bytes);
  for (int i = 0; i < R; i++) {
    gv_comm_barrier(g);
    double t0 = now_s();
    run_op(h, g, op, bytes);
    t[i] = (now_s() - t0) * 1e3;
    gv_comm_all_reduce_host(g, &t[i], 1, GV_DTYPE_F64, GV_REDUCE_MAX);
  }
  qsort(t, (size_t)R, sizeof(double), cmp_dbl);
  return R % 2 ? t[R / 2] : 0.5 * (t[R / 2 - 1] + t[R / 2]);
}

/* nccl-tests' "Avg bus bandwidth": the mean over the sweep of factor * MB / ms */
static double bandwidth(Hw *h, int op, int k, int consec, const char *name)
{
  const HwOptions *o = h->o;
  double sum = 0, factor = op == OP_ALLREDUCE ? 2.0 * (k - 1) / k : op == OP_P2P ? 1.0 : (double)(k - 1) / k;
  int n = 0;
  char what[64];
  snprintf(what, sizeof what, "%s %d%s", name, k, op == OP_P2P ? "" : consec ? " consec" : " strided");
  for (int mb = o->start_mb; mb <= o->end_mb; mb *= o->scale, n++) {
    sum += factor * mb / time_op(h, op, k, consec, mb, what);
  }
  return sum / n;
}

static void measure_bandwidths(Hw *h)
{
  HwResults *r = h->r;
  int W = r->world;
  for (int k = W; k >= 2; k /= 2)
    for (int c = 1; c >= 0; c--) {
      if (k == W && c == 0) continue;
      int l = prof_log2(k);
      r->allreduce[l][c] = bandwidth(h, OP_ALLREDUCE, k, c, "all-reduce");
      r->allgather[l][c] = bandwidth(h, OP_ALLGATHER, k, c, "all-gather");
      r->reducescatter[l][c] = bandwidth(h, OP_REDUCESCATTER, k, c, "reduce-scatter");
    }
  for (int p = 2; p <= W && p <= h->o->max_pp_deg; p *= 2) r->p2p[prof_log2(p)] = bandwidth(h, OP_P2P, p, 0, "p2p pp");
}

static void measure_sp_time(Hw *h)
{
  HwResults *r = h->r;
  r->nsp = 0;
  for (int mb = 1; mb <= h->o->sp_max_mb && r->nsp < HW_MAXSIZES; mb *= 2) r->sp_mb[r->nsp++] = mb;
  int top = r->world < h->o->max_tp_size ? r->world : h->o->max_tp_size;
  char what[64];
  for (int w = 0; w < 2; w++)
    for (int k = top; k >= 2; k /= 2)
      for (int i = 0; i < r->nsp; i++) {
        snprintf(what, sizeof what, "sp_time %s %d, %d MB", w ? "all-to-all" : "all-reduce", k, r->sp_mb[i]);
        double t = time_op(h, w ? OP_ALL2ALL : OP_ALLREDUCE, k, 1, r->sp_mb[i], what);
        (w ? r->sp_all2all : r->sp_allreduce)[prof_log2(k)][i] = t;
      }
}

/* ---- overlap (Galvatron's profile_overlap: a GEMM beside an all-reduce of the world) ---- */

typedef struct Compute { Hw *h; int iters; double t0, end; pthread_t th; } Compute;

static void gemms(Hw *h, int iters)
{
  for (int i = 0; i < iters; i++) gv_linear_fwd(&h->be, &h->y, &h->x, &h->w, NULL);
}

static void *compute_thread(void *arg)
{
  Compute *c = arg;
  gemms(c->h, c->iters);
  c->end = now_s();
  return NULL;
}

/* Starts iters GEMMs: queued on the device stream, or on a host thread for CPU ranks. */
static void compute_start(Hw *h, Compute *c, int iters)
{
  memset(c, 0, sizeof *c);
  c->h = h;
  c->iters = iters;
  c->t0 = now_s();
  if (h->on_device) gemms(h, iters);
  else pthread_create(&c->th, NULL, compute_thread, c);
}

static double compute_finish(Hw *h, Compute *c)
{
  if (h->on_device) { gv_backend_sync(&h->be); c->end = now_s(); }
  else pthread_join(c->th, NULL);
  return (c->end - c->t0) * 1e3;
}

/* iters all-reduces of the world; on GPUs they follow the side stream, so they run
 * beside the GEMMs of the compute stream. Returns ms until the last one is done. */
static double comm_run(Hw *h, int iters)
{
  double t0 = now_s();
  for (int i = 0; i < iters; i++) gv_comm_all_reduce(h->world, h->cbuf, h->comm_elems, GV_DTYPE_F32, GV_REDUCE_SUM);
  if (h->on_device) gv_backend_sync(&h->side);
  return (now_s() - t0) * 1e3;
}

static double max_world(Hw *h, double v)
{
  gv_comm_all_reduce_host(h->world, &v, 1, GV_DTYPE_F64, GV_REDUCE_MAX);
  return v;
}

static void overlap_setup(Hw *h)
{
  int64_t M = h->on_device ? 1024 : 128, K = h->on_device ? 4096 : 1024; /* Galvatron's 1024x4096 by 4096x4096 on GPUs */
  h->comm_elems = h->on_device ? 4096 * 4096 : 1024 * 1024;               /* its 64 MB all-reduce; 4 MB on CPU ranks */
  size_t xb = (size_t)(M * K) * 4, wb = (size_t)(K * K) * 4;
  h->cbuf = gv_dev_alloc(&h->be, xb + wb + xb + h->comm_elems * 4);
  char *p = h->cbuf;
  int64_t xs[2] = {M, K}, ws[2] = {K, K};
  h->x = gv_tensor_make(p, GV_DTYPE_F32, 2, xs);
  h->w = gv_tensor_make(p + xb, GV_DTYPE_F32, 2, ws);
  h->y = gv_tensor_make(p + xb + wb, GV_DTYPE_F32, 2, xs);
  gv_fill(&h->be, &h->x, 0.01f);
  gv_fill(&h->be, &h->w, 0.01f);
  h->cbuf = p + 2 * xb + wb;
  int64_t cn = (int64_t)h->comm_elems;
  struct gv_tensor ct = gv_tensor_make(h->cbuf, GV_DTYPE_F32, 1, &cn);
  gv_fill(&h->be, &ct, 0.0f); /* zeros stay zeros: repeated sums never reach inf or denormals */
}

static void measure_overlap(Hw *h)
{
  const HwOptions *o = h->o;
  HwResults *r = h->r;
  double run_s = (1 + o->overlap_time_multiply) * o->overlap_ms / 1e3; /* each half: the measured side and the busy one */
  progress(h, "overlap", 0, run_s);
  if (h->dry) { progress(h, "overlap", 0, run_s); return; }
  double t_start = now_s();
  Compute c;
  gemms(h, 2);
  comm_run(h, 2);
  /* each alone: the median over the repeats of the mean of a run of 5 back to back */
  double t[64];
  for (int i = 0; i < o->repeats; i++) { compute_start(h, &c, 5); t[i] = compute_finish(h, &c) / 5; }
  qsort(t, (size_t)o->repeats, sizeof(double), cmp_dbl);
  r->compute_ms = max_world(h, t[o->repeats / 2]);
  for (int i = 0; i < o->repeats; i++) { gv_comm_barrier(h->world); t[i] = comm_run(h, 5) / 5; }
  qsort(t, (size_t)o->repeats, sizeof(double), cmp_dbl);
  r->comm_ms = max_world(h, t[o->repeats / 2]);
  /* all-reduce beside overlap_time_multiply times as much compute */
  int comm_iters = (int)fmax(o->overlap_ms / r->comm_ms, 5);
  int compute_iters = (int)ceil(o->overlap_time_multiply * comm_iters * r->comm_ms / r->compute_ms);
  gv_comm_barrier(h->world);
  compute_start(h, &c, compute_iters);
  double tc = comm_run(h, comm_iters);
  compute_finish(h, &c);
  r->comm_delay = max_world(h, tc / (comm_iters * r->comm_ms));
  h->fixed_elapsed += now_s() - t_start;
  t_start = now_s();
  progress(h, "overlap", 0, run_s);
  /* compute beside overlap_time_multiply times as much all-reduce */
  compute_iters = (int)fmax(o->overlap_ms / r->compute_ms, 5);
  comm_iters = (int)ceil(o->overlap_time_multiply * compute_iters * r->compute_ms / r->comm_ms);
  gv_comm_barrier(h->world);
  compute_start(h, &c, compute_iters);
  comm_run(h, comm_iters);
  double tk = compute_finish(h, &c);
  r->compute_delay = max_world(h, tk / (compute_iters * r->compute_ms));
  r->overlap_coe = fmax(1.0, fmax(r->comm_delay, r->compute_delay)); /* Galvatron keeps it >= 1 */
  h->fixed_elapsed += now_s() - t_start;
}

/* ---- the command ---- */

static void usage(const CliOpt *opts)
{
  printf("usage: mpirun -n WORLD gvc profile hardware --num_nodes N --num_gpus_per_node G [options] [-o DIR]\n\n"
         "Measures what Galvatron's profile_hardware measures, on these ranks with gvc's collectives\n"
         "(MPI on CPU ranks, NCCL on GPUs), and writes its files into DIR (hardware_configs):\n"
         "allreduce_bandwidth_{N}nodes_{G}gpus_per_node.json, p2p_bandwidth_..., overlap_coefficient.json,\n"
         "sp_time_..., plus gvc_hardware_... (all-gather and reduce-scatter bandwidths for ZeRO, overlap\n"
         "detail) and hardware_....txt (the table printed at the end). Pass DIR to gvc search's\n"
         "--allreduce_bandwidth_config_path, --p2p_bandwidth_config_path, --overlap_coe_path, --sp_time_path.\n\n"
         "options:\n");
  cli_opts_help(opts);
  printf("  -o DIR                               output directory (hardware_configs)\n");
}

/* Option errors are the same on every rank: rank 0 says them. */
static int check_options(const HwOptions *o, int world, int rank)
{
  long want = (long)o->num_nodes * o->gpus_per_node;
  const char *bad = NULL;
  if (o->num_nodes < 1 || o->gpus_per_node < 1 || prof_log2(want) < 1)
    bad = "--num_nodes x --num_gpus_per_node must be a power of two >= 2";
  else if (prof_log2(o->start_mb) < 0 || o->end_mb < o->start_mb || o->scale < 2 || prof_log2(o->scale) < 0)
    bad = "--start_mb, --end_mb: 1 <= start <= end, powers of two, --scale a power of two >= 2";
  else if (prof_log2(o->sp_max_mb) < 7 || o->sp_max_mb > 1 << (HW_MAXSIZES - 1))
    bad = "--sp_max_mb: a power of two from 128 (Galvatron's search needs 8 sizes, 1..128 MB) to 32768";
  else if (o->repeats < 1 || o->repeats > 64 || o->warmup < 0) bad = "--repeats 1..64, --warmup >= 0";
  else if (o->overlap_time_multiply < 1 || o->overlap_ms <= 0) bad = "--overlap_time_multiply >= 1, --overlap_ms > 0";
  else if (o->max_tp_size < 2 || o->max_pp_deg < 2) bad = "--max_tp_size and --max_pp_deg: at least 2";
  if (rank) return bad || world != want;
  if (bad) diag_plain(NULL, "%s", bad);
  else if (world != want)
    diag_plain(NULL, "this run has %d rank(s) but --num_nodes %d x --num_gpus_per_node %d = %ld: run it as "
                     "mpirun -n %ld gvc profile hardware ...", world, o->num_nodes, o->gpus_per_node, want, want);
  return bad || world != want;
}

static void hw_start(Hw *h)
{
  for (int l = 0; l < PROF_LOGMAX; l++) {
    h->r->p2p[l] = NAN;
    for (int c = 0; c < 2; c++) h->r->allreduce[l][c] = h->r->allgather[l][c] = h->r->reducescatter[l][c] = NAN;
    for (int i = 0; i < HW_MAXSIZES; i++) h->r->sp_allreduce[l][i] = h->r->sp_all2all[l][i] = NAN;
  }
  int local = gv_comm_local_rank(h->world);
  gv_backend_init(&h->be, h->o->device, h->on_device ? local : 0);
  gv_comm_set_backend(h->world, &h->be);
  if (h->on_device) {
    gv_backend_init(&h->side, h->o->device, local);
    if (gv_backend_stream(&h->side)) gv_comm_set_stream(h->world, gv_backend_stream(&h->side));
  }
  int big = h->o->end_mb > h->o->sp_max_mb ? h->o->end_mb : h->o->sp_max_mb;
  h->cap = (size_t)big * (size_t)MB;
  for (int i = 0; i < 2; i++) {
    h->buf[i] = gv_dev_alloc(&h->be, h->cap);
    int64_t n = (int64_t)(h->cap / 4);
    struct gv_tensor t = gv_tensor_make(h->buf[i], GV_DTYPE_F32, 1, &n);
    gv_fill(&h->be, &t, 0.0f);
  }
  overlap_setup(h);
  if (h->on_device) gv_backend_sync(&h->be);
}

static void plan(Hw *h)
{
  measure_bandwidths(h);
  measure_overlap(h);
  measure_sp_time(h);
}

int cmd_profile_hardware(int argc, char **argv)
{
  HwOptions o = {.num_nodes = 1, .gpus_per_node = 8, .max_tp_size = 8, .max_pp_deg = 8, .overlap_time_multiply = 4,
                 .start_mb = 16, .end_mb = 512, .scale = 2, .sp_max_mb = 1024, .warmup = 2, .repeats = 5,
                 .overlap_ms = 1000, .device = "cpu", .out_dir = "hardware_configs"};
  const CliOpt opts[] = {
      {"num_nodes", CLI_INT, &o.num_nodes, "nodes (1)"},
      {"num_gpus_per_node", CLI_INT, &o.gpus_per_node, "ranks per node (8); the run must have num_nodes x this ranks"},
      {"max_tp_size", CLI_INT, &o.max_tp_size, "largest group of the sp_time tables (8)"},
      {"max_pp_deg", CLI_INT, &o.max_pp_deg, "largest pipeline degree of p2p_bandwidth (8)"},
      {"overlap_time_multiply", CLI_INT, &o.overlap_time_multiply, "the busy side runs this many times longer in the overlap runs (4)"},
      {"overlap_ms", CLI_DBL, &o.overlap_ms, "length of the measured side of each overlap run, ms (1000)"},
      {"device", CLI_STR, &o.device, "cpu | cuda (cpu); cuda uses NCCL unless GV_COMM says otherwise"},
      {"start_mb", CLI_INT, &o.start_mb, "smallest message of the bandwidth sweep, MB (16)"},
      {"end_mb", CLI_INT, &o.end_mb, "largest message of the bandwidth sweep, MB (512)"},
      {"scale", CLI_INT, &o.scale, "factor between sweep sizes (2)"},
      {"sp_max_mb", CLI_INT, &o.sp_max_mb, "largest sp_time message, MB: sizes 1, 2, 4 .. this (1024; at least 128)"},
      {"warmup", CLI_INT, &o.warmup, "untimed runs per size (2)"},
      {"repeats", CLI_INT, &o.repeats, "timed runs per size, median kept (5)"},
      {"quiet", CLI_SW, &o.quiet, "no progress line"},
      {NULL, 0, NULL, NULL}};
  int rc = cli_opts_parse(opts, argc, argv, &o.out_dir, NULL);
  if (rc == 2) { usage(opts); return 0; }
  if (rc) return 1;
  const char *backend = !strcmp(o.device, "cuda") && !getenv("GV_COMM") ? "nccl" : NULL;
  if (strcmp(o.device, "cpu") && strcmp(o.device, "cuda")) { /* before the world exists: the launcher's rank */
    if (gv_log_rank() == 0) diag_plain(NULL, "--device '%s': expected cpu or cuda", o.device);
    return 1;
  }
  Hw h = {.o = &o};
  HwResults *r = calloc(1, sizeof *r);
  h.r = r;
  h.world = gv_comm_init_world(&argc, &argv, backend);
  h.rank = gv_comm_rank(h.world);
  r->world = gv_comm_size(h.world);
  gv_log_set_rank(h.rank, r->world);
  rc = check_options(&o, r->world, h.rank);
  if (!rc) {
    h.on_device = !strcmp(o.device, "cuda");
    snprintf(r->device, sizeof r->device, "%s", o.device);
    snprintf(r->backend, sizeof r->backend, "%s", gv_comm_backend_name(h.world));
    h.dry = 1;
    plan(&h);
    h.dry = 0;
    hw_start(&h);
    h.t0 = now_s();
    plan(&h);
    progress(&h, NULL, 0, 0);
    gv_comm_barrier(h.world);
    if (h.rank == 0) {
      hw_table(stdout, &o, r);
      rc = hw_write(&o, r);
      if (!rc) printf("\nwritten: %s/{allreduce_bandwidth,p2p_bandwidth,sp_time,gvc_hardware}_%dnodes_%dgpus_per_node.json, "
                      "overlap_coefficient.json, hardware_%dnodes_%dgpus_per_node.txt\n", o.out_dir, o.num_nodes,
                      o.gpus_per_node, o.num_nodes, o.gpus_per_node);
    }
    gv_comm_set_backend(h.world, NULL);
  }
  gv_comm_all_reduce_host(h.world, &rc, 1, GV_DTYPE_I32, GV_REDUCE_MAX);
  gv_comm_free_world(&h.world);
  free(r);
  return rc;
}
