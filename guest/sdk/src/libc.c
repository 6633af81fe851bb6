/* kvmpager SDK runtime: the C library subset a test author reaches for — <string.h>
 * (mem*, str*), <stdio.h> (printf family, puts, putchar: the console), <stdlib.h> (exit, abort,
 * rand, abs; malloc is heap.c). Declarations are the toolchain's usual headers. */
#include <kvmpager/sdk.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void* memcpy(void* restrict d, const void* restrict s, size_t n) {
  void* r = d;
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  return r;
}

void* memmove(void* d, const void* s, size_t n) {
  unsigned char* dp = (unsigned char*)d;
  const unsigned char* sp = (const unsigned char*)s;
  if (dp <= sp || dp >= sp + n) return memcpy(d, s, n);
  dp += n - 1;
  sp += n - 1;
  __asm__ volatile("std; rep movsb; cld" : "+D"(dp), "+S"(sp), "+c"(n) : : "memory");
  return d;
}

void* memset(void* d, int c, size_t n) {
  void* r = d;
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return r;
}

int memcmp(const void* a, const void* b, size_t n) {
  const unsigned char* x = (const unsigned char*)a;
  const unsigned char* y = (const unsigned char*)b;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

void* memchr(const void* s, int c, size_t n) {
  const unsigned char* p = (const unsigned char*)s;
  for (size_t i = 0; i < n; i++)
    if (p[i] == (unsigned char)c) return (void*)(p + i);
  return NULL;
}

size_t strlen(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

size_t strnlen(const char* s, size_t max) {
  size_t n = 0;
  while (n < max && s[n]) n++;
  return n;
}

int strcmp(const char* a, const char* b) {
  while (*a && *a == *b) a++, b++;
  return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char* a, const char* b, size_t n) {
  for (; n; n--, a++, b++) {
    if (*a != *b || !*a) return (unsigned char)*a - (unsigned char)*b;
  }
  return 0;
}

char* strchr(const char* s, int c) {
  for (;; s++) {
    if (*s == (char)c) return (char*)s;
    if (!*s) return NULL;
  }
}

char* strrchr(const char* s, int c) {
  const char* last = NULL;
  for (;; s++) {
    if (*s == (char)c) last = s;
    if (!*s) return (char*)last;
  }
}

char* strcpy(char* restrict d, const char* restrict s) {
  memcpy(d, s, strlen(s) + 1);
  return d;
}

char* strncpy(char* restrict d, const char* restrict s, size_t n) {
  size_t k = strnlen(s, n);
  memcpy(d, s, k);
  memset(d + k, 0, n - k);
  return d;
}

void exit(int code) { kp_exit(code); }
void _Exit(int code) { kp_exit(code); }

void abort(void) {
  static const char msg[] = "abort() called\n";
  kp_console_write(msg, sizeof msg - 1);
  kp_exit(134);
}

int abs(int x) { return x < 0 ? -x : x; }
long labs(long x) { return x < 0 ? -x : x; }

static uint64_t rand_state = 0x2545f4914f6cdd1dull;
void srand(unsigned seed) { rand_state = seed ? seed : 0x2545f4914f6cdd1dull; }
int rand(void) {
  /* xorshift64*: not thread-safe, like the C library's. */
  uint64_t x = rand_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rand_state = x;
  return (int)((x * 0x2545f4914f6cdd1dull) >> 33);
}

/* ---- printf ---- */

struct out {
  char* buf;
  size_t cap, len;
};

static void put(struct out* o, char c) {
  if (o->len + 1 < o->cap) o->buf[o->len] = c;
  o->len++;
}

static void put_padded(struct out* o, const char* s, size_t n, int width, int left, char pad) {
  int fill = width > (int)n ? width - (int)n : 0;
  if (!left && pad == '0' && n && (*s == '-')) {
    put(o, *s++);
    n--;
  }
  if (!left)
    for (int i = 0; i < fill; i++) put(o, pad);
  for (size_t i = 0; i < n; i++) put(o, s[i]);
  if (left)
    for (int i = 0; i < fill; i++) put(o, ' ');
}

static size_t fmt_u(char* tmp, unsigned long long v, unsigned base, int upper, int neg) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char rev[24];
  size_t n = 0, k = 0;
  do {
    rev[n++] = digits[v % base];
    v /= base;
  } while (v);
  if (neg) tmp[k++] = '-';
  while (n) tmp[k++] = rev[--n];
  return k;
}

enum len_mod { L_INT, L_CHAR, L_SHORT, L_LONG, L_LLONG, L_SIZE };

static unsigned long long arg_u(va_list* ap, enum len_mod m) {
  switch (m) {
    case L_CHAR: return (unsigned char)va_arg(*ap, unsigned);
    case L_SHORT: return (unsigned short)va_arg(*ap, unsigned);
    case L_LONG: return va_arg(*ap, unsigned long);
    case L_LLONG: return va_arg(*ap, unsigned long long);
    case L_SIZE: return va_arg(*ap, size_t);
    default: return va_arg(*ap, unsigned);
  }
}

static long long arg_s(va_list* ap, enum len_mod m) {
  switch (m) {
    case L_CHAR: return (signed char)va_arg(*ap, int);
    case L_SHORT: return (short)va_arg(*ap, int);
    case L_LONG: return va_arg(*ap, long);
    case L_LLONG: return va_arg(*ap, long long);
    case L_SIZE: return (long long)va_arg(*ap, size_t);
    default: return va_arg(*ap, int);
  }
}

static const char* parse_len(const char* f, enum len_mod* m) {
  *m = L_INT;
  if (*f == 'h') {
    *m = L_SHORT;
    if (*++f == 'h') *m = L_CHAR, f++;
  } else if (*f == 'l') {
    *m = L_LONG;
    if (*++f == 'l') *m = L_LLONG, f++;
  } else if (*f == 'z' || *f == 'j' || *f == 't') {
    *m = *f == 'z' ? L_SIZE : L_LLONG;
    f++;
  }
  return f;
}

static void conv(struct out* o, char c, enum len_mod m, va_list* ap, int width, int prec,
                 int left, char pad) {
  char tmp[32];
  size_t n;
  switch (c) {
    case 'd':
    case 'i': {
      long long v = arg_s(ap, m);
      n = fmt_u(tmp, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, 10, 0, v < 0);
      put_padded(o, tmp, n, width, left, pad);
      return;
    }
    case 'u': n = fmt_u(tmp, arg_u(ap, m), 10, 0, 0); break;
    case 'x': n = fmt_u(tmp, arg_u(ap, m), 16, 0, 0); break;
    case 'X': n = fmt_u(tmp, arg_u(ap, m), 16, 1, 0); break;
    case 'o': n = fmt_u(tmp, arg_u(ap, m), 8, 0, 0); break;
    case 'p':
      tmp[0] = '0', tmp[1] = 'x';
      n = 2 + fmt_u(tmp + 2, (uintptr_t)va_arg(*ap, void*), 16, 0, 0);
      break;
    case 'c':
      tmp[0] = (char)va_arg(*ap, int);
      n = 1;
      break;
    case 's': {
      const char* s = va_arg(*ap, const char*);
      if (!s) s = "(null)";
      put_padded(o, s, prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s), width, left, ' ');
      return;
    }
    default:
      tmp[0] = '%', tmp[1] = c;
      n = 2;
  }
  put_padded(o, tmp, n, width, left, pad);
}

int vsnprintf(char* restrict buf, size_t cap, const char* restrict f, va_list ap0) {
  struct out o = {buf, cap, 0};
  va_list ap;
  va_copy(ap, ap0);
  for (; *f; f++) {
    if (*f != '%') {
      put(&o, *f);
      continue;
    }
    if (*++f == '%') {
      put(&o, '%');
      continue;
    }
    int left = 0, width = 0, prec = -1;
    char pad = ' ';
    for (; *f == '-' || *f == '0' || *f == '+' || *f == ' ' || *f == '#'; f++) {
      if (*f == '-') left = 1;
      if (*f == '0') pad = '0';
    }
    if (*f == '*') width = va_arg(ap, int), f++;
    while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
    if (*f == '.') {
      prec = 0;
      if (*++f == '*') prec = va_arg(ap, int), f++;
      while (*f >= '0' && *f <= '9') prec = prec * 10 + (*f++ - '0');
    }
    enum len_mod m;
    f = parse_len(f, &m);
    if (!*f) break;
    conv(&o, *f, m, &ap, width, prec, left, pad);
  }
  va_end(ap);
  if (cap) buf[o.len < cap ? o.len : cap - 1] = 0;
  return (int)o.len;
}

int snprintf(char* restrict buf, size_t cap, const char* restrict f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(buf, cap, f, ap);
  va_end(ap);
  return n;
}

int vprintf(const char* restrict f, va_list ap) {
  char small[512];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(small, sizeof small, f, ap);
  if (n >= 0 && (size_t)n < sizeof small) {
    kp_console_write(small, (size_t)n);
  } else if (n > 0) {
    char* big = (char*)malloc((size_t)n + 1);
    if (big) {
      vsnprintf(big, (size_t)n + 1, f, ap2);
      kp_console_write(big, (size_t)n);
      free(big);
    }
  }
  va_end(ap2);
  return n;
}

int printf(const char* restrict f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vprintf(f, ap);
  va_end(ap);
  return n;
}

int puts(const char* s) {
  size_t n = strlen(s);
  char small[256];
  if (n + 1 <= sizeof small) {
    memcpy(small, s, n);
    small[n] = '\n';
    kp_console_write(small, n + 1);
  } else {
    kp_console_write(s, n);
    kp_console_write("\n", 1);
  }
  return (int)n + 1;
}

int putchar(int c) {
  char ch = (char)c;
  kp_console_write(&ch, 1);
  return (unsigned char)c;
}
