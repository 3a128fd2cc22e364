/* json_file.h - a whole JSON file of the test data parsed with cJSON (the golden cost
 * files); a file that cannot be read or parsed ends the test with its name. */
#ifndef GV_TEST_JSON_FILE_H
#define GV_TEST_JSON_FILE_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

static inline cJSON *tu_json_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  long n = -1;
  if (f && fseek(f, 0, SEEK_END) == 0)
    n = ftell(f);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (!f || !buf || fseek(f, 0, SEEK_SET) != 0 || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  fclose(f);
  buf[n] = 0;
  cJSON *j = cJSON_Parse(buf);
  free(buf);
  if (!j) {
    fprintf(stderr, "%s: not valid JSON\n", path);
    exit(1);
  }
  return j;
}

#endif
