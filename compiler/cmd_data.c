/* cmd_data.c - `gvc data`: builds a Megatron indexed dataset (PREFIX.bin/.idx) from
 * text, fortune or JSONL files with runtime/data's writer, or a sequence-to-sequence pair
 * dataset (PREFIX_src and PREFIX_tgt, one padded record per JSONL line), and
 * `gvc data --inspect` prints a summary of an existing one. Documents are tokenized byte-level (vocab 256,
 * EOD = 256 with --append-eod) or with a Hugging Face tokenizer.json byte-level BPE
 * (GPT-2's; EOD = <|endoftext|>), one sequence per document, as Megatron's
 * preprocess_data.py does. Any bad input or dataset is exit 1 with a message naming
 * the file; nothing here aborts. Formats and splitting rules: docs/data.md. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmd_data.h"
#include "gvrt_data.h"

#define BYTE_EOD 256
#define PROGRESS_BYTES (64ll << 20)

enum split { SPLIT_AUTO, SPLIT_FILE, SPLIT_PARA, SPLIT_FORTUNE, SPLIT_JSONL };

struct opts {
  const char *out, *json_key, *inspect, *tokenizer;
  enum split split;
  int append_eod, quiet, show_docs;
  int show_samples, seq;       /* --inspect: GPT samples of seq+1 tokens */
  long seed;
  const char *weights;         /* --split-weights: Megatron split string */
  const char *src_key, *tgt_key; /* pairs: the JSONL fields of the source and the target */
  int src_seq, tgt_seq, pad_id, truncate;
  const char *inspect_pairs;
  char **inputs;
  int ninputs;
};

struct tokenizer {
  gv_bpe *bpe;           /* NULL: byte tokens */
  int32_t eod;           /* -1 when the tokenizer has none */
  int64_t vocab;
  int prefix_space;      /* ByteLevel add_prefix_space */
};

struct build {
  const struct opts *o;
  struct tokenizer tok;
  gv_mmidx_writer *w;
  gv_mmidx_writer *wt;         /* pairs: the target's writer (w: the source's) */
  int32_t *toks;
  size_t toks_cap;
  long long bytes_in, next_progress;
  char err[512];
};

static void usage(FILE *f)
{
  fprintf(f,
    "usage: gvc data INPUT... -o PREFIX [options]\n"
    "       gvc data --inspect PREFIX [--docs N] [--samples N --seq L --seed S --split-weights W]\n"
    "       gvc data --images INPUT -o FILE.gvimg ...  (an image dataset: gvc data --images x --help)\n\n"
    "       gvc data PAIRS.jsonl... -o PREFIX --src-key K --tgt-key K --src-seq L --tgt-seq L\n"
    "       gvc data --inspect-pairs PREFIX [--samples N] [--pad-id N]\n\n"
    "Builds a Megatron indexed dataset PREFIX.bin + PREFIX.idx (MMIDIDX, uint16 tokens)\n"
    "from text, fortune or JSONL files; one sequence per document.\n\n"
    "options:\n"
    "  -o, --output PREFIX   write PREFIX.bin and PREFIX.idx (atomically: tmp + rename)\n"
    "  --tokenizer byte      byte-level tokens 0..255 (default)\n"
    "  --tokenizer FILE.json a Hugging Face tokenizer.json with a byte-level BPE (GPT-2's)\n"
    "  --append-eod          end every document with EOD (256; BPE: <|endoftext|>)\n"
    "  --split MODE          how a text file splits into documents:\n"
    "                          auto     .jsonl/.json -> jsonl; a line '%%' -> fortune; else file\n"
    "                          file     the whole file is one document\n"
    "                          para     documents are separated by blank lines\n"
    "                          fortune  documents are separated by lines holding only '%%'\n"
    "                          jsonl    one JSON object per line, text under --json-key\n"
    "  --json-key KEY        the JSONL field holding the text (default: text)\n"
    "sequence-to-sequence pairs (JSONL input; writes PREFIX_src and PREFIX_tgt):\n"
    "  --src-key KEY         the field holding the source (the encoder's text)\n"
    "  --tgt-key KEY         the field holding the target (the decoder's text)\n"
    "  --src-seq L           the source's length: shorter ones padded with the pad id\n"
    "                        (Megatron's --encoder-seq-length is accepted)\n"
    "  --tgt-seq L           the target's length (Megatron's --decoder-seq-length)\n"
    "  --pad-id N            the pad token (default 0, T5's); a text holding it is an error\n"
    "  --truncate            cut longer sources/targets (default: an error naming file:line)\n"
    "  --inspect-pairs PREFIX  check PREFIX_src/_tgt as training reads them and show the\n"
    "                        first --samples N pairs (source, decoder input, labels)\n"
    "  --quiet               no progress or summary output\n"
    "  --inspect PREFIX      print a summary of PREFIX.bin/.idx and check every field\n"
    "  --docs N              with --inspect: show the first N documents (default 5)\n"
    "  --samples N           with --inspect: show the first N GPT training samples, built as\n"
    "                        Megatron's GPTDataset does (--seq 64, --seed 42, --split-weights 1)\n"
    "  -h, --help            this help\n");
}

/* ---- arguments ---- */

static int parse_split(const char *s, enum split *out)
{
  static const char *names[] = {"auto", "file", "para", "fortune", "jsonl"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(s, names[i])) {
      *out = (enum split)i;
      return 0;
    }
  return -1;
}

/* Returns -1 on success, else the exit code (0 for --help). */
static int parse_args(int argc, char **argv, struct opts *o)
{
  *o = (struct opts){.json_key = "text", .tokenizer = "byte", .show_docs = 5, .seq = 64, .seed = 42};
  int show_samples = -1;
  o->inputs = calloc((size_t)argc, sizeof *o->inputs);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_val = i + 1 < argc;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--append-eod")) {
      o->append_eod = 1;
    } else if (!strcmp(a, "--quiet")) {
      o->quiet = 1;
    } else if (!strcmp(a, "--truncate")) {
      o->truncate = 1;
    } else if (a[0] == '-' && a[1] && !has_val) {
      return cmd_data_fail("option '%s' needs a value", a);
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      o->out = argv[++i];
    } else if (!strcmp(a, "--json-key")) {
      o->json_key = argv[++i];
    } else if (!strcmp(a, "--tokenizer")) {
      o->tokenizer = argv[++i];
    } else if (!strcmp(a, "--inspect")) {
      o->inspect = argv[++i];
    } else if (!strcmp(a, "--docs")) {
      o->show_docs = atoi(argv[++i]);
    } else if (!strcmp(a, "--samples")) {
      o->show_samples = show_samples = atoi(argv[++i]);
    } else if (!strcmp(a, "--src-key") || !strcmp(a, "--src_key")) {
      o->src_key = argv[++i];
    } else if (!strcmp(a, "--tgt-key") || !strcmp(a, "--tgt_key")) {
      o->tgt_key = argv[++i];
    } else if (!strcmp(a, "--src-seq") || !strcmp(a, "--encoder-seq-length") || !strcmp(a, "--encoder_seq_length")) {
      o->src_seq = atoi(argv[++i]);
    } else if (!strcmp(a, "--tgt-seq") || !strcmp(a, "--decoder-seq-length") || !strcmp(a, "--decoder_seq_length")) {
      o->tgt_seq = atoi(argv[++i]);
    } else if (!strcmp(a, "--pad-id")) {
      o->pad_id = atoi(argv[++i]);
    } else if (!strcmp(a, "--inspect-pairs")) {
      o->inspect_pairs = argv[++i];
    } else if (!strcmp(a, "--seq")) {
      o->seq = atoi(argv[++i]);
    } else if (!strcmp(a, "--seed")) {
      o->seed = atol(argv[++i]);
    } else if (!strcmp(a, "--split-weights")) {
      o->weights = argv[++i];
    } else if (!strcmp(a, "--split")) {
      if (parse_split(argv[++i], &o->split))
        return cmd_data_fail("unknown --split mode '%s' (auto, file, para, fortune, jsonl)", argv[i]);
    } else if (a[0] == '-' && a[1]) {
      return cmd_data_fail("unknown option '%s' (see 'gvc data --help')", a);
    } else {
      o->inputs[o->ninputs++] = argv[i];
    }
  }
  if (o->inspect_pairs)
    o->show_samples = show_samples < 0 ? 3 : show_samples;
  if (o->inspect || o->inspect_pairs)
    return -1;
  if (!o->src_key != !o->tgt_key)
    return cmd_data_fail("a pair dataset needs both --src-key and --tgt-key");
  if (o->src_key && (o->src_seq <= 0 || o->tgt_seq <= 0))
    return cmd_data_fail("a pair dataset needs --src-seq and --tgt-seq (Megatron: --encoder-seq-length, "
                         "--decoder-seq-length) above 0");
  if (!o->out)
    return cmd_data_fail("no output: give -o PREFIX");
  if (!o->ninputs)
    return cmd_data_fail("no input files(see 'gvc data --help')");
  return -1;
}

/* ---- documents ---- */

static int ensure_toks(struct build *b, size_t n)
{
  if (n <= b->toks_cap)
    return 0;
  size_t cap = n > 2 * b->toks_cap ? n : 2 * b->toks_cap;
  int32_t *t = realloc(b->toks, cap * sizeof *t);
  if (!t)
    return -1;
  b->toks = t;
  b->toks_cap = cap;
  return 0;
}

static void progress(struct build *b)
{
  if (b->o->quiet || b->bytes_in < b->next_progress)
    return;
  b->next_progress += PROGRESS_BYTES;
  fprintf(stderr, "gvc data: %.0f MiB read, %lld documents, %lld tokens\n", (double)b->bytes_in / (1 << 20),
          (long long)gv_mmidx_writer_docs(b->w), (long long)gv_mmidx_writer_tokens(b->w));
}

/* Tokens of text[0..n) into b->toks (+ EOD); *count of them. */
static int tokenize(struct build *b, const char *text, size_t n, size_t *count)
{
  if (!b->tok.bpe) {
    if (ensure_toks(b, n + 1))
      return cmd_data_fail("out of memory");
    for (size_t i = 0; i < n; i++)
      b->toks[i] = (unsigned char)text[i];
    *count = n;
  } else if (b->tok.prefix_space && text[0] != ' ') {
    char *p = malloc(n + 1);
    if (!p)
      return cmd_data_fail("out of memory");
    p[0] = ' ';
    memcpy(p + 1, text, n);
    gv_data_status st = gv_bpe_encode(b->tok.bpe, p, n + 1, &b->toks, &b->toks_cap, count, b->err, sizeof b->err);
    free(p);
    if (st)
      return cmd_data_fail("%s: %s", b->o->tokenizer, b->err);
  } else if (gv_bpe_encode(b->tok.bpe, text, n, &b->toks, &b->toks_cap, count, b->err, sizeof b->err)) {
    return cmd_data_fail("%s: %s", b->o->tokenizer, b->err);
  }
  if (b->o->append_eod) {
    if (ensure_toks(b, *count + 1))
      return cmd_data_fail("out of memory");
    b->toks[(*count)++] = b->tok.eod;
  }
  return 0;
}

/* One document, one sequence. Empty documents are skipped. */
static int add_doc(struct build *b, const char *text, size_t n)
{
  size_t count;
  if (n == 0)
    return 0;
  if (tokenize(b, text, n, &count))
    return 1;
  if (gv_mmidx_writer_add(b->w, b->toks, (int64_t)count, b->err, sizeof b->err))
    return cmd_data_fail("%s", b->err);
  gv_mmidx_writer_end_doc(b->w);
  b->bytes_in += (long long)n;
  progress(b);
  return 0;
}

static int is_fortune_sep(const char *s, size_t n)
{
  return (n == 2 && s[0] == '%' && s[1] == '\n') || (n == 1 && s[0] == '%') ||
         (n == 3 && !memcmp(s, "%\r\n", 3));
}

static int is_blank(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
      return 0;
  return 1;
}

/* A JSONL object: the string under --json-key is one document. */
static int add_json_doc(struct build *b, const char *path, long lineno, const cJSON *j)
{
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, b->o->json_key);
  if (!cJSON_IsString(t))
    return cmd_data_fail("%s:%ld: no string field under --json-key", path, lineno);
  return add_doc(b, t->valuestring, strlen(t->valuestring));
}

/* One side of a pair: its tokens padded to len (cut with --truncate) into writer w. */
static int add_pair_side(struct build *b, gv_mmidx_writer *w, const char *side, const char *text, int len,
                         const char *path, long lineno)
{
  size_t count;
  if (tokenize(b, text, strlen(text), &count))
    return 1;
  if (count == 0)
    return cmd_data_fail("%s:%ld: the %s is empty", path, lineno, side);
  if (count > (size_t)len && !b->o->truncate)
    return cmd_data_fail("%s:%ld: the %s has %zu tokens, more than --%s-seq %d (--truncate cuts it)", path, lineno,
                         side, count, side[0] == 's' ? "src" : "tgt", len);
  count = count < (size_t)len ? count : (size_t)len;
  for (size_t i = 0; i < count; i++)
    if (b->toks[i] == b->o->pad_id)
      return cmd_data_fail("%s:%ld: the %s holds the pad id %d as token %zu (choose another --pad-id)", path, lineno,
                           side, b->o->pad_id, i);
  if (ensure_toks(b, (size_t)len))
    return cmd_data_fail("out of memory");
  for (size_t i = count; i < (size_t)len; i++)
    b->toks[i] = b->o->pad_id;
  if (gv_mmidx_writer_add(w, b->toks, len, b->err, sizeof b->err))
    return cmd_data_fail("%s:%ld: %s", path, lineno, b->err);
  gv_mmidx_writer_end_doc(w);
  return 0;
}

/* A JSONL object of a pair dataset: the strings under --src-key and --tgt-key. */
static int add_pair(struct build *b, const char *path, long lineno, const cJSON *j)
{
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, b->o->src_key);
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, b->o->tgt_key);
  if (!cJSON_IsString(s))
    return cmd_data_fail("%s:%ld: no string field '%s' (--src-key)", path, lineno, b->o->src_key);
  if (!cJSON_IsString(t))
    return cmd_data_fail("%s:%ld: no string field '%s' (--tgt-key)", path, lineno, b->o->tgt_key);
  return add_pair_side(b, b->w, "source", s->valuestring, b->o->src_seq, path, lineno) ||
         add_pair_side(b, b->wt, "target", t->valuestring, b->o->tgt_seq, path, lineno);
}

/* A JSONL line: a pair (b->wt open) or a document. Blank lines are skipped. */
static int add_json_line(struct build *b, const char *path, long lineno, const char *line, size_t n)
{
  if (is_blank(line, n))
    return 0;
  cJSON *j = cJSON_ParseWithLength(line, n);
  int rc = !j      ? cmd_data_fail("%s:%ld: not valid JSON", path, lineno)
           : b->wt ? add_pair(b, path, lineno, j)
                   : add_json_doc(b, path, lineno, j);
  if (b->wt) { /* a pair's bytes count here (a document's in add_doc) */
    b->bytes_in += (long long)n;
    progress(b);
  }
  cJSON_Delete(j);
  return rc;
}

struct docbuf { char *p; size_t n, cap; };

static int docbuf_append(struct docbuf *d, const char *s, size_t n)
{
  if (d->n + n > d->cap) {
    size_t cap = d->n + n > 2 * d->cap ? d->n + n : 2 * d->cap;
    char *p = realloc(d->p, cap);
    if (!p)
      return cmd_data_fail("out of memory");
    d->p = p;
    d->cap = cap;
  }
  memcpy(d->p + d->n, s, n);
  d->n += n;
  return 0;
}

/* Streams f line by line: JSONL lines, or documents between separator lines (fortune:
 * '%', para: blank), so inputs larger than memory work. */
static int add_lines(struct build *b, FILE *f, const char *path, enum split mode)
{
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  long lineno = 0;
  struct docbuf d = {0};
  int rc = 0;
  while (!rc && (len = getline(&line, &lcap, f)) >= 0) {
    size_t n = (size_t)len;
    lineno++;
    if (b->wt || mode == SPLIT_JSONL) {
      rc = add_json_line(b, path, lineno, line, n);
    } else if (mode == SPLIT_FORTUNE ? is_fortune_sep(line, n) : is_blank(line, n)) {
      rc = add_doc(b, d.p, d.n);
      d.n = 0;
    } else {
      rc = docbuf_append(&d, line, n);
    }
  }
  if (!rc && ferror(f))
    rc = cmd_data_fail("%s: read error", path);
  if (!rc && mode != SPLIT_JSONL && !b->wt)
    rc = add_doc(b, d.p, d.n);
  free(line);
  free(d.p);
  return rc;
}

static char *read_file(const char *path, size_t *size)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = NULL;
  size_t cap = 0, n = 0, got;
  do {
    if (n == cap) {
      cap = cap ? 2 * cap : 1 << 16;
      char *nb = realloc(buf, cap + 1);
      if (!nb) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = nb;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  *size = n;
  return buf;
}

/* --split auto: .jsonl/.json by name; a file with a '%' line is a fortune file. */
static enum split auto_split(const char *path, FILE *f)
{
  size_t len = strlen(path);
  if ((len > 6 && !strcmp(path + len - 6, ".jsonl")) || (len > 5 && !strcmp(path + len - 5, ".json")))
    return SPLIT_JSONL;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  enum split mode = SPLIT_FILE;
  while (mode == SPLIT_FILE && (n = getline(&line, &cap, f)) >= 0)
    if (is_fortune_sep(line, (size_t)n))
      mode = SPLIT_FORTUNE;
  free(line);
  rewind(f);
  return mode;
}

static int add_input(struct build *b, const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return cmd_data_fail("%s: cannot read: %s", path, strerror(errno));
  enum split mode = b->wt ? SPLIT_JSONL : b->o->split == SPLIT_AUTO ? auto_split(path, f) : b->o->split;
  int rc;
  if (mode == SPLIT_FILE) {
    fclose(f);
    size_t size = 0;
    char *buf = read_file(path, &size);
    rc = buf ? add_doc(b, buf, size) : cmd_data_fail("%s: cannot read", path);
    free(buf);
    return rc;
  }
  rc = add_lines(b, f, path, mode);
  fclose(f);
  return rc;
}

/* ---- tokenizer.json ---- */

static int load_tokenizer(struct tokenizer *t, const char *path)
{
  *t = (struct tokenizer){.eod = -1};
  if (!strcmp(path, "byte")) {
    t->eod = BYTE_EOD;
    t->vocab = BYTE_EOD + 1;
    return 0;
  }
  char err[512] = "";
  if (gv_bpe_load_json(path, &t->bpe, &t->prefix_space, err, sizeof err))
    return cmd_data_fail("%s", err);
  t->eod = gv_bpe_token_id(t->bpe, "<|endoftext|>");
  t->vocab = gv_bpe_vocab_size(t->bpe);
  return 0;
}

/* ---- building ---- */

/* malloc'd a + b (NULL when out of memory). */
static char *concat(const char *a, const char *b)
{
  size_t n = strlen(a) + strlen(b) + 1;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s%s", a, b);
  return p;
}

static int build(const struct opts *o)
{
  struct build b = {.o = o, .next_progress = PROGRESS_BYTES};
  if (load_tokenizer(&b.tok, o->tokenizer))
    goto out_tok;
  if (o->append_eod && b.tok.eod < 0) {
    cmd_data_fail("%s: --append-eod, but the tokenizer has no <|endoftext|> token", o->tokenizer);
    goto out_tok;
  }
  int dtype = gv_data_dtype_for_vocab(o->append_eod || b.tok.bpe ? b.tok.vocab : 256);
  int pairs = o->src_key != NULL;
  char *names[2] = {pairs ? concat(o->out, "_src") : strdup(o->out),
                    pairs ? concat(o->out, "_tgt") : NULL};
  int rc = !names[0] || (pairs && !names[1]) ? cmd_data_fail("out of memory") : 0;
  if (!rc && gv_mmidx_writer_open(names[0], dtype, &b.w, b.err, sizeof b.err))
    rc = cmd_data_fail("%s", b.err);
  if (!rc && pairs && gv_mmidx_writer_open(names[1], dtype, &b.wt, b.err, sizeof b.err))
    rc = cmd_data_fail("%s", b.err);
  for (int i = 0; i < o->ninputs && !rc; i++)
    rc = add_input(&b, o->inputs[i]);
  long long docs = b.w ? gv_mmidx_writer_docs(b.w) : 0, toks = b.w ? gv_mmidx_writer_tokens(b.w) : 0;
  toks += b.wt ? gv_mmidx_writer_tokens(b.wt) : 0;
  free(b.toks);
  gv_bpe_free(&b.tok.bpe);
  if (!rc && pairs && docs == 0)
    rc = cmd_data_fail("%s: no pairs in the input", o->out);
  if (rc) {
    gv_mmidx_writer_abort(&b.w);
    gv_mmidx_writer_abort(&b.wt);
  } else if (gv_mmidx_writer_close(&b.w, b.err, sizeof b.err) ||
             (pairs && gv_mmidx_writer_close(&b.wt, b.err, sizeof b.err))) {
    gv_mmidx_writer_abort(&b.wt);
    rc = cmd_data_fail("%s", b.err);
  } else if (!o->quiet && pairs) {
    printf("gvc data: wrote %s and %s (.bin/.idx): %lld pairs of %d + %d tokens (tokenizer %s%s, %s, pad %d), "
           "from %d files\n", names[0], names[1], docs, o->src_seq, o->tgt_seq, o->tokenizer,
           o->append_eod ? " + EOD" : "", gv_data_dtype_name(dtype), o->pad_id, o->ninputs);
  } else if (!o->quiet) {
    printf("gvc data: wrote %s.bin/.idx: %lld documents, %lld tokens (tokenizer %s%s, %s), from %d files\n",
           o->out, docs, toks, o->tokenizer, o->append_eod ? " + EOD" : "", gv_data_dtype_name(dtype), o->ninputs);
  }
  free(names[0]);
  free(names[1]);
  return rc;
out_tok:
  gv_bpe_free(&b.tok.bpe);
  return 1;
}

/* ---- inspect ---- */

static void show_doc(const gv_mmidx *ix, int64_t d)
{
  int64_t first, end, ntok = 0;
  gv_mmidx_doc_seqs(ix, d, &first, &end);
  for (int64_t s = first; s < end; s++)
    ntok += gv_mmidx_seq_len(ix, s);
  printf("  %-8lld %-6lld %-9lld", (long long)d, (long long)(end - first), (long long)ntok);
  int32_t t[8];
  int shown = 0;
  for (int64_t s = first; s < end && shown < 8; s++) {
    int64_t n = gv_mmidx_seq_len(ix, s);
    n = n < 8 - shown ? n : 8 - shown;
    gv_mmidx_read(ix, s, 0, n, t + shown);
    shown += (int)n;
  }
  for (int i = 0; i < shown; i++)
    printf(" %d", t[i]);
  printf("%s\n", ntok > shown ? " ..." : "");
}

/* The first tokens of GPT sample i, and as text where they are bytes (EOD as '|'). */
static void show_sample(const gv_data *ds, int64_t i, int32_t *tok)
{
  int seq = gv_data_seq(ds), n = seq + 1 < 16 ? seq + 1 : 16;
  gv_data_get_sample(ds, i, tok);
  printf("  %-8lld", (long long)i);
  for (int t = 0; t < n; t++)
    printf(" %d", tok[t]);
  printf("%s\n           \"", seq + 1 > n ? " ..." : "");
  for (int t = 0; t <= seq && t < 72; t++)
    putchar(tok[t] == 256 ? '|' : tok[t] >= 32 && tok[t] < 127 ? tok[t] : tok[t] == '\n' ? '/' : '.');
  printf("\"\n");
}

static int inspect_samples(const struct opts *o)
{
  struct gv_data_opts d = gv_data_opts_default(o->seq, (uint32_t)o->seed);
  d.split = o->weights;
  gv_data *ds;
  char err[512] = "";
  if (gv_data_open(o->inspect, &d, &ds, err, sizeof err))
    return cmd_data_fail("%s", err);
  printf("samples    %lld of %d+1 tokens (seed %ld, %d epoch%s)\n", (long long)gv_data_num_samples(ds), o->seq,
         o->seed, gv_data_epochs(ds), gv_data_epochs(ds) > 1 ? "s" : "");
  printf("  %-8s %s\n", "sample", "first tokens / text (EOD as '|', newline as '/')");
  int32_t *tok = malloc(sizeof(int32_t) * (size_t)(o->seq + 1));
  for (int64_t i = 0; tok && i < o->show_samples && i < gv_data_num_samples(ds); i++)
    show_sample(ds, i, tok);
  free(tok);
  gv_data_free(&ds);
  return 0;
}

static int inspect(const struct opts *o)
{
  gv_mmidx *ix;
  char err[512] = "";
  if (gv_mmidx_open(o->inspect, &ix, err, sizeof err))
    return cmd_data_fail("%s", err);
  int64_t ns = gv_mmidx_num_seqs(ix), nd = gv_mmidx_num_docs(ix), nt = gv_mmidx_num_tokens(ix);
  int32_t lo = INT32_MAX, hi = 0;
  for (int64_t s = 0; s < ns; s++) {
    int32_t l = gv_mmidx_seq_len(ix, s);
    lo = l < lo ? l : lo;
    hi = l > hi ? l : hi;
  }
  printf("dataset    %s (.bin/.idx)\n", o->inspect);
  printf("dtype      %s (code %d)\n", gv_data_dtype_name(gv_mmidx_dtype(ix)), gv_mmidx_dtype(ix));
  printf("documents  %lld\n", (long long)nd);
  printf("sequences  %lld\n", (long long)ns);
  printf("tokens     %lld\n", (long long)nt);
  if (ns)
    printf("seq tokens min %d, mean %.1f, max %d\n", lo, (double)nt / (double)ns, hi);
  printf("  %-8s %-6s %-9s %s\n", "doc", "seqs", "tokens", "first tokens");
  for (int64_t d = 0; d < nd && d < o->show_docs; d++)
    show_doc(ix, d);
  gv_mmidx_free(&ix);
  return o->show_samples > 0 ? inspect_samples(o) : 0;
}

/* A pair dataset as training reads it: counts, lengths and the first pairs. */
static void show_ids(const char *what, const int32_t *t, int32_t n)
{
  printf("    %-8s", what);
  for (int32_t i = 0; i < n && i < 24; i++)
    printf(" %d", t[i]);
  printf("%s\n", n > 24 ? " ..." : "");
}

static int inspect_pairs(const struct opts *o)
{
  gv_pairs *p;
  char err[512] = "";
  if (gv_pairs_open(o->inspect_pairs, &p, err, sizeof err))
    return cmd_data_fail("%s", err);
  int32_t S = gv_pairs_src_len(p), T = gv_pairs_tgt_len(p);
  printf("pairs      %s_src / %s_tgt (.bin/.idx)\n", o->inspect_pairs, o->inspect_pairs);
  printf("records    %lld\n", (long long)gv_pairs_count(p));
  printf("lengths    source %d, target %d\n", S, T);
  int32_t *buf = malloc(sizeof(int32_t) * (size_t)(S + 2 * T));
  for (int64_t i = 0; buf && i < o->show_samples && i < gv_pairs_count(p); i++) {
    gv_pairs_get(p, i, o->pad_id, o->pad_id, buf, buf + S, buf + S + T);
    printf("  pair %lld\n", (long long)i);
    show_ids("source", buf, S);
    show_ids("decoder", buf + S, T);
    show_ids("labels", buf + S + T, T);
  }
  free(buf);
  gv_pairs_free(&p);
  return 0;
}

int cmd_data(int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--images"))
      return cmd_data_images(argc, argv); /* cmd_data_images.c */
  struct opts o;
  int rc = parse_args(argc, argv, &o);
  if (rc < 0)
    rc = o.inspect_pairs ? inspect_pairs(&o) : o.inspect ? inspect(&o) : build(&o);
  free(o.inputs);
  return rc;
}
