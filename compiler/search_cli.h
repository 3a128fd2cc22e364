/* search_cli.h - the command line shared by `gvc search` and `gvc cost`: Galvatron's
 * option names (underscores; --x=V or --x V; 0/1 switches also as bare flags), turned
 * into a CostModel (profiles, or the analytic model from the IR) and SearchOptions. */
#ifndef GV_SEARCH_CLI_H
#define GV_SEARCH_CLI_H

#include "search.h"

#include <stdio.h>

typedef struct SearchCli {
  const char *file, *model, *model_size, *out, *strategy, *cost_model, *precision, *search_space, *device;
  const char *time_mode, *memory_mode, *default_dp_type, *pipeline_type, *transition;
  const char *svg;           /* --svg FILE: the picture of the plan(s) */
  const char *measured;      /* gvc cost --measured steps.json: compared with the prediction */
  const char *hardware_profile; /* a gvc profile hardware folder: the default of the four hardware paths */
  char **layer_names;        /* the model's top-level layers (malloc'd when FILE is given), */
  int *layer_kinds;          /* their IrLayerKind, */
  int nir_layers;            /* and their count */
  int num_nodes, gpus_per_node, layers, sequence_parallel, global_memory_buffer, async_grad_reduce;
  /* --num_layers, --hidden_size, --seq_length: one value, or one per layer type ("24,24") */
  const char *layers_arg, *hidden_arg, *seq_arg;
  int src_seq;               /* --src_seq S: seq_arg becomes "S,T" in seq_pair */
  char seq_pair[48];
  unsigned char *type_of;    /* the model's layer types, one per layer (cm.type_of points here) */
  char type_names[PROF_MAXTYPES][64]; /* each type's first block ("encoder.0"), for messages */
  int no_prune, quiet;
  double memory_gb, context_mem, costmodel_coe;
  CostFiles files;
  char resolved[6][1024];  /* profile paths given as directories, resolved to Galvatron's file names */
  AnalyticHw hw;
  SearchOptions so;
  CostModel cm;
} SearchCli;

/* Returns 0 to go on, 1 on a usage error (printed), 2 when --help was printed. */
int search_cli_parse(int argc, char **argv, int is_cost, SearchCli *c);
/* The analytic model's hardware preset (h100, h200, a100, cpu) into the fields of hw that
 * are not set (<= 0); returns 1 after a message for an unknown device. */
int search_cli_device(const char *device, int gpus_per_node, AnalyticHw *hw);
/* Loads the IR (when FILE given) and profiles or the analytic model into c->cm. */
int search_cli_model(SearchCli *c);
/* Strategy of one layer / the embedding from a Galvatron config. */
Strategy search_cli_layer(const CostModel *cm, const GalConfig *g, int layer);
Strategy search_cli_embed(const CostModel *cm, const GalConfig *g);
/* The sequence lengths the cost model prices, one per distinct value in layer-type order
 * ("1024", or an encoder-decoder's "512,128"), into buf; returns buf. */
const char *search_cli_lengths(const CostModel *cm, char *buf, size_t n);
/* Galvatron config of a plan (arrays malloc'd into g; prof_config_free). */
void search_cli_plan_config(const CostModel *cm, const SearchPlan *p, GalConfig *g);

/* Writes the pictures of n evaluated plans (best first) to c->svg; returns 0 or 1. */
int search_cli_svg(const SearchCli *c, const CostTask *tasks, const CostPlan *plans, const CostResult *res, int n);
/* Frees what search_cli_model allocated. */
void search_cli_free(SearchCli *c);

/* Layer table, stages, memory and time of a plan. */
void search_cli_report(FILE *f, const CostModel *cm, const CostTask *t, const CostPlan *p, const CostResult *r);

#endif
