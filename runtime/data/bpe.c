/* bpe.c - byte-level BPE encoding as GPT-2's tokenizer (OpenAI encoder.py, Hugging Face
 * ByteLevel + BPE) does it: split the text with GPT-2's pre-tokenization pattern, map
 * each piece's bytes to the printable "byte-to-unicode" alphabet, then merge adjacent
 * symbols lowest merge rank first (leftmost on ties) until no merge applies. Vocabulary
 * and merges are given by the caller (gvc data reads them from tokenizer.json), so this
 * file needs no JSON. Character classes are exact for ASCII; outside it, Latin-1 and
 * General Punctuation symbols count as punctuation, Unicode spaces as spaces, and every
 * other code point as a letter (docs/data.md §2). */
#include <stdlib.h>
#include <string.h>

#include "data/data_err.h"

struct strmap { char **keys; int32_t *vals; size_t cap, n; };
struct pairmap { uint64_t *keys; int32_t *rank, *merged; size_t cap, n; };

struct gv_bpe {
  struct strmap vocab;
  struct pairmap merges;
  int32_t byte_id[256];     /* vocab id of each byte's symbol; -1 until complete */
  int32_t vocab_end;        /* max id + 1 */
  int32_t nmerges;
  int32_t *syms, *ranks;    /* scratch for one piece */
  size_t syms_cap, ranks_cap;
  const char **id_sym;      /* decoding: the symbol of each id (NULL: none), made on first use */
};

/* ---- hash maps ---- */

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ull;   /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static uint64_t hash_u64(uint64_t x)
{
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  return x ^ (x >> 33);
}

static int strmap_grow(struct strmap *m)
{
  size_t cap = m->cap ? 2 * m->cap : 1024;
  struct strmap g = {calloc(cap, sizeof(char *)), malloc(cap * sizeof(int32_t)), cap, m->n};
  if (!g.keys || !g.vals) {
    free(g.keys);
    free(g.vals);
    return -1;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i])
      continue;
    size_t j = hash_str(m->keys[i]) & (cap - 1);
    while (g.keys[j])
      j = (j + 1) & (cap - 1);
    g.keys[j] = m->keys[i];
    g.vals[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  *m = g;
  return 0;
}

static size_t strmap_slot(const struct strmap *m, const char *key)
{
  size_t j = hash_str(key) & (m->cap - 1);
  while (m->keys[j] && strcmp(m->keys[j], key))
    j = (j + 1) & (m->cap - 1);
  return j;
}

static int32_t strmap_get(const struct strmap *m, const char *key)
{
  if (!m->cap)
    return -1;
  size_t j = strmap_slot(m, key);
  return m->keys[j] ? m->vals[j] : -1;
}

static int pairmap_grow(struct pairmap *m)
{
  size_t cap = m->cap ? 2 * m->cap : 1024;
  struct pairmap g = {malloc(cap * 8), malloc(cap * 4), malloc(cap * 4), cap, m->n};
  if (!g.keys || !g.rank || !g.merged) {
    free(g.keys);
    free(g.rank);
    free(g.merged);
    return -1;
  }
  memset(g.keys, 0xff, cap * 8);
  for (size_t i = 0; i < m->cap; i++) {
    if (m->keys[i] == UINT64_MAX)
      continue;
    size_t j = hash_u64(m->keys[i]) & (cap - 1);
    while (g.keys[j] != UINT64_MAX)
      j = (j + 1) & (cap - 1);
    g.keys[j] = m->keys[i];
    g.rank[j] = m->rank[i];
    g.merged[j] = m->merged[i];
  }
  free(m->keys);
  free(m->rank);
  free(m->merged);
  *m = g;
  return 0;
}

static size_t pairmap_slot(const struct pairmap *m, uint64_t key)
{
  size_t j = hash_u64(key) & (m->cap - 1);
  while (m->keys[j] != UINT64_MAX && m->keys[j] != key)
    j = (j + 1) & (m->cap - 1);
  return j;
}

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

/* ---- vocabulary and merges ---- */

gv_data_status gv_bpe_new(gv_bpe **out, char *err, size_t errn)
{
  *out = calloc(1, sizeof **out);
  if (!*out)
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "bpe: out of memory");
  for (int i = 0; i < 256; i++)
    (*out)->byte_id[i] = -1;
  return GV_DATA_OK;
}

void gv_bpe_free(gv_bpe **pb)
{
  gv_bpe *b = *pb;
  if (!b)
    return;
  for (size_t i = 0; i < b->vocab.cap; i++)
    free(b->vocab.keys[i]);
  free(b->vocab.keys);
  free(b->vocab.vals);
  free(b->merges.keys);
  free(b->merges.rank);
  free(b->merges.merged);
  free(b->syms);
  free(b->ranks);
  free(b->id_sym);
  free(b);
  *pb = NULL;
}

gv_data_status gv_bpe_add_token(gv_bpe *b, const char *sym, int32_t id, char *err, size_t errn)
{
  if (id < 0)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "token '%s' has negative id %d", sym, id);
  if (2 * (b->vocab.n + 1) > b->vocab.cap && strmap_grow(&b->vocab))
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "bpe: out of memory");
  size_t j = strmap_slot(&b->vocab, sym);
  if (!b->vocab.keys[j]) {
    if (!(b->vocab.keys[j] = strdup(sym)))
      return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "bpe: out of memory");
    b->vocab.n++;
  }
  b->vocab.vals[j] = id;
  free(b->id_sym); /* rebuilt on the next decode */
  b->id_sym = NULL;
  if (id >= b->vocab_end)
    b->vocab_end = id + 1;
  return GV_DATA_OK;
}

int32_t gv_bpe_token_id(const gv_bpe *b, const char *sym) { return strmap_get(&b->vocab, sym); }
int32_t gv_bpe_vocab_size(const gv_bpe *b) { return b->vocab_end; }

gv_data_status gv_bpe_add_merge(gv_bpe *b, const char *left, const char *right, char *err, size_t errn)
{
  size_t nl = strlen(left), nr = strlen(right);
  char *both = malloc(nl + nr + 1);
  if (!both)
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "bpe: out of memory");
  memcpy(both, left, nl);
  memcpy(both + nl, right, nr + 1);
  int32_t a = strmap_get(&b->vocab, left), c = strmap_get(&b->vocab, right), m = strmap_get(&b->vocab, both);
  free(both);
  if (a < 0 || c < 0 || m < 0)
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "merge %d '%s %s': %s is not in the vocabulary", b->nmerges,
                        left, right, a < 0 ? "the left part" : c < 0 ? "the right part" : "the merged token");
  if (2 * (b->merges.n + 1) > b->merges.cap && pairmap_grow(&b->merges))
    return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "bpe: out of memory");
  size_t j = pairmap_slot(&b->merges, pair_key(a, c));
  if (b->merges.keys[j] == UINT64_MAX) {   /* the first (lowest) rank of a pair wins */
    b->merges.keys[j] = pair_key(a, c);
    b->merges.rank[j] = b->nmerges;
    b->merges.merged[j] = m;
    b->merges.n++;
  }
  b->nmerges++;
  return GV_DATA_OK;
}

/* GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to 256 + k. */
static uint32_t byte_symbol(int byte)
{
  int k = 0;
  for (int c = 0; c < 256; c++) {
    int printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174);
    if (c == byte)
      return printable ? (uint32_t)c : 256u + (uint32_t)k;
    k += !printable;
  }
  return 0;
}

static int utf8_put(char *s, uint32_t cp)
{
  if (cp < 0x80) {
    s[0] = (char)cp;
    return 1;
  }
  s[0] = (char)(0xc0 | (cp >> 6));
  s[1] = (char)(0x80 | (cp & 0x3f));
  return 2;   /* byte symbols are below 0x800 */
}

static gv_data_status resolve_bytes(gv_bpe *b, char *err, size_t errn)
{
  for (int i = 0; i < 256; i++) {
    char s[4] = {0};
    utf8_put(s, byte_symbol(i));
    if ((b->byte_id[i] = strmap_get(&b->vocab, s)) < 0)
      return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "the vocabulary has no symbol for byte %d: not a byte-level BPE", i);
  }
  return GV_DATA_OK;
}

/* ---- pre-tokenization (GPT-2 pattern) ---- */

enum cls { C_SPACE, C_LETTER, C_NUMBER, C_OTHER };

/* Decodes one code point at s (n bytes left); invalid UTF-8 is one byte of class OTHER. */
static uint32_t utf8_get(const unsigned char *s, size_t n, size_t *len)
{
  int need = s[0] < 0x80 ? 0 : (s[0] & 0xe0) == 0xc0 ? 1 : (s[0] & 0xf0) == 0xe0 ? 2 : (s[0] & 0xf8) == 0xf0 ? 3 : -1;
  *len = 1;
  if (need == 0)
    return s[0];
  if (need < 0 || (size_t)need >= n)
    return 0xfffd;
  uint32_t cp = s[0] & (0x3f >> need);
  for (int i = 1; i <= need; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0xfffd;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  *len = (size_t)need + 1;
  return cp;
}

static enum cls classify(uint32_t c)
{
  if (c < 0x80) {
    if (c == ' ' || (c >= '\t' && c <= '\r'))
      return C_SPACE;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
      return C_LETTER;
    return c >= '0' && c <= '9' ? C_NUMBER : C_OTHER;
  }
  if (c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
      c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000)
    return C_SPACE;
  if (c == 0xb2 || c == 0xb3 || c == 0xb9 || (c >= 0xbc && c <= 0xbe))
    return C_NUMBER;
  if (c == 0xaa || c == 0xb5 || c == 0xba)
    return C_LETTER;
  if ((c >= 0x80 && c <= 0xbf) || c == 0xd7 || c == 0xf7 || (c >= 0x2000 && c <= 0x206f) || c == 0xfffd)
    return C_OTHER;
  return C_LETTER;
}

struct cursor { const unsigned char *s; size_t n; };

static enum cls cls_at(struct cursor t, size_t i, size_t *len)
{
  return classify(utf8_get(t.s + i, t.n - i, len));
}

/* End of the run of class k starting at i. */
static size_t run_end(struct cursor t, size_t i, enum cls k)
{
  size_t len;
  while (i < t.n && cls_at(t, i, &len) == k)
    i += len;
  return i;
}

/* Length of the piece at i: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t piece_len(struct cursor t, size_t i)
{
  static const char *contr[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  for (int k = 0; k < 7; k++) {
    size_t l = strlen(contr[k]);
    if (i + l <= t.n && !memcmp(t.s + i, contr[k], l))
      return l;
  }
  size_t len, j = i + (t.s[i] == ' ' && i + 1 < t.n);
  enum cls k = cls_at(t, j, &len);
  if (k != C_SPACE)
    return run_end(t, j, k) - i;
  size_t end = run_end(t, i, C_SPACE), last = i;   /* whitespace: not the last one before text */
  for (size_t p = i; p < end; p += len) {
    cls_at(t, p, &len);
    last = p;
  }
  return end == t.n || last == i ? end - i : last - i;
}

/* ---- merging ---- */

static int32_t pair_rank(const gv_bpe *b, int32_t x, int32_t y, int32_t *merged)
{
  if (!b->merges.cap)
    return INT32_MAX;
  size_t j = pairmap_slot(&b->merges, pair_key(x, y));
  if (b->merges.keys[j] == UINT64_MAX)
    return INT32_MAX;
  *merged = b->merges.merged[j];
  return b->merges.rank[j];
}

/* Merges syms[0..m) in place; returns the new length. ranks[i] is pair (i, i+1)'s. */
static size_t merge_piece(gv_bpe *b, size_t m)
{
  int32_t *s = b->syms, *r = b->ranks, merged;
  for (size_t i = 0; i + 1 < m; i++)
    r[i] = pair_rank(b, s[i], s[i + 1], &merged);
  while (m > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < m; i++)
      if (r[i] < r[best])
        best = i;
    if (r[best] == INT32_MAX)
      break;
    pair_rank(b, s[best], s[best + 1], &s[best]);
    memmove(s + best + 1, s + best + 2, (m - best - 2) * sizeof *s);
    memmove(r + best, r + best + 1, (m - best - 2) * sizeof *r);
    m--;
    if (best > 0)
      r[best - 1] = pair_rank(b, s[best - 1], s[best], &merged);
    if (best + 1 < m)
      r[best] = pair_rank(b, s[best], s[best + 1], &merged);
  }
  return m;
}

static int reserve(int32_t **v, size_t *cap, size_t n)
{
  if (n <= *cap)
    return 0;
  size_t c = n > 2 * *cap ? n : 2 * *cap;
  int32_t *p = realloc(*v, c * sizeof *p);
  if (!p)
    return -1;
  *v = p;
  *cap = c;
  return 0;
}

gv_data_status gv_bpe_encode(gv_bpe *b, const char *text, size_t n, int32_t **out, size_t *cap,
                             size_t *nout, char *err, size_t errn)
{
  gv_data_status st;
  if (b->byte_id[0] < 0 && (st = resolve_bytes(b, err, errn)) != GV_DATA_OK)
    return st;
  struct cursor t = {(const unsigned char *)text, n};
  *nout = 0;
  for (size_t i = 0; i < n;) {
    size_t len = piece_len(t, i);
    if (reserve(&b->syms, &b->syms_cap, len) || reserve(&b->ranks, &b->ranks_cap, len) ||
        reserve(out, cap, *nout + len))
      return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "bpe: out of memory");
    for (size_t k = 0; k < len; k++)
      b->syms[k] = b->byte_id[t.s[i + k]];
    size_t m = merge_piece(b, len);
    memcpy(*out + *nout, b->syms, m * sizeof(int32_t));
    *nout += m;
    i += len;
  }
  return GV_DATA_OK;
}

/* ---- decoding ---- */

gv_data_status gv_bpe_decode(gv_bpe *b, const int32_t *ids, size_t n, char **out, size_t *cap, size_t *nout,
                             char *err, size_t errn)
{
  if (!b->id_sym) {
    if (!(b->id_sym = calloc((size_t)b->vocab_end + 1, sizeof *b->id_sym)))
      return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "bpe: out of memory");
    for (size_t i = 0; i < b->vocab.cap; i++)
      if (b->vocab.keys[i])
        b->id_sym[b->vocab.vals[i]] = b->vocab.keys[i];
  }
  int byte_of[512]; /* the byte-to-unicode alphabet backwards (its code points are below 512) */
  for (int i = 0; i < 512; i++)
    byte_of[i] = -1;
  for (int c = 0; c < 256; c++)
    byte_of[byte_symbol(c)] = c;
  *nout = 0;
  for (size_t k = 0; k < n; k++) {
    const char *sym = ids[k] >= 0 && ids[k] < b->vocab_end ? b->id_sym[ids[k]] : NULL;
    if (!sym)
      return gv_data_fail(err, errn, GV_DATA_ERR_ARG, "token id %d is not in the tokenizer's vocabulary", ids[k]);
    size_t len = strlen(sym);
    if (*nout + len + 1 > *cap) {
      size_t nc = 2 * (*nout + len + 1);
      char *p = realloc(*out, nc);
      if (!p)
        return gv_data_fail(err, errn, GV_DATA_ERR_NOMEM, "bpe: out of memory");
      *out = p;
      *cap = nc;
    }
    for (size_t i = 0, cl; i < len; i += cl) { /* each code point: its byte, or itself (added tokens) */
      uint32_t cp = utf8_get((const unsigned char *)sym + i, len - i, &cl);
      if (cp < 512 && byte_of[cp] >= 0)
        (*out)[(*nout)++] = (char)byte_of[cp];
      else
        for (size_t q = 0; q < cl; q++)
          (*out)[(*nout)++] = sym[i + q];
    }
  }
  (*out)[*nout] = '\0';
  return GV_DATA_OK;
}
