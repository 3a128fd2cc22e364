/* bpe_json.c - a Hugging Face tokenizer.json into a gv_bpe: model.type "BPE" with a
 * ByteLevel pre-tokenizer (or a Sequence holding one), vocabulary from model.vocab plus
 * added_tokens, merges from model.merges ("a b" strings or ["a", "b"] pairs). Used by
 * gvc data (encoding) and by training binaries (--tokenizer: prompts and samples). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_err.h"

/* pre_tokenizer is ByteLevel, or a Sequence holding one. */
static const cJSON *find_byte_level(const cJSON *pre)
{
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
  if (cJSON_IsString(type) && !strcmp(type->valuestring, "ByteLevel"))
    return pre;
  const cJSON *seq = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers"), *p;
  cJSON_ArrayForEach(p, seq) {
    const cJSON *bl = find_byte_level(p);
    if (bl)
      return bl;
  }
  return NULL;
}

static gv_data_status load_vocab(gv_bpe *b, const char *path, const cJSON *model, const cJSON *added,
                                 char *err, size_t errn)
{
  const cJSON *e, *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
  if (!cJSON_IsObject(vocab))
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'model.vocab' is missing or not an object", path);
  cJSON_ArrayForEach(e, vocab) {
    if (!cJSON_IsNumber(e) || gv_bpe_add_token(b, e->string, (int32_t)e->valuedouble, err, errn))
      return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'model.vocab' entry '%s' is not a valid id", path,
                          e->string);
  }
  cJSON_ArrayForEach(e, added) { /* special tokens such as <|endoftext|> */
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
    if (!cJSON_IsNumber(id) || !cJSON_IsString(content) ||
        gv_bpe_add_token(b, content->valuestring, (int32_t)id->valuedouble, err, errn))
      return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'added_tokens' has an entry without a valid id and "
                          "content", path);
  }
  return GV_DATA_OK;
}

/* Merges are "a b" strings (tokenizers < 0.20) or ["a", "b"] pairs. */
static gv_data_status load_merges(gv_bpe *b, const char *path, const cJSON *model, char *err, size_t errn)
{
  char e2[512] = "";
  const cJSON *e, *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
  if (!cJSON_IsArray(merges))
    return gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'model.merges' is missing or not an array", path);
  cJSON_ArrayForEach(e, merges) {
    char *left = NULL, *right = NULL, *copy = NULL;
    if (cJSON_IsString(e) && (copy = strdup(e->valuestring)) && (right = strchr(copy, ' '))) {
      *right++ = 0;
      left = copy;
    } else if (cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) && cJSON_IsString(e->child->next)) {
      left = e->child->valuestring;
      right = e->child->next->valuestring;
    }
    gv_data_status st =
        !left ? gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'model.merges' has an entry that is not \"a b\" or "
                             "[a, b]", path)
        : gv_bpe_add_merge(b, left, right, e2, sizeof e2) ? gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'model.merges': %s",
                                                               path, e2)
                                                : GV_DATA_OK;
    free(copy);
    if (st)
      return st;
  }
  return GV_DATA_OK;
}

static char *read_all(const char *path, size_t *size)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = NULL;
  long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
  if (n >= 0 && !fseek(f, 0, SEEK_SET) && (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n)
    *size = (size_t)n;
  else {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  return buf;
}

gv_data_status gv_bpe_load_json(const char *path, gv_bpe **out, int *add_prefix_space, char *err, size_t errn)
{
  *out = NULL;
  size_t size = 0;
  char *text = read_all(path, &size);
  if (!text)
    return gv_data_fail(err, errn, GV_DATA_ERR_IO, "%s: cannot read tokenizer", path);
  cJSON *j = cJSON_ParseWithLength(text, size);
  free(text);
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
  const cJSON *bl = find_byte_level(cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer"));
  gv_data_status st;
  if (!j)
    st = gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: not valid JSON", path);
  else if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE"))
    st = gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'model.type' is not \"BPE\"", path);
  else if (!bl)
    st = gv_data_fail(err, errn, GV_DATA_ERR_FORMAT, "%s: field 'pre_tokenizer' is not ByteLevel: only byte-level BPE "
                      "(GPT-2 style) is supported", path);
  else if (!(st = gv_bpe_new(out, err, errn)) &&
           !(st = load_vocab(*out, path, model, cJSON_GetObjectItemCaseSensitive(j, "added_tokens"), err, errn)))
    st = load_merges(*out, path, model, err, errn);
  if (!st)
    *add_prefix_space = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(bl, "add_prefix_space"));
  else
    gv_bpe_free(out);
  cJSON_Delete(j);
  return st;
}
