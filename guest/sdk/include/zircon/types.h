/* <zircon/types.h>: Zircon's basic types and option values (kvmpager SDK).
 *
 * Written for kvmpager from Zircon's documented names and values; every value kvmpager's
 * kernel knows is checked against src/abi.rs by vmm/tests/sdk_headers.rs. */
#ifndef SYSROOT_ZIRCON_TYPES_H_
#define SYSROOT_ZIRCON_TYPES_H_

#include <stddef.h>
#include <stdint.h>
#include <zircon/errors.h>
#include <zircon/rights.h>
#include <zircon/time.h>

#ifdef __cplusplus
#define __ZX_BEGIN_CDECLS extern "C" {
#define __ZX_END_CDECLS }
#else
#define __ZX_BEGIN_CDECLS
#define __ZX_END_CDECLS
#endif

typedef uint32_t zx_handle_t;
typedef int32_t zx_status_t;
typedef uint32_t zx_signals_t;
typedef uint64_t zx_koid_t;
typedef uint64_t zx_off_t;
typedef uint32_t zx_obj_type_t;
typedef uint32_t zx_vm_option_t;
typedef uintptr_t zx_vaddr_t;
typedef uintptr_t zx_paddr_t;
typedef size_t zx_gpaddr_t;
typedef uint32_t zx_object_info_topic_t;

#define ZX_HANDLE_INVALID ((zx_handle_t)0)
#define ZX_KOID_INVALID ((zx_koid_t)0)
#define ZX_PAGE_SIZE ((size_t)4096)
#define ZX_PAGE_SHIFT ((uint32_t)12)
#define ZX_MAX_NAME_LEN ((size_t)32u)

/* Signals. */
#define ZX_SIGNAL_NONE ((zx_signals_t)0u)
#define ZX_USER_SIGNAL_0 ((zx_signals_t)1u << 24)

/* zx_vmo_create() options. */
#define ZX_VMO_RESIZABLE ((uint32_t)1u << 1)
#define ZX_VMO_DISCARDABLE ((uint32_t)1u << 2)
#define ZX_VMO_TRAP_DIRTY ((uint32_t)1u << 3)
#define ZX_VMO_UNBOUNDED ((uint32_t)1u << 4)

/* zx_vmo_op_range() ops. */
#define ZX_VMO_OP_COMMIT 1u
#define ZX_VMO_OP_DECOMMIT 2u
#define ZX_VMO_OP_LOCK 3u
#define ZX_VMO_OP_UNLOCK 4u
#define ZX_VMO_OP_CACHE_SYNC 6u
#define ZX_VMO_OP_CACHE_INVALIDATE 7u
#define ZX_VMO_OP_CACHE_CLEAN 8u
#define ZX_VMO_OP_CACHE_CLEAN_INVALIDATE 9u
#define ZX_VMO_OP_ZERO 10u
#define ZX_VMO_OP_TRY_LOCK 11u
#define ZX_VMO_OP_DONT_NEED 12u
#define ZX_VMO_OP_ALWAYS_NEED 13u
#define ZX_VMO_OP_PREFETCH 14u

/* zx_vmar_op_range() ops. */
#define ZX_VMAR_OP_COMMIT 1u
#define ZX_VMAR_OP_DECOMMIT 2u
#define ZX_VMAR_OP_MAP_RANGE 3u
#define ZX_VMAR_OP_DONT_NEED 12u
#define ZX_VMAR_OP_ALWAYS_NEED 13u
#define ZX_VMAR_OP_PREFETCH 14u

/* zx_pager_op_range() ops. */
#define ZX_PAGER_OP_FAIL 1u
#define ZX_PAGER_OP_DIRTY 2u
#define ZX_PAGER_OP_WRITEBACK_BEGIN 3u
#define ZX_PAGER_OP_WRITEBACK_END 4u

/* zx_pager_op_range(WRITEBACK_BEGIN) data. */
#define ZX_VMO_DIRTY_RANGE_IS_ZERO ((uint64_t)1u)

/* zx_pager_query_vmo_stats(). */
typedef struct zx_pager_vmo_stats {
  uint32_t modified;
} zx_pager_vmo_stats_t;
#define ZX_PAGER_VMO_STATS_MODIFIED ((uint32_t)1u)
#define ZX_PAGER_RESET_VMO_STATS ((uint32_t)1u)

/* zx_vmo_create_child() options. */
#define ZX_VMO_CHILD_SNAPSHOT ((uint32_t)1u << 0)
#define ZX_VMO_CHILD_RESIZABLE ((uint32_t)1u << 2)
#define ZX_VMO_CHILD_SLICE ((uint32_t)1u << 3)
#define ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE ((uint32_t)1u << 4)
#define ZX_VMO_CHILD_NO_WRITE ((uint32_t)1u << 5)
#define ZX_VMO_CHILD_REFERENCE ((uint32_t)1u << 6)
#define ZX_VMO_CHILD_SNAPSHOT_MODIFIED ((uint32_t)1u << 7)

/* zx_vmar_map() options. */
#define ZX_VM_PERM_READ ((zx_vm_option_t)1u << 0)
#define ZX_VM_PERM_WRITE ((zx_vm_option_t)1u << 1)
#define ZX_VM_PERM_EXECUTE ((zx_vm_option_t)1u << 2)
#define ZX_VM_COMPACT ((zx_vm_option_t)1u << 3)
#define ZX_VM_SPECIFIC ((zx_vm_option_t)1u << 4)
#define ZX_VM_SPECIFIC_OVERWRITE ((zx_vm_option_t)1u << 5)
#define ZX_VM_CAN_MAP_SPECIFIC ((zx_vm_option_t)1u << 6)
#define ZX_VM_CAN_MAP_READ ((zx_vm_option_t)1u << 7)
#define ZX_VM_CAN_MAP_WRITE ((zx_vm_option_t)1u << 8)
#define ZX_VM_CAN_MAP_EXECUTE ((zx_vm_option_t)1u << 9)
#define ZX_VM_MAP_RANGE ((zx_vm_option_t)1u << 10)
#define ZX_VM_REQUIRE_NON_RESIZABLE ((zx_vm_option_t)1u << 11)
#define ZX_VM_ALLOW_FAULTS ((zx_vm_option_t)1u << 12)

/* Object types. */
#define ZX_OBJ_TYPE_NONE ((zx_obj_type_t)0u)
#define ZX_OBJ_TYPE_PROCESS ((zx_obj_type_t)1u)
#define ZX_OBJ_TYPE_THREAD ((zx_obj_type_t)2u)
#define ZX_OBJ_TYPE_VMO ((zx_obj_type_t)3u)
#define ZX_OBJ_TYPE_CHANNEL ((zx_obj_type_t)4u)
#define ZX_OBJ_TYPE_EVENT ((zx_obj_type_t)5u)
#define ZX_OBJ_TYPE_PORT ((zx_obj_type_t)6u)
#define ZX_OBJ_TYPE_VMAR ((zx_obj_type_t)18u)
#define ZX_OBJ_TYPE_PAGER ((zx_obj_type_t)28u)

#endif
