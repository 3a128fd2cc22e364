/* sample.c - text generation from the trained weights (--sample N): greedy (--temperature
 * 0, the default) or sampled with --temperature, --top_k and --top_p from a generator
 * seeded by --seed; the prompt and the output are text (byte tokens, or the byte-level BPE
 * of --tokenizer FILE.json) or token ids (--sample_format ids). The program's forward has a fixed sequence length T, so
 * each new token is predicted from the last T tokens at most: generation goes on past T
 * with the context cropped (nanoGPT's idx[:, -block_size:]), and says so. With the program's
 * decode step (decode.c: one-stage programs without tp or ZeRO-3) the prompt fills a KV
 * cache one position at a time and each new token is one decode step, no whole forward;
 * --no_kv_cache, other programs and learned positions too few for the text use the window.
 * An encoder-decoder (a model reading src_tokens) takes the prompt as its source (row 0 of
 * the source, at most the program's S ids) and generates the decoder's tokens from
 * --decoder_start_id, each a whole forward (no KV cache) and at most the program's T;
 * --eos_id ends either kind of generation at an end id. */
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

/* The options of --sample alone (the tokenizer loaded): the prompt is checked apart. */
static void check_options(struct gv_run *r)
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

/* What a generation shares between its steps: the sampler's scratch and random state. */
struct gen {
  struct gv_run *r;
  gv_run_forward_fn forward;
  int last;      /* this rank's stage holds the logits */
  float *whole;  /* vocabulary tp: a whole row (NULL: none) */
  struct cand *c;
  uint64_t rng;
};

/* The next token, on every rank of the generation: picked from the logits row of window
 * position w (1-based: the window's w-th row) of the last forward, or from `cached` (the
 * decode step's row), and shared over the tp group (vsp: its row's owner) and the stages. */
static int32_t next_token(struct gen *g, const void *cached, int64_t w)
{
  struct gv_run *r = g->r;
  const void *logits = cached;
  int32_t next = 0, owner = 0;
  size_t fsz = gv_run_fsz(r);
  if (!cached)
    logits = r->bases[GV_MEM_ACTS] + r->logits_off + (w - 1) * r->logits_cols * (int64_t)fsz;
  if (!cached && r->logits_rows > 0) { /* vsp: the row is on one rank of the tp group */
    owner = (int)((w - 1) / r->logits_rows);
    logits = r->bases[GV_MEM_ACTS] + r->logits_off + ((w - 1) % r->logits_rows) * r->logits_cols * (int64_t)fsz;
  }
  if (g->last && g->whole) /* vocabulary tp: the row's columns from every rank of the tp group */
    next = pick(vocab_row(r, g->whole, w), r->vocab, &r->args, &g->rng, g->c);
  else if (g->last && (r->logits_rows <= 0 || r->tp_rank == owner)) /* read back to the host */
    next = pick(gv_run_to_host_f32(r, logits, (size_t)r->vocab), r->vocab, &r->args, &g->rng, g->c);
  if (g->last && r->logits_rows > 0 && r->tp > 1)
    gv_comm_broadcast_host(r->tp_group, &next, 1, GV_DTYPE_I32, owner);
  if (r->pp > 1)
    gv_comm_broadcast_host(r->pp_group, &next, 1, GV_DTYPE_I32, (int)r->pp - 1);
  return next;
}

static int is_eos(const struct gv_run *r, int32_t id) { return r->args.eos_id >= 0 && id == r->args.eos_id; }

/* A decoder-only model: seq[n..total) after the prompt seq[0..n), each token from the KV
 * cache's decode step or a whole forward of the last T tokens. Returns the tokens made
 * (fewer than total - n after --eos_id). */
static int64_t continue_text(struct gen *g, int32_t *seq, int64_t n, int64_t total, int cached)
{
  struct gv_run *r = g->r;
  int64_t T = r->seq, pos = n;
  int32_t *window = calloc((size_t)T, sizeof *window);
  GV_CHECK(window != NULL, "out of host memory");
  if (cached) { /* the prompt into the cache, one position at a time */
    gv_run_decode_begin(r, total);
    for (int64_t i = 0; i + 1 < n; i++)
      gv_run_decode_step(r, seq[i]);
  }
  while (pos < total) {
    int64_t w = pos < T ? pos : T, from = pos - w;
    const void *logits = NULL;
    if (cached) {
      logits = gv_run_decode_step(r, seq[pos - 1]);
    } else {
      memset(window, 0, sizeof *window * (size_t)T);
      memcpy(window, seq + from, sizeof *window * (size_t)w);
      g->forward(r, window, NULL); /* the logits row of the window's last position */
    }
    seq[pos] = next_token(g, logits, w);
    if (is_eos(r, seq[pos++]))
      break;
  }
  if (cached)
    gv_run_decode_end(r);
  free(window);
  return pos - n;
}

/* An encoder-decoder: the source src (S ids, padded with 0) in every forward, the decoder's
 * input the start id and the tokens so far; the token of step k from decoder position k's
 * logits into out[k], at most want and at most the program's T positions. Returns the
 * tokens made. */
static int64_t translate(struct gen *g, const int32_t *src, int32_t *out, int64_t want)
{
  struct gv_run *r = g->r;
  int64_t T = r->seq, k = 0;
  int32_t *dec = calloc((size_t)T, sizeof *dec);
  GV_CHECK(dec != NULL, "out of host memory");
  dec[0] = r->args.decoder_start_id;
  while (k < want && k < T) {
    g->forward(r, dec, src);
    out[k] = next_token(g, NULL, k + 1);
    if (k + 1 < T)
      dec[k + 1] = out[k];
    if (is_eos(r, out[k++]))
      break;
  }
  free(dec);
  return k;
}

/* The prompt and the new tokens: ids (`PROMPT | NEW`), or text (a decoder-only model's
 * prompt and continuation as one text; an encoder-decoder's output alone). */
static void print_sample(struct gv_run *r, const int32_t *prompt, int64_t n, const int32_t *made, int64_t m)
{
  char *buf = NULL;
  size_t cap = 0;
  int ids = ids_format(r), s2s = r->s2s.src_off >= 0;
  printf(ids ? "sample_ids>" : "sample> ");
  for (int64_t i = 0; i < n && (ids || !s2s); i++)
    if (ids)
      printf(" %d", prompt[i]);
    else
      put_token(r, stdout, prompt[i], &buf, &cap);
  if (ids)
    printf(" |");
  for (int64_t i = 0; i < m; i++)
    if (ids)
      printf(" %d", made[i]);
    else
      put_token(r, stdout, made[i], &buf, &cap);
  printf("\n");
  fflush(stdout);
  free(buf);
}

static const char *prompt_of(const struct gv_run *r) { return r->args.prompt ? r->args.prompt : "The "; }

/* The prompt's ids checked against the model: not empty, inside the vocabulary; an
 * encoder-decoder's source at most S ids, its start id inside the vocabulary. */
static void check_prompt(const struct gv_run *r, const int32_t *seq, int64_t n)
{
  for (int64_t i = 0; i < n; i++)
    if (seq[i] >= r->vocab)
      gv_fatalf(__FILE__, __LINE__, "--prompt", "gvrt", "token %d of the prompt is outside the model's vocabulary of "
                "%lld ids", seq[i], (long long)r->vocab);
  if (n == 0)
    gv_fatalf(__FILE__, __LINE__, "--prompt", "gvrt", "the prompt is empty: give at least one token");
  if (r->s2s.src_off < 0)
    return;
  if (n > r->s2s.seq)
    gv_fatalf(__FILE__, __LINE__, "--prompt", "gvrt", "the prompt (an encoder-decoder's source) has %lld tokens, more "
              "than the program's source length S = %lld: shorten it, or compile with a larger gvc compile --src_seq",
              (long long)n, (long long)r->s2s.seq);
  if (r->args.decoder_start_id >= r->vocab)
    gv_fatalf(__FILE__, __LINE__, "--decoder_start_id", "gvrt", "%d is outside the model's vocabulary of %lld ids",
              r->args.decoder_start_id, (long long)r->vocab);
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
  int64_t T = r->seq, S = r->s2s.seq, N = a->sample_tokens;
  int s2s = r->s2s.src_off >= 0;
  int32_t *seq = NULL, *src = NULL;
  int64_t n = encode_prompt(r, prompt_of(r), &seq, N + 1), total = n + N, made; /* (checked at start-up) */
  int cached = !s2s && use_kv_cache(r, total);
  if (s2s) {
    gv_log0(GV_LOG_INFO, "no KV cache for an encoder-decoder: each token is a whole forward of the source and the "
            "decoder's positions so far");
    if (N > T)
      gv_log0(GV_LOG_INFO, "the decoder has this program's %lld positions: at most %lld of the %lld tokens asked for "
              "(a longer output needs a program compiled with a larger gvc compile --seq)", (long long)T,
              (long long)T, (long long)N);
    src = new_seq(S, 0);
    memcpy(src, seq, sizeof *src * (size_t)n); /* padded with 0 to S */
  } else if (!cached && total > T) {
    gv_log0(GV_LOG_INFO, "sampling %lld tokens past this program's sequence length %lld: each new token is predicted "
            "from the last %lld tokens only (a longer context needs a program compiled with a larger gvc compile "
            "--seq, up to the model's positions)", (long long)(total - T), (long long)T, (long long)T);
  }
  struct gen g = {r, forward, r->stage == r->pp - 1, NULL, malloc(sizeof(struct cand) * (size_t)r->vocab),
                  a->seed ^ 0x5eed5a3b1e5ull};
  GV_CHECK(g.c != NULL, "out of host memory");
  g.whole = vocab_row_begin(r, g.last);
  r->evaluating = 1; /* forward only, no dropout */
  double t0 = gv_run_now_s();
  made = s2s ? translate(&g, src, seq + n, N) : continue_text(&g, seq, n, total, cached);
  double dt = gv_run_now_s() - t0;
  r->evaluating = 0;
  gv_log0(GV_LOG_INFO, "sampled %lld tokens in %.3f s: %.1f tokens/s (%s)", (long long)made, dt,
          dt > 0 ? (double)made / dt : 0.0, cached ? "KV cache" : "a whole forward per token");
  if (gv_comm_rank(r->world) == 0)
    print_sample(r, seq, n, seq + n, made);
  gv_bpe_free(&r->tok);
  free(g.whole);
  free(g.c);
  free(src);
  free(seq);
}

void gv_run_check_sample_args(struct gv_run *r)
{
  check_options(r);
  if (r->args.sample_tokens == 0)
    return;
  int32_t *seq = NULL;
  int64_t n = encode_prompt(r, prompt_of(r), &seq, 0);
  check_prompt(r, seq, n);
  free(seq);
}
