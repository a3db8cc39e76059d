/*
 * Error codes to messages and names, both read from COW_ERROR_MAP so the two
 * can never disagree with the enum.
 */
#include <string.h>

#include "base/base.h"

struct errdef {
	int code;
	const char *name;
	const char *msg;
};

static const struct errdef errors[] = {
#define ERRDEF(name, value, msg) {(value), "COW_" #name, (msg)},
	COW_ERROR_MAP(ERRDEF)
#undef ERRDEF
};

static const struct errdef *find(int code)
{
	for (size_t i = 0; i < COW_ARRAY_SIZE(errors); i++)
		if (errors[i].code == code)
			return &errors[i];
	return NULL;
}

const char *cow_strerror(int code)
{
	if (code == 0)
		return "success";
	const struct errdef *e = find(code);
	if (e)
		return e->msg;
	if (code < 0 && code > -4096) {
		/* Some -errno we don't list: glibc's static, thread-safe text. */
		const char *s = strerrordesc_np(-code);
		if (s)
			return s;
	}
	return "unknown error";
}

const char *cow_errname(int code)
{
	if (code == 0)
		return "COW_OK";
	const struct errdef *e = find(code);
	return e ? e->name : "COW_EUNKNOWN";
}

const char *cow_version(void)
{
#define STR2(x) #x
#define STR(x) STR2(x)
	return STR(COW_VERSION_MAJOR) "." STR(COW_VERSION_MINOR) "." STR(COW_VERSION_PATCH);
}
