/* profile.c - readers for Galvatron's profile files and the galvatron_config_*.json
 * reader/writer. Values are kept in Galvatron's units (MB, ms, MB/ms turned into ms/MB);
 * the fits (batch/sequence time modes, SP latency) are ordinary least squares, which is
 * what scipy's curve_fit returns for these linear models. */
#include "profile.h"

#include "gvrt_num.h"
#include "options.h"
#include "diag.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- helpers ---- */

int prof_log2(long v)
{
  int k = 0;
  if (v <= 0) return -1;
  while ((1L << k) < v) k++;
  return (1L << k) == v && k < PROF_LOGMAX ? k : -1;
}

static int fail(const char *path, const char *key, const char *msg)
{
  diag_plain(NULL, "%s: key '%s': %s", path, key ? key : "", msg);
  return 1;
}

int prof_is_dir(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static cJSON *load_json(const char *path)
{
  if (prof_is_dir(path)) { diag_plain(NULL, "%s: is a directory, expected a JSON file", path); return NULL; }
  FILE *f = fopen(path, "rb");
  if (!f) { diag_plain(NULL, "%s: cannot open", path); return NULL; }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n < 0) { diag_plain(NULL, "%s: cannot read", path); fclose(f); return NULL; }
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = 0;
  fclose(f);
  cJSON *j = cJSON_Parse(buf);
  free(buf);
  if (!j) diag_plain(NULL, "%s: not valid JSON", path);
  else if (!cJSON_IsObject(j)) { diag_plain(NULL, "%s: top level is not an object", path); cJSON_Delete(j); j = NULL; }
  return j;
}

static void fill_nan(double *v, int n)
{
  for (int i = 0; i < n; i++) v[i] = NAN;
}

/* least squares y = m x + c */
static void fit_line(const double *x, const double *y, int n, double *m, double *c)
{
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < n; i++) { sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; sxy += x[i] * y[i]; }
  double d = n * sxx - sx * sx;
  *m = d != 0 ? (n * sxy - sx * sy) / d : 0;
  *c = (sy - *m * sx) / n;
}

/* least squares y = a x^2 + b x + c, by the 3x3 normal equations */
static void fit_quad(const double *x, const double *y, int n, double abc[3])
{
  double A[3][4] = {{0}};
  for (int i = 0; i < n; i++) {
    double p[3] = {x[i] * x[i], x[i], 1};
    for (int r = 0; r < 3; r++) {
      for (int c = 0; c < 3; c++) A[r][c] += p[r] * p[c];
      A[r][3] += p[r] * y[i];
    }
  }
  for (int k = 0; k < 3; k++) {
    int piv = k;
    for (int r = k + 1; r < 3; r++) if (fabs(A[r][k]) > fabs(A[piv][k])) piv = r;
    for (int c = 0; c < 4; c++) { double t = A[k][c]; A[k][c] = A[piv][c]; A[piv][c] = t; }
    for (int r = 0; r < 3; r++) {
      if (r == k || A[k][k] == 0) continue;
      double f = A[r][k] / A[k][k];
      for (int c = k; c < 4; c++) A[r][c] -= f * A[k][c];
    }
  }
  for (int k = 0; k < 3; k++) abc[k] = A[k][k] != 0 ? A[k][3] / A[k][k] : 0;
}

/* ---- hardware ---- */

int prof_read_allreduce(const char *path, int world, ProfHardware *hw)
{
  cJSON *j = load_json(path);
  if (!j) return 1;
  fill_nan(&hw->ar_coe[0][0], PROF_LOGMAX * 2);
  hw->ar_coe[0][0] = hw->ar_coe[0][1] = 0;
  int rc = 0;
  for (cJSON *it = j->child; it && !rc; it = it->next) {
    int k, c;
    if (sscanf(it->string, "allreduce_size_%d_consec_%d", &k, &c) != 2) continue;
    int lg = prof_log2(k);
    if (lg < 0 || (c != 0 && c != 1)) { rc = fail(path, it->string, "group size must be a power of two and consec 0 or 1"); break; }
    if (!cJSON_IsNumber(it) || !(it->valuedouble > 0)) { rc = fail(path, it->string, "expected a positive bandwidth in MB/ms"); break; }
    hw->ar_coe[lg][c] = 1.0 / it->valuedouble;
  }
  cJSON_Delete(j);
  if (rc) return rc;
  int lw = prof_log2(world);
  for (int lg = 1; lg < PROF_LOGMAX && lg <= lw; lg++) {
    double *e = hw->ar_coe[lg];
    if (lg == lw && !isnan(e[1])) e[0] = e[1]; /* the whole world: both spellings are consec_1 */
    if (isnan(e[0]) && !isnan(e[1])) e[0] = e[1];
    if (isnan(e[1]) && !isnan(e[0])) e[1] = e[0];
    if (isnan(e[0])) {
      char key[64];
      snprintf(key, sizeof key, "allreduce_size_%d_consec_1", 1 << lg);
      return fail(path, key, "missing (needed for this world size)");
    }
  }
  return 0;
}

int prof_read_zero_bandwidths(const char *path, ProfHardware *hw)
{
  fill_nan(&hw->ag_coe[0][0], PROF_LOGMAX * 2);
  fill_nan(&hw->rs_coe[0][0], PROF_LOGMAX * 2);
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  fclose(f);
  cJSON *j = load_json(path);
  if (!j) return 1;
  int rc = 0;
  for (cJSON *it = j->child; it && !rc; it = it->next) {
    int k, c, ag = sscanf(it->string, "allgather_size_%d_consec_%d", &k, &c) == 2;
    if (!ag && sscanf(it->string, "reducescatter_size_%d_consec_%d", &k, &c) != 2) continue;
    int lg = prof_log2(k);
    if (lg < 0 || (c != 0 && c != 1)) rc = fail(path, it->string, "group size must be a power of two and consec 0 or 1");
    else if (!cJSON_IsNumber(it) || !(it->valuedouble > 0)) rc = fail(path, it->string, "expected a positive bandwidth in MB/ms");
    else (ag ? hw->ag_coe : hw->rs_coe)[lg][c] = 1.0 / it->valuedouble;
  }
  cJSON_Delete(j);
  return rc;
}

int prof_read_p2p(const char *path, ProfHardware *hw)
{
  cJSON *j = load_json(path);
  if (!j) return 1;
  fill_nan(hw->p2p_coe, PROF_LOGMAX);
  int rc = 0, found = 0;
  for (cJSON *it = j->child; it && !rc; it = it->next) {
    int p;
    if (sscanf(it->string, "pp_size_%d", &p) != 1) continue;
    if (prof_log2(p) < 0) rc = fail(path, it->string, "pp size must be a power of two");
    else if (!cJSON_IsNumber(it) || !(it->valuedouble > 0)) rc = fail(path, it->string, "expected a positive bandwidth in MB/ms");
    else { hw->p2p_coe[prof_log2(p)] = 1.0 / it->valuedouble; found++; }
  }
  cJSON_Delete(j);
  if (!rc && !found) rc = fail(path, "pp_size_{p}", "missing: the file gives no point-to-point bandwidth (pipeline strategies need one)");
  return rc;
}

int prof_read_overlap(const char *path, ProfHardware *hw)
{
  cJSON *j = load_json(path);
  if (!j) return 1;
  cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "overlap_coe");
  int rc = 0;
  if (!o) rc = fail(path, "overlap_coe", "missing");
  else if (!cJSON_IsNumber(o) || o->valuedouble <= 0) rc = fail(path, "overlap_coe", "expected a positive number");
  else hw->overlap = o->valuedouble;
  cJSON_Delete(j);
  return rc;
}

static void latency_add(ProfLatency *l, double size, double ms)
{
  if (l->n < PROF_MAXSIZES) { l->size[l->n] = size; l->ms[l->n] = ms; l->n++; }
}

int prof_read_sp_time(const char *path, ProfHardware *hw)
{
  cJSON *j = load_json(path);
  if (!j) return 1;
  memset(hw->ag, 0, sizeof hw->ag);
  memset(hw->a2a, 0, sizeof hw->a2a);
  int rc = 0;
  for (cJSON *it = j->child; it && !rc; it = it->next) {
    int k, s, ar;
    if (sscanf(it->string, "allreduce_size_%d_%dMB_time", &k, &s) == 2) ar = 1;
    else if (sscanf(it->string, "all2all_size_%d_%dMB_time", &k, &s) == 2) ar = 0;
    else continue;
    if (prof_log2(k) < 0) { rc = fail(path, it->string, "group size must be a power of two"); break; }
    if (!cJSON_IsNumber(it) || !(it->valuedouble > 0)) { rc = fail(path, it->string, "expected a positive latency in ms"); break; }
    if (ar) latency_add(&hw->ag[prof_log2(k)], s, it->valuedouble * 0.5);
    else latency_add(&hw->a2a[prof_log2(k)], s, it->valuedouble);
  }
  cJSON_Delete(j);
  for (int lg = 1; lg < PROF_LOGMAX && !rc; lg++) {
    for (int w = 0; w < 2; w++) {
      ProfLatency *l = w ? &hw->a2a[lg] : &hw->ag[lg];
      if (l->n == 0) continue;
      if (l->n < 8) {
        char key[64];
        snprintf(key, sizeof key, "%s_size_%d_*MB_time", w ? "all2all" : "allreduce", 1 << lg);
        return fail(path, key, "at least 8 sizes are needed for the latency fit");
      }
      fit_line(l->size, l->ms, l->n, &l->m, &l->c);
      l->valid = 1;
    }
  }
  hw->has_sp_time = !rc;
  return rc;
}

double prof_latency(const ProfLatency *l, double mb)
{
  for (int i = 0; i < l->n; i++)
    if (l->size[i] == mb) return l->ms[i];
  return fmax(0, l->m * mb + l->c); /* the line of a noisy table may cross 0 below its smallest size */
}

/* ---- computation profile ---- */

/* Collects (bsz, seq, ms) of "layertype_{which}_bsz{b}_seq{s}"; v2.4 writes plain
 * "layertype_{which}" (a static per-sample value at the profiled sequence). */
typedef struct TimePts { int n; double b[256], s[256], t[256]; double plain; int has_plain; } TimePts;

static int collect_time(cJSON *j, const char *path, const char *which, TimePts *p)
{
  char pre[64];
  snprintf(pre, sizeof pre, "layertype_%s", which);
  size_t np = strlen(pre);
  p->n = 0;
  p->has_plain = 0;
  for (cJSON *it = j->child; it; it = it->next) {
    if (strncmp(it->string, pre, np) != 0) continue;
    const char *rest = it->string + np;
    if (*rest && *rest != '_') continue;
    if (!cJSON_IsNumber(it)) return fail(path, it->string, "expected a time in ms");
    /* a layer's forward time is positive; "other" (embedding, head, loss) is clamped at 0 by Galvatron's profiler */
    if (strcmp(which, "other") ? !(it->valuedouble > 0) : !(it->valuedouble >= 0))
      return fail(path, it->string, strcmp(which, "other") ? "expected a positive forward time in ms" : "expected a forward time >= 0 ms");
    int b = 1, s = 0;
    if (!*rest) { if (!p->has_plain) { p->plain = it->valuedouble; p->has_plain = 1; } continue; }
    if (!strcmp(which, "other") && !strncmp(rest, "_0_", 3)) rest += 2; /* v2.4: layertype_other_0_bsz{b} */
    if (sscanf(rest, "_bsz%d_seq%d", &b, &s) < 1) return fail(path, it->string, "expected layertype_X_bsz{b}_seq{s}");
    if (p->n < 256) { p->b[p->n] = b; p->s[p->n] = s; p->t[p->n] = it->valuedouble; p->n++; }
  }
  if (!p->n && !p->has_plain) return fail(path, pre, "missing (no layertype_* entries)");
  return 0;
}

/* m, c: Galvatron's fit; m0: the slope of the line through 0 (batch mode; else m). */
static int time_fit(const char *path, const char *which, int mode, int seq, const TimePts *p, double *m, double *c, double *m0)
{
  char key[64];
  snprintf(key, sizeof key, "layertype_%s_bsz*_seq%d", which, seq);
  *c = 0;
  if (mode == PROF_STATIC) { *m = *m0 = p->has_plain || !p->n ? p->plain : p->t[0]; return 0; } /* v2.4's plain key, else HEAD's first in file order */
  double x[256], y[256];
  int n = 0;
  if (mode == PROF_BATCH) {
    for (int i = 0; i < p->n; i++)
      if ((int)p->s[i] == seq || p->s[i] == 0) { x[n] = p->b[i]; y[n] = p->t[i] * p->b[i]; n++; }
    if (n < 8) return fail(path, key, "batch time mode needs at least 8 batch sizes at this sequence length");
    fit_line(x, y, n, m, c);
    double sxy = 0, sxx = 0;
    for (int i = 0; i < n; i++) sxy += x[i] * y[i], sxx += x[i] * x[i];
    *m0 = sxy / sxx;
    if (*c < 0 && *m > 0) /* a noisy profile: the line makes the smallest micro-batches free */
      diag_plain_warning(NULL, "%s: key '%s': the batch fit (%.4g ms per sample, intercept %.4g ms) reaches 0 at %.3g samples; "
                      "Galvatron's model takes a layer's time below that as 0, gvc's calibrated model (--cost-model analytic) "
                      "fits the line through 0 (%.4g ms per sample) instead: a noisy profile (more repeats, or --time_profile_mode static)",
              path, key, *m, *c, -*c / *m, *m0);
    return 0;
  }
  for (int i = 0; i < p->n; i++)
    if ((int)p->b[i] == 1 && p->s[i] > 0) { x[n] = p->s[i]; y[n] = p->t[i]; n++; }
  int distinct = 0;
  for (int i = 0; i < n; i++) {
    int seen = 0;
    for (int k = 0; k < i; k++) seen |= x[k] == x[i];
    distinct += !seen;
  }
  if (distinct < 3) return fail(path, key, "sequence time mode needs at least 3 sequence lengths at bsz 1");
  if (strcmp(which, "other") == 0) { double mm, cc; fit_line(x, y, n, &mm, &cc); *m = mm * seq + cc; }
  else { double abc[3]; fit_quad(x, y, n, abc); *m = abc[0] * seq * seq + abc[1] * seq + abc[2]; }
  *m0 = *m;
  return 0;
}

/* gvc.KEY of a gvc profile: absent, or a positive number (zero_ok: >= 0). */
static int gvc_number(const char *path, cJSON *g, const char *key, int zero_ok, double *out)
{
  cJSON *v = cJSON_GetObjectItemCaseSensitive(g, key);
  if (!v) return 0;
  if (!cJSON_IsNumber(v) || !(v->valuedouble > 0 || (zero_ok && v->valuedouble == 0))) {
    char full[128];
    snprintf(full, sizeof full, "gvc.%s", key);
    return fail(path, full, zero_ok ? "expected a number >= 0" : "expected a positive number");
  }
  *out = v->valuedouble;
  return 0;
}

static int gvc_ratio(const char *path, cJSON *g, const char *key, double *out) { return gvc_number(path, g, key, 0, out); }

const char *const prof_split_names[3] = {"tp", "tp_sp", "ulysses"};

/* gvc.{tp,tp_sp,ulysses}{N}_{fwd,bwd}_ratio_layertype_0 of gvc profile computation --tp_ranks N */
static int read_split(const char *path, cJSON *g, ProfTime *t)
{
  char key[96];
  for (int d = 2; d <= 64 && !t->split_deg; d *= 2)
    for (int v = 0; v < 3; v++)
      for (int b = 0; b < 2; b++) {
        snprintf(key, sizeof key, "%s%d_%s_ratio_layertype_0", prof_split_names[v], d, b ? "bwd" : "fwd");
        double *out = b ? &t->split_bwd[v] : &t->split_fwd[v];
        if (cJSON_GetObjectItemCaseSensitive(g, key) && gvc_ratio(path, g, key, out)) return 1;
        if (*out > 0) t->split_deg = d;
      }
  return 0;
}

int prof_count_types(const char *path)
{
  cJSON *j = load_json(path);
  if (!j) return -1;
  int n = 0;
  for (cJSON *it = j->child; it; it = it->next) {
    int k, at = 0;
    if (sscanf(it->string, "layertype_%d%n", &k, &at) == 1 && at > 0 && (it->string[at] == '_' || !it->string[at]) &&
        k >= 0 && k < PROF_MAXTYPES && k + 1 > n)
      n = k + 1;
  }
  cJSON_Delete(j);
  return n;
}

int prof_read_time(const char *path, int mode, const ProfSeqs *seqs, ProfTime *t)
{
  cJSON *j = load_json(path);
  if (!j) return 1;
  TimePts p;
  int rc = 0;
  for (int k = 0; k < seqs->n && !rc; k++) {
    char which[16];
    snprintf(which, sizeof which, "%d", k);
    rc = collect_time(j, path, which, &p) || time_fit(path, which, mode, seqs->seq[k], &p, &t->layer_m[k], &t->layer_c[k], &t->layer_m0[k]);
  }
  if (!rc) {
    cJSON *o = NULL;
    for (cJSON *it = j->child; it && !o; it = it->next) if (!strncmp(it->string, "layertype_other", 15)) o = it;
    if (!o) { t->other_m = t->other_c = t->other_m0 = 0; } /* v2.4 files have none: the "other" part is free */
    else rc = collect_time(j, path, "other", &p) || time_fit(path, "other", mode, seqs->seq[0], &p, &t->other_m, &t->other_c, &t->other_m0);
  }
  cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "gvc"); /* gvc profile computation: the measured backward */
  t->other_bwd_ratio = t->opt_layer_ms = t->opt_other_ms = 0;
  t->split_deg = 0;
  for (int v = 0; v < 3; v++) t->split_fwd[v] = t->split_bwd[v] = 0;
  for (int k = 0; k < PROF_MAXTYPES; k++) t->bwd_ratio[k] = 0;
  for (int k = 0; k < seqs->n && !rc && g; k++) {
    char key[64];
    snprintf(key, sizeof key, "bwd_fwd_ratio_layertype_%d", k);
    rc = gvc_ratio(path, g, key, &t->bwd_ratio[k]);
  }
  if (!rc && g) rc = gvc_ratio(path, g, "bwd_fwd_ratio_layertype_other", &t->other_bwd_ratio) ||
                     gvc_number(path, g, "optimizer_ms_layertype_0", 1, &t->opt_layer_ms) ||
                     gvc_number(path, g, "optimizer_ms_layertype_other", 1, &t->opt_other_ms) || read_split(path, g, t);
  cJSON_Delete(j);
  return rc;
}

/* ---- memory profile ---- */

static int read_degree_dict(const char *path, const char *key, cJSON *d, double *out, double *ckpt)
{
  fill_nan(out, PROF_LOGMAX);
  if (!ckpt && cJSON_IsNumber(d)) { /* v2.4 "other" memory: one value, taken to shard evenly by degree */
    if (!(d->valuedouble > 0)) return fail(path, key, "expected a positive size in MB");
    for (int i = 0; i < PROF_LOGMAX; i++) out[i] = d->valuedouble / (1 << i);
    return 0;
  }
  if (!cJSON_IsObject(d)) return fail(path, key, "expected an object keyed by degree");
  for (cJSON *it = d->child; it; it = it->next) {
    if (!cJSON_IsNumber(it)) return fail(path, key, "expected numbers (MB)");
    if (!(it->valuedouble > 0)) {
      char full[160];
      snprintf(full, sizeof full, "%s.%s", key, it->string);
      return fail(path, full, "expected a positive size in MB");
    }
    if (ckpt && !strcmp(it->string, "checkpoint")) { *ckpt = it->valuedouble; continue; }
    int lg = prof_log2(atol(it->string));
    if (lg < 0) return fail(path, key, "degree keys must be powers of two");
    out[lg] = it->valuedouble;
  }
  return 0;
}

/* Picks the entry for seq (static) or the largest seq (sequence mode, *scale = seq/max);
 * v2.4 files hold the entry directly. */
static cJSON *pick_seq(const char *path, cJSON *j, const char *key, const char *inner, int mode, const char *skey, int seq, double *scale)
{
  cJSON *e = cJSON_GetObjectItemCaseSensitive(j, key);
  *scale = 1;
  size_t kl = strlen(key);
  if (!e && kl > 3 && !strcmp(key + kl - 3, "_sp")) { /* v2.4 files profiled without Megatron-SP only */
    char plain[96];
    snprintf(plain, sizeof plain, "%.*s", (int)(kl - 3), key);
    e = cJSON_GetObjectItemCaseSensitive(j, plain);
  }
  if (!e) { fail(path, key, "missing"); return NULL; }
  if (cJSON_GetObjectItemCaseSensitive(e, inner)) return e;
  if (mode == PROF_SEQUENCE) {
    cJSON *best = NULL;
    long bs = 0;
    for (cJSON *it = e->child; it; it = it->next) if (atol(it->string) > bs) { bs = atol(it->string); best = it; }
    if (!best) { fail(path, key, "no sequence-length entries"); return NULL; }
    *scale = (double)seq / (double)bs;
    return best;
  }
  cJSON *x = cJSON_GetObjectItemCaseSensitive(e, skey);
  if (!x && skey[0] == '[') { /* Galvatron HEAD's num2str spells the tuple [512,512] as 512_512 */
    char alt[256];
    snprintf(alt, sizeof alt, "%s", skey + 1);
    for (char *q = alt; *q; q++) *q = *q == ',' ? '_' : *q == ']' ? 0 : *q;
    x = cJSON_GetObjectItemCaseSensitive(e, alt);
  }
  if (!x) {
    char full[256];
    snprintf(full, sizeof full, "%s.%s", key, skey);
    fail(path, full, "missing: no memory profile at this sequence length");
  }
  return x;
}

/* "key.seq.inner" (v2.4 entries have no sequence level: "key.inner"), for messages */
static const char *sub_key(char *buf, size_t n, const char *key, const cJSON *e, const char *inner)
{
  int by_seq = e->string && strncmp(e->string, key, strlen(e->string)) != 0;
  snprintf(buf, n, "%s%s%s.%s", key, by_seq ? "." : "", by_seq ? e->string : "", inner);
  return buf;
}

static int read_other(const char *path, cJSON *j, const char *base, int sp, int mode, const char *skey, int seq, ProfOtherMem *o)
{
  char key[96];
  double scale;
  snprintf(key, sizeof key, "%s%s", base, sp ? "_sp" : "");
  cJSON *e = pick_seq(path, j, key, "model_states", mode, skey, seq, &scale);
  if (!e) return 1;
  char full[160];
  if (read_degree_dict(path, sub_key(full, sizeof full, key, e, "model_states"), cJSON_GetObjectItemCaseSensitive(e, "model_states"), o->ms, NULL)) return 1;
  if (read_degree_dict(path, sub_key(full, sizeof full, key, e, "activation"), cJSON_GetObjectItemCaseSensitive(e, "activation"), o->act, NULL)) return 1;
  for (int i = 0; i < PROF_LOGMAX; i++) o->act[i] *= scale;
  return 0;
}

/* One layer type's entry layertype_k[_sp].{seq}: parameter size and activations per sample. */
static int read_layer_mem(const char *path, cJSON *j, int k, int sp, int mode, int seq, ProfMemory *m)
{
  char key[64], full[160], skey[16];
  double scale;
  snprintf(key, sizeof key, "layertype_%d%s", k, sp ? "_sp" : "");
  snprintf(skey, sizeof skey, "%d", seq);
  cJSON *e = pick_seq(path, j, key, "parameter_size", mode, skey, seq, &scale);
  if (!e) return 1;
  cJSON *ps = cJSON_GetObjectItemCaseSensitive(e, "parameter_size");
  m->act_ckpt[k] = NAN;
  if (!cJSON_IsNumber(ps)) return fail(path, key, "parameter_size missing or not a number");
  if (!(ps->valuedouble > 0)) return fail(path, sub_key(full, sizeof full, key, e, "parameter_size"), "expected a positive size in MB");
  if (read_degree_dict(path, sub_key(full, sizeof full, key, e, "tp_activation_per_bsz_dict"),
                       cJSON_GetObjectItemCaseSensitive(e, "tp_activation_per_bsz_dict"), m->act[k], &m->act_ckpt[k]))
    return 1;
  m->param[k] = ps->valuedouble;
  for (int i = 0; i < PROF_LOGMAX; i++) m->act[k][i] *= scale;
  m->act_ckpt[k] *= scale;
  if (isnan(m->act_ckpt[k])) return fail(path, key, "tp_activation_per_bsz_dict has no 'checkpoint' entry");
  return 0;
}

int prof_read_memory(const char *path, int mode, const ProfSeqs *seqs, int sp, ProfMemory *m)
{
  if (mode == PROF_SEQUENCE && seqs->n > 1) {
    diag_plain(NULL, "%s: the sequence memory mode takes one layer type (as Galvatron); this model has %d", path, seqs->n);
    return 1;
  }
  cJSON *j = load_json(path);
  if (!j) return 1;
  int rc = 0;
  for (int k = 0; k < seqs->n && !rc; k++) rc = read_layer_mem(path, j, k, sp, mode, seqs->seq[k], m);
  char skey[16 * PROF_MAXTYPES]; /* the "other" parts: "512" for one type, "[512,512]" for several */
  int o = 0;
  for (int k = 0; k < seqs->n; k++)
    o += snprintf(skey + o, sizeof skey - (size_t)o, "%s%d", k ? "," : seqs->n > 1 ? "[" : "", seqs->seq[k]);
  if (seqs->n > 1) snprintf(skey + o, sizeof skey - (size_t)o, "]");
  int s0 = seqs->seq[0], sl = seqs->seq[seqs->n - 1];
  rc = rc || read_other(path, j, "other_memory_pp_off", sp, mode, skey, s0, &m->off)
          || read_other(path, j, "other_memory_pp_on_first", sp, mode, skey, s0, &m->first)
          || read_other(path, j, "other_memory_pp_on_last", sp, mode, skey, sl, &m->last);
  m->context_mb = NAN;
  m->context_per_param = m->context_param_mb = 0;
  cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "gvc"); /* gvc profile memory: measured outside the plan */
  if (!rc && g) rc = gvc_ratio(path, g, "context_mem_mb", &m->context_mb) ||
                     gvc_number(path, g, "context_per_param_mb", 1, &m->context_per_param) ||
                     gvc_number(path, g, "context_param_mb", 1, &m->context_param_mb);
  cJSON_Delete(j);
  return rc;
}

/* ---- galvatron_config_*.json ---- */

/* One number of key (the whole value, or entry `text` of a list): an integer in r. */
static int check_int(const char *path, const char *key, double v, const char *text, const struct gv_num_range *r)
{
  if (v == floor(v) && gv_num_in_range(v, r)) return 0;
  char want[64];
  diag_plain(NULL, "%s: key '%s': %s: expected %s", path, key, text, gv_num_expected(r, want, sizeof want));
  return 1;
}

/* An integer (a JSON number or a string holding one) in [lo, hi]. */
static int get_int(const char *path, cJSON *j, const char *key, int *out, int required, int lo, int hi)
{
  struct gv_num_range r = GV_NUM_INT(lo, hi);
  cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  char text[64];
  double x = NAN;
  if (!v) return required ? fail(path, key, "missing") : 0;
  if (cJSON_IsNumber(v)) { x = v->valuedouble; snprintf(text, sizeof text, "%.17g", x); }
  else if (cJSON_IsString(v)) { snprintf(text, sizeof text, "'%s'", v->valuestring); if (gv_num_parse(v->valuestring, &r, &x)) x = NAN; }
  else snprintf(text, sizeof text, "not a number");
  if (check_int(path, key, x, text, &r)) return 1;
  *out = (int)x;
  return 0;
}

/* "a,b,c" (or one number) -> malloc'd int array, each entry in [lo, hi]; *n set, or
 * checked against *n when *n > 0; absent and not required: *n entries of fill. */
static int get_list(const char *path, cJSON *j, const char *key, int **out, int *n, int required, int fill, int lo, int hi)
{
  struct gv_num_range r = GV_NUM_INT(lo, hi);
  cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  if (!v) {
    if (required) return fail(path, key, "missing");
    *out = calloc((size_t)(*n > 0 ? *n : 1), sizeof(int));
    for (int i = 0; i < *n; i++) (*out)[i] = fill;
    return 0;
  }
  char buf[64];
  const char *s = buf;
  if (cJSON_IsNumber(v)) snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
  else if (cJSON_IsString(v)) s = v->valuestring;
  else return fail(path, key, "expected a comma-separated string of integers");
  int cnt = 1;
  for (const char *p = s; *p; p++) cnt += *p == ',';
  int *a = calloc((size_t)cnt, sizeof(int));
  const char *p = s;
  for (int i = 0; i < cnt; i++) {
    const char *comma = strchr(p, ',');
    int len = comma ? (int)(comma - p) : (int)strlen(p);
    char entry[64];
    double x = NAN;
    snprintf(entry, sizeof entry, "%.*s", len, p);
    if (len >= (int)sizeof entry || gv_num_parse(entry, &r, &x)) x = NAN;
    char text[96];
    snprintf(text, sizeof text, "entry %d '%s'", i, entry);
    if (check_int(path, key, x, text, &r)) { free(a); return 1; }
    a[i] = (int)x;
    p = comma ? comma + 1 : p + len;
  }
  if (*n > 0 && cnt != *n) { free(a); return fail(path, key, "length differs from tp_sizes_enc"); }
  *n = cnt;
  *out = a;
  return 0;
}

int prof_config_read(const char *path, GalConfig *c)
{
  memset(c, 0, sizeof *c);
  cJSON *j = load_json(path);
  if (!j) return 1;
  const int W = OPTIONS_MAX_WORLD;
  int rc = get_int(path, j, "pp_deg", &c->pp_deg, 1, 1, W)
        || get_list(path, j, "tp_sizes_enc", &c->tp, &c->nlayers, 1, 1, 1, W)
        || get_list(path, j, "tp_consecutive_flags", &c->consec, &c->nlayers, 0, 1, 0, 1)
        || get_list(path, j, "dp_types_enc", &c->dp_type, &c->nlayers, 1, 0, 0, 1)
        || get_list(path, j, "use_sp", &c->use_sp, &c->nlayers, 0, 0, 0, 1)
        || get_list(path, j, "cp_sizes_enc", &c->cp, &c->nlayers, 0, 1, 1, W)
        || get_list(path, j, "ep_sizes_enc", &c->ep, &c->nlayers, 0, 1, 1, W)
        || get_list(path, j, "tp_of_ep_sizes_enc", &c->tp_of_ep, &c->nlayers, 0, 1, 1, W)
        || get_list(path, j, "checkpoint", &c->ckpt, &c->nlayers, 0, 0, 0, 1)
        || get_int(path, j, "global_bsz", &c->global_bsz, 1, 1, INT_MAX)
        || get_int(path, j, "chunks", &c->chunks, 1, 1, W)
        || get_list(path, j, "pp_division", &c->pp_division, &c->n_division, 0, 0, 1, W);
  c->vtp = 1;
  rc = rc || get_int(path, j, "vtp", &c->vtp, 0, 1, W) || get_int(path, j, "vsp", &c->vsp, 0, 0, 1)
          || get_int(path, j, "embed_sdp", &c->embed_sdp, 0, 0, 1) || get_int(path, j, "world_size", &c->world_size, 0, 1, W);
  cJSON *pt = cJSON_GetObjectItemCaseSensitive(j, "pipeline_type");
  cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "default_dp_type");
  snprintf(c->pipeline_type, sizeof c->pipeline_type, "%s", cJSON_IsString(pt) ? pt->valuestring : "gpipe");
  snprintf(c->default_dp_type, sizeof c->default_dp_type, "%s", cJSON_IsString(dt) ? dt->valuestring : "ddp");
  if (!rc && strcmp(c->pipeline_type, "gpipe") && strcmp(c->pipeline_type, "pipedream_flush"))
    rc = fail(path, "pipeline_type", "expected 'gpipe' or 'pipedream_flush'");
  if (!rc && strcmp(c->default_dp_type, "ddp") && strcmp(c->default_dp_type, "zero2"))
    rc = fail(path, "default_dp_type", "expected 'ddp' or 'zero2'");
  if (!rc && (c->pp_deg < 1 || prof_log2(c->pp_deg) < 0)) rc = fail(path, "pp_deg", "must be a power of two >= 1");
  if (!rc && c->chunks < 1) rc = fail(path, "chunks", "must be >= 1");
  if (!rc && c->global_bsz < 1) rc = fail(path, "global_bsz", "must be >= 1");
  for (int i = 0; !rc && i < c->nlayers; i++)
    if (prof_log2(c->tp[i]) < 0) rc = fail(path, "tp_sizes_enc", "degrees must be powers of two");
  for (int i = 0; !rc && i < c->nlayers; i++)
    if (prof_log2(c->cp[i]) < 0) rc = fail(path, "cp_sizes_enc", "degrees must be powers of two");
  if (!rc && c->n_division == 0) { /* even split, as Galvatron's pp_division_even */
    free(c->pp_division);
    c->n_division = c->pp_deg;
    c->pp_division = calloc((size_t)c->pp_deg, sizeof(int));
    for (int i = 0; i < c->pp_deg; i++) c->pp_division[i] = c->nlayers / c->pp_deg;
    c->pp_division[c->pp_deg - 1] = c->nlayers - c->nlayers / c->pp_deg * (c->pp_deg - 1);
  }
  if (!rc) {
    int sum = 0;
    for (int i = 0; i < c->n_division; i++) sum += c->pp_division[i];
    if (c->n_division != c->pp_deg || sum != c->nlayers) rc = fail(path, "pp_division", "must have pp_deg entries summing to the layer count");
  }
  cJSON_Delete(j);
  if (rc) prof_config_free(c);
  return rc;
}

void prof_config_free(GalConfig *c)
{
  free(c->tp); free(c->consec); free(c->dp_type); free(c->use_sp); free(c->ckpt); free(c->pp_division); free(c->cp);
  free(c->ep);
  free(c->tp_of_ep);
  c->tp = c->consec = c->dp_type = c->use_sp = c->ckpt = c->pp_division = c->cp = c->ep = c->tp_of_ep = NULL;
}

static void write_list(FILE *f, const char *key, const int *a, int n)
{
  fprintf(f, "    \"%s\": \"", key);
  for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? "," : "", a[i]);
  fprintf(f, "\",\n");
}

void prof_config_write(FILE *f, const GalConfig *c, const char *extra)
{
  fprintf(f, "{\n    \"pp_deg\": %d,\n", c->pp_deg);
  write_list(f, "tp_sizes_enc", c->tp, c->nlayers);
  write_list(f, "tp_consecutive_flags", c->consec, c->nlayers);
  write_list(f, "dp_types_enc", c->dp_type, c->nlayers);
  write_list(f, "use_sp", c->use_sp, c->nlayers);
  int any_cp = 0; /* Galvatron's key, written when context parallelism is used */
  for (int i = 0; c->cp && i < c->nlayers; i++) any_cp |= c->cp[i] > 1;
  if (any_cp) write_list(f, "cp_sizes_enc", c->cp, c->nlayers);
  write_list(f, "checkpoint", c->ckpt, c->nlayers);
  if (c->world_size) fprintf(f, "    \"world_size\": %d,\n", c->world_size);
  fprintf(f, "    \"global_bsz\": %d,\n    \"chunks\": %d,\n", c->global_bsz, c->chunks);
  write_list(f, "pp_division", c->pp_division, c->n_division);
  fprintf(f, "    \"pipeline_type\": \"%s\",\n    \"default_dp_type\": \"%s\",\n", c->pipeline_type, c->default_dp_type);
  fprintf(f, "    \"vtp\": %d,\n    \"vsp\": %d,\n    \"embed_sdp\": %d%s\n", c->vtp, c->vsp, c->embed_sdp, extra ? "," : "");
  if (extra) fprintf(f, "    \"gvc\": %s\n", extra);
  fprintf(f, "}\n");
}
