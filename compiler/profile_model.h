/* profile_model.h - `gvc profile computation` and `gvc profile memory`: Galvatron's model
 * profiles of a .gvm model, made with gvc's own lowering and runtime. Shared here: the
 * options (Galvatron's argument names), the points (batch size, sequence length) a mode
 * profiles, the programs it differences (one per stack for a model of several layer types)
 * and the per-type split of their differences, the timed runs of a compiled program (a child `gvc run ... --step_json`), the
 * progress line and the files (JSON in Galvatron's key order, written through FILE.tmp and
 * a rename, with a summary table beside). */
#ifndef GV_PROFILE_MODEL_H
#define GV_PROFILE_MODEL_H

#include "profile.h"

#include <stdio.h>

#define PM_MAXPTS 256
#define PM_MAXCOPIES 64

typedef struct PmOptions {
  const char *file, *model, *model_size, *mode, *precision, *device, *out_dir, *seq_list;
  int bsz, min_bsz, max_bsz, bsz_step;         /* --profile_batch_size, --profile_{min,max}_batch_size, _step */
  int seq, min_seq, max_seq, seq_step;         /* --seq_length (static, batch), sequence mode's range */
  const char *seq_arg;                         /* --seq_length T, or an encoder-decoder's S,T */
  int src_seq;                                 /* an encoder-decoder's source length S (--src_seq; 0: S = seq) */
  const char *src_opt;                         /* the option that gave it, for messages */
  int layernum_min, layernum_max, max_tp_deg, sequence_parallel;
  int warmup, repeats, quiet;
  int concurrent;              /* computation: copies of each program timed side by side */
  int context_ranks;           /* memory: the run outside the plan on this many data-parallel ranks */
  int tp_ranks;                /* computation: also time the layers split over this many ranks (0: not) */
  const char *mpiexec;         /* ... launched with this command (mpirun) */
  /* the model's layer types, as the search groups its blocks (cost_types_from_ir), and its
   * top-level repeat loops; with several types each loop (stack) is profiled on its own */
  int ntypes, nstacks;
  char type_names[PROF_MAXTYPES][64];
  int type_src[PROF_MAXTYPES]; /* an encoder-decoder's types that run at the source length S (cost_types_src) */
  int vary;                    /* the programs of L layers: -1 every stack L, s: stack s L and the others layernum_min */
} PmOptions;

typedef struct PmPoint { int bsz, seq; } PmPoint;

/* The programs a profile differences: 0 every stack at layernum_min, 1 + g group g's
 * stack(s) at layernum_max (one group of all stacks for a model of one layer type). */
#define PM_MAXPROGS (1 + PROF_MAXTYPES)
typedef struct PmPrograms {
  int n;                                   /* 1 + groups */
  int vary[PM_MAXPROGS], layers[PM_MAXPROGS];
  int blocks[PM_MAXPROGS][PROF_MAXTYPES];  /* each program's blocks of each layer type */
  char label[PM_MAXPROGS][64];             /* Galvatron's layernum[...] list: L, or the blocks per type */
} PmPrograms;
/* The programs of o (their blocks per type from the IR); 1 after an error. */
int pm_programs(const PmOptions *o, PmPrograms *pg);
/* o with program i's layer counts (pass it and pg->layers[i] to pm_lower / pm_run). */
PmOptions pm_program_opts(const PmOptions *o, const PmPrograms *pg, int i);
/* Layer type k's sequence length at a point of sequence seq: an encoder-decoder's source
 * length S for the encoder's types when --src_seq (--seq_length S,T) was given, else seq. */
int pm_type_seq(const PmOptions *o, int k, int seq);
/* Galvatron's sequence key: "S" for one layer type, the tuple of the types' lengths
 * "[S,S,...]" (pm_type_seq, one per type) for several. */
void pm_seq_key(const PmOptions *o, int seq, char *buf, size_t n);
/* Per layer type from the programs' values v[0 .. pg->n) (ms of b samples, or MB): each
 * group's difference per added block and per sample, for every type its stack(s) add
 * (fallback >= 0: a difference <= 0 is replaced by the larger program's value per block,
 * with a warning naming what; < 0: kept); a type no program adds (the first block of a
 * stack, a type of its own) takes that of the next type its stack adds. *other: the rest
 * of program 0 per sample (at least 0). */
void pm_per_type(const PmOptions *o, const PmPrograms *pg, const double *v, int b, const char *what, PmPoint p, int fallback,
                 double *per, double *other);

typedef struct PmRun {                 /* medians over the timed steps */
  double fwd_ms, bwd_ms, step_ms;
  double arena_mb, peak_rss_mb, rss_before_mb, device_used_mb; /* the largest rank's */
  int on_device;
} PmRun;

typedef struct PmProgress { const char *what; int total, done; double t0, last; int quiet, finished; } PmProgress;

/* Parses argv (what: "computation" or "memory"), checks every range (naming the argument)
 * and lists the points. Returns 0, 1 after an error, 2 after --help. */
int pm_parse(const char *what, int argc, char **argv, PmOptions *o, PmPoint *pts, int *npts);
/* One lowering's memory plan per stage, MB: model states (parameter, gradient and optimizer
 * arenas), the kept activations of one micro-batch, the shared transient region, all
 * arenas, and the blocks on the stage. */
typedef struct PmStage { double states, slot, transient, total; int blocks, type_blocks[PROF_MAXTYPES]; } PmStage;
/* The model with L layers at point p on world pp x tp (dp 1; the embedding and head split
 * by vocabulary over tp > 1; sp: Megatron-SP; ckpt: every block checkpointed): 0 and
 * st[pp], or 1 with *why (in buf) when it cannot be lowered. */
int pm_lower(const PmOptions *o, int L, int pp, int tp, int sp, int ckpt, PmPoint p, PmStage *st, const char **why, char *buf, size_t n);
/* MB planned for the single-rank program of L layers at one point (the fit check);
 * -1 after printing why it cannot be lowered. */
double pm_planned_mb(const PmOptions *o, int layers, PmPoint p);
/* Every point's program of L layers planned within 80% of this machine's memory (CPU
 * runs); 1 after an error naming the mode's size argument. */
int pm_check_fit(const PmOptions *o, int layers, const PmPoint *pts, int n);
/* Compiles and runs the single-rank program of L layers at point p for warmup + repeats
 * steps in a child process (`gvc run`, the JIT; binary: a linked training binary, as
 * users run it, whose memory holds no compiler; ranks > 1: data parallel under
 * o->mpiexec, or with tp_mode "tp", "tp_sp" (Megatron-SP) or "ulysses" the layers split
 * over the ranks, each with the whole batch); 0, or 1 after printing why (with the
 * child's last lines). */
int pm_run(const PmOptions *o, const char *tmpdir, int layers, PmPoint p, int binary, int ranks, const char *tp_mode, PmRun *r);
/* Reads a training binary's --step_json file: medians over the steps after the first
 * skip, memory of the largest rank; 0, or 1 after an error naming the file. */
int pm_read_steps(const char *path, int skip, PmRun *r, int *nsteps);
/* Creates out_dir when missing; 1 after an error naming it. */
int pm_mkdir(const PmOptions *o);
/* A fresh temporary folder under out_dir (removed by pm_rmtmp). */
int pm_mktmp(const PmOptions *o, char *dir, size_t n);
void pm_rmtmp(const char *dir);
/* out_dir/PREFIX_{precision}_{model}_all.json (and .txt): the path of kind ext. */
void pm_path(const PmOptions *o, const char *prefix, const char *ext, char *buf, size_t n);
/* Writes text (len bytes) to path through path.tmp and a rename; 1 after an error. */
int pm_write_atomic(const char *path, const char *text, size_t len);
/* out_dir/PREFIX_{precision}_{model}_all.json from json(), then the table from table()
 * printed and written beside it as .txt, each atomically; 1 after an error. */
typedef void (*PmWriter)(FILE *f, const PmOptions *o, const void *arg);
int pm_write_files(const PmOptions *o, const char *prefix, PmWriter json, PmWriter table, const void *arg);
void pm_progress(PmProgress *p, const char *item);
double pm_now_s(void);


#endif
