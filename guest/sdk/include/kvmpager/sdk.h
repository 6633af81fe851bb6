/* <kvmpager/sdk.h>: what the kvmpager SDK runtime adds to Zircon's API.
 *
 * - Hypercall numbers (the `Call` enum of src/abi.rs) and the raw hypercall.
 * - The VM's shape (vCPU count, RAM size) and exit.
 * - Threads: kp_thread_create() runs a function on the next idle vCPU (vCPUs 1..n-1 wait for
 *   work in the runtime); kp_thread_join() waits for it and returns its result. The C11-style
 *   thrd_create()/thrd_join() are the same calls. At most one thread per idle vCPU: with no
 *   idle vCPU the call fails (thrd_nomem / ZX_ERR_NO_RESOURCES).
 */
#ifndef KVMPAGER_SDK_H_
#define KVMPAGER_SDK_H_

#include <stdint.h>
#include <zircon/types.h>

/* Hypercall numbers (src/abi.rs `Call`). */
#define KVMPAGER_CALL_NULL 0
#define KVMPAGER_CALL_EXIT 1
#define KVMPAGER_CALL_CONSOLE_WRITE 2
#define KVMPAGER_CALL_CLOCK_GET_MONOTONIC 3
#define KVMPAGER_CALL_HANDLE_CLOSE 4
#define KVMPAGER_CALL_HANDLE_DUPLICATE 5
#define KVMPAGER_CALL_HANDLE_REPLACE 6
#define KVMPAGER_CALL_VMO_CREATE 7
#define KVMPAGER_CALL_VMO_READ 8
#define KVMPAGER_CALL_VMO_WRITE 9
#define KVMPAGER_CALL_VMO_GET_SIZE 10
#define KVMPAGER_CALL_VMO_OP_RANGE 11
#define KVMPAGER_CALL_VMO_CREATE_CHILD 12
#define KVMPAGER_CALL_VMO_GET_INFO 13
#define KVMPAGER_CALL_PAGER_CREATE 14
#define KVMPAGER_CALL_PAGER_CREATE_VMO 15
#define KVMPAGER_CALL_PAGER_DETACH_VMO 16
#define KVMPAGER_CALL_PAGER_VMO_OP 17
#define KVMPAGER_CALL_PAGER_SUPPLY_PAGES 18
#define KVMPAGER_CALL_PAGER_OP_RANGE 19
#define KVMPAGER_CALL_PORT_CREATE 20
#define KVMPAGER_CALL_PORT_WAIT 21
#define KVMPAGER_CALL_VMAR_MAP 22
#define KVMPAGER_CALL_VMAR_UNMAP 23
#define KVMPAGER_CALL_VCPU_COUNT 24
#define KVMPAGER_CALL_TEST_REPORT 25
#define KVMPAGER_CALL_SNAPSHOT 26
#define KVMPAGER_CALL_VMO_SET_SIZE 27
#define KVMPAGER_CALL_PAGER_QUERY_DIRTY_RANGES 28
#define KVMPAGER_CALL_PAGER_QUERY_VMO_STATS 29
#define KVMPAGER_CALL_KVMPAGER_SET_EXCEPTION_PORT 30

/* The key of the runtime's exception-port packets. */
#define KP_CRASH_KEY 0x6b70637261736821ull

/* The doorbell port (`out 0xe1, eax`) and the guest-physical layout. */
#define KVMPAGER_HYPERCALL_PORT 0xe1
/* The port the CPL-0 exception stub reports to (VMM-internal; guests never use it). */
#define KVMPAGER_EXCEPTION_PORT 0xe2
#define KVMPAGER_LOAD_ADDR 0x100000ull
#define KVMPAGER_APERTURE_START (64ull << 30)
#define KVMPAGER_APERTURE_SIZE (64ull << 30)
#define KVMPAGER_VCPU_STACK_SIZE (64ull << 10)
/* The handle value zx_vmar_root_self() returns (the runtime's, not a kernel handle). */
#define KVMPAGER_ROOT_VMAR_HANDLE ((zx_handle_t)0xfffffff1u)

#ifdef __cplusplus
extern "C" {
#endif

struct zx_port_packet;

/* The raw hypercall: rax = nr, arguments in rdi, rsi, rdx, r10, r8, r9, r12, r13. */
uint64_t kp_hypercall(uint64_t nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                      uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);

/* The VM: vCPU count and RAM size as the VMM passed them to _start. */
uint32_t kp_vcpu_count(void);
uint64_t kp_ram_size(void);
/* Stops the VM; `kvmpager run` exits with `code`. */
__attribute__((noreturn)) void kp_exit(int code);
/* Writes `len` bytes to the console. */
void kp_console_write(const char* buf, size_t len);
/* Reports one test case to the VMM (the TestReport hypercall). */
void kp_test_report(const char* name, int passed, const char* msg);

/* Threads on idle vCPUs. */
typedef int (*kp_thread_fn)(void* arg);
typedef struct kp_thread {
  uint32_t vcpu;
} kp_thread_t;
/* Runs fn(arg) on the next idle vCPU. ZX_ERR_NO_RESOURCES if none is idle. */
zx_status_t kp_thread_create(kp_thread_t* thread, kp_thread_fn fn, void* arg);
/* Waits until the thread returns; its result goes to *result (may be NULL). A crashed thread:
 * ZX_ERR_CANCELED. */
zx_status_t kp_thread_join(kp_thread_t thread, int* result);
/* Like join, but gives up at `deadline` with ZX_ERR_TIMED_OUT (the thread keeps running). */
zx_status_t kp_thread_join_deadline(kp_thread_t thread, zx_time_t deadline, int* result);
/* Whether the thread has returned. */
int kp_thread_done(kp_thread_t thread);
/* Turns a thread's fatal page fault (a FAIL, detach, pager close, shrink or unmap under a
 * blocked fault) into a report instead of a VM stop: the runtime registers its own exception
 * port (zx_kvmpager_set_exception_port); the crashed thread's vCPU is parked for good. */
zx_status_t kp_catch_thread_crashes(void);
/* Waits until the thread crashes (ZX_OK, its KVMPAGER_PKT_TYPE_EXCEPTION packet in *packet:
 * status = the fault's status, kvmpager_exception.address = the page's address), returns
 * (ZX_ERR_BAD_STATE) or `deadline` passes (ZX_ERR_TIMED_OUT). */
zx_status_t kp_thread_wait_crash(kp_thread_t thread, zx_time_t deadline,
                                 struct zx_port_packet* packet);
/* How many vCPUs are idle (can take a thread) now. */
uint32_t kp_idle_vcpus(void);
/* The vCPU the caller runs on. */
uint32_t kp_current_vcpu(void);

#ifdef __cplusplus
}
#endif

/* C11 <threads.h>: thrd_create()/thrd_join() are the same calls (thrd_t is the vCPU index);
 * the declarations are the C library's. */
#include <threads.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif
