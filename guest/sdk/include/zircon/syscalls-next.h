/* <zircon/syscalls-next.h>: Zircon's "@next" calls kvmpager provides (kvmpager SDK). */
#ifndef SYSROOT_ZIRCON_SYSCALLS_NEXT_H_
#define SYSROOT_ZIRCON_SYSCALLS_NEXT_H_

#include <zircon/types.h>

typedef struct zx_vmo_dirty_range {
  uint64_t offset;
  uint64_t length;
  uint64_t options;
} zx_vmo_dirty_range_t;

__ZX_BEGIN_CDECLS

zx_status_t zx_pager_query_dirty_ranges(zx_handle_t pager, zx_handle_t pager_vmo, uint64_t offset,
                                        uint64_t length, void* buffer, size_t buffer_size,
                                        size_t* actual, size_t* avail);

__ZX_END_CDECLS

#endif
