/* fatal.c - the one way out of the runtime on an unrecoverable error. It prints the
 * failing call with the rank prefix, runs the comm layer's abort hook, then ends the
 * whole job (MPI_Abort when MPI is up) so no peer rank hangs inside a collective.
 * This is the only file of the runtime with MPI calls behind GV_HAVE_MPI. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gvrt.h"

#ifdef GV_HAVE_MPI
#include <mpi.h>
#endif

/* Registered once by the comm layer at start-up (e.g. ncclCommAbort); process-wide by
 * nature, like the signal handlers it resembles. */
static void (*fatal_hook)(void *);
static void *fatal_hook_arg;

void gv_fatal_set_hook(void (*hook)(void *arg), void *arg)
{
  fatal_hook = hook;
  fatal_hook_arg = arg;
}

static GV_NORETURN void end_job(void)
{
  void (*hook)(void *) = fatal_hook;
  fatal_hook = NULL;                        /* a failing hook must not recurse */
  if (hook) hook(fatal_hook_arg);
#ifdef GV_HAVE_MPI
  int up = 0, down = 0;
  MPI_Initialized(&up);
  MPI_Finalized(&down);
  if (up && !down) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
  fflush(stderr);
  if (getenv("GV_ABORT")) /* a core dump for debugging */
    abort();
  _exit(1); /* a user-visible failure: exit code 1, never a signal */
}

void gv_fatal(const char *file, int line, const char *call, const char *lib, const char *msg)
{
  char host[64] = "?";
  gethostname(host, sizeof host - 1);
  fprintf(stderr, "[rank %d/%d %s] gvrt: %s error: %s\n  at %s:%d in %s\n", gv_log_rank(),
          gv_log_world(), host, lib, msg, file, line, call);
  fflush(stderr);
  end_job();
}

void gv_fatalf(const char *file, int line, const char *call, const char *lib, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  gv_fatal(file, line, call, lib, msg);
}

void gv_fatal_mpi(const char *file, int line, const char *call, int err)
{
  char msg[512];
#ifdef GV_HAVE_MPI
  int len = 0;
  if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", err);
#else
  snprintf(msg, sizeof msg, "code %d", err);
#endif
  gv_fatal(file, line, call, "MPI", msg);
}
