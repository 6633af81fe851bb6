/* kvmpager SDK runtime: program start. vCPU 0 sets up the heap and the sleep port, runs the
 * constructors and main(), and exits the VM with main's return value; the other vCPUs wait
 * until that set-up is done and then run threads (threads.c). */
#include <kvmpager/sdk.h>
#include <zircon/syscalls.h>

#include "runtime.h"

int main(void);

zx_handle_t __kp_sleep_port;
static uint32_t vm_ncpus;
static uint64_t vm_ram;
static volatile int runtime_ready;

typedef void (*kp_ctor_t)(void);
extern kp_ctor_t __init_array_start[] __attribute__((weak));
extern kp_ctor_t __init_array_end[] __attribute__((weak));

uint32_t kp_vcpu_count(void) { return vm_ncpus; }
uint64_t kp_ram_size(void) { return vm_ram; }

void kp_exit(int code) {
  for (;;) kp_hypercall(KVMPAGER_CALL_EXIT, (uint64_t)(int64_t)code, 0, 0, 0, 0, 0, 0, 0);
}

void kp_console_write(const char* buf, size_t len) {
  kp_hypercall(KVMPAGER_CALL_CONSOLE_WRITE, (uint64_t)(uintptr_t)buf, len, 0, 0, 0, 0, 0, 0);
}

static void run_constructors(void) {
  for (kp_ctor_t* c = __init_array_start; c && c < __init_array_end; c++) (*c)();
}

__attribute__((noreturn, used)) void __kvmpager_sdk_start(uint64_t vcpu, uint64_t ncpus,
                                                          uint64_t ram) {
  if (vcpu != 0) {
    while (!__atomic_load_n(&runtime_ready, __ATOMIC_ACQUIRE)) __builtin_ia32_pause();
    __kp_worker_loop((uint32_t)vcpu);
  }
  vm_ncpus = (uint32_t)ncpus;
  vm_ram = ram;
  __kp_heap_init(ram, (uint32_t)ncpus);
  if (zx_port_create(0, &__kp_sleep_port) != ZX_OK) __kp_sleep_port = ZX_HANDLE_INVALID;
  __atomic_store_n(&runtime_ready, 1, __ATOMIC_RELEASE);
  run_constructors();
  kp_exit(main());
}
