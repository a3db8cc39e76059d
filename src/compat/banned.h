/*
 * Functions the library must not use: unbounded copies and formatting, and
 * hidden global state. Included into every library translation unit by the
 * build. Use snprintf, memcpy with explicit lengths, strtok_r.
 */
#ifndef COW_BANNED_H
#define COW_BANNED_H

#define COW_BANNED(func) sorry_##func##_is_banned_in_cowkit

#undef strcpy
#define strcpy(x, y) COW_BANNED(strcpy)
#undef strcat
#define strcat(x, y) COW_BANNED(strcat)
#undef sprintf
#define sprintf(...) COW_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) COW_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) COW_BANNED(strtok)
#undef gets
#define gets(x) COW_BANNED(gets)

#endif
