/* Store commands: not built yet (see the store engine issue). */
#include "cli.h"

const struct cli_cmd cli_store_cmds[] = {
	{NULL, NULL, NULL, NULL, NULL},
};
