/* options.c - the table of gvc compile's strategy options (options.h) and the checks of
 * their values: integers strictly in range, one of an enumeration, comma lists without
 * empty entries. */
#include "options.h"
#include "diag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEGREE GV_NUM_INT(1, OPTIONS_MAX_WORLD)
#define BIT GV_NUM_INT(0, 1)
#define NOT_A_NUMBER {0, 0, 0, 0, 0}

static const Option table[] = {
  {"num_nodes", OPTION_INT, GV_NUM_INT(1, 65536), NULL, 1},
  {"num_gpus_per_node", OPTION_INT, GV_NUM_INT(1, 65536), NULL, 1},
  {"pp_deg", OPTION_INT, DEGREE, NULL, 1},
  {"pp_division", OPTION_LIST, DEGREE, NULL, 1},
  {"global_tp_deg", OPTION_INT, DEGREE, NULL, 1},
  {"global_tp_consec", OPTION_INT, BIT, NULL, 1},
  {"chunks", OPTION_INT, GV_NUM_INT(1, 1 << 20), NULL, 1},
  {"pipeline_type", OPTION_ENUM, NOT_A_NUMBER, "pipedream_flush|gpipe|1f1b", 1},
  {"default_dp_type", OPTION_ENUM, NOT_A_NUMBER, "ddp|zero2|zero3", 1},
  {"sdp", OPTION_INT, BIT, NULL, 1},
  {"sequence_parallel", OPTION_INT, BIT, NULL, 1},
  {"use_ulysses", OPTION_INT, BIT, NULL, 1},
  {"global_cp_deg", OPTION_INT, DEGREE, NULL, 1},
  {"global_ep_deg", OPTION_INT, DEGREE, NULL, 1},
  {"global_tp_of_ep_deg", OPTION_INT, DEGREE, NULL, 1},
  {"ep_dispatch_per_linear", OPTION_INT, BIT, NULL, 1},
  {"vocab_tp", OPTION_INT, DEGREE, NULL, 1},
  {"vocab_sp", OPTION_INT, BIT, NULL, 1},
  {"global_checkpoint", OPTION_INT, BIT, NULL, 1},
  {"checkpoint", OPTION_LIST, NOT_A_NUMBER, "none|all", 1},
  {"micro_batch", OPTION_INT, GV_NUM_INT(1, 1 << 24), NULL, 1},
  {"global_train_batch_size", OPTION_INT, GV_NUM_INT(1, 1 << 30), NULL, 1},
  {"seq", OPTION_INT, GV_NUM_INT(1, 1 << 24), NULL, 1},
  {"src_seq", OPTION_INT, GV_NUM_INT(1, 1 << 24), NULL, 1},
  {"galvatron_config_path", OPTION_TEXT, NOT_A_NUMBER, NULL, 1},
  {"tp_sizes_enc", OPTION_LIST, DEGREE, NULL, 1},
  {"zero3_layers", OPTION_LIST, NOT_A_NUMBER, "all", 1},
  {"no_async_grad_reduce", OPTION_INT, BIT, NULL, 1},
  {"mixed_precision", OPTION_ENUM, NOT_A_NUMBER, "fp32|bf16", 1},
  {"num_layers", OPTION_LIST, GV_NUM_INT(1, 1 << 20), NULL, 0},
  {"make_vocab_size_divisible_by", OPTION_INT, GV_NUM_INT(1, 1 << 20), NULL, 0},
  {"make_vocab_size_divisible_by", OPTION_INT, GV_NUM_INT(1, 1 << 20), NULL, 0},
  {"O", OPTION_INT, GV_NUM_INT(0, 3), NULL, 0},
};

const Option *options_find(const char *name)
{
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (!strcmp(table[i].name, name))
      return &table[i];
  return NULL;
}

/* Is text one of "a|b|c"? */
static int one_of(const char *values, const char *text)
{
  size_t n = strlen(text);
  for (const char *p = values; p && *p;) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == n && !strncmp(p, text, n))
      return 1;
    p = bar ? bar + 1 : NULL;
  }
  return 0;
}

/* "a, b or c" from "a|b|c" */
static const char *spell_values(const char *values, char *buf, size_t n)
{
  size_t k = 0;
  buf[0] = 0;
  for (const char *p = values; *p && k + 5 < n; p++) {
    if (*p != '|') {
      buf[k++] = *p;
      continue;
    }
    const char *sep = strchr(p + 1, '|') ? ", " : " or ";
    for (const char *s = sep; *s && k + 1 < n; s++)
      buf[k++] = *s;
  }
  buf[k] = 0;
  return buf;
}

/* Each comma-separated entry of text: non-empty, and an integer in range when asked. */
static const char *check_list(const Option *o, const char *text, char *buf, size_t n)
{
  char entry[64], want[64];
  for (const char *p = text;; p++) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    double v;
    snprintf(entry, sizeof entry, "%.*s", (int)(len < sizeof entry ? len : sizeof entry - 1), p);
    if (!len) {
      snprintf(buf, n, "a comma list without empty entries%s", o->range.integer ? ", each " : "");
      if (o->range.integer)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s", gv_num_expected(&o->range, want, sizeof want));
      return buf;
    }
    if (o->range.integer && (len >= sizeof entry || gv_num_parse(entry, &o->range, &v))) {
      snprintf(buf, n, "a comma list, each %s ('%s' is not)", gv_num_expected(&o->range, want, sizeof want), entry);
      return buf;
    }
    if (!comma)
      return NULL;
    p = comma;
  }
}

const char *options_check(const Option *o, const char *text, char *buf, size_t n)
{
  double v;
  switch (o->kind) {
  case OPTION_INT:
    return gv_num_parse(text, &o->range, &v) ? gv_num_expected(&o->range, buf, n) : NULL;
  case OPTION_ENUM:
    return one_of(o->values, text) ? NULL : spell_values(o->values, buf, n);
  case OPTION_LIST:
    if (o->values && one_of(o->values, text))
      return NULL;
    return check_list(o, text, buf, n);
  case OPTION_TEXT:
    if (*text)
      return NULL;
    snprintf(buf, n, "a non-empty value");
    return buf;
  }
  return NULL;
}

int options_int(const char *name, const char *text, int64_t *out)
{
  const Option *o = options_find(name);
  char want[96];
  const char *why = options_check(o, text, want, sizeof want);
  if (why) { /* one-letter options have one dash (-O) */
    diag_plain(NULL, "-%s%s '%s': expected %s", name[1] ? "-" : "", name, text, why);
    return 1;
  }
  *out = (int64_t)strtoll(text, NULL, 10);
  return 0;
}

int options_int_list(const char *name, const char *text, int *out, int cap, int *n)
{
  const Option *o = options_find(name);
  char want[128];
  const char *why = options_check(o, text, want, sizeof want);
  if (why) {
    diag_plain(NULL, "--%s '%s': expected %s", name, text, why);
    return 1;
  }
  *n = 0;
  for (const char *p = text; *p; p += *p == ',') {
    char *end;
    long v = strtol(p, &end, 10);
    if (*n < cap)
      out[*n] = (int)v;
    ++*n;
    p = end;
  }
  return 0;
}
