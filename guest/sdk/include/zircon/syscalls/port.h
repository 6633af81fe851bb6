/* <zircon/syscalls/port.h>: port packets (kvmpager SDK). kvmpager's ports carry page-request
 * packets; the other members of the union exist so Zircon code that names them compiles. */
#ifndef SYSROOT_ZIRCON_SYSCALLS_PORT_H_
#define SYSROOT_ZIRCON_SYSCALLS_PORT_H_

#include <zircon/types.h>

#define ZX_PKT_TYPE_USER ((uint8_t)0x00u)
#define ZX_PKT_TYPE_SIGNAL_ONE ((uint8_t)0x01u)
#define ZX_PKT_TYPE_GUEST_BELL ((uint8_t)0x03u)
#define ZX_PKT_TYPE_GUEST_MEM ((uint8_t)0x04u)
#define ZX_PKT_TYPE_GUEST_IO ((uint8_t)0x05u)
#define ZX_PKT_TYPE_GUEST_VCPU ((uint8_t)0x06u)
#define ZX_PKT_TYPE_INTERRUPT ((uint8_t)0x07u)
#define ZX_PKT_TYPE_PAGE_REQUEST ((uint8_t)0x09u)
/* kvmpager: a fatal page fault of a worker vCPU (see zx_kvmpager_set_exception_port). */
#define KVMPAGER_PKT_TYPE_EXCEPTION ((uint32_t)0x4b500001u)
#define ZX_EXCP_FATAL_PAGE_FAULT ((uint32_t)0x108u)

typedef uint32_t zx_packet_type_t;

#define ZX_PAGER_VMO_READ ((uint16_t)0)
#define ZX_PAGER_VMO_COMPLETE ((uint16_t)1)
#define ZX_PAGER_VMO_DIRTY ((uint16_t)2)

typedef union zx_packet_user {
  uint64_t u64[4];
  uint32_t u32[8];
  uint16_t u16[16];
  uint8_t c8[32];
} zx_packet_user_t;

typedef struct zx_packet_signal {
  zx_signals_t trigger;
  zx_signals_t observed;
  uint64_t count;
  uint64_t timestamp;
  uint64_t reserved1;
} zx_packet_signal_t;

typedef struct zx_packet_page_request {
  uint16_t command;
  uint16_t flags;
  uint32_t reserved0;
  uint64_t offset;
  uint64_t length;
  uint64_t reserved1;
} zx_packet_page_request_t;

typedef struct zx_packet_interrupt {
  zx_time_t timestamp;
  uint64_t reserved0;
  uint64_t reserved1;
  uint64_t reserved2;
} zx_packet_interrupt_t;

/* The body of a KVMPAGER_PKT_TYPE_EXCEPTION packet; the packet's status is the fault's
 * synth_code (ZX_ERR_IO, ZX_ERR_BAD_STATE, ZX_ERR_OUT_OF_RANGE, ...). */
typedef struct kvmpager_packet_exception {
  uint32_t vcpu;
  uint32_t exception;
  uint64_t address;
  uint64_t vmo_koid;
  uint64_t vmo_offset;
} kvmpager_packet_exception_t;

typedef struct zx_port_packet {
  uint64_t key;
  zx_packet_type_t type;
  zx_status_t status;
  union {
    zx_packet_user_t user;
    zx_packet_signal_t signal;
    zx_packet_interrupt_t interrupt;
    zx_packet_page_request_t page_request;
    kvmpager_packet_exception_t kvmpager_exception;
  };
} zx_port_packet_t;

#endif
