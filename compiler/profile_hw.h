/* profile_hw.h - `gvc profile hardware`: what Galvatron's profile_hardware measures
 * (all-reduce bus bandwidth per group size, consecutive and strided; point-to-point
 * bandwidth per pipeline degree; the overlap slowdown of compute and all-reduce; the
 * sp_time latency tables of all-reduce and all-to-all), plus all-gather and
 * reduce-scatter bandwidths for ZeRO, measured on the user's ranks with libgvrt's
 * collectives (MPI on CPU ranks, NCCL on GPUs), and the files it writes. */
#ifndef GV_PROFILE_HW_H
#define GV_PROFILE_HW_H

#include "profile.h"

#include <stdio.h>

#define HW_MAXSIZES 16

typedef struct HwOptions {
  int num_nodes, gpus_per_node, max_tp_size, max_pp_deg, overlap_time_multiply;
  int start_mb, end_mb, scale;  /* bandwidth sweep (Galvatron's nccl-tests START_MB, END_MB, SCALE) */
  int sp_max_mb;                /* sp_time sizes 1, 2, 4 .. sp_max_mb MB */
  int warmup, repeats;          /* per size: untimed runs, then timed ones (median) */
  double overlap_ms;            /* length of each overlap run (Galvatron: 1000 ms) */
  int quiet;
  const char *device, *out_dir;
} HwOptions;

/* Bandwidths are bus bandwidths in MB/ms (MB = 2^20 bytes; nccl-tests' busbw), NaN
 * where not measured; latencies in ms. Indexed by log2(group size or pipeline degree). */
typedef struct HwResults {
  int world;
  char device[16], backend[16];
  double allreduce[PROF_LOGMAX][2], allgather[PROF_LOGMAX][2], reducescatter[PROF_LOGMAX][2];
  double p2p[PROF_LOGMAX];
  double compute_ms, comm_ms, comm_delay, compute_delay, overlap_coe;
  int nsp;
  int sp_mb[HW_MAXSIZES];
  double sp_allreduce[PROF_LOGMAX][HW_MAXSIZES], sp_all2all[PROF_LOGMAX][HW_MAXSIZES];
} HwResults;

/* Writes Galvatron's four files, gvc_hardware_*.json (ZeRO bandwidths, overlap detail)
 * and hardware_*.txt into o->out_dir, each through a temporary file and a rename.
 * Returns 0, or 1 after printing `gvc: error: FILE: ...`. */
int hw_write(const HwOptions *o, const HwResults *r);
/* The summary table. */
void hw_table(FILE *f, const HwOptions *o, const HwResults *r);

#endif
