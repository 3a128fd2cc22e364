/* sample.c - text generation from the trained weights (--sample N): greedy (--temperature
 * 0, the default) or sampled with --temperature, --top_k and --top_p from a generator
 * seeded by --seed; the prompt and the output are text (byte tokens, or the byte-level BPE
 * of --tokenizer FILE.json) or token ids (--sample_format ids). The program's forward has a fixed sequence length T, so
 * each new token is predicted from the last T tokens at most: generation goes on past T
 * with the context cropped (nanoGPT's idx[:, -block_size:]), and says so. With the program's
 * decode step (decode.c: one-stage programs without tp or ZeRO-3) the prompt fills a KV
 * cache one position at a time and each new token is one decode step, no whole forward;
 * --no_kv_cache, other programs and learned positions too few for the text use the window. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "program/run.h"

#define BYTE_VOCAB 256 /* gvc data --tokenizer byte: ids 0..255, 256 the end of a document */

static int byte_vocab(const struct gv_run *r) { return r->vocab <= BYTE_VOCAB + 1; }

static int ids_format(const struct gv_run *r) { return !strcmp(r->args.sample_format, "ids"); }

/* "12, 7 301": every character a digit, a comma or a space; 0 if not such a list. */
static int parse_ids(const char *s, int32_t *out, int64_t *n, int64_t cap)
{
  *n = 0;
  while (*s) {
    if (*s == ',' || *s == ' ') {
      s++;
      continue;
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || (*end && *end != ',' && *end != ' ') || v < 0 || v > INT32_MAX)
      return 0;
    if (out && *n < cap)
      out[*n] = (int32_t)v;
    (*n)++;
    s = end;
  }
  return *n > 0;
}

void gv_run_check_sample_args(struct gv_run *r)
{
  const struct gv_run_args *a = &r->args;
  const char *why = NULL;
  int64_t n;
  if (strcmp(a->sample_format, "text") && !ids_format(r))
    why = "--sample_format must be text or ids";
  else if (!(a->temperature >= 0) || !isfinite(a->temperature))
    why = "--temperature must be >= 0 (0: greedy)";
  else if (a->top_k < 0)
    why = "--top_k must be >= 0 (0: all tokens)";
  else if (!(a->top_p > 0 && a->top_p <= 1))
    why = "--top_p must be in (0, 1] (1: all tokens)";
  else if (a->sample_tokens < 0)
    why = "--sample must be >= 0";
  else if (a->sample_tokens > 0 && r->s2s.src_off >= 0)
    why = "--sample: generation by an encoder-decoder (a model reading src_tokens) is not supported yet";
  if (why)
    gv_fatalf(__FILE__, __LINE__, "--sample", "gvrt", "%s", why);
  if (a->sample_tokens == 0)
    return;
  if (a->tokenizer) {
    char err[512] = "";
    if (gv_bpe_load_json(a->tokenizer, &r->tok, &r->tok_prefix_space, err, sizeof err))
      gv_fatalf(__FILE__, __LINE__, "--tokenizer", "gvrt", "%s", err);
    if (gv_bpe_vocab_size(r->tok) > r->vocab)
      gv_fatalf(__FILE__, __LINE__, "--tokenizer", "gvrt", "%s: its vocabulary has %d ids, the model's only %lld",
                a->tokenizer, gv_bpe_vocab_size(r->tok), (long long)r->vocab);
    return;
  }
  if (byte_vocab(r))
    return;
  if (!ids_format(r))
    gv_fatalf(__FILE__, __LINE__, "--sample_format", "gvrt", "the model's vocabulary has %lld ids, not the byte "
              "tokenizer's 256 (+1): give --tokenizer FILE.json (the data's tokenizer) to decode text, or "
              "--sample_format ids (and --prompt as token ids, e.g. --prompt 464,318)", (long long)r->vocab);
  if (!a->prompt || !parse_ids(a->prompt, NULL, &n, 0))
    gv_fatalf(__FILE__, __LINE__, "--prompt", "gvrt", "the model's vocabulary is not bytes: give --prompt as token "
              "ids separated by commas (e.g. --prompt 464,318), or --tokenizer FILE.json");
}

/* splitmix64: the sampler's random numbers, a function of --seed only. */
static double next_uniform(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53;
}

struct cand { float logit; int32_t id; };

static int by_logit(const void *a, const void *b)
{
  const struct cand *x = a, *y = b;
  if (x->logit != y->logit)
    return x->logit > y->logit ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* The next token from one row of V logits: the first largest (temperature 0), or a draw
 * from softmax(logits / temperature) over the top_k largest, cut to the smallest prefix
 * whose probability reaches top_p. c: V entries of scratch. */
/* Vocabulary tp: each rank of the tp group holds logits_split_cols columns of every logits
 * row; sampling reads whole rows (a host buffer of the padded vocabulary), NULL otherwise. */
static float *vocab_row_begin(struct gv_run *r, int last)
{
  if (!last || r->logits_split_cols <= 0)
    return NULL;
  if (r->logits_vtp != r->tp)
    gv_fatalf(__FILE__, __LINE__, "--sample", "gvrt", "sampling a program whose vocabulary is split over %d of its "
              "tp group's %d ranks is not supported: compile it with --vocab_tp %d or 1", r->logits_vtp, r->tp, r->tp);
  float *whole = malloc(sizeof *whole * (size_t)(r->logits_split_cols * r->logits_vtp));
  GV_CHECK(whole != NULL, "out of host memory");
  return whole;
}

/* The logits row of the window's position w (its columns gathered over the tp group). */
static const float *vocab_row(struct gv_run *r, float *whole, int64_t w)
{
  int64_t cols = r->logits_split_cols;
  const char *mine = (const char *)r->bases[GV_MEM_ACTS] + r->logits_off + (w - 1) * cols * (int64_t)gv_run_fsz(r);
  memset(whole, 0, sizeof *whole * (size_t)(cols * r->logits_vtp));
  memcpy(whole + r->tp_rank * cols, gv_run_to_host_f32(r, mine, (size_t)cols), sizeof *whole * (size_t)cols);
  gv_comm_all_reduce_host(r->tp_group, whole, (size_t)(cols * r->logits_vtp), GV_DTYPE_F32, GV_REDUCE_SUM);
  return whole;
}

static int32_t pick(const float *row, int64_t V, const struct gv_run_args *a, uint64_t *rng, struct cand *c)
{
  int32_t best = 0;
  for (int64_t v = 1; v < V; v++)
    if (row[v] > row[best])
      best = (int32_t)v;
  if (a->temperature <= 0)
    return best;
  for (int64_t v = 0; v < V; v++)
    c[v] = (struct cand){row[v], (int32_t)v};
  qsort(c, (size_t)V, sizeof *c, by_logit);
  int64_t k = a->top_k > 0 && a->top_k < V ? a->top_k : V;
  double sum = 0, *p = malloc(sizeof *p * (size_t)k);
  GV_CHECK(p != NULL, "out of host memory");
  for (int64_t i = 0; i < k; i++)
    sum += p[i] = exp(((double)c[i].logit - (double)c[0].logit) / a->temperature);
  double keep = 0;
  int64_t n = 0;
  while (n < k && (n == 0 || keep < a->top_p * sum))
    keep += p[n++];
  double u = next_uniform(rng) * keep, acc = 0;
  int32_t id = c[n - 1].id;
  for (int64_t i = 0; i < n; i++)
    if ((acc += p[i]) > u) {
      id = c[i].id;
      break;
    }
  free(p);
  return id;
}

/* One token as text: through the tokenizer (ids it does not know as <id>), or its byte
 * (control bytes other than newline and tab as '?'; bytes from 128 as they are, the pieces
 * of UTF-8 text), or the end-of-document marker. */
static void put_token(struct gv_run *r, FILE *f, int32_t t, char **buf, size_t *cap)
{
  size_t n;
  if (r->tok && !gv_bpe_decode(r->tok, &t, 1, buf, cap, &n, NULL, 0))
    fwrite(*buf, 1, n, f);
  else if (r->tok || t > BYTE_VOCAB)
    fprintf(f, "<%d>", t);
  else if (t == BYTE_VOCAB)
    fputs("<|endoftext|>", f);
  else if ((t >= 32 && t != 127) || t == '\n' || t == '\t')
    fputc(t, f);
  else
    fputc('?', f);
}

/* n tokens and room for extra more, zeroed. */
static int32_t *new_seq(int64_t n, int64_t extra)
{
  int32_t *seq = calloc((size_t)(n + extra), sizeof *seq);
  GV_CHECK(seq != NULL, "out of host memory");
  return seq;
}

/* The prompt's tokens into a new *seq with room for extra more: ids, the tokenizer's
 * encoding, or bytes. Returns their count. */
static int64_t encode_prompt(struct gv_run *r, const char *prompt, int32_t **seq, int64_t extra)
{
  int64_t n = 0;
  if (ids_format(r) && parse_ids(prompt, NULL, &n, 0)) {
    *seq = new_seq(n, extra);
    parse_ids(prompt, *seq, &n, n);
  } else if (r->tok) {
    size_t len = strlen(prompt), cap = 0, got = 0;
    char *text = malloc(len + 2);
    GV_CHECK(text != NULL, "out of host memory");
    snprintf(text, len + 2, "%s%s", r->tok_prefix_space && prompt[0] != ' ' ? " " : "", prompt);
    char err[512] = "";
    int32_t *ids = NULL;
    if (gv_bpe_encode(r->tok, text, strlen(text), &ids, &cap, &got, err, sizeof err))
      gv_fatalf(__FILE__, __LINE__, "--prompt", "gvrt", "%s: %s", r->args.tokenizer, err);
    free(text);
    n = (int64_t)got;
    *seq = new_seq(n, extra);
    if (got)
      memcpy(*seq, ids, sizeof *ids * got);
    free(ids);
  } else {
    n = (int64_t)strlen(prompt);
    *seq = new_seq(n, extra);
    for (int64_t i = 0; i < n; i++)
      (*seq)[i] = (int32_t)(unsigned char)prompt[i];
  }
  return n;
}

/* Whether generation uses the program's decode step and KV cache (else each token is one
 * whole forward of the last T tokens): the program has one, --no_kv_cache is not given, and
 * the text fits the model's learned positions (rope has no such limit). Says why not. */
static int use_kv_cache(struct gv_run *r, int64_t total)
{
  const struct gv_run_decode *d = &r->dec;
  if (r->args.no_kv_cache)
    return 0;
  if (!d->fn) {
    gv_log0(GV_LOG_INFO, "no KV cache: this program has no decode step (it has pipeline stages, tensor "
            "parallelism or ZeRO-3, or attention that is not causal), so each token is one whole forward");
    return 0;
  }
  if (d->positions > 0 && total > d->positions) {
    gv_log0(GV_LOG_INFO, "no KV cache: the model's %lld learned positions hold fewer than the %lld tokens of the "
            "prompt and the sample, so each token is a whole forward of the last %lld tokens",
            (long long)d->positions, (long long)total, (long long)r->seq);
    return 0;
  }
  if (total > r->seq)
    gv_log0(GV_LOG_INFO, "sampling past this program's sequence length %lld with the KV cache: positions up to "
            "%lld (%s)", (long long)r->seq, (long long)total - 1,
            d->positions > 0 ? "learned positions, within the model's table" : "rope positions continue");
  return 1;
}

void gv_run_generate(struct gv_run *r, gv_run_forward_fn forward)
{
  const struct gv_run_args *a = &r->args;
  if (a->sample_tokens > 0 && r->cp > 1 && r->dp_rank == 0)
    gv_log(GV_LOG_WARN, "--sample_tokens: not with context parallelism (cp=%d) yet; no text sampled", r->cp);
  /* one data-parallel rank samples; under ZeRO-3 every rank of its group runs the forward
   * with it (the weights are gathered from all of them), picking the same tokens */
  int zero3 = 0;
  for (int i = 0; i < r->nzl; i++)
    zero3 |= r->zl[i].range != 0;
  if (a->sample_tokens <= 0 || (r->dp_rank != 0 && !zero3) || r->cp > 1) {
    gv_bpe_free(&r->tok);
    return;
  }
  int64_t T = r->seq, V = r->vocab;
  int32_t *seq = NULL;
  int64_t n = encode_prompt(r, a->prompt ? a->prompt : "The ", &seq, a->sample_tokens + 1);
  int64_t total = n + a->sample_tokens;
  int32_t *window = calloc((size_t)T, sizeof *window);
  struct cand *c = malloc(sizeof *c * (size_t)V);
  GV_CHECK(window && c, "out of host memory");
  for (int64_t i = 0; i < n; i++)
    if (seq[i] >= V)
      gv_fatalf(__FILE__, __LINE__, "--prompt", "gvrt", "token %d of the prompt is outside the model's vocabulary of "
                "%lld ids", seq[i], (long long)V);
  if (n == 0)
    gv_fatalf(__FILE__, __LINE__, "--prompt", "gvrt", "the prompt is empty: give at least one token");
  int cached = use_kv_cache(r, total);
  if (!cached && total > T)
    gv_log0(GV_LOG_INFO, "sampling %lld tokens past this program's sequence length %lld: each new token is predicted "
            "from the last %lld tokens only (a longer context needs a program compiled with a larger gvc compile "
            "--seq, up to the model's positions)", (long long)(total - T), (long long)T, (long long)T);
  uint64_t rng = a->seed ^ 0x5eed5a3b1e5ull;
  int last = r->stage == r->pp - 1;
  float *whole = vocab_row_begin(r, last);
  r->evaluating = 1; /* forward only, no dropout */
  double t0 = gv_run_now_s();
  if (cached) { /* the prompt into the cache, one position at a time */
    gv_run_decode_begin(r, total);
    for (int64_t i = 0; i + 1 < n; i++)
      gv_run_decode_step(r, seq[i]);
  }
  for (int64_t pos = n; pos < total; pos++) {
    int64_t w = pos < T ? pos : T, from = pos - w;
    const void *logits = NULL;
    if (cached) {
      logits = gv_run_decode_step(r, seq[pos - 1]);
    } else {
      memset(window, 0, sizeof *window * (size_t)T);
      memcpy(window, seq + from, sizeof *window * (size_t)w);
      forward(r, window); /* the logits row of the window's last position */
      logits = r->bases[GV_MEM_ACTS] + r->logits_off + (w - 1) * r->logits_cols * (int64_t)gv_run_fsz(r);
    }
    int32_t next = 0, owner = 0;
    if (!cached && r->logits_rows > 0) { /* vsp: the row is on one rank of the tp group */
      owner = (int)((w - 1) / r->logits_rows);
      logits = r->bases[GV_MEM_ACTS] + r->logits_off + ((w - 1) % r->logits_rows) * r->logits_cols *
               (int64_t)gv_run_fsz(r);
    }
    if (last && whole) /* vocabulary tp: the row's columns from every rank of the tp group */
      next = pick(vocab_row(r, whole, w), V, a, &rng, c);
    else if (last && (r->logits_rows <= 0 || r->tp_rank == owner)) /* read back to the host */
      next = pick(gv_run_to_host_f32(r, logits, (size_t)V), V, a, &rng, c);
    if (last && r->logits_rows > 0 && r->tp > 1)
      gv_comm_broadcast_host(r->tp_group, &next, 1, GV_DTYPE_I32, owner);
    if (r->pp > 1)
      gv_comm_broadcast_host(r->pp_group, &next, 1, GV_DTYPE_I32, (int)r->pp - 1);
    seq[pos] = next;
  }
  double dt = gv_run_now_s() - t0;
  free(whole);
  if (cached)
    gv_run_decode_end(r);
  gv_log0(GV_LOG_INFO, "sampled %lld tokens in %.3f s: %.1f tokens/s (%s)", (long long)a->sample_tokens, dt,
          dt > 0 ? (double)a->sample_tokens / dt : 0.0, cached ? "KV cache" : "a whole forward per token");
  r->evaluating = 0;
  if (gv_comm_rank(r->world) == 0) {
    char *buf = NULL;
    size_t cap = 0;
    printf(ids_format(r) ? "sample_ids>" : "sample> ");
    for (int64_t i = 0; i < total; i++)
      if (ids_format(r))
        printf("%s %d", i == n ? " |" : "", seq[i]);
      else
        put_token(r, stdout, seq[i], &buf, &cap);
    printf("\n");
    fflush(stdout);
    free(buf);
  }
  gv_bpe_free(&r->tok);
  free(c);
  free(window);
  free(seq);
}
