// Zircon's pager-test helpers for kvmpager's SDK (see userpager.h).
#include "userpager.h"

#include <stdio.h>

namespace pager_tests {

static zx_time_t Deadline(zx_time_t d) { return d ? d : zx_deadline_after(kWait); }

void Vmo::GenerateBufferContents(void* dest, uint64_t len_pages, uint64_t offset_pages) const {
  uint64_t* w = static_cast<uint64_t*>(dest);
  uint64_t words = len_pages * kPage / sizeof(uint64_t);
  uint64_t first = offset_pages * kPage / sizeof(uint64_t);
  for (uint64_t i = 0; i < words; i++) w[i] = key_ + first + i;
}

bool Vmo::CheckVmar(uint64_t offset_pages, uint64_t len_pages, const void* expected) const {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(base_ + offset_pages * kPage);
  const uint64_t* e = static_cast<const uint64_t*>(expected);
  uint64_t words = len_pages * kPage / sizeof(uint64_t);
  uint64_t first = offset_pages * kPage / sizeof(uint64_t);
  for (uint64_t i = 0; i < words; i++) {
    uint64_t want = e ? e[i] : key_ + first + i;
    if (w[i] != want) return false;
  }
  return true;
}

bool Vmo::CheckVmo(uint64_t offset_pages, uint64_t len_pages, const void* expected) const {
  uint64_t len = len_pages * kPage;
  uint64_t* buf = static_cast<uint64_t*>(malloc(len));
  if (!buf) return false;
  bool ok = zx_vmo_read(vmo_, buf, offset_pages * kPage, len) == ZX_OK;
  if (ok) {
    const uint64_t* e = static_cast<const uint64_t*>(expected);
    uint64_t first = offset_pages * kPage / sizeof(uint64_t);
    for (uint64_t i = 0; ok && i < len / sizeof(uint64_t); i++)
      ok = buf[i] == (e ? e[i] : key_ + first + i);
  }
  free(buf);
  return ok;
}

bool Vmo::Commit(uint64_t offset_pages, uint64_t len_pages) const {
  return zx_vmo_op_range(vmo_, ZX_VMO_OP_COMMIT, offset_pages * kPage, len_pages * kPage,
                         nullptr, 0) == ZX_OK;
}

Vmo* Vmo::Clone() {
  Vmo* c = new Vmo;
  c->size_ = size_;
  c->key_ = key_;
  if (zx_vmo_create_child(vmo_, ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE, 0, size_, &c->vmo_) !=
          ZX_OK ||
      zx_vmar_map(zx_vmar_root_self(), ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0, c->vmo_, 0, size_,
                  &c->base_) != ZX_OK) {
    zx_handle_close(c->vmo_);
    delete c;
    return nullptr;
  }
  return c;
}

UserPager::~UserPager() {
  zx_handle_close(pager_);
  zx_handle_close(port_);
}

bool UserPager::Init() {
  return zx_pager_create(0, &pager_) == ZX_OK && zx_port_create(0, &port_) == ZX_OK;
}

bool UserPager::CreateVmoWithOptions(uint64_t pages, uint32_t options, Vmo** out) {
  if (options & ZX_VMO_UNBOUNDED) return false;  // as upstream: refused on the client side
  Vmo* v = new Vmo;
  v->size_ = pages * kPage;
  v->key_ = next_key_;
  next_key_ += pages * kPage / sizeof(uint64_t) + 1;
  if (zx_pager_create_vmo(pager_, options, port_, v->key_, v->size_, &v->vmo_) != ZX_OK) {
    delete v;
    return false;
  }
  if (v->size_ && zx_vmar_map(zx_vmar_root_self(), ZX_VM_PERM_READ | ZX_VM_PERM_WRITE, 0,
                              v->vmo_, 0, v->size_, &v->base_) != ZX_OK) {
    zx_handle_close(v->vmo_);
    delete v;
    return false;
  }
  *out = v;
  return true;
}

void UserPager::ReleaseVmo(Vmo* vmo) {
  if (vmo->base_) zx_vmar_unmap(zx_vmar_root_self(), vmo->base_, vmo->size_);
  vmo->base_ = 0;
  zx_handle_close(vmo->vmo_);
  vmo->vmo_ = ZX_HANDLE_INVALID;
}

bool UserPager::DetachVmo(Vmo* vmo) { return zx_pager_detach_vmo(pager_, vmo->vmo_) == ZX_OK; }

bool UserPager::SupplyPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages,
                            uint64_t src_page) {
  (void)src_page;
  zx_handle_t aux;
  uint64_t len = len_pages * kPage;
  if (zx_vmo_create(len, 0, &aux) != ZX_OK) return false;
  void* buf = malloc(len);
  bool ok = buf != nullptr;
  if (ok) {
    vmo->GenerateBufferContents(buf, len_pages, offset_pages);
    ok = zx_vmo_write(aux, buf, 0, len) == ZX_OK &&
         zx_pager_supply_pages(pager_, vmo->vmo_, offset_pages * kPage, len, aux, 0) == ZX_OK;
  }
  free(buf);
  zx_handle_close(aux);
  return ok;
}

bool UserPager::SupplyPagesFrom(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages,
                                zx_handle_t aux, uint64_t aux_offset) {
  return zx_pager_supply_pages(pager_, vmo->vmo_, offset_pages * kPage, len_pages * kPage, aux,
                               aux_offset) == ZX_OK;
}

bool UserPager::FailPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages, zx_status_t code) {
  return zx_pager_op_range(pager_, ZX_PAGER_OP_FAIL, vmo->vmo_, offset_pages * kPage,
                           len_pages * kPage, (uint64_t)(int64_t)code) == ZX_OK;
}

bool UserPager::WaitForPacket(bool (*match)(const zx_port_packet_t&, const void*),
                              const void* ctx, zx_time_t deadline) {
  for (size_t i = 0; i < stashed_; i++) {
    if (match(stash_[i], ctx)) {
      memmove(&stash_[i], &stash_[i + 1], (stashed_ - i - 1) * sizeof stash_[0]);
      stashed_--;
      return true;
    }
  }
  for (;;) {
    zx_port_packet_t p;
    if (zx_port_wait(port_, deadline, &p) != ZX_OK) return false;
    if (match(p, ctx)) return true;
    if (stashed_ < sizeof stash_ / sizeof stash_[0]) stash_[stashed_++] = p;
  }
}

struct ReqMatch {
  uint64_t key;
  uint16_t command;
  uint64_t offset, length;
};

static bool MatchRequest(const zx_port_packet_t& p, const void* ctx) {
  const ReqMatch* m = static_cast<const ReqMatch*>(ctx);
  return p.type == ZX_PKT_TYPE_PAGE_REQUEST && p.key == m->key &&
         p.page_request.command == m->command && p.page_request.offset == m->offset &&
         p.page_request.length == m->length;
}

bool UserPager::WaitForPageRead(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages,
                                zx_time_t deadline) {
  ReqMatch m{vmo->key_, ZX_PAGER_VMO_READ, offset_pages * kPage, len_pages * kPage};
  return WaitForPacket(MatchRequest, &m, Deadline(deadline));
}

bool UserPager::WaitForPageComplete(uint64_t key, zx_time_t deadline) {
  ReqMatch m{key, ZX_PAGER_VMO_COMPLETE, 0, 0};
  return WaitForPacket(MatchRequest, &m, Deadline(deadline));
}

struct AnyRead {
  uint64_t key;
  zx_port_packet_t* out;
};

static bool MatchAnyRead(const zx_port_packet_t& p, const void* ctx) {
  const AnyRead* m = static_cast<const AnyRead*>(ctx);
  if (p.type != ZX_PKT_TYPE_PAGE_REQUEST || p.key != m->key ||
      p.page_request.command != ZX_PAGER_VMO_READ)
    return false;
  *m->out = p;
  return true;
}

bool UserPager::GetPageReadRequest(Vmo* vmo, zx_time_t deadline, uint64_t* offset_pages,
                                   uint64_t* len_pages) {
  zx_port_packet_t p;
  AnyRead m{vmo->key_, &p};
  if (!WaitForPacket(MatchAnyRead, &m, Deadline(deadline))) return false;
  *offset_pages = p.page_request.offset / kPage;
  *len_pages = p.page_request.length / kPage;
  return true;
}

bool UserPager::NoMorePackets(zx_time_t deadline) {
  zx_port_packet_t p;
  return stashed_ == 0 && zx_port_wait(port_, deadline, &p) == ZX_ERR_TIMED_OUT;
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
  if (started_ && !joined_) {
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
  if (!started_ || joined_) return false;
  if (kp_thread_join_deadline(t_, zx_deadline_after(kWait), result) != ZX_OK) {
    printf("    TestThread on vCPU %u did not finish in time\n", t_.vcpu);
    return false;
  }
  joined_ = true;
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

bool TestThread::WaitForBlocked() {
  zx_time_t deadline = zx_deadline_after(kWait);
  while (!__atomic_load_n(&running_, __ATOMIC_ACQUIRE)) {
    if (zx_clock_get_monotonic() > deadline) return false;
    zx_nanosleep(zx_deadline_after(ZX_USEC(100)));
  }
  zx_nanosleep(zx_deadline_after(ZX_MSEC(20)));
  return !Done();
}

}  // namespace pager_tests
