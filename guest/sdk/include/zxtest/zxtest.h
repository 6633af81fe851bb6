/* <zxtest/zxtest.h>: the subset of zxtest the kvmpager SDK provides, for C and C++.
 *
 * TEST(Suite, Name) registers a case (a table in the `zxtest_tests` section, walked by the
 * runner; no constructors needed). Checks: ASSERT_* (fatal: the case function returns) and
 * EXPECT_* (non-fatal) for EQ, NE, LT, LE, GT, GE, TRUE, FALSE, OK, STATUS, NULL, NOT_NULL,
 * BYTES_EQ; ASSERT_NO_FATAL_FAILURE(stmt); ZXTEST_SKIP(fmt, ...). Every check takes an optional
 * printf-style message: ASSERT_EQ(a, b, "page %zu", i). Values of failed comparisons are
 * printed in C++; in C the expressions are.
 *
 * RUN_ALL_TESTS() runs the cases in source order (files in link order) on the calling vCPU and prints, like kvmpager's
 * conformance suite:
 *   registered N cases
 *   [PASS] Suite.Name | [FAIL] Suite.Name: first message | [SKIP] Suite.Name: reason
 *   S skipped
 *   P passed, F failed
 * and reports each case with the TestReport hypercall (a skip as passed, message
 * "SKIPPED: reason"). The SDK library's default main() is `return RUN_ALL_TESTS(0, NULL);`.
 * As in zxtest, checks belong on the main thread (vCPU 0). */
#ifndef ZXTEST_ZXTEST_H_
#define ZXTEST_ZXTEST_H_

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <zircon/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zxtest_case {
  const char* suite;
  const char* name;
  void (*fn)(void);
  const char* file;
  int line;
} zxtest_case_t;

int zxtest_run_all_tests(int argc, char** argv);
/* Records a failure: prints `file:line: what` plus the optional message. */
void zxtest_fail(int fatal, const char* file, int line, const char* what, const char* fmt, ...)
    __attribute__((format(printf, 5, 6)));
void zxtest_skip(const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
int zxtest_has_fatal_failure(void);
int zxtest_has_failure(void);
int zxtest_is_skipped(void);
void zxtest_vfail(int fatal, const char* file, int line, const char* what, const char* values,
                  const char* fmt, va_list ap);
int zxtest_bytes_eq(const void* a, const void* b, size_t n, char* where, size_t where_len);

#ifdef __cplusplus
}
#endif

#define RUN_ALL_TESTS(argc, argv) zxtest_run_all_tests((argc), (argv))

#define ZXTEST_CAT_(a, b) a##b
#define ZXTEST_CAT(a, b) ZXTEST_CAT_(a, b)
#define ZXTEST_FN(s, n) ZXTEST_CAT(ZXTEST_CAT(zxtest_fn_, s), ZXTEST_CAT(_, n))
#define ZXTEST_REC(s, n) ZXTEST_CAT(ZXTEST_CAT(zxtest_rec_, s), ZXTEST_CAT(_, n))

#define TEST(Suite, Name)                                                            \
  static void ZXTEST_FN(Suite, Name)(void);                                          \
  __attribute__((used, section("zxtest_tests"), aligned(8))) static const zxtest_case_t \
      ZXTEST_REC(Suite, Name) = {#Suite, #Name, ZXTEST_FN(Suite, Name), __FILE__, __LINE__};             \
  static void ZXTEST_FN(Suite, Name)(void)

#define ZXTEST_RETURN_IF_FATAL_1 return
#define ZXTEST_RETURN_IF_FATAL_0 (void)0
#define ZXTEST_RETURN_IF(fatal) ZXTEST_CAT(ZXTEST_RETURN_IF_FATAL_, fatal)

#define ZXTEST_CHECK_BOOL(fatal, cond, text, ...)                           \
  do {                                                                      \
    if (!(cond)) {                                                          \
      zxtest_fail(fatal, __FILE__, __LINE__, text, " " __VA_ARGS__);         \
      ZXTEST_RETURN_IF(fatal);                                              \
    }                                                                       \
  } while (0)

#ifdef __cplusplus
#include <type_traits>

namespace zxtest_internal {

struct Text {
  char s[64];
};

template <typename T>
Text Show(const T& v) {
  using D = std::decay_t<T>;
  Text t{};
  char* p = t.s;
  auto hex = [&](unsigned long long x) {
    const char* d = "0123456789abcdef";
    char r[20];
    int n = 0;
    do r[n++] = d[x & 15], x >>= 4;
    while (x);
    *p++ = '0', *p++ = 'x';
    while (n) *p++ = r[--n];
  };
  auto dec = [&](unsigned long long x, bool neg) {
    char r[24];
    int n = 0;
    do r[n++] = (char)('0' + x % 10), x /= 10;
    while (x);
    if (neg) *p++ = '-';
    while (n) *p++ = r[--n];
  };
  if constexpr (std::is_same_v<D, bool>) {
    const char* w = v ? "true" : "false";
    while (*w) *p++ = *w++;
  } else if constexpr (std::is_enum_v<D>) {
    dec((unsigned long long)(long long)v, (long long)v < 0);
  } else if constexpr (std::is_integral_v<D> && std::is_signed_v<D>) {
    long long x = (long long)v;
    dec(x < 0 ? 0ull - (unsigned long long)x : (unsigned long long)x, x < 0);
  } else if constexpr (std::is_integral_v<D>) {
    unsigned long long x = (unsigned long long)v;
    dec(x, false);
    if (x > 9) {
      *p++ = ' ', *p++ = '(';
      hex(x);
      *p++ = ')';
    }
  } else if constexpr (std::is_pointer_v<D> || std::is_null_pointer_v<D>) {
    hex((unsigned long long)(uintptr_t)v);
  } else {
    const char* w = "<value>";
    while (*w) *p++ = *w++;
  }
  *p = 0;
  return t;
}

/* a OP b without sign-compare surprises: integers compare by value. */
template <typename A, typename B>
constexpr int Compare(const A& a, const B& b) {
  using DA = std::decay_t<A>;
  using DB = std::decay_t<B>;
  if constexpr (std::is_integral_v<DA> && std::is_integral_v<DB> &&
                std::is_signed_v<DA> != std::is_signed_v<DB>) {
    if constexpr (std::is_signed_v<DA>) {
      if (a < 0) return -1;
      unsigned long long x = (unsigned long long)a, y = (unsigned long long)b;
      return x < y ? -1 : x > y;
    } else {
      if (b < 0) return 1;
      unsigned long long x = (unsigned long long)a, y = (unsigned long long)b;
      return x < y ? -1 : x > y;
    }
  } else {
    return a < b ? -1 : (b < a ? 1 : 0);
  }
}

template <typename A, typename B>
constexpr bool Equal(const A& a, const B& b) {
  using DA = std::decay_t<A>;
  using DB = std::decay_t<B>;
  if constexpr (std::is_integral_v<DA> && std::is_integral_v<DB>) {
    return Compare(a, b) == 0;
  } else {
    return a == b;
  }
}

void Fail2(int fatal, const char* file, int line, const char* expr, const char* va,
           const char* vb, const char* fmt, ...) __attribute__((format(printf, 7, 8)));

}  // namespace zxtest_internal

#define ZXTEST_CMP(fatal, test, opstr, a, b, ...)                                          \
  do {                                                                                     \
    const auto& zxtest_a_ = (a);                                                           \
    const auto& zxtest_b_ = (b);                                                           \
    if (!(test)) {                                                                         \
      zxtest_internal::Fail2(fatal, __FILE__, __LINE__, #a " " opstr " " #b,               \
                             zxtest_internal::Show(zxtest_a_).s,                           \
                             zxtest_internal::Show(zxtest_b_).s, " " __VA_ARGS__);          \
      ZXTEST_RETURN_IF(fatal);                                                             \
    }                                                                                      \
  } while (0)
#define ZXTEST_EQ_(f, a, b, ...) \
  ZXTEST_CMP(f, zxtest_internal::Equal(zxtest_a_, zxtest_b_), "==", a, b, __VA_ARGS__)
#define ZXTEST_NE_(f, a, b, ...) \
  ZXTEST_CMP(f, !zxtest_internal::Equal(zxtest_a_, zxtest_b_), "!=", a, b, __VA_ARGS__)
#define ZXTEST_ORD_(f, op, a, b, ...) \
  ZXTEST_CMP(f, zxtest_internal::Compare(zxtest_a_, zxtest_b_) op 0, #op, a, b, __VA_ARGS__)
#define ZXTEST_NULL_(f, p, ...) ZXTEST_CHECK_BOOL(f, (p) == nullptr, #p " is null", __VA_ARGS__)
#define ZXTEST_NOT_NULL_(f, p, ...) \
  ZXTEST_CHECK_BOOL(f, (p) != nullptr, #p " is not null", __VA_ARGS__)
#else
#define ZXTEST_CMP_C(fatal, op, a, b, ...) \
  ZXTEST_CHECK_BOOL(fatal, (a)op(b), #a " " #op " " #b, __VA_ARGS__)
#define ZXTEST_EQ_(f, a, b, ...) ZXTEST_CMP_C(f, ==, a, b, __VA_ARGS__)
#define ZXTEST_NE_(f, a, b, ...) ZXTEST_CMP_C(f, !=, a, b, __VA_ARGS__)
#define ZXTEST_ORD_(f, op, a, b, ...) ZXTEST_CMP_C(f, op, a, b, __VA_ARGS__)
#define ZXTEST_NULL_(f, p, ...) ZXTEST_CHECK_BOOL(f, (p) == NULL, #p " is null", __VA_ARGS__)
#define ZXTEST_NOT_NULL_(f, p, ...) \
  ZXTEST_CHECK_BOOL(f, (p) != NULL, #p " is not null", __VA_ARGS__)
#endif

#define ZXTEST_BYTES_EQ_(fatal, a, b, n, ...)                                              \
  do {                                                                                     \
    char zxtest_where_[48];                                                                \
    if (!zxtest_bytes_eq((a), (b), (n), zxtest_where_, sizeof zxtest_where_)) {            \
      zxtest_fail(fatal, __FILE__, __LINE__, zxtest_where_, " " __VA_ARGS__);               \
      ZXTEST_RETURN_IF(fatal);                                                             \
    }                                                                                      \
  } while (0)

#define ASSERT_EQ(a, b, ...) ZXTEST_EQ_(1, a, b, __VA_ARGS__)
#define EXPECT_EQ(a, b, ...) ZXTEST_EQ_(0, a, b, __VA_ARGS__)
#define ASSERT_NE(a, b, ...) ZXTEST_NE_(1, a, b, __VA_ARGS__)
#define EXPECT_NE(a, b, ...) ZXTEST_NE_(0, a, b, __VA_ARGS__)
#define ASSERT_LT(a, b, ...) ZXTEST_ORD_(1, <, a, b, __VA_ARGS__)
#define EXPECT_LT(a, b, ...) ZXTEST_ORD_(0, <, a, b, __VA_ARGS__)
#define ASSERT_LE(a, b, ...) ZXTEST_ORD_(1, <=, a, b, __VA_ARGS__)
#define EXPECT_LE(a, b, ...) ZXTEST_ORD_(0, <=, a, b, __VA_ARGS__)
#define ASSERT_GT(a, b, ...) ZXTEST_ORD_(1, >, a, b, __VA_ARGS__)
#define EXPECT_GT(a, b, ...) ZXTEST_ORD_(0, >, a, b, __VA_ARGS__)
#define ASSERT_GE(a, b, ...) ZXTEST_ORD_(1, >=, a, b, __VA_ARGS__)
#define EXPECT_GE(a, b, ...) ZXTEST_ORD_(0, >=, a, b, __VA_ARGS__)
#define ASSERT_TRUE(c, ...) ZXTEST_CHECK_BOOL(1, (c), #c " is true", __VA_ARGS__)
#define EXPECT_TRUE(c, ...) ZXTEST_CHECK_BOOL(0, (c), #c " is true", __VA_ARGS__)
#define ASSERT_FALSE(c, ...) ZXTEST_CHECK_BOOL(1, !(c), #c " is false", __VA_ARGS__)
#define EXPECT_FALSE(c, ...) ZXTEST_CHECK_BOOL(0, !(c), #c " is false", __VA_ARGS__)
#define ASSERT_STATUS(s, e, ...) ZXTEST_EQ_(1, s, e, __VA_ARGS__)
#define EXPECT_STATUS(s, e, ...) ZXTEST_EQ_(0, s, e, __VA_ARGS__)
#define ASSERT_OK(s, ...) ZXTEST_EQ_(1, s, ZX_OK, __VA_ARGS__)
#define EXPECT_OK(s, ...) ZXTEST_EQ_(0, s, ZX_OK, __VA_ARGS__)
#define ASSERT_NOT_OK(s, ...) ZXTEST_NE_(1, s, ZX_OK, __VA_ARGS__)
#define EXPECT_NOT_OK(s, ...) ZXTEST_NE_(0, s, ZX_OK, __VA_ARGS__)
#define ASSERT_NULL(p, ...) ZXTEST_NULL_(1, p, __VA_ARGS__)
#define EXPECT_NULL(p, ...) ZXTEST_NULL_(0, p, __VA_ARGS__)
#define ASSERT_NOT_NULL(p, ...) ZXTEST_NOT_NULL_(1, p, __VA_ARGS__)
#define EXPECT_NOT_NULL(p, ...) ZXTEST_NOT_NULL_(0, p, __VA_ARGS__)
#define ASSERT_BYTES_EQ(a, b, n, ...) ZXTEST_BYTES_EQ_(1, a, b, n, __VA_ARGS__)
#define EXPECT_BYTES_EQ(a, b, n, ...) ZXTEST_BYTES_EQ_(0, a, b, n, __VA_ARGS__)

#define ASSERT_NO_FATAL_FAILURE(stmt, ...)                                                 \
  do {                                                                                     \
    stmt;                                                                                  \
    if (zxtest_has_fatal_failure()) {                                                      \
      zxtest_fail(1, __FILE__, __LINE__, "no fatal failure in " #stmt, " " __VA_ARGS__);    \
      return;                                                                              \
    }                                                                                      \
  } while (0)
#define EXPECT_NO_FATAL_FAILURE(stmt, ...) \
  do {                                     \
    stmt;                                  \
  } while (0)

#define ZXTEST_SKIP(...)                             \
  do {                                               \
    zxtest_skip(__FILE__, __LINE__, " " __VA_ARGS__); \
    return;                                          \
  } while (0)

#define CURRENT_TEST_HAS_FAILURES() (zxtest_has_failure() != 0)
#define CURRENT_TEST_HAS_FATAL_FAILURES() (zxtest_has_fatal_failure() != 0)

#endif
