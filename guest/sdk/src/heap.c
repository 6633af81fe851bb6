/* kvmpager SDK runtime: the heap (malloc/free/calloc/realloc). Memory between __heap_start (after
 * .bss) and the vCPU stacks at the top of RAM. Blocks of 16 B .. 1 MiB come from power-of-two
 * size classes with free lists; bigger blocks are carved in whole pages and kept on one free
 * list for reuse (first fit). Every block has a 16-byte header; one spin lock guards it all. */
#include <kvmpager/sdk.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define CLASSES 17 /* 16 B << 0..16 = 16 B .. 1 MiB */
#define HDR 16

struct block {
  uint64_t size; /* usable bytes */
  struct block* next;
};

extern char __heap_start[];
static uintptr_t heap_next, heap_end;
static struct block* free_class[CLASSES];
static struct block* free_large;
static kp_lock_t heap_lock;

void __kp_heap_init(uint64_t ram, uint32_t ncpus) {
  heap_next = ((uintptr_t)__heap_start + 15) & ~(uintptr_t)15;
  uint64_t stacks = (uint64_t)ncpus * KVMPAGER_VCPU_STACK_SIZE + KVMPAGER_VCPU_STACK_SIZE;
  heap_end = ram > stacks ? (uintptr_t)(ram - stacks) : heap_next;
  if (heap_end < heap_next) heap_end = heap_next;
}

static int class_of(size_t n) {
  for (int c = 0; c < CLASSES; c++)
    if (n <= ((size_t)16 << c)) return c;
  return -1;
}

static void* carve(uint64_t usable) {
  if (heap_end - heap_next < usable + HDR) return NULL;
  struct block* b = (struct block*)heap_next;
  heap_next += usable + HDR;
  b->size = usable;
  return b;
}

static struct block* take_large(size_t n) {
  for (struct block** p = &free_large; *p; p = &(*p)->next) {
    if ((*p)->size >= n) {
      struct block* b = *p;
      *p = b->next;
      return b;
    }
  }
  uint64_t usable = ((uint64_t)n + HDR + 4095) / 4096 * 4096 - HDR;
  return (struct block*)carve(usable);
}

void* malloc(size_t n) {
  if (n == 0) n = 1;
  if (n > ((size_t)1 << 40)) return NULL;
  int c = class_of(n);
  kp_lock(&heap_lock);
  struct block* b;
  if (c >= 0 && free_class[c]) {
    b = free_class[c];
    free_class[c] = b->next;
  } else if (c >= 0) {
    b = (struct block*)carve((uint64_t)16 << c);
  } else {
    b = take_large(n);
  }
  kp_unlock(&heap_lock);
  return b ? (char*)b + HDR : NULL;
}

void free(void* p) {
  if (!p) return;
  struct block* b = (struct block*)((char*)p - HDR);
  int c = class_of(b->size);
  kp_lock(&heap_lock);
  if (c >= 0 && ((size_t)16 << c) == b->size) {
    b->next = free_class[c];
    free_class[c] = b;
  } else {
    b->next = free_large;
    free_large = b;
  }
  kp_unlock(&heap_lock);
}

void* calloc(size_t n, size_t m) {
  if (m && n > (size_t)-1 / m) return NULL;
  void* p = malloc(n * m);
  if (p) memset(p, 0, n * m);
  return p;
}

void* realloc(void* p, size_t n) {
  if (!p) return malloc(n);
  struct block* b = (struct block*)((char*)p - HDR);
  if (n <= b->size) return p;
  void* q = malloc(n);
  if (q) {
    memcpy(q, p, b->size);
    free(p);
  }
  return q;
}

void* aligned_alloc(size_t align, size_t n) {
  if (align <= 16) return malloc(n);
  /* Over-aligned blocks are rare here: leak the slack rather than track it. */
  char* p = (char*)malloc(n + align + HDR);
  if (!p) return NULL;
  uintptr_t a = ((uintptr_t)p + HDR + align - 1) & ~(uintptr_t)(align - 1);
  struct block* h = (struct block*)(a - HDR);
  h->size = n; /* freed into the large list: never split, so harmless */
  return (void*)a;
}
