/* Export control for the cowkit shared library. */
#ifndef COW_VISIBILITY_H
#define COW_VISIBILITY_H

#if defined(COW_BUILDING) && defined(__GNUC__)
#define COW_API __attribute__((visibility("default")))
#else
#define COW_API
#endif

#endif
