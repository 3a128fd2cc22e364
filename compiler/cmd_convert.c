/* cmd_convert.c - `gvc convert`: Hugging Face model directories in and out.
 *   --from-hf DIR -o OUT.safetensors  config.json checked against the size, the weights
 *                                     (model.safetensors, or the shards a
 *                                     model.safetensors.index.json names; F32/F16/BF16,
 *                                     F64 refused)
 *                                     renamed and re-laid out into gvc's global parameter
 *                                     names, f32: what a training binary's --init_from takes
 *   --load IN --to-hf DIR             the reverse: config.json and model.safetensors (f32)
 *                                     that transformers' from_pretrained loads
 * The mapping is the model's NAME.hf.map (hf_map.h), found beside the size's .gvm file,
 * then beside the model's; no family is known to this file. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_opts.h"
#include "cmd.h"
#include "diag.h"
#include "gvrt.h"
#include "gvrt_safetensors.h"
#include "frontend.h"
#include "hf_map.h"
#include "program/tensorfile.h"

typedef struct Conv {
  const char *file, *model, *from_hf, *to_hf, *load, *out, *map_path, *dtype;
  enum gv_st_dtype st_dtype; /* what is written: GV_ST_F32 or GV_ST_BF16 */
  IrModel *m;
  HfMap map;
  gv_st *st[256];      /* the HF directory's files */
  int nst;
  char *used;          /* per HF tensor of each file, flattened: seen by a rule */
  int *used_first;
  float **gvc;         /* per gvc parameter: its f32 values */
  double t_start, t_print;
} Conv;

static int err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int err(const char *fmt, ...)
{
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_plain(NULL, "%s", msg);
  return 1;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t numel_of(const IrParam *p)
{
  int64_t n = 1;
  for (int d = 0; d < p->shape.rank; d++)
    n *= p->shape.d[d];
  return n;
}

static const IrParam *find_param(const IrModel *m, const char *name)
{
  for (int k = 0; k < m->nparams; k++)
    if (!strcmp(m->params[k].name, name))
      return &m->params[k];
  return NULL;
}

/* Every few seconds: how far the conversion is, with an estimate of the rest. */
static void progress(Conv *c, int done)
{
  double now = now_s();
  if (done == 1 || now - c->t_print < 5 || done >= c->m->nparams)
    return;
  c->t_print = now;
  fprintf(stderr, "convert: %d/%d parameters, %.0f s, ETA %.0f s\n", done, c->m->nparams, now - c->t_start,
          (now - c->t_start) * (c->m->nparams - done) / done);
}

/* All of tensor t of f as f32 into v (gv_st_numel(t) floats); F32, F16 and BF16 convert. */
static int read_whole(gv_st *f, const struct gv_st_tensor *t, float *v)
{
  char e[1024];
  int64_t cols = gv_st_cols(t), rows = cols ? gv_st_numel(t) / cols : 0;
  if (gv_st_read_block(f, t, 0, rows, 0, cols, GV_ST_F32, v, e, sizeof e))
    return err("%s", e);
  return 0;
}

/* Whole tensors into PATH, atomically: PATH.tmp is written (vals[i]: the f32 values of
 * ts[i], converted to its dtype, bf16 rounded to nearest even), synced, then renamed. */
static int write_whole(const char *path, const struct gv_st_tensor *ts, int n, float *const *vals,
                       const char *const *meta, int nmeta)
{
  char tmp[4200], e[1024];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  gv_st_writer *w = gv_st_create(tmp, ts, n, meta, nmeta, 1, e, sizeof e);
  if (!w)
    return err("%s", e);
  for (int i = 0; i < n; i++) {
    int64_t cols = gv_st_cols(&ts[i]), rows = cols ? gv_st_numel(&ts[i]) / cols : 0;
    if (gv_st_write_part(w, i, 0, rows, 0, cols, 0, rows * cols, GV_ST_F32, vals[i], e, sizeof e)) {
      gv_st_abort(w);
      unlink(tmp);
      return err("%s", e);
    }
  }
  if (gv_st_finish(w, e, sizeof e)) {
    unlink(tmp);
    return err("%s", e);
  }
  if (rename(tmp, path)) {
    int en = errno;
    unlink(tmp);
    return err("%s: cannot write (%s)", path, strerror(en));
  }
  return 0;
}

/* ---- the mapping file ---- */

static int exists(const char *path)
{
  struct stat sb;
  return !stat(path, &sb);
}

/* PATH's folder + base name without .gvm + ".hf.map". */
static void map_beside(const char *gvm, char *out, size_t len)
{
  snprintf(out, len, "%s", gvm);
  char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
  if (dot && (!slash || dot > slash))
    *dot = 0;
  strncat(out, ".hf.map", len - strlen(out) - 1);
}

static int load_map(Conv *c)
{
  static char path[4096];
  if (!c->map_path) {
    map_beside(c->m->size_file, path, sizeof path);
    if (!exists(path))
      map_beside(c->m->family_file, path, sizeof path);
    c->map_path = path;
  }
  return hf_map_load(&c->map, c->map_path);
}

/* The rule and part that name gvc parameter NAME, with its layer index. */
static const HfRule *rule_of(const Conv *c, const char *name, int *part, long *i)
{
  for (int r = 0; r < c->map.nrules; r++)
    for (int j = 0; c->map.rules[r].kind == HF_TENSOR && j < c->map.rules[r].nparts; j++)
      if (hf_pattern_match(c->map.rules[r].gvc[j], name, i)) {
        *part = j;
        return &c->map.rules[r];
      }
  return NULL;
}

/* ---- config.json ---- */

static const IrHyper *hyper(const IrModel *m, const char *name)
{
  for (int k = 0; k < m->nhyper; k++)
    if (!strcmp(m->hyper[k].name, name))
      return &m->hyper[k];
  return NULL;
}

/* The value a config rule asks for, as JSON (caller deletes); NULL after an error. */
static cJSON *rule_value(const Conv *c, const HfRule *r)
{
  if (!r->hyper)
    return cJSON_Parse(r->json);
  const IrHyper *h = hyper(c->m, r->hyper);
  if (!h) {
    fprintf(stderr, "%s:%d: error: the model '%s' has no hyper-parameter '%s'\n", c->map.path, r->line,
            c->m->family, r->hyper);
    return NULL;
  }
  return cJSON_CreateNumber(h->value);
}

static int json_equal(const cJSON *a, const cJSON *b)
{
  if (cJSON_IsNumber(a) && cJSON_IsBool(b))
    return json_equal(b, a);
  if (cJSON_IsBool(a) && cJSON_IsNumber(b))
    return (cJSON_IsTrue(a) ? 1.0 : 0.0) == b->valuedouble;
  if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
    return fabs(a->valuedouble - b->valuedouble) <= 1e-9 * fmax(fabs(a->valuedouble), fabs(b->valuedouble));
  return cJSON_Compare(a, b, 1);
}

static char *read_text(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  if (s)
    s[n] = 0;
  fclose(f);
  return s;
}

static cJSON *read_json(const char *path)
{
  char *s = read_text(path);
  if (!s) {
    err("%s: cannot read (%s)", path, strerror(errno));
    return NULL;
  }
  cJSON *j = cJSON_Parse(s);
  free(s);
  if (!j)
    err("%s: not valid JSON", path);
  return j;
}

/* After a hyper-parameter mismatch: the size line that config.json describes. */
static void suggest_size(const Conv *c, const cJSON *cfg)
{
  char line[2048];
  int len = snprintf(line, sizeof line, "config.json describes: size NAME = %s(", c->m->family);
  int n = 0;
  for (int r = 0; r < c->map.nrules; r++) {
    const HfRule *rule = &c->map.rules[r];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, rule->key);
    if (rule->kind != HF_CONFIG || !rule->hyper || !cJSON_IsNumber(v))
      continue;
    const IrHyper *h = hyper(c->m, rule->hyper);
    char num[64];
    snprintf(num, sizeof num, "%.10g", v->valuedouble);
    if (h && !h->is_int && !strpbrk(num, ".e")) /* a float parameter keeps a float literal */
      strcat(num, ".0");
    if (len > 0 && (size_t)len < sizeof line)
      len += snprintf(line + len, sizeof line - (size_t)len, "%s%s = %s", n++ ? ", " : "", rule->hyper, num);
  }
  diag_plain_note(NULL, "%s)", line);
}

static int check_config(const Conv *c, const char *path)
{
  cJSON *cfg = read_json(path);
  if (!cfg)
    return 1;
  int bad = 0;
  for (int r = 0; r < c->map.nrules; r++) {
    const HfRule *rule = &c->map.rules[r];
    if (rule->kind != HF_CONFIG)
      continue;
    cJSON *want = rule_value(c, rule), *abs = NULL;
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(cfg, rule->key);
    if (!got && rule->absent)
      got = abs = cJSON_Parse(rule->absent);
    if (!want) {
      bad = 1;
    } else if (got && !(cJSON_IsNull(got) && rule->hyper) && !json_equal(got, want)) {
      char *g = cJSON_PrintUnformatted(got), *w = cJSON_PrintUnformatted(want);
      if (rule->hyper)
        diag_plain(NULL, "%s: field '%s' is %s%s, the size '%s' has %s = %s", path, rule->key, g,
                   abs ? " (its default: the field is absent)" : "", c->m->name, rule->hyper, w);
      else
        diag_plain(NULL, "%s: field '%s' is %s%s; gvc's model '%s' needs %s (%s:%d)", path, rule->key, g,
                   abs ? " (its default: the field is absent)" : "", c->m->family, w, c->map.path, rule->line);
      free(g);
      free(w);
      bad |= rule->hyper ? 2 : 1;
    }
    cJSON_Delete(want);
    cJSON_Delete(abs);
  }
  if (bad & 2)
    suggest_size(c, cfg);
  cJSON_Delete(cfg);
  return bad;
}

/* ---- the HF directory's tensors ---- */

static int open_st(Conv *c, const char *path)
{
  char e[1024];
  if (c->nst == (int)(sizeof c->st / sizeof c->st[0]))
    return err("%s: more than 256 shard files", path);
  if (gv_st_open(&c->st[c->nst], path, e, sizeof e))
    return err("%s", e);
  c->nst++;
  return 0;
}

static int open_hf_dir(Conv *c)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors", c->from_hf);
  if (exists(path))
    return open_st(c, path);
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", c->from_hf);
  if (!exists(path))
    return err("%s: neither model.safetensors nor model.safetensors.index.json (a PyTorch .bin checkpoint must "
               "be saved as safetensors first)", c->from_hf);
  cJSON *ix = read_json(path), *e;
  const cJSON *wm = cJSON_GetObjectItemCaseSensitive(ix, "weight_map");
  int bad = !ix;
  if (ix && !cJSON_IsObject(wm))
    bad = err("%s: field 'weight_map' is missing or not an object", path);
  const cJSON *list = bad ? NULL : wm;
  cJSON_ArrayForEach(e, list) {
    if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
      bad = err("%s: field 'weight_map' entry '%s' is not a file name in the folder", path, e->string);
      break;
    }
    char shard[4096];
    snprintf(shard, sizeof shard, "%s/%s", c->from_hf, e->valuestring);
    int seen = 0;
    for (int k = 0; k < c->nst && !seen; k++)
      seen = !strcmp(gv_st_path(c->st[k]), shard);
    if (!seen && (bad = open_st(c, shard)))
      break;
  }
  cJSON_Delete(ix);
  return bad;
}

/* The tensor named NAME in the HF files (exactly, else with the map's prefix taken off
 * or put on), and marks it used. */
static const struct gv_st_tensor *hf_lookup(Conv *c, const char *name, gv_st **in)
{
  char alt[1200];
  const char *p = c->map.prefix;
  size_t pl = p ? strlen(p) : 0;
  if (p)
    snprintf(alt, sizeof alt, "%s%s", p, name);
  const char *tries[2] = {name, !p ? NULL : !strncmp(name, p, pl) ? name + pl : alt};
  for (int a = 0; a < 2 && tries[a]; a++)
    for (int k = 0; k < c->nst; k++) {
      const struct gv_st_tensor *t = gv_st_find(c->st[k], tries[a]);
      if (t) {
        c->used[c->used_first[k] + (int)(t - gv_st_at(c->st[k], 0))] = 1;
        *in = c->st[k];
        return t;
      }
    }
  return NULL;
}

/* Does a tensor name of the file match an HF pattern of the map (prefix aside)? */
static int hf_match(const Conv *c, const char *pattern, const char *name, long *i)
{
  const char *p = c->map.prefix;
  size_t pl = p ? strlen(p) : 0;
  if (hf_pattern_match(pattern, name, i))
    return 1;
  if (p && !strncmp(pattern, p, pl) && hf_pattern_match(pattern + pl, name, i))
    return 1;
  return p && !strncmp(name, p, pl) && hf_pattern_match(pattern, name + pl, i);
}

static float *read_hf(Conv *c, const char *name, const char *for_gvc, const struct gv_st_tensor **tp)
{
  gv_st *in;
  char alt[1024];
  long i = -1;
  const struct gv_st_tensor *t = hf_lookup(c, name, &in);
  for (int r = 0; !t && r < c->map.nrules; r++)
    if (c->map.rules[r].kind == HF_TIED && hf_pattern_match(c->map.rules[r].key, name, &i))
      t = hf_lookup(c, hf_pattern_subst(c->map.rules[r].hf, i, alt, sizeof alt), &in);
  if (!t) {
    err("%s: no tensor '%s' (gvc's '%s')", c->from_hf, name, for_gvc);
    return NULL;
  }
  float *v = malloc(sizeof(float) * (size_t)(gv_st_numel(t) ? gv_st_numel(t) : 1));
  if (!v || read_whole(in, t, v)) {
    if (!v)
      err("out of memory");
    free(v);
    return NULL;
  }
  *tp = t;
  return v;
}

/* The HF layout of gvc parameter p: its shape, transposed when the rule says so. */
static void hf_shape(const HfRule *r, const IrParam *p, int64_t *d)
{
  d[0] = p->shape.d[0];
  d[1] = p->shape.rank > 1 ? p->shape.d[1] : 1;
  if (r->transpose && p->shape.rank == 2) {
    d[0] = p->shape.d[1];
    d[1] = p->shape.d[0];
  }
}

/* Where part `part` of rule r (layer i) sits in the fused HF tensor: offset along the
 * split dimension, and the fused shape; 1 after an error. */
static int part_layout(const Conv *c, const HfRule *r, long i, int part, int64_t *off, int64_t *full)
{
  char name[1024];
  *off = 0;
  full[0] = full[1] = 0;
  for (int j = 0; j < r->nparts; j++) {
    const IrParam *q = find_param(c->m, hf_pattern_subst(r->gvc[j], i, name, sizeof name));
    if (!q)
      return err("%s: rule for '%s' names '%s', which the model lacks", c->map.path, r->hf, name);
    int64_t d[2];
    hf_shape(r, q, d);
    if (j < part)
      *off += d[r->split < 0 ? 0 : r->split];
    int s = r->split < 0 ? 0 : r->split;
    full[s] += d[s];
    full[1 - s] = d[1 - s];
  }
  return 0;
}

/* Copies a rows x cols block between a [R, C] row-major HF tensor and a gvc tensor,
 * transposing when asked. to_gvc: HF -> gvc, else gvc -> HF. */
static void move_block(float *hf, int64_t C, int64_t r0, int64_t c0, float *g, int64_t rows, int64_t cols, int tr,
                       int to_gvc)
{
  for (int64_t a = 0; a < rows; a++)
    for (int64_t b = 0; b < cols; b++) {
      float *h = &hf[(r0 + a) * C + c0 + b], *x = tr ? &g[b * rows + a] : &g[a * cols + b];
      if (to_gvc)
        *x = *h;
      else
        *h = *x;
    }
}

/* Moves part `part` of rule r (layer i; gvc parameter q, data g) into or out of the fused
 * HF tensor hf of shape full: one block at the part's offset, or with `groups HYPER`
 * (split 0 only) HYPER blocks, slice j of every part side by side in group j. */
static int move_part(const Conv *c, const HfRule *r, long i, int part, const IrParam *q, float *hf, float *g,
                     int to_gvc)
{
  int64_t off, full[2], d[2], n = 1;
  if (part_layout(c, r, i, part, &off, full))
    return 1;
  hf_shape(r, q, d);
  int s = r->split < 0 ? 0 : r->split, tr = r->transpose && q->shape.rank == 2;
  if (r->groups) {
    const IrHyper *h = hyper(c->m, r->groups);
    if (!h)
      return err("%s:%d: the model '%s' has no hyper-parameter '%s'", c->map.path, r->line, c->m->family, r->groups);
    n = (int64_t)h->value;
    if (n < 1 || d[0] % n)
      return err("%s:%d: gvc's '%s' has %lld rows, not a multiple of %s = %lld", c->map.path, r->line, q->name,
                 (long long)d[0], r->groups, (long long)n);
  }
  for (int64_t j = 0; j < n; j++) /* with groups: rows d[0] / n of this part in group j */
    move_block(hf, full[1], s == 0 ? j * (full[0] / n) + off / n : 0, s == 1 ? off : 0, g + j * (d[0] / n) * d[1],
               d[0] / n, d[1], tr, to_gvc);
  return 0;
}

/* A `stack` rule: gvc parameter p [E, R, C] from the E HF tensors [R, C] of pattern (its {i}
 * replaced) with {e} = 0 .. E-1 (an MoE's experts). */
static int import_stacked(Conv *c, int k, const char *pattern)
{
  const IrParam *p = &c->m->params[k];
  int64_t E = p->shape.d[0], one = numel_of(p) / E;
  c->gvc[k] = malloc(sizeof(float) * (size_t)(numel_of(p) ? numel_of(p) : 1));
  if (!c->gvc[k])
    return err("out of memory");
  for (int64_t e = 0; e < E; e++) {
    char name[1100];
    const struct gv_st_tensor *t;
    float *v = read_hf(c, hf_pattern_expert(pattern, (long)e, name, sizeof name), p->name, &t);
    if (!v)
      return 1;
    int fits = t->ndim == p->shape.rank - 1 && gv_st_numel(t) == one && t->shape[0] == p->shape.d[1];
    if (fits)
      memcpy(c->gvc[k] + e * one, v, sizeof(float) * (size_t)one);
    free(v);
    if (!fits)
      return err("%s: tensor '%s' is not [%lld, %lld], expert %lld of gvc's '%s'", c->from_hf, name,
                 (long long)p->shape.d[1], (long long)p->shape.d[2], (long long)e, p->name);
  }
  return 0;
}

/* A rule that copies one gvc tensor whole, in the same element order, under an HF shape of
 * any rank: a convolution's [out, C, p, p], a class token's [1, 1, C], or unsqueezed (ViT's
 * position embeddings [1, T, C]). The HF shape into d; returns its rank, or 0 when the rule
 * is not one (the 1- and 2-d rules of move_block). */
static int whole_dims(const HfRule *r, const IrParam *p, int64_t *d)
{
  if (r->nparts != 1 || r->transpose || r->stack || (p->shape.rank <= 2 && !r->unsqueeze))
    return 0;
  int n = 0;
  if (r->unsqueeze)
    d[n++] = 1;
  for (int q = 0; q < p->shape.rank; q++)
    d[n++] = p->shape.d[q];
  return n;
}

static const char *dims_str(char *buf, size_t len, const int64_t *d, int n)
{
  size_t at = (size_t)snprintf(buf, len, "[");
  for (int q = 0; q < n && at < len; q++)
    at += (size_t)snprintf(buf + at, len - at, "%s%lld", q ? ", " : "", (long long)d[q]);
  if (at < len)
    snprintf(buf + at, len - at, "]");
  return buf;
}

static int import_whole(Conv *c, int k, const char *name, const int64_t *d, int n)
{
  const IrParam *p = &c->m->params[k];
  const struct gv_st_tensor *t;
  float *v = read_hf(c, name, p->name, &t);
  if (!v)
    return 1;
  int same = t->ndim == n;
  for (int q = 0; same && q < n; q++)
    same = t->shape[q] == d[q];
  if (!same) {
    char want[128], got[128];
    free(v);
    return err("%s: tensor '%s' has shape %s; the size '%s' needs %s for gvc's '%s'", c->from_hf, name,
               dims_str(got, sizeof got, t->shape, t->ndim), c->m->name, dims_str(want, sizeof want, d, n), p->name);
  }
  c->gvc[k] = v; /* the same elements in the same order */
  return 0;
}

static int import_param(Conv *c, int k)
{
  const IrParam *p = &c->m->params[k];
  int part;
  long i;
  char name[1024];
  const HfRule *r = rule_of(c, p->name, &part, &i);
  if (!r)
    return err("%s: gvc parameter '%s' has no `tensor` rule", c->map.path, p->name);
  if (r->stack)
    return import_stacked(c, k, hf_pattern_subst(r->hf, i, name, sizeof name));
  hf_pattern_subst(r->hf, i, name, sizeof name);
  int64_t wd[GV_ST_MAX_DIMS];
  int wn = whole_dims(r, p, wd);
  if (wn)
    return import_whole(c, k, name, wd, wn);
  int64_t off, full[2];
  if (part_layout(c, r, i, part, &off, full))
    return 1;
  const struct gv_st_tensor *t;
  float *v = read_hf(c, name, p->name, &t);
  if (!v)
    return 1;
  int rank = p->shape.rank;
  if (t->ndim != rank || t->shape[0] != full[0] || (rank == 2 && t->shape[1] != full[1])) {
    char want[64], got[64];
    snprintf(want, sizeof want, rank == 2 ? "[%lld, %lld]" : "[%lld]", (long long)full[0], (long long)full[1]);
    snprintf(got, sizeof got, t->ndim == 2 ? "[%lld, %lld]" : t->ndim == 1 ? "[%lld]" : "(rank %lld)",
             t->ndim ? (long long)t->shape[0] : (long long)t->ndim, t->ndim > 1 ? (long long)t->shape[1] : 0LL);
    free(v);
    return err("%s: tensor '%s' has shape %s; the size '%s' needs %s for gvc's '%s'", c->from_hf, name, got,
               c->m->name, want, p->name);
  }
  c->gvc[k] = malloc(sizeof(float) * (size_t)(numel_of(p) ? numel_of(p) : 1));
  if (!c->gvc[k]) {
    free(v);
    return err("out of memory");
  }
  int bad = move_part(c, r, i, part, p, v, c->gvc[k], 1);
  free(v);
  return bad;
}

/* HF tensors no rule read: ignored ones pass, tied ones must equal what they stand for. */
static int check_unused(Conv *c)
{
  int bad = 0;
  for (int f = 0; f < c->nst; f++)
    for (int k = 0; k < gv_st_count(c->st[f]); k++) {
      const struct gv_st_tensor *t = gv_st_at(c->st[f], k);
      long i;
      int known = c->used[c->used_first[f] + k];
      for (int r = 0; r < c->map.nrules && !known; r++) {
        const HfRule *rule = &c->map.rules[r];
        if (rule->kind == HF_IGNORE && hf_match(c, rule->key, t->name, &i))
          known = 1;
        if (rule->kind == HF_TIED && hf_match(c, rule->key, t->name, &i)) {
          char other[1024];
          const struct gv_st_tensor *a, *b;
          float *x = read_hf(c, t->name, "(tied)", &a), *y = read_hf(c, hf_pattern_subst(rule->hf, i, other, sizeof other), t->name, &b);
          known = x && y && gv_st_numel(a) == gv_st_numel(b) && !memcmp(x, y, sizeof(float) * (size_t)gv_st_numel(a));
          if (!known && x && y)
            bad = err("%s: tensor '%s' differs from '%s', and gvc's model ties them", gv_st_path(c->st[f]), t->name,
                      other);
          known = known || (x && y);
          free(x);
          free(y);
        }
      }
      if (!known)
        bad = err("%s: tensor '%s' is not in the mapping %s (add a `tensor` or `ignore` rule)",
                  gv_st_path(c->st[f]), t->name, c->map.path);
    }
  return bad;
}

static int write_gvc(Conv *c)
{
  struct gv_st_tensor *ts = calloc((size_t)c->m->nparams + 1, sizeof *ts);
  if (!ts)
    return err("out of memory");
  for (int k = 0; k < c->m->nparams; k++) {
    const IrParam *p = &c->m->params[k];
    ts[k].name = p->name;
    ts[k].dtype = c->st_dtype;
    ts[k].ndim = p->shape.rank;
    for (int d = 0; d < p->shape.rank; d++)
      ts[k].shape[d] = p->shape.d[d];
  }
  const char *meta[] = {"format", "pt", "gvc_model", c->m->name};
  int bad = write_whole(c->out, ts, c->m->nparams, c->gvc, meta, 2);
  free(ts);
  return bad;
}

static int import_hf(Conv *c)
{
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "%s/config.json", c->from_hf);
  if (check_config(c, cfg) || open_hf_dir(c))
    return 1;
  int total = 0;
  c->used_first = calloc((size_t)c->nst + 1, sizeof(int));
  for (int f = 0; f < c->nst; f++) {
    c->used_first[f] = total;
    total += gv_st_count(c->st[f]);
  }
  c->used = calloc((size_t)total + 1, 1);
  int bad = 0;
  for (int k = 0; k < c->m->nparams && !bad; k++) {
    bad = import_param(c, k);
    progress(c, k + 1);
  }
  bad = bad || check_unused(c) || write_gvc(c);
  if (!bad)
    printf("%s: %d tensors of %s (%d file%s) -> %d gvc parameters of %s (%s)\n", c->out, total, c->from_hf, c->nst,
           c->nst == 1 ? "" : "s", c->m->nparams, c->m->name, c->map.path);
  return bad;
}

/* ---- export ---- */

/* --load DIR (a checkpoint folder, --save DIR): the folder DIR/latest names (format 2:
 * global tensors, whole whatever the strategy that saved them). */
static int checkpoint_folder(const char *dir, char *path, size_t n)
{
  char folder[64];
  int version = 0, step;
  snprintf(path, n, "%s/latest", dir);
  FILE *f = fopen(path, "r");
  int k = f ? fscanf(f, "gvc-checkpoint %d step %d folder %63s", &version, &step, folder) : 0;
  if (f)
    fclose(f);
  if (k >= 1 && version == 1)
    return err("%s: a checkpoint of the older format 1 (one file per rank), which this version does not read; it "
               "reads format 2 (global tensors in safetensors files)", path);
  if (k != 3 || version != 2 || strchr(folder, '/'))
    return err("%s: not a checkpoint index (a --load folder must be a checkpoint: 'gvc-checkpoint 2', 'step N', "
               "'folder iter_NNNNNNN')", path);
  snprintf(path, n, "%s/%s", dir, folder);
  return 0;
}

/* One parameter from a named-tensor file: the fp32 master weights of a bf16 program's
 * checkpoint when there are, else param/NAME. */
static const struct gv_tf_record *tf_param(const struct gv_tf *tf, const char *name, size_t n, char *key, size_t len)
{
  snprintf(key, len, "master/%s", name);
  const struct gv_tf_record *rec = gv_tf_find(tf, key);
  if (!rec || rec->dtype != GV_TF_F32 || rec->numel != n) {
    snprintf(key, len, "param/%s", name);
    rec = gv_tf_find(tf, key);
  }
  return rec && rec->dtype == GV_TF_F32 && rec->numel == n ? rec : NULL;
}

/* One parameter from a safetensors file (opt: a checkpoint's optimizer.safetensors, or
 * NULL): a bf16 program's fp32 master weights NAME/master when there are, else NAME. */
static const struct gv_st_tensor *st_param(gv_st *st, gv_st *opt, const char *name, gv_st **in)
{
  char key[1100];
  snprintf(key, sizeof key, "%s/master", name);
  const struct gv_st_tensor *t = opt ? gv_st_find(opt, key) : NULL;
  *in = t ? opt : st;
  return t ? t : gv_st_find(st, name);
}

/* --load: a safetensors file keyed by gvc names, a named-tensor file with param/NAME (a
 * --dump_params file, a fixture), or a checkpoint folder (its model.safetensors, and
 * the masters of its optimizer.safetensors). */
static int load_gvc(Conv *c)
{
  struct gv_tf tf;
  struct stat sb;
  char msg[512] = "", key[600], file[4096], opt_file[4200] = "", e[1024];
  snprintf(file, sizeof file, "%s", c->load);
  if (!stat(c->load, &sb) && S_ISDIR(sb.st_mode)) {
    char folder[4096];
    if (checkpoint_folder(c->load, folder, sizeof folder))
      return 1;
    snprintf(file, sizeof file, "%.4000s/model.safetensors", folder);
    snprintf(opt_file, sizeof opt_file, "%.4000s/optimizer.safetensors", folder);
  }
  int is_tf = !opt_file[0] && gv_tf_read(&tf, file, msg, sizeof msg) == 0, bad = 0;
  gv_st *st = NULL, *opt = NULL, *in;
  if (!is_tf && gv_st_open(&st, file, e, sizeof e))
    return opt_file[0] ? err("%s", e) : err("%s (nor a gvc named-tensor file: %s)", e, msg);
  if (opt_file[0] && exists(opt_file) && gv_st_open(&opt, opt_file, e, sizeof e)) {
    gv_st_close(st);
    return err("%s", e);
  }
  for (int k = 0; k < c->m->nparams && !bad; k++) {
    const IrParam *p = &c->m->params[k];
    size_t n = (size_t)numel_of(p);
    c->gvc[k] = malloc(sizeof(float) * (n ? n : 1));
    const struct gv_tf_record *rec = is_tf ? tf_param(&tf, p->name, n, key, sizeof key) : NULL;
    const struct gv_st_tensor *t = is_tf ? NULL : st_param(st, opt, p->name, &in);
    if (!c->gvc[k])
      bad = err("out of memory");
    else if (is_tf ? !rec : !t || gv_st_numel(t) != (int64_t)n)
      bad = err("%s: no %s '%s%s' of %zu elements (the whole of gvc's '%s')", is_tf ? file : gv_st_path(t ? in : st),
                is_tf ? "f32 record" : "tensor", is_tf ? "param/" : "", t ? t->name : p->name, n, p->name);
    else if (is_tf)
      memcpy(c->gvc[k], rec->data, sizeof(float) * n);
    else
      bad = read_whole(in, t, c->gvc[k]);
    progress(c, k + 1);
  }
  if (is_tf)
    gv_tf_free(&tf);
  gv_st_close(st);
  gv_st_close(opt);
  return bad;
}

static int write_config(const Conv *c, const char *path)
{
  cJSON *cfg = cJSON_CreateObject(), *arch = cJSON_AddArrayToObject(cfg, "architectures");
  cJSON_AddItemToArray(arch, cJSON_CreateString(c->map.architecture));
  int bad = 0;
  for (int r = 0; r < c->map.nrules && !bad; r++) {
    const HfRule *rule = &c->map.rules[r];
    if (rule->kind != HF_CONFIG && rule->kind != HF_DEFAULT)
      continue;
    cJSON *v = rule_value(c, rule);
    bad = !v;
    if (v)
      cJSON_AddItemToObject(cfg, rule->key, v);
  }
  cJSON_AddStringToObject(cfg, "torch_dtype", c->st_dtype == GV_ST_BF16 ? "bfloat16" : "float32");
  char *s = bad ? NULL : cJSON_Print(cfg);
  cJSON_Delete(cfg);
  if (bad || !s)
    return 1;
  FILE *f = fopen(path, "w");
  bad = !f || fputs(s, f) < 0 || fputc('\n', f) < 0;
  bad = (f && fclose(f)) || bad;
  free(s);
  return bad ? err("%s: cannot write (%s)", path, strerror(errno)) : 0;
}

static int export_hf(Conv *c)
{
  if (load_gvc(c))
    return 1;
  if (mkdir(c->to_hf, 0777) && errno != EEXIST)
    return err("%s: cannot create the folder (%s)", c->to_hf, strerror(errno));
  size_t slots = (size_t)c->m->nparams + 1; /* HF tensors: one per parameter, or one per expert (stack) */
  for (int k = 0; k < c->m->nparams; k++)
    if (c->m->params[k].shape.rank == 3)
      slots += (size_t)c->m->params[k].shape.d[0];
  float **bufs = calloc(slots, sizeof(float *));
  char (*names)[1024] = calloc(slots, sizeof *names);
  struct gv_st_tensor *ts = calloc(slots, sizeof *ts);
  int nbuf = 0, bad = !bufs || !names || !ts ? err("out of memory") : 0;
  for (int k = 0; !bad && k < c->m->nparams; k++) {
    const IrParam *p = &c->m->params[k];
    int part;
    long i;
    const HfRule *r = rule_of(c, p->name, &part, &i);
    if (!r) {
      bad = err("%s: gvc parameter '%s' has no `tensor` rule", c->map.path, p->name);
      break;
    }
    char *name = names[nbuf];
    hf_pattern_subst(r->hf, i, name, sizeof names[0]);
    if (r->stack) { /* one HF tensor per expert */
      char pattern[1024];
      snprintf(pattern, sizeof pattern, "%s", name);
      int64_t E = p->shape.d[0], one = numel_of(p) / E;
      for (int64_t e = 0; !bad && e < E; e++) {
        hf_pattern_expert(pattern, (long)e, names[nbuf], sizeof names[0]);
        float *hf = malloc(sizeof(float) * (size_t)(one ? one : 1));
        bad = !hf ? err("out of memory") : 0;
        if (hf)
          memcpy(hf, c->gvc[k] + e * one, sizeof(float) * (size_t)one);
        ts[nbuf] = (struct gv_st_tensor){.name = names[nbuf], .dtype = c->st_dtype, .ndim = 2,
                                         .shape = {p->shape.d[1], p->shape.d[2]}};
        bufs[nbuf++] = hf;
      }
      progress(c, k + 1);
      continue;
    }
    int seen = 0;
    for (int b = 0; b < nbuf && !seen; b++)
      seen = !strcmp(names[b], name);
    if (seen)
      continue;
    int64_t wd[GV_ST_MAX_DIMS];
    int wn = whole_dims(r, p, wd);
    if (wn) { /* the same elements under the HF shape */
      float *hf = malloc(sizeof(float) * (size_t)(numel_of(p) ? numel_of(p) : 1));
      bad = !hf ? err("out of memory") : 0;
      if (hf)
        memcpy(hf, c->gvc[k], sizeof(float) * (size_t)numel_of(p));
      ts[nbuf] = (struct gv_st_tensor){.name = name, .dtype = c->st_dtype, .ndim = wn};
      memcpy(ts[nbuf].shape, wd, sizeof(int64_t) * (size_t)wn);
      bufs[nbuf++] = hf;
      progress(c, k + 1);
      continue;
    }
    int64_t off, full[2];
    bad = part_layout(c, r, i, 0, &off, full);
    float *hf = bad ? NULL : malloc(sizeof(float) * (size_t)(full[0] * full[1] > 0 ? full[0] * full[1] : 1));
    bad = bad || !hf;
    for (int j = 0; !bad && j < r->nparts; j++) { /* each part into its place */
      char pn[1024];
      const IrParam *q = find_param(c->m, hf_pattern_subst(r->gvc[j], i, pn, sizeof pn));
      bad = move_part(c, r, i, j, q, hf, c->gvc[q - c->m->params], 0);
    }
    ts[nbuf] = (struct gv_st_tensor){.name = name, .dtype = c->st_dtype, .ndim = p->shape.rank,
                                     .shape = {full[0], full[1]}};
    bufs[nbuf++] = hf;
    progress(c, k + 1);
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors", c->to_hf);
  const char *meta[] = {"format", "pt"};
  bad = bad || write_whole(path, ts, nbuf, bufs, meta, 1);
  for (int b = 0; b < nbuf; b++)
    free(bufs[b]);
  free(bufs);
  free(names);
  free(ts);
  snprintf(path, sizeof path, "%s/config.json", c->to_hf);
  bad = bad || write_config(c, path);
  if (!bad)
    printf("%s: config.json and model.safetensors (%d tensors, %s) for %s from %s (%s)\n", c->to_hf, nbuf,
           gv_st_dtype_name(c->st_dtype), c->map.architecture, c->load, c->map.path);
  return bad;
}

/* ---- the command ---- */

static void usage(const CliOpt *opts)
{
  printf("usage: gvc convert FILE.gvm --model NAME --from-hf HF_DIR -o OUT.safetensors\n"
         "       gvc convert FILE.gvm --model NAME --load IN --to-hf HF_DIR\n\n"
         "Imports a Hugging Face model folder (config.json and model.safetensors, or the shards\n"
         "of model.safetensors.index.json; F32, F16 or BF16) into a safetensors file keyed by\n"
         "gvc's parameter names (f32), which a training binary takes with --init_from; or\n"
         "exports such a file (or a --save checkpoint folder) to a folder transformers loads.\n"
         "config.json must agree with the size (a mismatch names the field). The mapping is\n"
         "the model's NAME.hf.map beside its .gvm file (docs/huggingface.md).\n\n");
  cli_opts_help(opts);
  printf("  -o OUT.safetensors                   the imported weights (with --from-hf)\n");
}

int cmd_convert(int argc, char **argv)
{
  Conv c;
  memset(&c, 0, sizeof c);
  const CliOpt opts[] = {
    {"model", CLI_STR, &c.model, "a size (or model) defined in FILE"},
    {"from-hf", CLI_STR, &c.from_hf, "import this Hugging Face model folder"},
    {"to-hf", CLI_STR, &c.to_hf, "export to this folder (created)"},
    {"load", CLI_STR, &c.load, "with --to-hf: the gvc weights (safetensors, a --dump_params file or a --save folder)"},
    {"map", CLI_STR, &c.map_path, "the mapping file (default: NAME.hf.map beside the size's or model's .gvm)"},
    {"dtype", CLI_STR, &c.dtype, "f32 (default) or bf16: the tensors written (bf16 rounds to nearest even)"},
    {NULL, 0, NULL, NULL},
  };
  int rc = cli_opts_parse(opts, argc, argv, &c.out, &c.file);
  if (rc == 2) {
    usage(opts);
    return 0;
  }
  if (rc)
    return 1;
  if (!c.file || !c.model)
    return err("convert needs FILE.gvm and --model NAME (see --help)");
  if (!!c.from_hf == !!c.to_hf)
    return err("convert needs one of --from-hf DIR (with -o OUT) and --to-hf DIR (with --load IN)");
  if (c.from_hf && (!c.out || c.load))
    return err("--from-hf needs -o OUT.safetensors (and takes no --load)");
  if (c.to_hf && (!c.load || c.out))
    return err("--to-hf needs --load IN (and takes no -o)");
  if (c.dtype && strcmp(c.dtype, "f32") && strcmp(c.dtype, "bf16"))
    return err("option --dtype '%s': expected f32 or bf16", c.dtype);
  c.st_dtype = c.dtype && !strcmp(c.dtype, "bf16") ? GV_ST_BF16 : GV_ST_F32;
  Ctx *cx = ctx_new();
  c.m = frontend_load_model(cx, c.file, c.model);
  int bad = !c.m || load_map(&c);
  if (!bad) {
    c.gvc = calloc((size_t)c.m->nparams + 1, sizeof(float *));
    c.t_start = c.t_print = now_s();
    bad = c.from_hf ? import_hf(&c) : export_hf(&c);
  }
  for (int k = 0; c.gvc && k < c.m->nparams; k++)
    free(c.gvc[k]);
  free(c.gvc);
  free(c.used);
  free(c.used_first);
  for (int f = 0; f < c.nst; f++)
    gv_st_close(c.st[f]);
  hf_map_free(&c.map);
  ctx_free(&cx);
  return bad;
}
