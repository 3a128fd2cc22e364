/* arena.c - bump allocator with chained blocks; see arena.h for the contract. */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ArenaBlock {
  ArenaBlock *prev;
  size_t cap, used;
  _Alignas(16) unsigned char data[];
};

static void *xmalloc(size_t n)
{
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "gvc: out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return p;
}

static ArenaBlock *block_new(size_t cap, ArenaBlock *prev)
{
  ArenaBlock *b = xmalloc(sizeof *b + cap);
  b->prev = prev;
  b->cap = cap;
  b->used = 0;
  return b;
}

Arena *arena_new(size_t block)
{
  Arena *a = xmalloc(sizeof *a);
  a->block = block ? block : 1 << 20;
  a->head = block_new(a->block, NULL);
  a->used_total = 0;
  return a;
}

void arena_free(Arena **a)
{
  if (!*a)
    return;
  for (ArenaBlock *b = (*a)->head, *p; b; b = p) {
    p = b->prev;
    free(b);
  }
  free(*a);
  *a = NULL;
}

void arena_reset(Arena *a)
{
  ArenaBlock *b = a->head;
  while (b->prev) {
    ArenaBlock *p = b->prev;
    free(b);
    b = p;
  }
  b->used = 0;
  a->head = b;
  a->used_total = 0;
}

void *arena_alloc(Arena *a, size_t n)
{
  size_t need = (n + 15) & ~(size_t)15;
  ArenaBlock *b = a->head;
  if (b->used + need > b->cap) {
    size_t cap = need > a->block ? need : a->block;
    b = a->head = block_new(cap, b);
  }
  void *p = b->data + b->used;
  b->used += need;
  a->used_total += need;
  memset(p, 0, n);
  return p;
}

void *arena_realloc(Arena *a, void *old, size_t old_n, size_t new_n)
{
  if (new_n <= old_n)
    return old;
  void *p = arena_alloc(a, new_n);
  if (old && old_n)
    memcpy(p, old, old_n);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *arena_strdup(Arena *a, const char *s)
{
  return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}
