/* <zircon/assert.h>: ZX_ASSERT/ZX_DEBUG_ASSERT (kvmpager SDK): on failure print
 * `file:line: ASSERT FAILED ...` and stop the VM with exit code 134. */
#ifndef SYSROOT_ZIRCON_ASSERT_H_
#define SYSROOT_ZIRCON_ASSERT_H_

#include <kvmpager/sdk.h>
#include <stdio.h>

#define ZX_ASSERT_MSG(x, msg, ...)                                                       \
  do {                                                                                   \
    if (!(x)) {                                                                          \
      printf("%s:%d: ASSERT FAILED: %s: " msg "\n", __FILE__, __LINE__, #x, ##__VA_ARGS__); \
      kp_exit(134);                                                                      \
    }                                                                                    \
  } while (0)
#define ZX_ASSERT(x) ZX_ASSERT_MSG(x, "")
#define ZX_DEBUG_ASSERT(x) ZX_ASSERT(x)
#define ZX_DEBUG_ASSERT_MSG(x, msg, ...) ZX_ASSERT_MSG(x, msg, ##__VA_ARGS__)
#define ZX_PANIC(msg, ...) ZX_ASSERT_MSG(0, msg, ##__VA_ARGS__)

#endif
