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
  int world, nlayers, hidden, seq;  /* nlayers: all layers; hidden, seq: the model's (embedding, buffers) */
  /* Layer types (Galvatron's layertype_k; T5's encoder and decoder layers, Swin's stages).
   * ntypes <= 1: one type, whose layers, hidden size and sequence are nlayers, hidden and
   * seq, and type_of is not read. Otherwise type k has type_layers[k] layers (Galvatron's
   * layer_num, which its per-layer time divides by), its own hidden size and sequence
   * length, and layer l is of type type_of[l] (nlayers entries, owned by the caller). */
  int ntypes;
  int type_layers[PROF_MAXTYPES], type_hidden[PROF_MAXTYPES], type_seq[PROF_MAXTYPES];
  const unsigned char *type_of;
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

/* Pipeline stages the per-stage arrays hold (the search's SEARCH_MAXPP is the same). */
#define COST_MAXPP 64

/* cp: the context-parallel degree every strategy of the task has (0 or 1: none). */
typedef struct CostTask { int pp, gbsz, chunks, cp; } CostTask;

typedef struct LayerCostDetail { double fct, bct, dpmsg, dc, tp_time, p2p_msg; int lbsz; } LayerCostDetail;

void cost_model_defaults(CostModel *cm);
/* Layer types, and the type of layer l (0 with one type). */
static inline int cost_ntypes(const CostModel *cm) { return cm->ntypes > 1 ? cm->ntypes : 1; }
static inline int cost_type_of(const CostModel *cm, int l) { return cm->ntypes > 1 ? cm->type_of[l] : 0; }
/* Seconds per layer of type `type` per micro-batch; sync=1 with gradient synchronisation. */
double cost_layer_time(const CostModel *cm, const CostTask *t, const Strategy *s, int type, int sync, LayerCostDetail *d);
/* MB per GPU of one layer of type `type` on stage `stage`; ms/act optional. */
double cost_layer_mem(const CostModel *cm, const CostTask *t, const Strategy *s, int type, int stage, double *ms, double *act);
/* Per stage (t->pp entries), seconds; middle stages 0. */
void cost_embed_time(const CostModel *cm, const CostTask *t, const Strategy *e, int sync, double *out);
/* Per stage MB: model states, activation, total (incl. context memory); any may be NULL. */
void cost_embed_mem(const CostModel *cm, const CostTask *t, const Strategy *e, double *ms, double *act, double *total);
/* Megatron-SP global buffer MB for a task run with tp buffer `buf` (0 when not applicable). */
double cost_global_buffer(const CostModel *cm, const CostTask *t, int buf, int sp_only);
/* Galvatron's pipeline_costmodel from per-stage sums: wg = with-sync layer time,
 * c = no-sync layer time + embedding no-sync time. */
double cost_pipeline(int pp, int chunks, const double *wg, const double *c);
/* Transition cost (s) from a (layer i-1) to b (layer i, of type `type`), with Galvatron's tie-break biases. */
double cost_transition(const CostModel *cm, const CostTask *t, const Strategy *a, const Strategy *b, int type);
/* Galvatron's pp_division_memory_balanced (search_engine.py): stages filled in layer order
 * up to the average memory of a reference strategy (tp 1, dp N/pp, ZeRO-2, GPipe), the
 * embedding and head included; used when the layers are of several types (one type: the
 * even split). Fills div (pp entries). */
void cost_division_balanced(const CostModel *cm, const CostTask *t, int *div);
/* gvc's calibrated model (cm->analytic; else 0 and cost_pipeline): the optimizer step
 * (seconds per iteration) of one layer and of the embedding/head per stage (pp entries),
 * which cost_layer_time's with-sync time includes; the iteration from the per-stage sums
 * (opt: the optimizer part of wg), the pipeline and then the slowest stage's optimizer
 * step; the MB a layer of type `type` adds to its stage's peak only while its backward runs
 * (the largest of a stage counts): a checkpointed layer's recomputed activations, and the
 * buffer of a ZeRO-3 layer's gradient reduce-scatter (MPI's, on CPU ranks). */
double cost_layer_opt(const CostModel *cm, const Strategy *s);
void cost_embed_opt(const CostModel *cm, const CostTask *t, const Strategy *e, double *out);
double cost_iteration(const CostModel *cm, int pp, int chunks, const double *wg, const double *c, const double *opt);
double cost_layer_peak_mem(const CostModel *cm, const CostTask *t, const Strategy *s, int type);

/* A whole plan: layer strategies, stage partition, embedding strategy. */
typedef struct CostPlan {
  int nlayers;
  const Strategy *layers;
  const int *division;      /* layers per stage, pp entries */
  Strategy embed;
} CostPlan;
typedef struct CostResult {
  double time_s;            /* iteration time */
  double mem_mb[COST_MAXPP];        /* per stage, incl. embedding, context and global buffer */
  double transition_s;      /* sum of transition costs (not part of time_s, as in Galvatron) */
  /* The terms mem_mb sums, per stage (MB): model states (parameters, gradients and
   * optimizer state, which the model does not separate), activations, Megatron-SP's
   * global buffer, the framework's context memory. */
  double states_mb[COST_MAXPP], act_mb[COST_MAXPP], buffer_mb[COST_MAXPP], context_mb[COST_MAXPP];
  /* The terms the pipeline formula takes, per stage (s): one micro-batch's forward and
   * backward without gradient synchronisation (layers and embedding/head; the no-sync
   * time is split in the ratio of the forward and backward compute terms), and what the
   * synchronisation adds to the micro-batch that carries it (not hidden by backward). */
  double fwd_s[COST_MAXPP], bwd_s[COST_MAXPP], sync_s[COST_MAXPP];
  double opt_s[COST_MAXPP];  /* the optimizer step, once per iteration (gvc's calibrated model; else 0) */
} CostResult;
void cost_plan_eval(const CostModel *cm, const CostTask *t, const CostPlan *p, int gbuf_tp, CostResult *r);

/* Analytic model from the IR: FLOPs at device_tflops*efficiency, activations from the
 * IR's saved bytes, and default bandwidths (GB/s) within and across nodes. */
typedef struct AnalyticHw { double tflops, efficiency, intra_gbps, inter_gbps; int gpus_per_node; } AnalyticHw;
int cost_analytic_init(CostModel *cm, const IrModel *m, const AnalyticHw *hw);
/* The layer types of the IR's blocks: blocks of one structure (IrLayer.type_id) share a type,
 * numbered in order of first appearance. Sets cm->ntypes, type_layers, type_hidden (the
 * block's output width), type_seq (cm->seq), nlayers and type_of = types (nblocks entries,
 * the caller's), and names[k] = the type's first block when names is not NULL. Returns the
 * number of types, or -1 when there are more than PROF_MAXTYPES. */
int cost_types_from_ir(CostModel *cm, const IrModel *m, unsigned char *types, char (*names)[64]);
/* An encoder-decoder's (a model reading src_tokens) layer types that run at the source
 * length S (their blocks read the source's rows: the encoder's), src[k] = 1, the others 0
 * (the decoder's, at T); types as cost_types_from_ir gives them. Returns 0 (src all 0)
 * when m is not an encoder-decoder, else 1. */
int cost_types_src(const IrModel *m, const unsigned char *types, int *src);
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
