/* kvmpager SDK runtime: zxtest's runner (see <zxtest/zxtest.h>). */
#include <kvmpager/sdk.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zxtest/zxtest.h>

extern const zxtest_case_t __start_zxtest_tests[] __attribute__((weak));
extern const zxtest_case_t __stop_zxtest_tests[] __attribute__((weak));

static struct {
  int failed, fatal, skipped;
  char first[200]; /* the first failure's text, or the skip reason */
} cur;

int zxtest_has_fatal_failure(void) { return cur.fatal; }
int zxtest_has_failure(void) { return cur.failed; }
int zxtest_is_skipped(void) { return cur.skipped; }

static const char* base(const char* path) {
  const char* b = strrchr(path, '/');
  return b ? b + 1 : path;
}

void zxtest_vfail(int fatal, const char* file, int line, const char* what, const char* values,
                  const char* fmt, va_list ap) {
  char msg[160];
  vsnprintf(msg, sizeof msg, fmt, ap);
  const char* m = msg[0] == ' ' ? msg + 1 : msg;
  char text[sizeof cur.first];
  snprintf(text, sizeof text, "%s:%d: expected %s%s%s%s%s", base(file), line, what,
           values ? " (" : "", values ? values : "", values ? ")" : "", m[0] ? "" : "");
  if (m[0]) {
    size_t n = strlen(text);
    snprintf(text + n, sizeof text - n, ": %s", m);
  }
  printf("    %s\n", text);
  if (!cur.failed) memcpy(cur.first, text, sizeof text);
  cur.failed = 1;
  if (fatal) cur.fatal = 1;
}

void zxtest_fail(int fatal, const char* file, int line, const char* what, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  zxtest_vfail(fatal, file, line, what, NULL, fmt, ap);
  va_end(ap);
}

void zxtest_skip(const char* file, int line, const char* fmt, ...) {
  (void)file;
  (void)line;
  va_list ap;
  va_start(ap, fmt);
  char msg[160];
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(cur.first, sizeof cur.first, "%s", msg[0] == ' ' ? msg + 1 : msg);
  cur.skipped = 1;
}

int zxtest_bytes_eq(const void* a, const void* b, size_t n, char* where, size_t where_len) {
  const unsigned char* x = (const unsigned char*)a;
  const unsigned char* y = (const unsigned char*)b;
  if (!x || !y) {
    snprintf(where, where_len, "non-null buffers");
    return x == y;
  }
  for (size_t i = 0; i < n; i++) {
    if (x[i] != y[i]) {
      snprintf(where, where_len, "equal bytes (byte %zu: 0x%02x vs 0x%02x)", i, x[i], y[i]);
      return 0;
    }
  }
  return 1;
}

void kp_test_report(const char* name, int passed, const char* msg) {
  kp_hypercall(KVMPAGER_CALL_TEST_REPORT, (uint64_t)(uintptr_t)name, strlen(name),
               passed ? 1 : 0, (uint64_t)(uintptr_t)msg, strlen(msg), 0, 0, 0);
}

static size_t count_cases(void) {
  if (!__start_zxtest_tests) return 0;
  return (size_t)(__stop_zxtest_tests - __start_zxtest_tests);
}

/* Runs one case; returns 1 passed, 0 failed, 2 skipped. */
static int run_case(const zxtest_case_t* c) {
  char name[128], msg[220];
  snprintf(name, sizeof name, "%s.%s", c->suite, c->name);
  memset(&cur, 0, sizeof cur);
  c->fn();
  if (cur.failed) {
    printf("[FAIL] %s: %s\n", name, cur.first);
    kp_test_report(name, 0, cur.first);
    return 0;
  }
  if (cur.skipped) {
    printf("[SKIP] %s: %s\n", name, cur.first);
    snprintf(msg, sizeof msg, "SKIPPED: %s", cur.first);
    kp_test_report(name, 1, msg);
    return 2;
  }
  printf("[PASS] %s\n", name);
  kp_test_report(name, 1, "");
  return 1;
}

/* Source order: files in link order (the order the linker laid out their tables), then by line
 * (a compiler may emit one file's table in any order). */
static size_t file_rank(const char* file) {
  for (const zxtest_case_t* c = __start_zxtest_tests; c < __stop_zxtest_tests; c++)
    if (strcmp(c->file, file) == 0) return (size_t)(c - __start_zxtest_tests);
  return 0;
}

static int before(const zxtest_case_t* a, const zxtest_case_t* b) {
  size_t fa = file_rank(a->file), fb = file_rank(b->file);
  return fa < fb || (fa == fb && a->line < b->line);
}

static const zxtest_case_t** sorted_cases(size_t n) {
  const zxtest_case_t** v = (const zxtest_case_t**)malloc(n * sizeof *v + 1);
  if (!v) return NULL;
  for (size_t i = 0; i < n; i++) {
    size_t j = i;
    for (; j > 0 && before(&__start_zxtest_tests[i], v[j - 1]); j--) v[j] = v[j - 1];
    v[j] = &__start_zxtest_tests[i];
  }
  return v;
}

int zxtest_run_all_tests(int argc, char** argv) {
  (void)argc;
  (void)argv;
  size_t n = count_cases(), passed = 0, failed = 0, skipped = 0;
  const zxtest_case_t** order = sorted_cases(n);
  printf("registered %zu cases\n", n);
  for (size_t i = 0; i < n; i++) {
    int r = run_case(order ? order[i] : &__start_zxtest_tests[i]);
    if (r == 1) passed++;
    if (r == 0) failed++;
    if (r == 2) skipped++;
  }
  printf("%zu skipped\n", skipped);
  printf("%zu passed, %zu failed\n", passed, failed);
  return failed ? 1 : 0;
}
