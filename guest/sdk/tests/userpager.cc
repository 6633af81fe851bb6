// Zircon's pager-test helpers for kvmpager's SDK (see userpager.h).
#include "userpager.h"

#include <stdio.h>

namespace pager_tests {

static zx_time_t Deadline(zx_time_t d) {
  return d == kForeverDeadline ? zx_deadline_after(kForeverWait) : d;
}

int g_stuck_threads;

Vmo::~Vmo() {
  if (base_ && g_stuck_threads == 0) zx_vmar_unmap(zx_vmar_root_self(), base_, size_);
  if (vmo_ != ZX_HANDLE_INVALID) zx_handle_close(vmo_);
}

void Vmo::GenerateBufferContents(void* dest, uint64_t len_pages, uint64_t offset_pages) const {
  uint64_t* w = static_cast<uint64_t*>(dest);
  uint64_t words = len_pages * kPage / sizeof(uint64_t);
  uint64_t first = offset_pages * kPage / sizeof(uint64_t);
  for (uint64_t i = 0; i < words; i++) w[i] = base_key_ + first + i;
}

static bool Matches(const uint64_t* got, const uint64_t* expected, uint64_t base, uint64_t first,
                    uint64_t words) {
  for (uint64_t i = 0; i < words; i++) {
    uint64_t want = expected ? expected[i] : base + first + i;
    if (got[i] != want) return false;
  }
  return true;
}

bool Vmo::CheckVmar(uint64_t offset_pages, uint64_t len_pages, const void* expected) const {
  const volatile uint64_t* w =
      reinterpret_cast<const volatile uint64_t*>(base_ + offset_pages * kPage);
  const uint64_t* e = static_cast<const uint64_t*>(expected);
  uint64_t words = len_pages * kPage / sizeof(uint64_t);
  uint64_t first = offset_pages * kPage / sizeof(uint64_t);
  for (uint64_t i = 0; i < words; i++) {
    if (w[i] != (e ? e[i] : base_key_ + first + i)) return false;
  }
  return true;
}

bool Vmo::CheckVmo(uint64_t offset_pages, uint64_t len_pages, const void* expected) const {
  uint64_t len = len_pages * kPage;
  uint64_t* buf = static_cast<uint64_t*>(malloc(len ? len : 1));
  if (!buf) return false;
  bool ok = zx_vmo_read(vmo_, buf, offset_pages * kPage, len) == ZX_OK &&
            Matches(buf, static_cast<const uint64_t*>(expected), base_key_,
                    offset_pages * kPage / sizeof(uint64_t), len / sizeof(uint64_t));
  free(buf);
  return ok;
}

bool Vmo::Commit(uint64_t offset_pages, uint64_t len_pages) const {
  return zx_vmo_op_range(vmo_, ZX_VMO_OP_COMMIT, offset_pages * kPage, len_pages * kPage,
                         nullptr, 0) == ZX_OK;
}

bool Vmo::Prefetch(uint64_t offset_pages, uint64_t len_pages) const {
  return zx_vmo_op_range(vmo_, ZX_VMO_OP_PREFETCH, offset_pages * kPage, len_pages * kPage,
                         nullptr, 0) == ZX_OK;
}

bool Vmo::Resize(uint64_t pages) {
  if (zx_vmo_set_size(vmo_, pages * kPage) != ZX_OK) return false;
  size_ = pages * kPage;
  return true;
}

Vmo* Vmo::Clone(uint64_t offset, uint64_t size, uint32_t options) {
  Vmo* c = new Vmo;
  c->size_ = size ? size : size_;
  c->key_ = key_;
  c->base_key_ = base_key_ + offset / sizeof(uint64_t);
  if (zx_vmo_create_child(vmo_, options, offset, c->size_, &c->vmo_) != ZX_OK ||
      zx_vmar_map(zx_vmar_root_self(), ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, c->vmo_, 0,
                  c->size_, &c->base_) != ZX_OK) {
    delete c;
    return nullptr;
  }
  return c;
}

bool check_buffer(Vmo* vmo, uint64_t offset, uint64_t len, bool check_vmar) {
  return check_vmar ? vmo->CheckVmar(offset, len) : vmo->CheckVmo(offset, len);
}

bool check_buffer_data(Vmo* vmo, uint64_t offset, uint64_t len, const void* data,
                       bool check_vmar) {
  return check_vmar ? vmo->CheckVmar(offset, len, data) : vmo->CheckVmo(offset, len, data);
}

UserPager::~UserPager() {
  if (handler_running_) {
    handler_stop_ = 1;
    kp_thread_join(handler_, nullptr);
  }
  for (size_t i = 0; i < num_vmos_; i++) delete vmos_[i];
  zx_handle_close(pager_);
  zx_handle_close(port_);
}

bool UserPager::Init() {
  // A thread's fatal fault must not stop the VM: WaitForCrash reads it.
  if (kp_catch_thread_crashes() != ZX_OK) return false;
  return zx_pager_create(0, &pager_) == ZX_OK && zx_port_create(0, &port_) == ZX_OK;
}

bool UserPager::CreateVmoWithOptions(uint64_t pages, uint32_t options, Vmo** out) {
  if (options & ZX_VMO_UNBOUNDED) return false;  // as upstream: refused on the client side
  if (num_vmos_ == sizeof vmos_ / sizeof vmos_[0]) return false;
  Vmo* v = new Vmo;
  v->size_ = pages * kPage;
  v->key_ = next_key_;
  v->base_key_ = next_key_;
  next_key_ += pages * kPage / sizeof(uint64_t) + 1;
  if (zx_pager_create_vmo(pager_, options, port_, v->key_, v->size_, &v->vmo_) != ZX_OK) {
    delete v;
    return false;
  }
  if (v->size_ && zx_vmar_map(zx_vmar_root_self(), ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0,
                              v->vmo_, 0, v->size_, &v->base_) != ZX_OK) {
    delete v;
    return false;
  }
  vmos_[num_vmos_++] = v;
  *out = v;
  return true;
}

void UserPager::ReleaseVmo(Vmo* vmo) {
  if (vmo->base_ && g_stuck_threads == 0) zx_vmar_unmap(zx_vmar_root_self(), vmo->base_, vmo->size_);
  vmo->base_ = 0;
  zx_handle_close(vmo->vmo_);
  vmo->vmo_ = ZX_HANDLE_INVALID;
}

bool UserPager::DetachVmo(Vmo* vmo) { return zx_pager_detach_vmo(pager_, vmo->vmo_) == ZX_OK; }

bool UserPager::SupplyPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages,
                            uint64_t src_page) {
  zx_handle_t aux;
  uint64_t len = len_pages * kPage;
  if (zx_vmo_create(len, 0, &aux) != ZX_OK) return false;
  void* buf = malloc(len);
  bool ok = buf != nullptr;
  if (ok) {
    vmo->GenerateBufferContents(buf, len_pages, src_page);
    ok = zx_vmo_write(aux, buf, 0, len) == ZX_OK &&
         zx_pager_supply_pages(pager_, vmo->vmo_, offset_pages * kPage, len, aux, 0) == ZX_OK;
  }
  free(buf);
  zx_handle_close(aux);
  return ok;
}

bool UserPager::SupplyPagesFrom(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages,
                                zx_handle_t aux) {
  bool ok = zx_pager_supply_pages(pager_, vmo->vmo_, offset_pages * kPage, len_pages * kPage,
                                  aux, 0) == ZX_OK;
  zx_handle_close(aux);
  return ok;
}

static bool Op(zx_handle_t pager, uint32_t op, Vmo* vmo, uint64_t off, uint64_t len,
               uint64_t data) {
  return zx_pager_op_range(pager, op, vmo->vmo(), off * kPage, len * kPage, data) == ZX_OK;
}

bool UserPager::FailPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages, zx_status_t code) {
  return Op(pager_, ZX_PAGER_OP_FAIL, vmo, offset_pages, len_pages, (uint64_t)(int64_t)code);
}
bool UserPager::DirtyPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages) {
  return Op(pager_, ZX_PAGER_OP_DIRTY, vmo, offset_pages, len_pages, 0);
}
bool UserPager::WritebackBeginPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages) {
  return Op(pager_, ZX_PAGER_OP_WRITEBACK_BEGIN, vmo, offset_pages, len_pages, 0);
}
bool UserPager::WritebackBeginZeroPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages) {
  return Op(pager_, ZX_PAGER_OP_WRITEBACK_BEGIN, vmo, offset_pages, len_pages,
            ZX_VMO_DIRTY_RANGE_IS_ZERO);
}
bool UserPager::WritebackEndPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages) {
  return Op(pager_, ZX_PAGER_OP_WRITEBACK_END, vmo, offset_pages, len_pages, 0);
}

bool UserPager::Take(bool (*match)(const zx_port_packet_t&, const void*), const void* ctx,
                     zx_time_t deadline, zx_port_packet_t* out) {
  for (size_t i = 0; i < stashed_; i++) {
    if (match(stash_[i], ctx)) {
      *out = stash_[i];
      memmove(&stash_[i], &stash_[i + 1], (stashed_ - i - 1) * sizeof stash_[0]);
      stashed_--;
      return true;
    }
  }
  for (;;) {
    zx_port_packet_t p;
    if (zx_port_wait(port_, deadline, &p) != ZX_OK) return false;
    if (match(p, ctx)) {
      *out = p;
      return true;
    }
    if (stashed_ < sizeof stash_ / sizeof stash_[0]) stash_[stashed_++] = p;
  }
}

struct ReqMatch {
  uint64_t key;
  uint16_t command;
  bool any_range;
  uint64_t offset, length;
};

static bool MatchRequest(const zx_port_packet_t& p, const void* ctx) {
  const ReqMatch* m = static_cast<const ReqMatch*>(ctx);
  return p.type == ZX_PKT_TYPE_PAGE_REQUEST && p.key == m->key &&
         p.page_request.command == m->command &&
         (m->any_range ||
          (p.page_request.offset == m->offset && p.page_request.length == m->length));
}

bool UserPager::WaitForRequest(uint64_t key, uint16_t command, uint64_t offset, uint64_t length,
                               zx_time_t deadline) {
  ReqMatch m{key, command, false, offset, length};
  zx_port_packet_t p;
  if (Take(MatchRequest, &m, Deadline(deadline), &p)) return true;
  if (deadline != 0) {
    // Say what came instead: the usual reason a case times out here.
    printf("    no %s [%lu, +%lu) request; %zu other packet(s) queued:\n",
           command == ZX_PAGER_VMO_READ ? "READ" : command == ZX_PAGER_VMO_DIRTY ? "DIRTY" : "COMPLETE",
           (unsigned long)(offset / kPage), (unsigned long)(length / kPage), stashed_);
    for (size_t i = 0; i < stashed_; i++)
      printf("      key %lu command %u [%lu, +%lu)\n", (unsigned long)stash_[i].key,
             stash_[i].page_request.command, (unsigned long)(stash_[i].page_request.offset / kPage),
             (unsigned long)(stash_[i].page_request.length / kPage));
  }
  return false;
}

bool UserPager::GetRequest(uint64_t key, uint16_t command, zx_time_t deadline,
                           zx_port_packet_t* out) {
  ReqMatch m{key, command, true, 0, 0};
  return Take(MatchRequest, &m, Deadline(deadline), out);
}

bool UserPager::WaitForPageRead(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages,
                                zx_time_t deadline) {
  return WaitForRequest(vmo->key(), ZX_PAGER_VMO_READ, offset_pages * kPage, len_pages * kPage,
                        deadline);
}

bool UserPager::WaitForPageDirty(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages,
                                 zx_time_t deadline) {
  return WaitForRequest(vmo->key(), ZX_PAGER_VMO_DIRTY, offset_pages * kPage, len_pages * kPage,
                        deadline);
}

bool UserPager::WaitForPageComplete(uint64_t key, zx_time_t deadline) {
  return WaitForRequest(key, ZX_PAGER_VMO_COMPLETE, 0, 0, deadline);
}

bool UserPager::GetPageReadRequest(Vmo* vmo, zx_time_t deadline, uint64_t* offset_pages,
                                   uint64_t* len_pages) {
  zx_port_packet_t p;
  if (!GetRequest(vmo->key(), ZX_PAGER_VMO_READ, deadline, &p)) return false;
  *offset_pages = p.page_request.offset / kPage;
  *len_pages = p.page_request.length / kPage;
  return true;
}

bool UserPager::GetPageDirtyRequest(Vmo* vmo, zx_time_t deadline, uint64_t* offset_pages,
                                    uint64_t* len_pages) {
  zx_port_packet_t p;
  if (!GetRequest(vmo->key(), ZX_PAGER_VMO_DIRTY, deadline, &p)) return false;
  *offset_pages = p.page_request.offset / kPage;
  *len_pages = p.page_request.length / kPage;
  return true;
}

bool UserPager::VerifyDirtyRanges(Vmo* vmo, const zx_vmo_dirty_range_t* ranges,
                                  size_t num_ranges) {
  zx_vmo_dirty_range_t got[64];
  size_t actual = 0, avail = 0;
  if (zx_pager_query_dirty_ranges(pager_, vmo->vmo(), 0, vmo->size(), got, sizeof got, &actual,
                                  &avail) != ZX_OK)
    return false;
  if (actual != num_ranges || avail != num_ranges) {
    printf("    dirty ranges: %zu (avail %zu), expected %zu\n", actual, avail, num_ranges);
    return false;
  }
  for (size_t i = 0; i < num_ranges; i++) {
    if (got[i].offset != ranges[i].offset * kPage || got[i].length != ranges[i].length * kPage ||
        got[i].options != ranges[i].options) {
      printf("    dirty range %zu: [%lu, +%lu) options %lu, expected [%lu, +%lu) options %lu\n", i,
             (unsigned long)(got[i].offset / kPage), (unsigned long)(got[i].length / kPage),
             (unsigned long)got[i].options, (unsigned long)ranges[i].offset,
             (unsigned long)ranges[i].length, (unsigned long)ranges[i].options);
      return false;
    }
  }
  return true;
}

static bool Modified(zx_handle_t pager, Vmo* vmo, bool* modified) {
  zx_pager_vmo_stats_t stats;
  if (zx_pager_query_vmo_stats(pager, vmo->vmo(), ZX_PAGER_RESET_VMO_STATS, &stats,
                               sizeof stats) != ZX_OK)
    return false;
  *modified = stats.modified == ZX_PAGER_VMO_STATS_MODIFIED;
  return true;
}

bool UserPager::VerifyModified(Vmo* vmo) {
  bool m = false;
  return Modified(pager_, vmo, &m) && m;
}

bool UserPager::VerifyNotModified(Vmo* vmo) {
  bool m = true;
  return Modified(pager_, vmo, &m) && !m;
}

Vmo* UserPager::FindVmo(uint64_t key) {
  for (size_t i = 0; i < num_vmos_; i++)
    if (vmos_[i]->key() == key) return vmos_[i];
  return nullptr;
}

bool UserPager::SupplyOne(const zx_port_packet_t& p) {
  Vmo* v = FindVmo(p.key);
  if (!v || p.page_request.command != ZX_PAGER_VMO_READ) return true;
  uint64_t off = p.page_request.offset / kPage, len = p.page_request.length / kPage;
  return SupplyPages(v, off, len);
}

bool UserPager::StartTaggedPageFaultHandler() {
  if (handler_running_) return true;
  auto loop = [](void* self) -> int {
    UserPager* up = static_cast<UserPager*>(self);
    while (!up->handler_stop_) {
      zx_port_packet_t p;
      if (zx_port_wait(up->port_, zx_deadline_after(ZX_MSEC(2)), &p) == ZX_OK) up->SupplyOne(p);
    }
    return 1;
  };
  handler_running_ = kp_thread_create(&handler_, loop, this) == ZX_OK;
  return handler_running_;
}

void UserPager::ClosePagerHandle() {
  zx_handle_close(pager_);
  pager_ = ZX_HANDLE_INVALID;
}

void UserPager::ClosePortHandle() {
  zx_handle_close(port_);
  port_ = ZX_HANDLE_INVALID;
}

TestThread::~TestThread() {
  if (started_ && !finished_) {
    int r;
    Join(&r);
  }
  drop_(ctx_);
}

int TestThread::Trampoline(void* self) {
  TestThread* t = static_cast<TestThread*>(self);
  __atomic_store_n(&t->running_, 1, __ATOMIC_RELEASE);
  return t->call_(t->ctx_) ? 1 : 0;
}

bool TestThread::Start() {
  started_ = kp_thread_create(&t_, Trampoline, this) == ZX_OK;
  if (!started_) printf("    TestThread: no idle vCPU (run with more vCPUs)\n");
  return started_;
}

bool TestThread::Join(int* result) {
  if (!started_ || finished_) return false;
  zx_status_t s = kp_thread_join_deadline(t_, zx_deadline_after(kForeverWait), result);
  if (s != ZX_OK) {
    printf("    TestThread on vCPU %u: %s\n", t_.vcpu,
           s == ZX_ERR_CANCELED ? "crashed" : "did not finish in time");
    if (s == ZX_ERR_CANCELED) {
      finished_ = true;
    } else {
      g_stuck_threads++;
      finished_ = true;  // never joined again
    }
    return false;
  }
  finished_ = true;
  return true;
}

bool TestThread::Wait() {
  int r = 0;
  return Join(&r) && r == 1;
}

bool TestThread::WaitForFailure() {
  int r = 1;
  return Join(&r) && r == 0;
}

bool TestThread::WaitForCrash(uintptr_t addr, zx_status_t status) {
  if (!started_ || finished_) return false;
  zx_port_packet_t p;
  zx_status_t s = kp_thread_wait_crash(t_, zx_deadline_after(kForeverWait), &p);
  if (s != ZX_OK) {
    printf("    TestThread on vCPU %u did not crash (%d)\n", t_.vcpu, s);
    return false;
  }
  finished_ = true;  // its vCPU is parked for good
  uint64_t page = addr & ~(uint64_t)(kPage - 1);
  if (p.status != status || p.kvmpager_exception.address != page) {
    printf("    crash on vCPU %u: status %d at %#lx, expected %d at %#lx\n", t_.vcpu, p.status,
           (unsigned long)p.kvmpager_exception.address, status, (unsigned long)page);
    return false;
  }
  return true;
}

bool TestThread::WaitForBlocked() {
  zx_time_t deadline = zx_deadline_after(kForeverWait);
  while (!__atomic_load_n(&running_, __ATOMIC_ACQUIRE)) {
    if (zx_clock_get_monotonic() > deadline) return false;
    zx_nanosleep(zx_deadline_after(ZX_USEC(100)));
  }
  zx_nanosleep(zx_deadline_after(ZX_MSEC(20)));
  return !Done();
}

}  // namespace pager_tests
