/* arena.h - bump allocation for the compiler. Nothing is freed one object at a time:
 * cx->perm lives as long as the compilation, scratch arenas are reset per unit of work
 * (a search candidate, an emitted function). Out of memory is fatal. */
#ifndef GV_ARENA_H
#define GV_ARENA_H

#include <stddef.h>

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
  ArenaBlock *head;      /* current block; earlier blocks chained behind it */
  size_t block;          /* default block size */
  size_t used_total;     /* bytes handed out since the last reset */
} Arena;

Arena *arena_new(size_t block);
void arena_free(Arena **a);              /* releases every block; sets *a to NULL */
void arena_reset(Arena *a);              /* keeps the first block, drops contents */
void *arena_alloc(Arena *a, size_t n);   /* zeroed, 16-aligned */
void *arena_realloc(Arena *a, void *old, size_t old_n, size_t new_n);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ARENA_NEW(a, T) ((T *)arena_alloc((a), sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))

#endif
