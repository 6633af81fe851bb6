/* kvmpager SDK runtime: Zircon's system calls as hypercalls, and the calls the runtime
 * translates (zx_vmar_map/unmap over the aperture, zx_object_get_info(ZX_INFO_VMO)) or
 * implements (zx_nanosleep, zx_deadline_after, zx_system_get_page_size). */
#include <kvmpager/sdk.h>
#include <string.h>
#include <zircon/syscalls-next.h>
#include <zircon/syscalls.h>

#include "runtime.h"

uint64_t kp_hypercall(uint64_t nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                      uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8) {
  register uint64_t r10 __asm__("r10") = a4;
  register uint64_t r8 __asm__("r8") = a5;
  register uint64_t r9 __asm__("r9") = a6;
  register uint64_t r12 __asm__("r12") = a7;
  register uint64_t r13 __asm__("r13") = a8;
  __asm__ volatile("outl %%eax, $0xe1"
                   : "+a"(nr)
                   : "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9), "r"(r12), "r"(r13)
                   : "memory");
  return nr;
}

#define U(x) ((uint64_t)(uintptr_t)(x))
#define CALL(nr, a1, a2, a3, a4, a5, a6, a7, a8) \
  ((zx_status_t)kp_hypercall((nr), U(a1), U(a2), U(a3), U(a4), U(a5), U(a6), U(a7), U(a8)))

zx_status_t zx_handle_close(zx_handle_t h) {
  return CALL(KVMPAGER_CALL_HANDLE_CLOSE, h, 0, 0, 0, 0, 0, 0, 0);
}
zx_status_t zx_handle_duplicate(zx_handle_t h, zx_rights_t rights, zx_handle_t* out) {
  return CALL(KVMPAGER_CALL_HANDLE_DUPLICATE, h, rights, out, 0, 0, 0, 0, 0);
}
zx_status_t zx_handle_replace(zx_handle_t h, zx_rights_t rights, zx_handle_t* out) {
  return CALL(KVMPAGER_CALL_HANDLE_REPLACE, h, rights, out, 0, 0, 0, 0, 0);
}

zx_time_t zx_clock_get_monotonic(void) {
  return (zx_time_t)kp_hypercall(KVMPAGER_CALL_CLOCK_GET_MONOTONIC, 0, 0, 0, 0, 0, 0, 0, 0);
}
zx_time_t zx_deadline_after(zx_duration_t ns) {
  zx_time_t now = zx_clock_get_monotonic();
  if (ns > 0 && now > ZX_TIME_INFINITE - ns) return ZX_TIME_INFINITE;
  return now + ns;
}
zx_status_t zx_nanosleep(zx_time_t deadline) {
  zx_handle_t port = __kp_sleep_port;
  zx_port_packet_t p;
  if (port == ZX_HANDLE_INVALID || zx_port_wait(port, deadline, &p) != ZX_ERR_TIMED_OUT) {
    while (zx_clock_get_monotonic() < deadline) __builtin_ia32_pause();
  }
  return ZX_OK;
}
uint32_t zx_system_get_page_size(void) { return 4096; }

zx_status_t zx_vmo_create(uint64_t size, uint32_t options, zx_handle_t* out) {
  return CALL(KVMPAGER_CALL_VMO_CREATE, size, options, out, 0, 0, 0, 0, 0);
}
zx_status_t zx_vmo_read(zx_handle_t h, void* buf, uint64_t offset, size_t len) {
  return CALL(KVMPAGER_CALL_VMO_READ, h, buf, offset, len, 0, 0, 0, 0);
}
zx_status_t zx_vmo_write(zx_handle_t h, const void* buf, uint64_t offset, size_t len) {
  return CALL(KVMPAGER_CALL_VMO_WRITE, h, buf, offset, len, 0, 0, 0, 0);
}
zx_status_t zx_vmo_get_size(zx_handle_t h, uint64_t* size) {
  return CALL(KVMPAGER_CALL_VMO_GET_SIZE, h, size, 0, 0, 0, 0, 0, 0);
}
zx_status_t zx_vmo_set_size(zx_handle_t h, uint64_t size) {
  return CALL(KVMPAGER_CALL_VMO_SET_SIZE, h, size, 0, 0, 0, 0, 0, 0);
}
zx_status_t zx_vmo_op_range(zx_handle_t h, uint32_t op, uint64_t offset, uint64_t size,
                            void* buffer, size_t buffer_size) {
  (void)buffer;
  (void)buffer_size;
  return CALL(KVMPAGER_CALL_VMO_OP_RANGE, h, op, offset, size, 0, 0, 0, 0);
}
zx_status_t zx_vmo_create_child(zx_handle_t h, uint32_t options, uint64_t offset, uint64_t size,
                                zx_handle_t* out) {
  return CALL(KVMPAGER_CALL_VMO_CREATE_CHILD, h, options, offset, size, out, 0, 0, 0);
}

zx_status_t zx_pager_create(uint32_t options, zx_handle_t* out) {
  return CALL(KVMPAGER_CALL_PAGER_CREATE, options, out, 0, 0, 0, 0, 0, 0);
}
zx_status_t zx_pager_create_vmo(zx_handle_t pager, uint32_t options, zx_handle_t port,
                                uint64_t key, uint64_t size, zx_handle_t* out) {
  return CALL(KVMPAGER_CALL_PAGER_CREATE_VMO, pager, options, port, key, size, out, 0, 0);
}
zx_status_t zx_pager_detach_vmo(zx_handle_t pager, zx_handle_t vmo) {
  return CALL(KVMPAGER_CALL_PAGER_DETACH_VMO, pager, vmo, 0, 0, 0, 0, 0, 0);
}
zx_status_t zx_pager_supply_pages(zx_handle_t pager, zx_handle_t vmo, uint64_t offset,
                                  uint64_t length, zx_handle_t aux, uint64_t aux_offset) {
  return CALL(KVMPAGER_CALL_PAGER_SUPPLY_PAGES, pager, vmo, offset, length, aux, aux_offset, 0,
              0);
}
zx_status_t zx_pager_op_range(zx_handle_t pager, uint32_t op, zx_handle_t vmo, uint64_t offset,
                              uint64_t length, uint64_t data) {
  return CALL(KVMPAGER_CALL_PAGER_OP_RANGE, pager, op, vmo, offset, length, data, 0, 0);
}
zx_status_t zx_pager_query_dirty_ranges(zx_handle_t pager, zx_handle_t vmo, uint64_t offset,
                                        uint64_t length, void* buffer, size_t buffer_size,
                                        size_t* actual, size_t* avail) {
  /* kvmpager returns both counts in one 16-byte out struct (required). */
  struct {
    uint64_t actual, avail;
  } counts = {0, 0};
  zx_status_t s = CALL(KVMPAGER_CALL_PAGER_QUERY_DIRTY_RANGES, pager, vmo, offset, length, buffer,
                       buffer_size, &counts, 0);
  if (s == ZX_OK && actual) *actual = counts.actual;
  if (s == ZX_OK && avail) *avail = counts.avail;
  return s;
}
zx_status_t zx_pager_query_vmo_stats(zx_handle_t pager, zx_handle_t vmo, uint32_t options,
                                     void* buffer, size_t buffer_size) {
  return CALL(KVMPAGER_CALL_PAGER_QUERY_VMO_STATS, pager, vmo, options, buffer, buffer_size, 0,
              0, 0);
}
zx_status_t zx_kvmpager_set_exception_port(zx_handle_t port, uint64_t key) {
  return CALL(KVMPAGER_CALL_KVMPAGER_SET_EXCEPTION_PORT, port, key, 0, 0, 0, 0, 0, 0);
}

zx_status_t zx_port_create(uint32_t options, zx_handle_t* out) {
  return CALL(KVMPAGER_CALL_PORT_CREATE, options, out, 0, 0, 0, 0, 0, 0);
}
zx_status_t zx_port_wait(zx_handle_t h, zx_time_t deadline, zx_port_packet_t* packet) {
  return CALL(KVMPAGER_CALL_PORT_WAIT, h, deadline, packet, 0, 0, 0, 0, 0);
}

/* ---- The root VMAR: addresses in the aperture, handed out bottom-up. ---- */

static uint64_t next_map_offset;
static kp_lock_t vmar_lock;

zx_handle_t zx_vmar_root_self(void) { return KVMPAGER_ROOT_VMAR_HANDLE; }

static zx_status_t pick_address(zx_vm_option_t options, size_t vmar_offset, uint64_t len,
                                uint64_t* gpa) {
  if (options & ZX_VM_SPECIFIC) {
    if (vmar_offset % 4096 != 0) return ZX_ERR_INVALID_ARGS;
    if (vmar_offset >= KVMPAGER_APERTURE_SIZE || len > KVMPAGER_APERTURE_SIZE - vmar_offset)
      return ZX_ERR_INVALID_ARGS;
    *gpa = KVMPAGER_APERTURE_START + vmar_offset;
    return ZX_OK;
  }
  if (vmar_offset != 0) return ZX_ERR_INVALID_ARGS;
  kp_lock(&vmar_lock);
  /* One unmapped guard page between mappings, as a bump allocator over 64 GiB. */
  uint64_t off = next_map_offset;
  zx_status_t s = ZX_ERR_NO_MEMORY;
  if (off <= KVMPAGER_APERTURE_SIZE && len + 4096 <= KVMPAGER_APERTURE_SIZE - off) {
    next_map_offset = off + len + 4096;
    *gpa = KVMPAGER_APERTURE_START + off;
    s = ZX_OK;
  }
  kp_unlock(&vmar_lock);
  return s;
}

zx_status_t zx_vmar_map(zx_handle_t vmar, zx_vm_option_t options, size_t vmar_offset,
                        zx_handle_t vmo, uint64_t vmo_offset, size_t len, zx_vaddr_t* mapped) {
  if (vmar != KVMPAGER_ROOT_VMAR_HANDLE) return ZX_ERR_BAD_HANDLE;
  if (mapped == NULL || len == 0) return ZX_ERR_INVALID_ARGS;
  uint64_t rounded = ((uint64_t)len + 4095) & ~(uint64_t)4095;
  if (rounded < len) return ZX_ERR_INVALID_ARGS;
  uint64_t gpa = 0;
  zx_status_t s = pick_address(options, vmar_offset, rounded, &gpa);
  if (s != ZX_OK) return s;
  uint64_t kopts = options & ~(uint64_t)(ZX_VM_SPECIFIC | ZX_VM_ALLOW_FAULTS);
  s = CALL(KVMPAGER_CALL_VMAR_MAP, kopts, gpa, vmo, vmo_offset, rounded, 0, 0, 0);
  if (s == ZX_OK) *mapped = (zx_vaddr_t)gpa;
  return s;
}

zx_status_t zx_vmar_unmap(zx_handle_t vmar, zx_vaddr_t addr, size_t len) {
  if (vmar != KVMPAGER_ROOT_VMAR_HANDLE) return ZX_ERR_BAD_HANDLE;
  uint64_t rounded = ((uint64_t)len + 4095) & ~(uint64_t)4095;
  return CALL(KVMPAGER_CALL_VMAR_UNMAP, addr, rounded, 0, 0, 0, 0, 0, 0);
}

/* ---- zx_object_get_info ---- */

/* kvmpager's VmoInfo (src/abi.rs), 48 bytes. */
struct kp_vmo_info {
  uint64_t size;
  uint64_t committed_bytes;
  uint32_t flags;
  uint32_t mappings;
  uint32_t children;
  uint32_t pinned_pages;
  uint32_t rights;
  uint32_t reserved;
  uint64_t koid;
};
_Static_assert(sizeof(struct kp_vmo_info) == 48, "VmoInfo is 48 bytes");

/* kvmpager's VmoInfo flags that are not Zircon's (the rest are). */
#define KP_VMO_INFO_FLAG_DETACHED (1u << 16)

static zx_status_t info_vmo(zx_handle_t h, void* buffer, size_t size, size_t* actual,
                            size_t* avail) {
  struct kp_vmo_info k;
  memset(&k, 0, sizeof k);
  zx_status_t s = CALL(KVMPAGER_CALL_VMO_GET_INFO, h, &k, 0, 0, 0, 0, 0, 0);
  if (s != ZX_OK) return s;
  if (actual) *actual = 0;
  if (avail) *avail = 1;
  if (size < sizeof(zx_info_vmo_t)) return ZX_ERR_BUFFER_TOO_SMALL;
  zx_info_vmo_t z;
  memset(&z, 0, sizeof z);
  z.koid = k.koid;
  z.size_bytes = k.size;
  z.num_children = k.children;
  z.num_mappings = k.mappings;
  z.share_count = k.mappings ? 1 : 0;
  z.flags = ZX_INFO_VMO_TYPE_PAGED | ZX_INFO_VMO_VIA_HANDLE | (k.flags & 0xffffu);
  z.committed_bytes = k.committed_bytes;
  z.handle_rights = k.rights;
  z.populated_bytes = k.committed_bytes;
  z.committed_private_bytes = k.committed_bytes;
  z.populated_private_bytes = k.committed_bytes;
  z.committed_scaled_bytes = k.committed_bytes;
  z.populated_scaled_bytes = k.committed_bytes;
  memcpy(buffer, &z, sizeof z);
  if (actual) *actual = 1;
  return ZX_OK;
}

zx_status_t zx_object_get_info(zx_handle_t h, uint32_t topic, void* buffer, size_t size,
                               size_t* actual, size_t* avail) {
  if (topic == ZX_INFO_VMO) return info_vmo(h, buffer, size, actual, avail);
  return ZX_ERR_NOT_SUPPORTED;
}
