/* <zircon/syscalls/object.h>: zx_object_get_info() topics and records (kvmpager SDK).
 *
 * kvmpager answers ZX_INFO_VMO (the fourth version of the record, 176 bytes) by translating its
 * own 48-byte VmoInfo; other topics give ZX_ERR_NOT_SUPPORTED. */
#ifndef SYSROOT_ZIRCON_SYSCALLS_OBJECT_H_
#define SYSROOT_ZIRCON_SYSCALLS_OBJECT_H_

#include <zircon/types.h>

#define __ZX_INFO_TOPIC(t, v) ((zx_object_info_topic_t)(t) | ((zx_object_info_topic_t)(v) << 28))

#define ZX_INFO_NONE ((zx_object_info_topic_t)0u)
#define ZX_INFO_HANDLE_VALID ((zx_object_info_topic_t)1u)
#define ZX_INFO_HANDLE_BASIC ((zx_object_info_topic_t)2u)
#define ZX_INFO_VMAR ((zx_object_info_topic_t)7u)
#define ZX_INFO_THREAD ((zx_object_info_topic_t)10u)
#define ZX_INFO_VMO_V1 __ZX_INFO_TOPIC(23u, 0)
#define ZX_INFO_VMO_V2 __ZX_INFO_TOPIC(23u, 1)
#define ZX_INFO_VMO_V3 __ZX_INFO_TOPIC(23u, 2)
#define ZX_INFO_VMO __ZX_INFO_TOPIC(23u, 3)

/* zx_info_vmo_t.flags */
#define ZX_INFO_VMO_TYPE_PHYSICAL ((uint32_t)0u)
#define ZX_INFO_VMO_TYPE_PAGED ((uint32_t)1u << 0)
#define ZX_INFO_VMO_RESIZABLE ((uint32_t)1u << 1)
#define ZX_INFO_VMO_IS_COW_CLONE ((uint32_t)1u << 2)
#define ZX_INFO_VMO_VIA_HANDLE ((uint32_t)1u << 3)
#define ZX_INFO_VMO_VIA_MAPPING ((uint32_t)1u << 4)
#define ZX_INFO_VMO_PAGER_BACKED ((uint32_t)1u << 5)
#define ZX_INFO_VMO_CONTIGUOUS ((uint32_t)1u << 6)
#define ZX_INFO_VMO_DISCARDABLE ((uint32_t)1u << 7)

typedef struct zx_info_vmo {
  zx_koid_t koid;
  char name[ZX_MAX_NAME_LEN];
  uint64_t size_bytes;
  zx_koid_t parent_koid;
  size_t num_children;
  size_t num_mappings;
  size_t share_count;
  uint32_t flags;
  uint8_t padding1[4];
  uint64_t committed_bytes;
  zx_rights_t handle_rights;
  uint32_t cache_policy;
  uint64_t metadata_bytes;
  uint64_t committed_change_events;
  uint64_t populated_bytes;
  uint64_t committed_private_bytes;
  uint64_t populated_private_bytes;
  uint64_t committed_scaled_bytes;
  uint64_t populated_scaled_bytes;
  uint64_t committed_fractional_scaled_bytes;
  uint64_t populated_fractional_scaled_bytes;
} zx_info_vmo_t;

#ifdef __cplusplus
static_assert(sizeof(zx_info_vmo_t) == 176, "zx_info_vmo_t is 176 bytes");
#else
_Static_assert(sizeof(zx_info_vmo_t) == 176, "zx_info_vmo_t is 176 bytes");
#endif

#endif
