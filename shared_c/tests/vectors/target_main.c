/* Golden vectors on a bare-metal target: lines through the port (semihosting),
 * exit status 1 if any case fails, 0 otherwise. */
#include "port.h"
#include "run_vectors.h"

static void emit_port(const char *line)
{
    port_write(line);
    port_write("\n");
}

int main(void)
{
    port_exit(qora_run_vectors(emit_port) != 0 ? 1 : 0);
}
