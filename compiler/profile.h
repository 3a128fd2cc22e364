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
#define PROF_MAXTYPES 16 /* layer types (Galvatron's layertype_0, layertype_1, ...) */

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
  /* gvc profile hardware's gvc_hardware_*.json (gvc's calibrated model): all-gather and
   * reduce-scatter ms per MB of the gathered tensor at bus bandwidth, NaN when absent */
  double ag_coe[PROF_LOGMAX][2], rs_coe[PROF_LOGMAX][2];
} ProfHardware;

/* Forward ms for x samples of one layer of type k (or the "other" part): m*x + c. The
 * backward is bwd_ratio (other_bwd_ratio) times the forward: measured by gvc profile
 * computation (its "gvc" keys), else 0, read as Galvatron's 2. The rest is gvc's own, for
 * its calibrated model: batch mode's slopes of the line through 0 (layer_m0, other_m0), and
 * the optimizer step of one rank (with the gradients' zeroing and norm), ms per iteration
 * for a whole layer's parameters and for the other part's (0 when the file has none). */
typedef struct ProfTime {
  double layer_m[PROF_MAXTYPES], layer_c[PROF_MAXTYPES], bwd_ratio[PROF_MAXTYPES], layer_m0[PROF_MAXTYPES];
  double other_m, other_c, other_bwd_ratio, other_m0;
  double opt_layer_ms, opt_other_ms;
  /* a layer split over split_deg ranks (0: not profiled), by PROF_SPLIT_*: its forward and
   * backward per rank over 1/split_deg of its unsplit time (the collectives, the replicated
   * element-wise work and the smaller GEMMs measured); 0 where absent */
  int split_deg;
  double split_fwd[3], split_bwd[3];
} ProfTime;
enum { PROF_SPLIT_TP, PROF_SPLIT_TP_SP, PROF_SPLIT_ULYSSES };
extern const char *const prof_split_names[3]; /* "tp", "tp_sp", "ulysses": the keys' prefixes */

typedef struct ProfOtherMem {
  double ms[PROF_LOGMAX];   /* model states MB by log2(vocab tp), unsharded over dp */
  double act[PROF_LOGMAX];  /* activation MB per sample by log2(tp_sp) */
} ProfOtherMem;

typedef struct ProfMemory {    /* per layer type k: */
  double param[PROF_MAXTYPES];              /* MB of one unsharded layer (fp32-equivalent / 4) */
  double act[PROF_MAXTYPES][PROF_LOGMAX];   /* activation MB per sample per layer by log2(tp_sp) */
  double act_ckpt[PROF_MAXTYPES];           /* MB per sample per layer kept under checkpointing */
  ProfOtherMem off, first, last;
  double context_mb;         /* measured outside the memory plan (gvc profile memory's "gvc" key), NaN if absent */
  /* gvc's calibrated model: what lies outside the plan grows by context_per_param MB per
   * fp32 MB of parameters whose gradients are reduced whole across data-parallel ranks (the
   * collective's buffers; 0 where it does not); context_param_mb is that of the run that
   * measured context_mb. 0 when absent. */
  double context_per_param, context_param_mb;
} ProfMemory;

/* One parsed galvatron_config_*.json. Per-layer arrays have nlayers entries. */
typedef struct GalConfig {
  int pp_deg, nlayers, world_size;
  int *tp, *consec, *dp_type, *use_sp, *ckpt; /* dp_type: 0 default, 1 zero3 */
  int *cp;                                    /* cp_sizes_enc: context parallelism per layer (1 if absent) */
  int *ep;                                    /* ep_sizes_enc: expert parallelism per layer (1 if absent) */
  int *tp_of_ep;                              /* tp_of_ep_sizes_enc: tp inside each expert per layer (1 if absent) */
  int global_bsz, chunks;
  int *pp_division, n_division;
  char pipeline_type[32], default_dp_type[16];
  int vtp, vsp, embed_sdp;
} GalConfig;

int prof_log2(long v); /* -1 when v is not a power of two */
int prof_is_dir(const char *path);

/* Each reader returns 0, or prints `gvc: error: FILE: key 'K': ...` and returns 1. */
int prof_read_allreduce(const char *path, int world, ProfHardware *hw);
/* gvc_hardware_*.json's all-gather and reduce-scatter bandwidths (the file is optional:
 * a missing one leaves them NaN and returns 0) */
int prof_read_zero_bandwidths(const char *path, ProfHardware *hw);
int prof_read_p2p(const char *path, ProfHardware *hw);
int prof_read_overlap(const char *path, ProfHardware *hw);
int prof_read_sp_time(const char *path, ProfHardware *hw);
/* The sequence lengths of the model's layer types, as Galvatron keys the profiles by them:
 * layertype_k_bsz{b}_seq{seq[k]}, memory layertype_k.{seq[k]}, and the "other" parts by
 * seq[0] for one type or by the tuple "[s0,s1,...]" for several (T5, Swin). */
typedef struct ProfSeqs { int n; int seq[PROF_MAXTYPES]; } ProfSeqs;
/* Layer types a computation or memory profile gives (the largest k of layertype_k, + 1);
 * -1 after an error (printed). */
int prof_count_types(const char *path);
int prof_read_time(const char *path, int mode, const ProfSeqs *seqs, ProfTime *t);
int prof_read_memory(const char *path, int mode, const ProfSeqs *seqs, int sequence_parallel, ProfMemory *m);
double prof_latency(const ProfLatency *l, double mb);

int prof_config_read(const char *path, GalConfig *c); /* arrays malloc'd; prof_config_free */
void prof_config_free(GalConfig *c);
void prof_config_write(FILE *f, const GalConfig *c, const char *gvc_extra_json);

#endif
