/* `cow share`: not built yet (see the fork-sharing issue). */
#include "cli.h"

const struct cli_cmd cli_share_cmds[] = {
	{NULL, NULL, NULL, NULL, NULL},
};
