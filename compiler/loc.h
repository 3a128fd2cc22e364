/* loc.h - a source location, shared by the front end, the IR and diagnostics. */
#ifndef GV_LOC_H
#define GV_LOC_H
typedef struct Loc { int file, line, col, len; } Loc; /* 1-based line and col (bytes); len = caret width */
#endif
