/* search.h - Galvatron's strategy search: the (gbsz, chunks, pp, tp/sp mode, tp buffer)
 * task enumeration, a per-stage dynamic program over layers under the memory budget,
 * the embedding/LM-head choice and the pipeline formula as the objective. Costs come
 * only from cost.c. */
#ifndef GV_SEARCH_H
#define GV_SEARCH_H

#include "cost.h"

#define SEARCH_MAXPP COST_MAXPP
#define SEARCH_MAXK 16

enum { SEARCH_TP_ONLY, SEARCH_SP_ONLY, SEARCH_TP_WITH_SP };

typedef struct SearchOptions {
  StrategySpace space;
  double memory_gb;         /* per GPU */
  int min_bsz, max_bsz, bsz_scale, settle_bsz, settle_chunk;
  int threads;              /* worker threads (>= 1) */
  int topk;                 /* plans kept (best tasks), 1..SEARCH_MAXK */
  int mem_step;             /* DP memory resolution in MB; 1 = Galvatron's */
  int prune;                /* skip tasks whose throughput bound cannot win */
  int dense;                /* Galvatron's dense (budget x strategy) table instead of Pareto fronts */
  int fine_grained_mode;    /* 1 (default): per-layer DP; 0: Galvatron's coarse mode, one strategy for
                               every layer (the plans `gvc compile` can run as they are) */
  int progress;             /* progress line with ETA on stderr */
  int lowerable;            /* 1: only plans gvc's lowering runs (gvc compile/plan --search; search.c
                               task_keep); 0: Galvatron's space, as gvc search writes it */
} SearchOptions;

/* The DP's memory budget per GPU in MB, with *reserve the MB set aside. Galvatron's search
 * (DpOnModel) reserves 20% of a budget above 20 GB for the allocator: a step, so budgets of
 * 21 GB to just under 25 GB leave less than 20 GB does (24 GB: 19661 MB against 20480) and a larger
 * budget can lose a plan. Galvatron's model keeps it (its reference); gvc's analytic and
 * calibrated model caps the reserve so that a larger budget never leaves less. */
int search_budget_mb(const CostModel *cm, double memory_gb, int *reserve);

typedef struct SearchPlan {
  CostTask task;
  int mode, buf;            /* tp/sp mode and global buffer tp size of the task */
  Strategy *layers;         /* nlayers, malloc'd */
  int division[SEARCH_MAXPP];
  Strategy embed;
  double time_s, throughput;
  double mem_mb[SEARCH_MAXPP];   /* Galvatron's memory_cost per stage (DP budget accounting) */
  double remain_mb[SEARCH_MAXPP];
  long cells;               /* DP cell updates spent on the task */
} SearchPlan;

typedef struct SearchResult {
  int nplans;
  SearchPlan plans[SEARCH_MAXK];  /* best first */
  long tasks, tasks_solved, tasks_pruned, dp_cells;
  double search_time_s;
} SearchResult;

void search_options_defaults(SearchOptions *o);
/* Batch sizes searched (Galvatron's set_searching_bsz); returns the count. */
int search_batch_sizes(const SearchOptions *o, int *out, int cap);
/* Solves one task; returns 0 with *plan filled, 1 when infeasible or empty. */
int search_task(const CostModel *cm, const SearchOptions *o, const CostTask *t, int mode, int buf, SearchPlan *plan);
/* The whole search; returns 0 when a plan was found. */
int search_run(const CostModel *cm, const SearchOptions *o, SearchResult *r);
void search_result_free(SearchResult *r);
/* Even stage split: L/pp per stage, the rest on the last one. */
void search_division_even(int nlayers, int pp, int *div);

#endif
