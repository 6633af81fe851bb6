/* <zircon/syscalls.h>: the system calls kvmpager provides, with Zircon's prototypes (kvmpager
 * SDK). Each is a hypercall (`out 0xe1, eax`; see README "Hypercall ABI"), except
 * zx_vmar_map/unmap and zx_object_get_info, which the runtime translates, and
 * zx_nanosleep/zx_deadline_after/zx_system_get_page_size, which it implements. */
#ifndef SYSROOT_ZIRCON_SYSCALLS_H_
#define SYSROOT_ZIRCON_SYSCALLS_H_

#include <zircon/process.h>
#include <zircon/syscalls/object.h>
#include <zircon/syscalls/port.h>
#include <zircon/types.h>

__ZX_BEGIN_CDECLS

/* Handles. */
zx_status_t zx_handle_close(zx_handle_t handle);
zx_status_t zx_handle_duplicate(zx_handle_t handle, zx_rights_t rights, zx_handle_t* out);
zx_status_t zx_handle_replace(zx_handle_t handle, zx_rights_t rights, zx_handle_t* out);
zx_status_t zx_object_get_info(zx_handle_t handle, uint32_t topic, void* buffer,
                               size_t buffer_size, size_t* actual, size_t* avail);

/* Time. */
zx_time_t zx_clock_get_monotonic(void);
zx_time_t zx_deadline_after(zx_duration_t nanoseconds);
zx_status_t zx_nanosleep(zx_time_t deadline);
uint32_t zx_system_get_page_size(void);

/* VMOs. */
zx_status_t zx_vmo_create(uint64_t size, uint32_t options, zx_handle_t* out);
zx_status_t zx_vmo_read(zx_handle_t handle, void* buffer, uint64_t offset, size_t buffer_size);
zx_status_t zx_vmo_write(zx_handle_t handle, const void* buffer, uint64_t offset,
                         size_t buffer_size);
zx_status_t zx_vmo_get_size(zx_handle_t handle, uint64_t* size);
zx_status_t zx_vmo_set_size(zx_handle_t handle, uint64_t size);
zx_status_t zx_vmo_op_range(zx_handle_t handle, uint32_t op, uint64_t offset, uint64_t size,
                            void* buffer, size_t buffer_size);
zx_status_t zx_vmo_create_child(zx_handle_t handle, uint32_t options, uint64_t offset,
                                uint64_t size, zx_handle_t* out);

/* VMARs: the root VMAR is the aperture at 64 GiB. */
zx_status_t zx_vmar_map(zx_handle_t handle, zx_vm_option_t options, size_t vmar_offset,
                        zx_handle_t vmo, uint64_t vmo_offset, size_t len,
                        zx_vaddr_t* mapped_addr);
zx_status_t zx_vmar_unmap(zx_handle_t handle, zx_vaddr_t addr, size_t len);

/* Pagers. */
zx_status_t zx_pager_create(uint32_t options, zx_handle_t* out);
zx_status_t zx_pager_create_vmo(zx_handle_t pager, uint32_t options, zx_handle_t port,
                                uint64_t key, uint64_t size, zx_handle_t* out);
zx_status_t zx_pager_detach_vmo(zx_handle_t pager, zx_handle_t vmo);
zx_status_t zx_pager_supply_pages(zx_handle_t pager, zx_handle_t pager_vmo, uint64_t offset,
                                  uint64_t length, zx_handle_t aux_vmo, uint64_t aux_offset);
zx_status_t zx_pager_op_range(zx_handle_t pager, uint32_t op, zx_handle_t pager_vmo,
                              uint64_t offset, uint64_t length, uint64_t data);
zx_status_t zx_pager_query_vmo_stats(zx_handle_t pager, zx_handle_t pager_vmo, uint32_t options,
                                     void* buffer, size_t buffer_size);

/* Ports. */
zx_status_t zx_port_create(uint32_t options, zx_handle_t* out);
zx_status_t zx_port_wait(zx_handle_t handle, zx_time_t deadline, zx_port_packet_t* packet);

/* kvmpager extension: fatal faults of worker vCPUs (threads) become packets on `port` with
 * `key` instead of stopping the VM (see <kvmpager/sdk.h>). */
zx_status_t zx_kvmpager_set_exception_port(zx_handle_t port, uint64_t key);

__ZX_END_CDECLS

#endif
