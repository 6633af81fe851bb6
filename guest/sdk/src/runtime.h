/* kvmpager SDK runtime: what its C files share (not installed for programs). */
#ifndef KVMPAGER_SDK_RUNTIME_H_
#define KVMPAGER_SDK_RUNTIME_H_

#include <stdint.h>
#include <zircon/types.h>

/* A test-and-set spin lock. */
typedef struct {
  volatile int held;
} kp_lock_t;

static inline void kp_lock(kp_lock_t* l) {
  while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE)) {
    while (__atomic_load_n(&l->held, __ATOMIC_RELAXED)) __builtin_ia32_pause();
  }
}
static inline void kp_unlock(kp_lock_t* l) { __atomic_store_n(&l->held, 0, __ATOMIC_RELEASE); }

/* A port nobody queues to: zx_nanosleep waits on it with a deadline. */
extern zx_handle_t __kp_sleep_port;

/* Sets up the heap between __heap_start and the vCPU stacks. */
void __kp_heap_init(uint64_t ram, uint32_t ncpus);
/* The loop of vCPUs 1..n-1: run posted threads. */
__attribute__((noreturn)) void __kp_worker_loop(uint32_t vcpu);

#endif
