/* kvmpager SDK runtime: threads. Each vCPU but 0 has a mailbox; kp_thread_create() claims an
 * idle one and posts the function, the vCPU runs it and posts the result, kp_thread_join()
 * takes the result and frees the vCPU. Waiting vCPUs spin briefly, then nap in a PortWait with
 * a 200 µs deadline so idle vCPUs do not burn host CPU. */
#include <kvmpager/sdk.h>
#include <zircon/syscalls.h>

#include "runtime.h"

#define KP_MAX_VCPUS 64

enum { MB_IDLE = 0, MB_CLAIMED, MB_POSTED, MB_DONE };

struct mailbox {
  volatile int state;
  kp_thread_fn fn;
  void* arg;
  int result;
  uint32_t ready; /* the vCPU has entered its loop */
};

static struct mailbox boxes[KP_MAX_VCPUS];

static void nap(void) { zx_nanosleep(zx_deadline_after(ZX_USEC(200))); }

static int load_state(struct mailbox* mb) { return __atomic_load_n(&mb->state, __ATOMIC_ACQUIRE); }

void __kp_worker_loop(uint32_t vcpu) {
  if (vcpu >= KP_MAX_VCPUS) {
    for (;;) __builtin_ia32_pause();
  }
  struct mailbox* mb = &boxes[vcpu];
  __atomic_store_n(&mb->ready, 1, __ATOMIC_RELEASE);
  for (;;) {
    unsigned spins = 0;
    while (load_state(mb) != MB_POSTED) {
      if (++spins < 2000)
        __builtin_ia32_pause();
      else
        nap();
    }
    mb->result = mb->fn(mb->arg);
    __atomic_store_n(&mb->state, MB_DONE, __ATOMIC_RELEASE);
  }
}

uint32_t kp_current_vcpu(void) {
  /* Stacks are 64 KiB each at the top of RAM, vCPU 0's highest. */
  uint64_t sp = (uint64_t)(uintptr_t)__builtin_frame_address(0);
  uint64_t ram = kp_ram_size();
  if (sp >= ram) return 0;
  return (uint32_t)((ram - 1 - sp) / KVMPAGER_VCPU_STACK_SIZE);
}

static int usable(uint32_t i) {
  return i < kp_vcpu_count() && __atomic_load_n(&boxes[i].ready, __ATOMIC_ACQUIRE);
}

uint32_t kp_idle_vcpus(void) {
  uint32_t n = 0;
  for (uint32_t i = 1; i < KP_MAX_VCPUS; i++)
    if (usable(i) && load_state(&boxes[i]) == MB_IDLE) n++;
  return n;
}

static int claim(kp_thread_t* t, kp_thread_fn fn, void* arg) {
  for (uint32_t i = 1; i < KP_MAX_VCPUS && i < kp_vcpu_count(); i++) {
    int idle = MB_IDLE;
    if (!usable(i)) continue;
    if (__atomic_compare_exchange_n(&boxes[i].state, &idle, MB_CLAIMED, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED)) {
      boxes[i].fn = fn;
      boxes[i].arg = arg;
      __atomic_store_n(&boxes[i].state, MB_POSTED, __ATOMIC_RELEASE);
      t->vcpu = i;
      return 1;
    }
  }
  return 0;
}

zx_status_t kp_thread_create(kp_thread_t* t, kp_thread_fn fn, void* arg) {
  if (t == NULL || fn == NULL) return ZX_ERR_INVALID_ARGS;
  /* vCPUs that started a moment ago may not have entered their loop yet. */
  zx_time_t settle = zx_deadline_after(ZX_MSEC(50));
  for (;;) {
    if (claim(t, fn, arg)) return ZX_OK;
    int all_ready = 1;
    for (uint32_t i = 1; i < KP_MAX_VCPUS && i < kp_vcpu_count(); i++)
      if (!usable(i)) all_ready = 0;
    if (all_ready || zx_clock_get_monotonic() >= settle) return ZX_ERR_NO_RESOURCES;
    nap();
  }
}

int kp_thread_done(kp_thread_t t) {
  return t.vcpu > 0 && t.vcpu < KP_MAX_VCPUS && load_state(&boxes[t.vcpu]) == MB_DONE;
}

zx_status_t kp_thread_join_deadline(kp_thread_t t, zx_time_t deadline, int* result) {
  if (t.vcpu == 0 || t.vcpu >= KP_MAX_VCPUS) return ZX_ERR_INVALID_ARGS;
  struct mailbox* mb = &boxes[t.vcpu];
  int st = load_state(mb);
  if (st != MB_POSTED && st != MB_DONE) return ZX_ERR_BAD_STATE;
  unsigned spins = 0;
  while (load_state(mb) != MB_DONE) {
    if (++spins < 2000) {
      __builtin_ia32_pause();
      continue;
    }
    if (zx_clock_get_monotonic() >= deadline) return ZX_ERR_TIMED_OUT;
    nap();
  }
  if (result) *result = mb->result;
  __atomic_store_n(&mb->state, MB_IDLE, __ATOMIC_RELEASE);
  return ZX_OK;
}

zx_status_t kp_thread_join(kp_thread_t t, int* result) {
  return kp_thread_join_deadline(t, ZX_TIME_INFINITE, result);
}

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  kp_thread_t t;
  zx_status_t s = kp_thread_create(&t, func, arg);
  if (s == ZX_ERR_NO_RESOURCES) return thrd_nomem;
  if (s != ZX_OK) return thrd_error;
  *thr = t.vcpu;
  return thrd_success;
}

int thrd_join(thrd_t thr, int* res) {
  kp_thread_t t = {(uint32_t)thr};
  return kp_thread_join(t, res) == ZX_OK ? thrd_success : thrd_error;
}
