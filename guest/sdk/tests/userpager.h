// Zircon's pager-test helpers, written for kvmpager's SDK: a pager with its port (UserPager),
// pager VMOs whose word i holds key + i and which are mapped read/write at creation (Vmo), and
// threads on idle vCPUs (TestThread). Requests are awaited with a 10 s deadline so a missing
// request fails the case instead of hanging the suite.
#ifndef KVMPAGER_SDK_TESTS_USERPAGER_H_
#define KVMPAGER_SDK_TESTS_USERPAGER_H_

#include <kvmpager/sdk.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zircon/syscalls.h>
#include <zircon/syscalls/port.h>
#include <zxtest/zxtest.h>

namespace pager_tests {

constexpr uint64_t kPage = 4096;
// How long a helper waits for a packet before it gives up.
constexpr zx_duration_t kWait = ZX_SEC(10);

class Vmo {
 public:
  zx_handle_t vmo() const { return vmo_; }
  uint64_t key() const { return key_; }
  uint64_t size() const { return size_; }
  uintptr_t base() const { return base_; }
  // Fills `dest` with what pages [offset, offset+len) of this VMO hold once supplied.
  void GenerateBufferContents(void* dest, uint64_t len_pages, uint64_t offset_pages) const;
  // Checks pages through the mapping / through zx_vmo_read against the generated contents
  // (or `expected`).
  bool CheckVmar(uint64_t offset_pages, uint64_t len_pages, const void* expected = nullptr) const;
  bool CheckVmo(uint64_t offset_pages, uint64_t len_pages, const void* expected = nullptr) const;
  // zx_vmo_op_range(COMMIT) of pages.
  bool Commit(uint64_t offset_pages, uint64_t len_pages) const;
  // A copy-on-write clone (SNAPSHOT_AT_LEAST_ON_WRITE), mapped; nullptr on failure.
  Vmo* Clone();

  zx_handle_t vmo_ = ZX_HANDLE_INVALID;
  uint64_t size_ = 0;
  uint64_t key_ = 0;
  uintptr_t base_ = 0;
};

class UserPager {
 public:
  UserPager() = default;
  ~UserPager();
  bool Init();
  bool CreateVmo(uint64_t pages, Vmo** out) { return CreateVmoWithOptions(pages, 0, out); }
  bool CreateVmoWithOptions(uint64_t pages, uint32_t options, Vmo** out);
  // Unmaps and closes the VMO (its handle), keeping the object for the pager's bookkeeping.
  void ReleaseVmo(Vmo* vmo);
  bool DetachVmo(Vmo* vmo);
  bool SupplyPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages, uint64_t src_page = 0);
  bool SupplyPagesFrom(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages, zx_handle_t aux,
                       uint64_t aux_offset = 0);
  bool FailPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages,
                 zx_status_t code = ZX_ERR_IO);
  bool WaitForPageRead(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages,
                       zx_time_t deadline = 0);
  bool WaitForPageComplete(uint64_t key, zx_time_t deadline = 0);
  // The next READ request of `vmo` (any offset); false on timeout.
  bool GetPageReadRequest(Vmo* vmo, zx_time_t deadline, uint64_t* offset_pages,
                          uint64_t* len_pages);
  // True if no packet arrives before `deadline` (and none is stashed).
  bool NoMorePackets(zx_time_t deadline);
  void ClosePagerHandle();
  void ClosePortHandle();
  zx_handle_t pager() const { return pager_; }
  zx_handle_t port() const { return port_; }

 private:
  bool WaitForPacket(bool (*match)(const zx_port_packet_t&, const void*), const void* ctx,
                     zx_time_t deadline);
  zx_handle_t pager_ = ZX_HANDLE_INVALID;
  zx_handle_t port_ = ZX_HANDLE_INVALID;
  uint64_t next_key_ = 1;
  zx_port_packet_t stash_[64];
  size_t stashed_ = 0;
};

// A function run on an idle vCPU. Returns true on success.
class TestThread {
 public:
  template <typename F>
  explicit TestThread(F f) {
    auto* holder = new Holder<F>(f);
    ctx_ = holder;
    call_ = &Holder<F>::Call;
    drop_ = &Holder<F>::Drop;
  }
  ~TestThread();
  TestThread(const TestThread&) = delete;
  TestThread& operator=(const TestThread&) = delete;
  bool Start();
  // The function returned true / false.
  bool Wait();
  bool WaitForFailure();
  // kvmpager has no "blocked on the pager" thread state: waits until the thread runs, then
  // gives it 20 ms to reach its fault (the cases that use this pass either way).
  bool WaitForBlocked();
  bool Done() const { return started_ && kp_thread_done(t_); }

 private:
  template <typename F>
  struct Holder {
    explicit Holder(F f) : fn(f) {}
    F fn;
    static bool Call(void* p) { return static_cast<Holder*>(p)->fn(); }
    static void Drop(void* p) { delete static_cast<Holder*>(p); }
  };
  static int Trampoline(void* self);
  bool Join(int* result);
  void* ctx_;
  bool (*call_)(void*);
  void (*drop_)(void*);
  kp_thread_t t_{};
  bool started_ = false;
  bool joined_ = false;
  volatile int running_ = 0;
};

}  // namespace pager_tests

// Defines Suite.Name##Vmar and Suite.Name##Vmo, the body taking `bool check_vmar`.
#define VMO_VMAR_TEST(Suite, Name)                           \
  static void Name##Body(bool check_vmar);                   \
  TEST(Suite, Name##Vmar) { Name##Body(true); }              \
  TEST(Suite, Name##Vmo) { Name##Body(false); }              \
  static void Name##Body(bool check_vmar)

#endif
