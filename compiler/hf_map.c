/* hf_map.c - reads a model's Hugging Face mapping file (hf_map.h). */
#include "hf_map.h"

#include "diag.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hf_pattern_match(const char *p, const char *s, long *i)
{
  *i = -1;
  while (*p) {
    if (!strncmp(p, "{i}", 3)) {
      if (!isdigit((unsigned char)*s))
        return 0;
      char *end;
      *i = strtol(s, &end, 10);
      s = end;
      p += 3;
    } else if (p[0] == '*' && !p[1]) {
      return 1;
    } else if (*p++ != *s++) {
      return 0;
    }
  }
  return *s == 0;
}

char *hf_pattern_subst(const char *p, long i, char *out, size_t len)
{
  size_t n = 0;
  for (; *p && n + 24 < len; p++) {
    if (!strncmp(p, "{i}", 3)) {
      n += (size_t)snprintf(out + n, len - n, "%ld", i);
      p += 2;
    } else {
      out[n++] = *p;
    }
  }
  out[n] = 0;
  return out;
}

char *hf_pattern_expert(const char *name, long e, char *out, size_t len)
{
  const char *at = strstr(name, "{e}");
  if (!at)
    snprintf(out, len, "%s", name);
  else
    snprintf(out, len, "%.*s%ld%s", (int)(at - name), name, e, at + 3);
  return out;
}

static int fail(const HfMap *m, int line, const char *msg, const char *what)
{
  fprintf(stderr, "%s:%d: error: %s%s%s\n", m->path, line, msg, what ? ": " : "", what ? what : "");
  return 1;
}

/* Splits s into whitespace-separated words in place (a quoted string is one word). */
static int words(char *s, char **w, int max)
{
  int n = 0;
  while (*s && n < max) {
    while (isspace((unsigned char)*s))
      s++;
    if (!*s || *s == '#')
      break;
    w[n++] = s;
    if (*s == '"') {
      char *q = strchr(s + 1, '"');
      s = q ? q + 1 : s + strlen(s);
    }
    while (*s && !isspace((unsigned char)*s))
      s++;
    if (*s)
      *s++ = 0;
  }
  return n;
}

static int is_literal(const char *w)
{
  return *w == '"' || *w == '-' || isdigit((unsigned char)*w) || !strcmp(w, "true") || !strcmp(w, "false") ||
         !strcmp(w, "null");
}

static int parse_config(HfMap *m, HfRule *r, char **w, int n)
{
  if (n != 4 && !(n == 6 && !strcmp(w[4], "absent")))
    return fail(m, r->line, "expected `config FIELD = HYPER|VALUE [absent VALUE]`", NULL);
  if (strcmp(w[2], "="))
    return fail(m, r->line, "expected '=' after the field", w[1]);
  r->key = w[1];
  if (is_literal(w[3]))
    r->json = w[3];
  else
    r->hyper = w[3];
  if (n == 6 && !is_literal(w[5]))
    return fail(m, r->line, "`absent` needs a JSON value", w[5]);
  r->absent = n == 6 ? w[5] : NULL;
  if (r->kind == HF_DEFAULT && r->absent)
    return fail(m, r->line, "`default` takes no `absent`", NULL);
  return 0;
}

static int parse_tensor(HfMap *m, HfRule *r, char **w, int n)
{
  int eq = 1;
  while (eq < n && strcmp(w[eq], "="))
    eq++;
  if (eq == 1 || eq >= n - 1 || eq - 1 > HF_MAP_MAX_PARTS)
    return fail(m, r->line, "expected `tensor GVC... = HF [transpose] [split D]`", NULL);
  r->nparts = eq - 1;
  for (int k = 0; k < r->nparts; k++)
    r->gvc[k] = w[1 + k];
  r->hf = w[eq + 1];
  r->split = -1;
  for (int k = eq + 2; k < n; k++) {
    if (!strcmp(w[k], "transpose")) {
      r->transpose = 1;
    } else if (!strcmp(w[k], "split") && k + 1 < n && (!strcmp(w[k + 1], "0") || !strcmp(w[k + 1], "1"))) {
      r->split = atoi(w[++k]);
    } else if (!strcmp(w[k], "groups") && k + 1 < n && !is_literal(w[k + 1])) {
      r->groups = w[++k];
    } else if (!strcmp(w[k], "stack")) {
      r->stack = 1;
    } else if (!strcmp(w[k], "unsqueeze")) {
      r->unsqueeze = 1;
    } else {
      return fail(m, r->line, "unknown tensor option (transpose, split 0, split 1, groups HYPER, stack, unsqueeze)", w[k]);
    }
  }
  if (r->unsqueeze && (r->nparts > 1 || r->transpose || r->stack))
    return fail(m, r->line, "`unsqueeze` takes one gvc tensor, no transpose and no stack", NULL);
  if (r->stack && (r->nparts > 1 || r->transpose || !strstr(r->hf, "{e}")))
    return fail(m, r->line, "`stack` takes one gvc tensor, no transpose, and an HF pattern with {e} (the expert)",
                NULL);
  if (r->groups && (r->split != 0 || r->transpose))
    return fail(m, r->line, "`groups HYPER` goes with `split 0` and no transpose", NULL);
  if ((r->nparts > 1) != (r->split >= 0))
    return fail(m, r->line, "several gvc tensors need `split D`, and `split D` needs several", NULL);
  return 0;
}

static int parse_line(HfMap *m, char *line, int lineno)
{
  char *w[24];
  int n = words(line, w, 24);
  if (!n)
    return 0;
  HfRule *r = &m->rules[m->nrules];
  memset(r, 0, sizeof *r);
  r->line = lineno;
  if (!strcmp(w[0], "prefix")) {
    if (n != 2)
      return fail(m, lineno, "expected `prefix P`", NULL);
    m->prefix = w[1];
    return 0;
  }
  if (!strcmp(w[0], "architecture")) {
    if (n != 2)
      return fail(m, lineno, "expected `architecture NAME`", NULL);
    m->architecture = w[1];
    return 0;
  }
  m->nrules++;
  if (!strcmp(w[0], "config") || !strcmp(w[0], "default")) {
    r->kind = w[0][0] == 'c' ? HF_CONFIG : HF_DEFAULT;
    return parse_config(m, r, w, n);
  }
  if (!strcmp(w[0], "tensor")) {
    r->kind = HF_TENSOR;
    return parse_tensor(m, r, w, n);
  }
  if (!strcmp(w[0], "tied")) {
    r->kind = HF_TIED;
    if (n != 4 || strcmp(w[2], "="))
      return fail(m, lineno, "expected `tied HF = HF2`", NULL);
    r->key = w[1];
    r->hf = w[3];
    return 0;
  }
  if (!strcmp(w[0], "ignore")) {
    r->kind = HF_IGNORE;
    if (n != 2)
      return fail(m, lineno, "expected `ignore HF`", NULL);
    r->key = w[1];
    return 0;
  }
  return fail(m, lineno, "unknown rule (architecture, prefix, config, default, tensor, tied, ignore)", w[0]);
}

int hf_map_load(HfMap *m, const char *path)
{
  memset(m, 0, sizeof *m);
  m->path = path;
  FILE *f = fopen(path, "rb");
  if (!f) {
    diag_plain(NULL, "%s: cannot open the Hugging Face mapping (give one with --map FILE)", path);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  m->text = malloc((size_t)len + 1);
  int nl = 1;
  if (!m->text || fread(m->text, 1, (size_t)len, f) != (size_t)len) {
    fclose(f);
    diag_plain(NULL, "%s: cannot read", path);
    return 1;
  }
  fclose(f);
  m->text[len] = 0;
  for (long k = 0; k < len; k++)
    nl += m->text[k] == '\n';
  m->rules = calloc((size_t)nl, sizeof *m->rules);
  if (!m->rules)
    return fail(m, 0, "out of memory", NULL);
  int lineno = 0, bad = 0;
  for (char *line = m->text; line && !bad;) {
    char *next = strchr(line, '\n');
    if (next)
      *next++ = 0;
    bad = parse_line(m, line, ++lineno);
    line = next;
  }
  if (!bad && !m->architecture)
    bad = fail(m, 1, "no `architecture NAME` line", NULL);
  return bad;
}

void hf_map_free(HfMap *m)
{
  free(m->rules);
  free(m->text);
  memset(m, 0, sizeof *m);
}
