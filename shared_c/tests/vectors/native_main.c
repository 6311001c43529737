/* Golden vectors on the host: every line to stdout; exit status 1 if any case fails. */
#include <stdio.h>

#include "run_vectors.h"

static void emit_stdout(const char *line)
{
    fputs(line, stdout);
    fputc('\n', stdout);
}

int main(void)
{
    int failures = qora_run_vectors(emit_stdout);
    fflush(stdout);
    return failures != 0 ? 1 : 0;
}
