/* cmd_info.c - `gvc info FILE --model NAME`: the per-layer table of a model size
 * (kind, parameters, forward FLOPs, activation bytes kept for backward) and totals, as
 * text or JSON, for a micro-batch, sequence length and precision. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "frontend.h"
#include "options.h"
#include "parplan.h"
#include "diag.h"

static const char *kind_name(IrLayerKind k)
{
  static const char *n[] = {"embedding", "block", "norm", "head", "other"};
  return n[k];
}

static void usage(FILE *f)
{
  fprintf(f, "usage: gvc info FILE --model NAME [--seq N] [--src_seq N] [--micro-batch N] [--precision bf16|fp32] [--json]\n\n"
             "Prints each top-level layer of the model (the units a parallel strategy is assigned\n"
             "to): kind, parameters, forward FLOPs (matmuls, multiply-add = 2) and the activation\n"
             "bytes kept for backward, for one micro-batch; then the totals.\n\n"
             "  --model NAME        a size (or a model with default arguments) defined in FILE\n"
             "  --seq N             sequence length (default: the model's positions, or 2048)\n"
             "  --src_seq N         an encoder-decoder's source length (default: --seq)\n"
             "  --micro-batch N     micro-batch size (also --micro_batch; default 1)\n"
             "  --precision P       bf16 (default) or fp32: bytes per activation element\n"
             "  --json              JSON: {\"model\", \"params\", \"layers\": [...], ...}\n");
}

static const char *human(double x, char *buf)
{
  const char *u[] = {"", "K", "M", "G", "T", "P", "E"};
  int i = 0;
  while (x >= 1000 && i < 6) {
    x /= 1000;
    i++;
  }
  snprintf(buf, 32, i ? "%.2f%s" : "%.0f%s", x, u[i]);
  return buf;
}

static void print_table(const IrModel *m, int64_t B, int64_t T, int64_t S, int bytes, const char *prec)
{
  char a[32], c[32], d[32], src[48] = "";
  if (m->src_value >= 0)
    snprintf(src, sizeof src, ", source %lld", (long long)(S ? S : T));
  printf("%s (%s): micro-batch %lld, seq %lld%s, %s\n", m->name, m->family ? m->family : m->name, (long long)B,
         (long long)T, src, prec);
  printf("%-14s %-10s %5s %14s %14s %14s\n", "layer", "kind", "type", "params", "fwd FLOPs", "act bytes");
  for (int i = 0; i < m->nlayers; i++) {
    IrCost k = ir_layer_cost(m, i, B, T, S, bytes);
    printf("%-14s %-10s %5d %14lld %14s %14s\n", m->layers[i].name, kind_name(m->layers[i].kind),
           m->layers[i].type_id, (long long)k.params, human(k.flops_fwd, a), human(k.act_bytes, c));
  }
  IrCost t = ir_model_cost(m, B, T, S, bytes);
  printf("%-14s %-10s %5s %14lld %14s %14s\n", "total", "", "", (long long)ir_model_params(m), human(t.flops_fwd, a),
         human(t.act_bytes, c));
  printf("params %s, forward %s FLOP per token, %d layers (%lld blocks)\n", human((double)ir_model_params(m), d),
         human(t.flops_fwd / (double)(B * T), a), m->nlayers, (long long)m->nblocks);
}

static void print_json(const IrModel *m, int64_t B, int64_t T, int64_t S, int bytes, const char *prec)
{
  IrCost t = ir_model_cost(m, B, T, S, bytes);
  printf("{\n  \"model\": \"%s\",\n  \"family\": \"%s\",\n  \"params\": %lld,\n  \"seq\": %lld,\n"
         "  \"micro_batch\": %lld,\n  \"precision\": \"%s\",\n  \"flops_fwd\": %.17g,\n  \"flops_bwd\": %.17g,\n"
         "  \"flops_fwd_per_token\": %.17g,\n  \"act_bytes\": %.17g,\n  \"hidden\": %lld,\n  \"vocab\": %lld,\n"
         "  \"heads\": %lld,\n  \"kv_heads\": %lld,\n  \"blocks\": %lld,\n  \"layers\": [\n",
         m->name, m->family ? m->family : m->name, (long long)ir_model_params(m), (long long)T, (long long)B, prec,
         t.flops_fwd, t.flops_bwd, t.flops_fwd / (double)(B * T), t.act_bytes, (long long)m->hidden,
         (long long)m->vocab, (long long)m->heads, (long long)m->kv_heads, (long long)m->nblocks);
  for (int i = 0; i < m->nlayers; i++) {
    IrCost k = ir_layer_cost(m, i, B, T, S, bytes);
    printf("    {\"name\": \"%s\", \"kind\": \"%s\", \"type\": %d, \"params\": %lld, \"flops_fwd\": %.17g, "
           "\"flops_bwd\": %.17g, \"act_bytes\": %.17g, \"boundary_bytes\": %.17g}%s\n",
           m->layers[i].name, kind_name(m->layers[i].kind), m->layers[i].type_id, (long long)k.params, k.flops_fwd,
           k.flops_bwd, k.act_bytes, k.boundary_bytes, i + 1 < m->nlayers ? "," : "");
  }
  printf("  ]\n}\n");
}

int cmd_info(int argc, char **argv)
{
  const char *file = NULL, *model = NULL, *prec = "bf16";
  int64_t seq = 0, src = 0, mb = 1;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--model") && more) {
      model = argv[++i];
    } else if (!strcmp(a, "--seq") && more) {
      if (options_int("seq", argv[++i], &seq))
        return 1;
    } else if ((!strcmp(a, "--src_seq") || !strcmp(a, "--src-seq")) && more) {
      if (options_int("src_seq", argv[++i], &src))
        return 1;
    } else if ((!strcmp(a, "--micro-batch") || !strcmp(a, "--micro_batch")) && more) {
      if (options_int("micro_batch", argv[++i], &mb))
        return 1;
    } else if (!strcmp(a, "--precision") && more) {
      prec = argv[++i];
    } else if (a[0] == '-') {
      diag_plain(NULL, "unknown option or missing value '%s' (see 'gvc info --help')", a);
      return 1;
    } else if (!file) {
      file = a;
    } else {
      diag_plain(NULL, "more than one input file");
      return 1;
    }
  }
  if (!file || !model) {
    diag_plain(NULL, "%s (see 'gvc info --help')", !file ? "no input file" : "--model NAME is required");
    return 1;
  }
  if (strcmp(prec, "bf16") && strcmp(prec, "fp32")) {
    diag_plain(NULL, "--precision must be bf16 or fp32");
    return 1;
  }
  Ctx *cx = ctx_new();
  const IrModel *m = frontend_load_model(cx, file, model);
  int rc = 1;
  if (m && src && m->src_value < 0) {
    char given[64], msg[256];
    snprintf(given, sizeof given, "--src_seq %lld", (long long)src);
    parplan_no_source(msg, sizeof msg, given, model);
    diag_plain(NULL, "%s", msg);
  } else if (m) {
    int64_t T = seq ? seq : m->max_seq ? m->max_seq : 2048;
    if (json)
      print_json(m, mb, T, src, !strcmp(prec, "bf16") ? 2 : 4, prec);
    else
      print_table(m, mb, T, src, !strcmp(prec, "bf16") ? 2 : 4, prec);
    rc = 0;
  }
  ctx_free(&cx);
  return rc;
}
