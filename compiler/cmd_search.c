/* cmd_search.c - `gvc search`: options -> cost model -> search_run -> Galvatron config
 * (plus a "gvc" summary object) in OUT.json, a table on stdout and in OUT.txt. Every
 * plan is re-evaluated with cost_plan_eval before it is written, so what the file says
 * is what `gvc cost` says about it. */
#include "cmd.h"
#include "search_cli.h"
#include "diag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gvc_summary(char *buf, size_t n, const SearchCli *c, const SearchPlan *p, const CostResult *r, const SearchResult *res)
{
  int o = snprintf(buf, n, "{\"iteration_time_s\": %.9g, \"samples_per_s\": %.9g, \"memory_mb_per_stage\": [", r->time_s,
                   p->task.gbsz / r->time_s);
  for (int k = 0; k < p->task.pp; k++) o += snprintf(buf + o, n - (size_t)o, "%s%.3f", k ? ", " : "", r->mem_mb[k]);
  snprintf(buf + o, n - (size_t)o,
           "], \"memory_constraint_gb\": %g, \"search_time_s\": %.6f, \"tasks\": %ld, \"tasks_pruned\": %ld, "
           "\"cost_model\": \"%s\", \"analytic\": %s}",
           c->memory_gb, res->search_time_s, res->tasks, res->tasks_pruned, c->cm.analytic ? "analytic" : "galvatron",
           c->cm.analytic ? "true" : "false");
}

static int write_outputs(const SearchCli *c, const SearchResult *res)
{
  const SearchPlan *p = &res->plans[0];
  CostPlan cp = {c->cm.nlayers, p->layers, p->division, p->embed};
  CostResult r;
  cost_plan_eval(&c->cm, &p->task, &cp, p->buf, &r);
  search_cli_report(stdout, &c->cm, &p->task, &cp, &r);
  printf("search: %ld tasks (%ld pruned by bound), %ld DP updates, %.3f s\n", res->tasks, res->tasks_pruned, res->dp_cells, res->search_time_s);
  for (int i = 1; i < res->nplans; i++) {
    const SearchPlan *q = &res->plans[i];
    printf("  #%d: pp %d, bsz %d, chunks %d: %.6f s, %.3f samples/s\n", i + 1, q->task.pp, q->task.gbsz, q->task.chunks,
           q->time_s, q->throughput);
  }
  if (c->svg) {
    CostTask tasks[SEARCH_MAXK];
    CostPlan plans[SEARCH_MAXK];
    CostResult *rs = malloc(sizeof *rs * (size_t)res->nplans);
    for (int i = 0; i < res->nplans; i++) {
      const SearchPlan *q = &res->plans[i];
      tasks[i] = q->task;
      plans[i] = (CostPlan){c->cm.nlayers, q->layers, q->division, q->embed};
      cost_plan_eval(&c->cm, &q->task, &plans[i], q->buf, &rs[i]);
    }
    int rc = search_cli_svg(c, tasks, plans, rs, res->nplans);
    free(rs);
    if (rc) return 1;
    fprintf(stderr, "gvc: wrote %s (%d plan%s)\n", c->svg, res->nplans, res->nplans == 1 ? "" : "s");
  }
  if (!c->out) return 0;
  FILE *f = fopen(c->out, "w");
  if (!f) { diag_plain(NULL, "%s: cannot write", c->out); return 1; }
  GalConfig g;
  search_cli_plan_config(&c->cm, p, &g);
  char extra[2048];
  gvc_summary(extra, sizeof extra, c, p, &r, res);
  prof_config_write(f, &g, extra);
  fclose(f);
  prof_config_free(&g);
  size_t n = strlen(c->out);
  char *txt = malloc(n + 8);
  memcpy(txt, c->out, n + 1);
  if (n > 5 && !strcmp(txt + n - 5, ".json")) txt[n - 5] = 0;
  strcat(txt, ".txt");
  FILE *t = fopen(txt, "w");
  if (t) {
    search_cli_report(t, &c->cm, &p->task, &cp, &r);
    fclose(t);
  }
  free(txt);
  return 0;
}

/* Why nothing was found: no task at all (the batch/chunk options leave none), or no plan
 * within the budget (which also holds the per-stage context reserve). */
static void no_plan_error(const SearchCli *c, const SearchResult *res)
{
  const SearchOptions *o = &c->so;
  if (res->tasks_solved == 0) {
    int bs[4096], nb = search_batch_sizes(o, bs, 4096), divides = 0;
    for (int i = 0; i < nb && o->settle_chunk > 0; i++) divides |= bs[i] % o->settle_chunk == 0;
    char range[64];
    if (nb == 1) snprintf(range, sizeof range, "%d", nb ? bs[0] : 0);
    else snprintf(range, sizeof range, "%d..%d step %d", nb ? bs[0] : 0, nb ? bs[nb - 1] : 0, o->bsz_scale);
    if (nb == 0) diag_plain(NULL, "nothing to search: no global batch in --min_bsz %d .. --max_bsz %d", o->min_bsz, o->max_bsz);
    else if (o->settle_chunk > 0 && !divides)
      diag_plain(NULL, "nothing to search: --settle_chunk %d divides no global batch (%s); memory was not the limit",
                 o->settle_chunk, range);
    else
      diag_plain(NULL, "nothing to search: no (global batch, chunks, pp) task has a strategy under these options "
                       "(global batch %s%s); memory was not the limit", range, o->settle_chunk > 0 ? ", --settle_chunk" : "");
    return;
  }
  char context[256] = "";
  if (c->cm.context_mem > 0)
    snprintf(context, sizeof context, "; every pipeline stage also reserves %g MB for the framework's context "
             "(--pytorch_context_mem, as Galvatron), which the budget must hold besides the model", c->cm.context_mem);
  diag_plain(NULL, "no valid configuration found under %g GB per GPU (%ld tasks searched)%s", c->memory_gb, res->tasks,
             context);
}

/* Galvatron's allocator reserve leaves some budgets less than a smaller one: say so. */
static void budget_note(const SearchCli *c)
{
  int reserve, M = search_budget_mb(&c->cm, c->so.memory_gb, &reserve);
  if (!reserve || M >= 20 * 1024) return;
  diag_plain_warning(NULL, "--memory_constraint %g: Galvatron's search sets 20%% of a budget above 20 GB aside (%d MB), which "
                           "leaves the model %d MB, less than 20 GB leaves (20480 MB); gvc keeps Galvatron's rule with its "
                           "profiles (20 GB leaves 20480 MB, 25 GB and more at least as much)", c->so.memory_gb, reserve, M);
}

int cmd_search(int argc, char **argv)
{
  SearchCli c;
  int rc = search_cli_parse(argc, argv, 0, &c);
  if (rc) return rc == 2 ? 0 : 1;
  if (search_cli_model(&c)) { search_cli_free(&c); return 1; }
  SearchResult res;
  budget_note(&c);
  if (search_run(&c.cm, &c.so, &res)) {
    no_plan_error(&c, &res);
    char note[256];
    if (strategy_space_note(&c.so.space, note, sizeof note))
      diag_plain_note(NULL, "%s", note);
    search_cli_free(&c);
    return 1;
  }
  rc = write_outputs(&c, &res);
  search_result_free(&res);
  search_cli_free(&c);
  return rc;
}
