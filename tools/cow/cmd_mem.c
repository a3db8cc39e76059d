/* `cow mem`: not built yet (see the live-memory issue). */
#include "cli.h"

const struct cli_cmd cli_mem_cmds[] = {
	{NULL, NULL, NULL, NULL, NULL},
};
