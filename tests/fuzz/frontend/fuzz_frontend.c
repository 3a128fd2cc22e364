/* fuzz_frontend.c - libFuzzer target for the front end: any byte string given as a .gvm
 * file must give "ok" or diagnostics, never a crash, a sanitizer report or a hang. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static FILE *devnull;
  if (!devnull)
    devnull = fopen("/dev/null", "w");
  Ctx *cx = ctx_new();
  frontend_set_diag_stream(cx, devnull);
  frontend_check_source(cx, "fuzz.gvm", (const char *)data, size);
  ctx_free(&cx);
  return 0;
}
