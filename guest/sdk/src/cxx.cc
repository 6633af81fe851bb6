// kvmpager SDK runtime: what C++ programs need from a freestanding runtime: operator
// new/delete over malloc/free, the ABI hooks g++/clang++ emit (__cxa_*), the libstdc++ throw
// helpers (report and exit: no exceptions), and zxtest's C++ failure printer.
#include <kvmpager/sdk.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <zxtest/zxtest.h>

namespace std {
enum class align_val_t : size_t;
struct nothrow_t;
}  // namespace std

static void* must_alloc(size_t n) {
  void* p = malloc(n);
  if (!p) {
    printf("operator new: out of memory (%zu bytes)\n", n);
    kp_exit(134);
  }
  return p;
}

void* operator new(size_t n) { return must_alloc(n); }
void* operator new[](size_t n) { return must_alloc(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return malloc(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return malloc(n); }
void* operator new(size_t n, std::align_val_t a) { return aligned_alloc((size_t)a, n); }
void* operator new[](size_t n, std::align_val_t a) { return aligned_alloc((size_t)a, n); }
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, size_t) noexcept { free(p); }
void operator delete[](void* p, size_t) noexcept { free(p); }
void operator delete(void* p, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { free(p); }

[[noreturn]] static void die(const char* what) {
  printf("C++ runtime: %s\n", what);
  kp_exit(134);
}

extern "C" {
void* __dso_handle = nullptr;
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }
[[noreturn]] void __cxa_pure_virtual() { die("pure virtual call"); }
int __cxa_guard_acquire(unsigned long long* g) { return !*(volatile char*)g; }
void __cxa_guard_release(unsigned long long* g) { *(volatile char*)g = 1; }
void __cxa_guard_abort(unsigned long long*) {}
}

namespace std {
[[noreturn]] void __throw_length_error(const char* s) { die(s); }
[[noreturn]] void __throw_bad_alloc() { die("bad_alloc"); }
[[noreturn]] void __throw_bad_array_new_length() { die("bad_array_new_length"); }
[[noreturn]] void __throw_logic_error(const char* s) { die(s); }
[[noreturn]] void __throw_out_of_range(const char* s) { die(s); }
[[noreturn]] void __throw_out_of_range_fmt(const char* s, ...) { die(s); }
[[noreturn]] void __throw_invalid_argument(const char* s) { die(s); }
[[noreturn]] void __throw_bad_function_call() { die("bad_function_call"); }
[[noreturn]] void __throw_system_error(int) { die("system_error"); }
}  // namespace std

namespace zxtest_internal {
void Fail2(int fatal, const char* file, int line, const char* expr, const char* va,
           const char* vb, const char* fmt, ...) {
  char values[140];
  snprintf(values, sizeof values, "%s vs %s", va, vb);
  va_list ap;
  va_start(ap, fmt);
  zxtest_vfail(fatal, file, line, expr, values, fmt, ap);
  va_end(ap);
}
}  // namespace zxtest_internal
