/* <zircon/time.h>: times and durations in nanoseconds (kvmpager SDK). The monotonic clock
 * counts from the VM's start. */
#ifndef SYSROOT_ZIRCON_TIME_H_
#define SYSROOT_ZIRCON_TIME_H_

#include <stdint.h>

typedef int64_t zx_time_t;
typedef int64_t zx_duration_t;
typedef int64_t zx_instant_mono_t;
typedef int64_t zx_duration_mono_t;
typedef uint64_t zx_ticks_t;

#define ZX_TIME_INFINITE INT64_MAX
#define ZX_TIME_INFINITE_PAST INT64_MIN

#define ZX_NSEC(n) ((zx_duration_t)(1ll * (n)))
#define ZX_USEC(n) ((zx_duration_t)(1000ll * (n)))
#define ZX_MSEC(n) ((zx_duration_t)(1000000ll * (n)))
#define ZX_SEC(n) ((zx_duration_t)(1000000000ll * (n)))
#define ZX_MIN(n) (ZX_SEC(n) * 60ll)
#define ZX_HOUR(n) (ZX_MIN(n) * 60ll)

#endif
