/* kvmpager SDK runtime: threads. Each vCPU but 0 has a mailbox; kp_thread_create() claims an
 * idle one and posts the function, the vCPU runs it and posts the result, kp_thread_join()
 * takes the result and frees the vCPU. Waiting vCPUs spin briefly, then nap in a PortWait with
 * a 200 µs deadline so idle vCPUs do not burn host CPU. With kp_catch_thread_crashes() a
 * thread's fatal page fault becomes a packet on the runtime's exception port: its vCPU is parked
 * for good (never reused), kp_thread_wait_crash() returns the packet and join gives
 * ZX_ERR_CANCELED. */
#include <kvmpager/sdk.h>
#include <zircon/syscalls.h>
#include <zircon/syscalls/port.h>

#include "runtime.h"

#define KP_MAX_VCPUS 64

enum { MB_IDLE = 0, MB_CLAIMED, MB_POSTED, MB_DONE, MB_CRASHED };

struct mailbox {
  volatile int state;
  kp_thread_fn fn;
  void* arg;
  int result;
  uint32_t ready; /* the vCPU has entered its loop */
};

static struct mailbox boxes[KP_MAX_VCPUS];

/* Crash reports: the exception port (0 until kp_catch_thread_crashes) and, per vCPU, the
 * packet of its fatal fault. Only the thread that creates and joins threads reads them. */
static zx_handle_t crash_port;
static zx_port_packet_t crash_packet[KP_MAX_VCPUS];
static uint8_t crashed[KP_MAX_VCPUS];
static kp_lock_t crash_lock;

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

zx_status_t kp_catch_thread_crashes(void) {
  kp_lock(&crash_lock);
  zx_status_t s = ZX_OK;
  if (crash_port == ZX_HANDLE_INVALID) {
    zx_handle_t port;
    s = zx_port_create(0, &port);
    if (s == ZX_OK) s = zx_kvmpager_set_exception_port(port, KP_CRASH_KEY);
    if (s == ZX_OK) __atomic_store_n(&crash_port, port, __ATOMIC_RELEASE);
  }
  kp_unlock(&crash_lock);
  return s;
}

/* Moves every queued crash packet to its vCPU's slot; waits until `deadline` for one. */
static void collect_crashes(zx_time_t deadline) {
  zx_handle_t port = __atomic_load_n(&crash_port, __ATOMIC_ACQUIRE);
  if (port == ZX_HANDLE_INVALID) return;
  zx_port_packet_t p;
  kp_lock(&crash_lock);
  while (zx_port_wait(port, deadline, &p) == ZX_OK) {
    uint32_t v = p.kvmpager_exception.vcpu;
    if (p.type == KVMPAGER_PKT_TYPE_EXCEPTION && v < KP_MAX_VCPUS) {
      crash_packet[v] = p;
      crashed[v] = 1;
      __atomic_store_n(&boxes[v].state, MB_CRASHED, __ATOMIC_RELEASE);
    }
    deadline = 0;
  }
  kp_unlock(&crash_lock);
}

zx_status_t kp_thread_wait_crash(kp_thread_t t, zx_time_t deadline, zx_port_packet_t* packet) {
  if (t.vcpu == 0 || t.vcpu >= KP_MAX_VCPUS) return ZX_ERR_INVALID_ARGS;
  if (__atomic_load_n(&crash_port, __ATOMIC_ACQUIRE) == ZX_HANDLE_INVALID) return ZX_ERR_BAD_STATE;
  for (;;) {
    if (crashed[t.vcpu]) {
      if (packet) *packet = crash_packet[t.vcpu];
      return ZX_OK;
    }
    if (load_state(&boxes[t.vcpu]) == MB_DONE) return ZX_ERR_BAD_STATE;
    zx_time_t now = zx_clock_get_monotonic();
    if (now >= deadline) return ZX_ERR_TIMED_OUT;
    zx_time_t step = now + ZX_MSEC(1);
    collect_crashes(step < deadline ? step : deadline);
  }
}

int kp_thread_done(kp_thread_t t) {
  return t.vcpu > 0 && t.vcpu < KP_MAX_VCPUS && load_state(&boxes[t.vcpu]) == MB_DONE;
}

zx_status_t kp_thread_join_deadline(kp_thread_t t, zx_time_t deadline, int* result) {
  if (t.vcpu == 0 || t.vcpu >= KP_MAX_VCPUS) return ZX_ERR_INVALID_ARGS;
  struct mailbox* mb = &boxes[t.vcpu];
  int st = load_state(mb);
  if (st == MB_CRASHED) return ZX_ERR_CANCELED;
  if (st != MB_POSTED && st != MB_DONE) return ZX_ERR_BAD_STATE;
  unsigned spins = 0;
  while (load_state(mb) != MB_DONE) {
    if (load_state(mb) == MB_CRASHED) return ZX_ERR_CANCELED;
    if (++spins < 2000) {
      __builtin_ia32_pause();
      continue;
    }
    if (zx_clock_get_monotonic() >= deadline) return ZX_ERR_TIMED_OUT;
    if (crash_port != ZX_HANDLE_INVALID)
      collect_crashes(zx_deadline_after(ZX_USEC(200)));
    else
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
