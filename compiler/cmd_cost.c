/* cmd_cost.c - `gvc cost`: evaluates a galvatron_config_*.json under the same cost model
 * as `gvc search` (time, throughput, memory per stage; over-budget stages flagged). */
#include "cmd.h"
#include "profile_model.h"
#include "search_cli.h"
#include "diag.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The prediction beside a run of the strategy (--measured steps.json): step time (the
 * median after the first step) and the largest stage's memory against the largest rank's
 * peak (resident set on CPU ranks, device memory in use on GPUs). */
static int compare_measured(const char *path, const CostTask *t, const CostResult *r)
{
  PmRun m;
  int n = 0;
  if (pm_read_steps(path, 1, &m, &n)) return 1;
  double mem = 0, meas = m.on_device ? m.device_used_mb : m.peak_rss_mb;
  for (int k = 0; k < t->pp; k++) mem = fmax(mem, r->mem_mb[k]);
  printf("predicted / measured: step time %.6f / %.6f s (%+.1f%%), peak memory %.1f / %.1f MB (%+.1f%%); measured: median of "
         "%d steps after the first, the largest rank's %s\n", r->time_s, m.step_ms / 1e3, 100 * (r->time_s / (m.step_ms / 1e3) - 1),
         mem, meas, 100 * (mem / meas - 1), n - 1, m.on_device ? "device memory in use" : "peak resident set");
  return 0;
}

int cmd_cost(int argc, char **argv)
{
  SearchCli c;
  int rc = search_cli_parse(argc, argv, 1, &c);
  if (rc) return rc == 2 ? 0 : 1;
  if (!c.strategy) { diag_plain(NULL, "--strategy galvatron_config.json is required"); return 1; }
  GalConfig g;
  if (prof_config_read(c.strategy, &g)) return 1;
  if (c.layers <= 0) c.layers = g.nlayers;
  c.pipeline_type = g.pipeline_type;     /* what the program compiled from this config runs, */
  c.default_dp_type = g.default_dp_type; /* not the search's options */
  if (search_cli_model(&c)) { prof_config_free(&g); search_cli_free(&c); return 1; }
  if (g.nlayers != c.cm.nlayers) {
    diag_plain(NULL, "%s: key 'tp_sizes_enc': %d layers, the model has %d", c.strategy, g.nlayers, c.cm.nlayers);
    prof_config_free(&g);
    search_cli_free(&c);
    return 1;
  }
  int world = g.world_size > 0 ? g.world_size : c.cm.world;
  if (world != c.cm.world) {
    diag_plain(NULL, "%s: key 'world_size': %d, but the hardware has %d GPUs", c.strategy, world, c.cm.world);
    prof_config_free(&g);
    search_cli_free(&c);
    return 1;
  }
  if (g.pp_deg > COST_MAXPP) {
    diag_plain(NULL, "%s: key 'pp_deg': %d stages; the cost model prices at most %d", c.strategy, g.pp_deg, COST_MAXPP);
    prof_config_free(&g);
    search_cli_free(&c);
    return 1;
  }
  Strategy *ls = malloc(sizeof(Strategy) * g.nlayers);
  int gbuf = 1;
  for (int l = 0; l < g.nlayers; l++) {
    ls[l] = search_cli_layer(&c.cm, &g, l);
    if (strategy_tp_sp(&ls[l]) > gbuf) gbuf = strategy_tp_sp(&ls[l]);
  }
  CostTask t = {g.pp_deg, g.global_bsz, g.chunks, g.cp ? g.cp[0] : 1};
  CostPlan p = {g.nlayers, ls, g.pp_division, search_cli_embed(&c.cm, &g)};
  CostResult r;
  cost_plan_eval(&c.cm, &t, &p, gbuf, &r);
  search_cli_report(stdout, &c.cm, &t, &p, &r);
  rc = 0;
  for (int k = 0; k < t.pp; k++)
    if (r.mem_mb[k] > c.memory_gb * 1024) {
      printf("stage %d: %.0f MB exceeds the budget of %.0f MB\n", k, r.mem_mb[k], c.memory_gb * 1024);
      rc = 2;
    }
  int svg_rc = c.svg ? search_cli_svg(&c, &t, &p, &r, 1) : 0;
  if (c.measured && compare_measured(c.measured, &t, &r)) svg_rc = 1;
  if (c.svg && !svg_rc) fprintf(stderr, "gvc: wrote %s\n", c.svg);
  free(ls);
  prof_config_free(&g);
  search_cli_free(&c);
  return svg_rc; /* over budget is reported, not an error: the config is still evaluated (and drawn) */
}
