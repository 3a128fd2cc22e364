/* strategy.c - the strategy space of Galvatron HEAD (generate_strategy_list and
 * filter_strategy_list): powers of two for pp, tp or Ulysses sp, dp the rest of the world,
 * {default, ZeRO-3} when dp > 1, checkpointing on or off; with disable_cp 0, context
 * parallelism degrees (powers of two) with tp, the sequence cut into 2 x cp chunks. */
#include "strategy.h"

#include <stdio.h>
#include <stdlib.h>

int strategy_cmp(const Strategy *a, const Strategy *b)
{
  int d[7] = {a->pp - b->pp, a->tp - b->tp, a->sp - b->sp, strategy_cp(a) - strategy_cp(b), a->dp - b->dp,
               a->dp_type - b->dp_type, a->ckpt - b->ckpt};
  for (int i = 0; i < 7; i++)
    if (d[i]) return d[i] < 0 ? -1 : 1;
  return 0;
}

static int cmp_void(const void *a, const void *b) { return strategy_cmp(a, b); }

void strategy_str(const Strategy *s, char *buf, size_t n)
{
  char cp[24] = "";
  if (strategy_cp(s) > 1) snprintf(cp, sizeof cp, "-cp%d", strategy_cp(s));
  snprintf(buf, n, "%d-%d%s-%d%s%s%s%s", s->pp, strategy_tp_sp(s), strategy_tp_sp(s) > 1 ? "*" : "", s->dp,
           s->dp_type == DP_ZERO3 ? "f" : "", s->ckpt ? "-c" : "", s->sp > 1 ? "-sp" : "", cp);
}

static int keep(const StrategySpace *sp, int embed, const Strategy *s)
{
  if (sp->disable_pp && s->pp > 1) return 0;
  if (sp->disable_tp && s->tp > 1) return 0;
  if (sp->disable_sp && s->sp > 1) return 0;
  if (sp->disable_dp && s->dp > 1) return 0;
  if (sp->disable_fsdp && s->dp_type == DP_ZERO3) return 0;
  if (!embed && sp->disable_ckpt && s->ckpt) return 0;
  if (embed && sp->disable_embed_tp && s->tp > 1) return 0;
  if (embed && sp->disable_embed_sp && s->sp > 1) return 0;
  int t = strategy_tp_sp(s);
  if (!embed && sp->heads > 0 && (sp->heads % t || (sp->kv_heads > 0 && sp->kv_heads % t))) return 0;
  if (!embed && sp->ffn > 0 && s->tp > 1 && sp->ffn % s->tp) return 0;
  if (!embed && sp->tp_why[0] && s->tp > 1) return 0;
  if (!embed && sp->ul_why[0] && s->sp > 1) return 0;
  if (embed && sp->vocab > 0 && s->tp > 1 && sp->vocab % s->tp) return 0;
  if (s->sp > 1 && sp->seq > 0 && sp->seq % s->sp) return 0; /* Ulysses / vsp split the sequence evenly */
  if (strategy_cp(s) > 1 && (s->sp > 1 || (sp->seq > 0 && sp->seq % (2 * s->cp)))) return 0; /* as gvc compile */
  return 1;
}

int strategy_space_note(const StrategySpace *sp, char *buf, size_t n)
{
  char kept[64] = "";
  int removed = 0, len = 0;
  for (int t = 1; t <= sp->world; t *= 2) {
    int ok = sp->heads <= 0 || (sp->heads % t == 0 && (sp->kv_heads <= 0 || sp->kv_heads % t == 0));
    if (ok)
      len += snprintf(kept + len, sizeof kept - (size_t)len, "%s%d", len ? ", " : "", t);
    removed += !ok;
  }
  buf[0] = 0;
  if (!removed && !sp->tp_why[0] && !sp->ul_why[0])
    return 0;
  if (removed)
    len = snprintf(buf, n, "the model's %d heads (%d kv heads) allow layer tp / Ulysses degrees %s only", sp->heads,
                   sp->kv_heads > 0 ? sp->kv_heads : sp->heads, kept);
  else
    len = 0;
  if (sp->tp_why[0] && (size_t)len < n)
    len += snprintf(buf + len, n - (size_t)len, "%sno block runs tensor-parallel (%s)", len ? "; " : "", sp->tp_why);
  if (sp->ul_why[0] && (size_t)len < n)
    snprintf(buf + len, n - (size_t)len, "%sno block runs Ulysses (%s)", len ? "; " : "", sp->ul_why);
  return 1;
}

int strategy_enumerate(const StrategySpace *sp, int embed, Strategy *out, int cap)
{
  int n = 0, N = sp->world;
  for (int pp = 1; pp <= N; pp *= 2) {
    if (pp > sp->nlayers || (sp->max_pp > 0 && pp > sp->max_pp)) continue;
    for (int mode = 0; mode < 2; mode++)
      for (int t = 1; t * pp <= N; t *= 2)
        for (int cp = 1; cp == 1 || (!sp->disable_cp && t * pp * cp <= N && cp <= sp->max_cp);
             cp *= 2) {
          if (t > 1 && mode == 0 && sp->max_tp > 0 && t > sp->max_tp) continue;
          if (t > 1 && mode == 1 && sp->max_sp > 0 && t > sp->max_sp) continue;
          if (t == 1 && mode == 1) continue; /* the dedup of Galvatron's set() */
          int dp = N / pp / t / cp;
          int types[2] = {DP_DDP, -1};
          if (dp * cp > 1) { types[0] = sp->default_dp_type; types[1] = DP_ZERO3; }
          for (int d = 0; d < 2 && types[d] >= 0; d++)
            for (int c = 0; c < (embed ? 1 : 2); c++) {
              Strategy s = {pp, mode == 0 ? t : 1, mode == 1 ? t : 1, dp, types[d], c, 1, cp};
              if (keep(sp, embed, &s) && n < cap) out[n++] = s;
            }
        }
  }
  qsort(out, (size_t)n, sizeof *out, cmp_void);
  return n;
}
