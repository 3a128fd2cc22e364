/* profile.h - Galvatron's profile files (hardware bandwidths, overlap, SP latencies,
 * per-layer compute time, per-layer and "other" memory) read into plain structs, and
 * galvatron_config_*.json read and written. Degrees are powers of two and every table
 * is indexed by log2(degree); a value that the file does not give is NaN, so a cost
 * that needs it can say which key was missing. Errors name the file and the key. */
#ifndef GV_PROFILE_H
#define GV_PROFILE_H

#include <stdio.h>

#define PROF_LOGMAX 13 /* degrees 1 .. 4096 */
#define PROF_MAXSIZES 32

enum { PROF_STATIC, PROF_BATCH, PROF_SEQUENCE };

/* A collective's latency: exact profiled sizes, else the linear fit m*MB + c (ms). */
typedef struct ProfLatency {
  int n;
  double size[PROF_MAXSIZES], ms[PROF_MAXSIZES];
  double m, c;
  int valid;
} ProfLatency;

typedef struct ProfHardware {
  double ar_coe[PROF_LOGMAX][2]; /* allreduce ms/MB by log2(group) and consecutive flag */
  double p2p_coe[PROF_LOGMAX];   /* ms/MB by log2(pp) */
  double overlap;                /* slowdown when compute and communication overlap */
  ProfLatency ag[PROF_LOGMAX];   /* all-gather = half an allreduce (sp_time file) */
  ProfLatency a2a[PROF_LOGMAX];  /* all-to-all (Ulysses) */
  int has_sp_time;
} ProfHardware;

/* Forward ms for x samples of one layer (or the "other" part): m*x + c. The backward
 * is bwd_ratio (other_bwd_ratio) times the forward: measured by gvc profile computation
 * (its "gvc" keys), else 0, read as Galvatron's 2. */
typedef struct ProfTime { double layer_m, layer_c, other_m, other_c, bwd_ratio, other_bwd_ratio; } ProfTime;

typedef struct ProfOtherMem {
  double ms[PROF_LOGMAX];   /* model states MB by log2(vocab tp), unsharded over dp */
  double act[PROF_LOGMAX];  /* activation MB per sample by log2(tp_sp) */
} ProfOtherMem;

typedef struct ProfMemory {
  double param;              /* MB of one unsharded layer (fp32-equivalent / 4) */
  double act[PROF_LOGMAX];   /* activation MB per sample per layer by log2(tp_sp) */
  double act_ckpt;           /* MB per sample per layer kept under checkpointing */
  ProfOtherMem off, first, last;
  double context_mb;         /* measured outside the memory plan (gvc profile memory's "gvc" key), NaN if absent */
} ProfMemory;

/* One parsed galvatron_config_*.json. Per-layer arrays have nlayers entries. */
typedef struct GalConfig {
  int pp_deg, nlayers, world_size;
  int *tp, *consec, *dp_type, *use_sp, *ckpt; /* dp_type: 0 default, 1 zero3 */
  int *cp;                                    /* cp_sizes_enc: context parallelism per layer (1 if absent) */
  int global_bsz, chunks;
  int *pp_division, n_division;
  char pipeline_type[32], default_dp_type[16];
  int vtp, vsp, embed_sdp;
} GalConfig;

int prof_log2(long v); /* -1 when v is not a power of two */
int prof_is_dir(const char *path);

/* Each reader returns 0, or prints `gvc: error: FILE: key 'K': ...` and returns 1. */
int prof_read_allreduce(const char *path, int world, ProfHardware *hw);
int prof_read_p2p(const char *path, ProfHardware *hw);
int prof_read_overlap(const char *path, ProfHardware *hw);
int prof_read_sp_time(const char *path, ProfHardware *hw);
int prof_read_time(const char *path, int mode, int seq, ProfTime *t);
int prof_read_memory(const char *path, int mode, int seq, int sequence_parallel, ProfMemory *m);
double prof_latency(const ProfLatency *l, double mb);

int prof_config_read(const char *path, GalConfig *c); /* arrays malloc'd; prof_config_free */
void prof_config_free(GalConfig *c);
void prof_config_write(FILE *f, const GalConfig *c, const char *gvc_extra_json);

#endif
