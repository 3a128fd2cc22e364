/* log.c - leveled logging with the rank prefix "[rank r/w] gvrt: ". The rank and level are
 * process-wide settings fixed at start-up (set by gv_log_set_rank after MPI init, or read
 * from the launcher's environment), the one piece of mutable state the runtime keeps. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gvrt.h"

static int log_rank = -1, log_world = -1, log_level = -1;

static int env_int(const char *const *names, int dflt)
{
  for (; *names; names++) {
    const char *s = getenv(*names);
    if (s && *s) return atoi(s);
  }
  return dflt;
}

static void log_init(void)
{
  static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID", NULL};
  static const char *const worlds[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", NULL};
  if (log_rank < 0) log_rank = env_int(ranks, 0);
  if (log_world < 0) log_world = env_int(worlds, 1);
  if (log_level < 0) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *s = getenv("GV_LOG");
    log_level = GV_LOG_INFO;
    for (int i = 0; s && i < 4; i++)
      if (!strcmp(s, names[i])) log_level = i;
  }
}

void gv_log_set_rank(int rank, int world)
{
  log_rank = rank;
  log_world = world;
}

int gv_log_rank(void)
{
  log_init();
  return log_rank;
}

int gv_log_world(void)
{
  log_init();
  return log_world;
}

static void vlog(enum gv_log_level level, const char *fmt, va_list ap)
{
  static const char *const tags[] = {"error: ", "warning: ", "", "debug: "};
  char msg[1024];
  log_init();
  if ((int)level > log_level) return;
  vsnprintf(msg, sizeof msg, fmt, ap);
  fprintf(stderr, "[rank %d/%d] gvrt: %s%s\n", log_rank, log_world, tags[level], msg);
}

void gv_log(enum gv_log_level level, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vlog(level, fmt, ap);
  va_end(ap);
}

void gv_log0(enum gv_log_level level, const char *fmt, ...)
{
  va_list ap;
  if (gv_log_rank() != 0) return;
  va_start(ap, fmt);
  vlog(level, fmt, ap);
  va_end(ap);
}
