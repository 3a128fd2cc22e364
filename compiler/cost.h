/* cost.h - Galvatron's cost model (HEAD, layer_cost.py, embedding_lmhead_cost.py and
 * cost_model_handler.py) for one task (pp, global batch, chunks): per-layer time with and
 * without gradient sync, per-layer memory per stage, embedding/LM-head time and memory,
 * the pipeline formula and the transition cost between layers. Times are seconds,
 * memory MB per GPU. The same code evaluates the analytic model: cost_analytic_init
 * fills the same profile structs from the IR instead of from files. */
#ifndef GV_COST_H
#define GV_COST_H

#include "ir.h"
#include "profile.h"
#include "strategy.h"

typedef struct CostModel {
  int world, nlayers, hidden, seq;
  int mixed;                 /* bf16/fp16: 1; fp32: 0 */
  int sequence_parallel;     /* Megatron-SP (memory of checkpointed TP layers, transitions) */
  int pipeline_1f1b;         /* pipedream_flush; else gpipe */
  int async_grad_reduce;
  int global_memory_buffer;
  int default_dp_type;       /* DP_DDP or DP_ZERO2 */
  double context_mem;        /* MB per stage (pytorch_context_mem) */
  double costmodel_coe;
  int analytic;              /* numbers come from the IR, not from profiles */
  char calibrated[64];       /* analytic: the profiles that replaced its estimates ("time, memory, hardware"), or "" */
  int transition_physical;   /* layout change at bytes/MB*ms/MB/1000 s instead of Galvatron's bytes*ms/MB*1e-7 */
  ProfHardware hw;
  ProfTime time;
  ProfMemory mem;
} CostModel;

/* cp: the context-parallel degree every strategy of the task has (0 or 1: none). */
typedef struct CostTask { int pp, gbsz, chunks, cp; } CostTask;

typedef struct LayerCostDetail { double fct, bct, dpmsg, dc, tp_time, p2p_msg; int lbsz; } LayerCostDetail;

void cost_model_defaults(CostModel *cm);
/* Seconds per layer per micro-batch; sync=1 with gradient synchronisation. */
double cost_layer_time(const CostModel *cm, const CostTask *t, const Strategy *s, int sync, LayerCostDetail *d);
/* MB per GPU of one layer on stage `stage`; ms/act optional. */
double cost_layer_mem(const CostModel *cm, const CostTask *t, const Strategy *s, int stage, double *ms, double *act);
/* Per stage (t->pp entries), seconds; middle stages 0. */
void cost_embed_time(const CostModel *cm, const CostTask *t, const Strategy *e, int sync, double *out);
/* Per stage MB: model states, activation, total (incl. context memory); any may be NULL. */
void cost_embed_mem(const CostModel *cm, const CostTask *t, const Strategy *e, double *ms, double *act, double *total);
/* Megatron-SP global buffer MB for a task run with tp buffer `buf` (0 when not applicable). */
double cost_global_buffer(const CostModel *cm, const CostTask *t, int buf, int sp_only);
/* Galvatron's pipeline_costmodel from per-stage sums: wg = with-sync layer time,
 * c = no-sync layer time + embedding no-sync time. */
double cost_pipeline(int pp, int chunks, const double *wg, const double *c);
/* Transition cost (s) from a (layer i-1) to b (layer i), with Galvatron's tie-break biases. */
double cost_transition(const CostModel *cm, const CostTask *t, const Strategy *a, const Strategy *b);

/* A whole plan: layer strategies, stage partition, embedding strategy. */
typedef struct CostPlan {
  int nlayers;
  const Strategy *layers;
  const int *division;      /* layers per stage, pp entries */
  Strategy embed;
} CostPlan;
typedef struct CostResult {
  double time_s;            /* iteration time */
  double mem_mb[64];        /* per stage, incl. embedding, context and global buffer */
  double transition_s;      /* sum of transition costs (not part of time_s, as in Galvatron) */
  /* The terms mem_mb sums, per stage (MB): model states (parameters, gradients and
   * optimizer state, which the model does not separate), activations, Megatron-SP's
   * global buffer, the framework's context memory. */
  double states_mb[64], act_mb[64], buffer_mb[64], context_mb[64];
  /* The terms the pipeline formula takes, per stage (s): one micro-batch's forward and
   * backward without gradient synchronisation (layers and embedding/head; the no-sync
   * time is split in the ratio of the forward and backward compute terms), and what the
   * synchronisation adds to the micro-batch that carries it (not hidden by backward). */
  double fwd_s[64], bwd_s[64], sync_s[64];
} CostResult;
void cost_plan_eval(const CostModel *cm, const CostTask *t, const CostPlan *p, int gbuf_tp, CostResult *r);

/* Analytic model from the IR: FLOPs at device_tflops*efficiency, activations from the
 * IR's saved bytes, and default bandwidths (GB/s) within and across nodes. */
typedef struct AnalyticHw { double tflops, efficiency, intra_gbps, inter_gbps; int gpus_per_node; } AnalyticHw;
int cost_analytic_init(CostModel *cm, const IrModel *m, const AnalyticHw *hw);
/* TP all-gather / Ulysses all-to-all latencies from the allreduce bandwidths (used when
 * there is no sp_time file). */
void cost_latency_from_bandwidth(CostModel *cm);



/* The profile files of one Galvatron run; cm's world, seq, mixed and sequence_parallel
 * must be set first (they select keys). Returns 0, or 1 after an error naming file+key. */
typedef struct CostFiles {
  const char *time, *memory, *allreduce, *p2p, *overlap, *sp_time;
  int time_mode, memory_mode;  /* PROF_STATIC, PROF_BATCH, PROF_SEQUENCE */
} CostFiles;
int cost_model_load(CostModel *cm, const CostFiles *f);
/* The analytic model calibrated by whichever profiles are given (gvc profile's or
 * Galvatron's): the measured times, memory and hardware replace the IR's estimates and
 * the presets; cm->calibrated says which. Returns 0, or 1 after an error naming file+key. */
int cost_model_calibrate(CostModel *cm, const CostFiles *f);
#endif
