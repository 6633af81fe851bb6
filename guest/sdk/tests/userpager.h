// Zircon's pager-test helpers, written for kvmpager's SDK: a pager with its port (UserPager),
// pager VMOs whose word i holds key + i and which are mapped read/write at creation (Vmo), and
// threads on idle vCPUs (TestThread). Requests are awaited with a 10 s deadline when a case
// says "forever", so a missing request fails that case instead of hanging the suite.
#ifndef KVMPAGER_SDK_TESTS_USERPAGER_H_
#define KVMPAGER_SDK_TESTS_USERPAGER_H_

#include <kvmpager/sdk.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zircon/syscalls-next.h>
#include <zircon/syscalls.h>
#include <zircon/syscalls/port.h>
#include <zxtest/zxtest.h>

namespace pager_tests {

constexpr uint64_t kPage = 4096;
// What "forever" means here.
constexpr zx_duration_t kForeverWait = ZX_SEC(10);

// Threads that never finished (a failed case): their VMOs' mappings are kept, so a vCPU still
// blocked on a page never resumes into an unmapped hole.
extern int g_stuck_threads;

class Vmo {
 public:
  ~Vmo();
  zx_handle_t vmo() const { return vmo_; }
  uint64_t key() const { return key_; }
  uint64_t size() const { return size_; }
  uintptr_t base_addr() const { return base_; }
  // Fills `dest` with what pages [offset, offset+len) hold once supplied: word i of the VMO
  // holds key + i.
  void GenerateBufferContents(void* dest, uint64_t len_pages, uint64_t offset_pages) const;
  // Checks pages through the mapping / with zx_vmo_read (into a heap buffer: kvmpager's syscall
  // buffers must be RAM) against the generated contents or `expected`.
  bool CheckVmar(uint64_t offset_pages, uint64_t len_pages, const void* expected = nullptr) const;
  bool CheckVmo(uint64_t offset_pages, uint64_t len_pages, const void* expected = nullptr) const;
  bool Commit(uint64_t offset_pages, uint64_t len_pages) const;
  bool Prefetch(uint64_t offset_pages, uint64_t len_pages) const;
  bool Resize(uint64_t pages);
  // A child (SNAPSHOT_AT_LEAST_ON_WRITE unless `options` says otherwise) of [offset, offset+size)
  // bytes, mapped; nullptr on failure. Its key is the parent's shifted by offset, so the
  // generated contents still match.
  Vmo* Clone(uint64_t offset = 0, uint64_t size = 0,
             uint32_t options = ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE);

  zx_handle_t vmo_ = ZX_HANDLE_INVALID;
  uint64_t size_ = 0;
  uint64_t key_ = 0;
  uint64_t base_key_ = 0;  // generated contents: word i holds base_key_ + i
  uintptr_t base_ = 0;
};

// Whether pages read through the mapping or with zx_vmo_read match, as Zircon's check_buffer.
bool check_buffer(Vmo* vmo, uint64_t offset, uint64_t len, bool check_vmar);
bool check_buffer_data(Vmo* vmo, uint64_t offset, uint64_t len, const void* data,
                       bool check_vmar);

class UserPager {
 public:
  UserPager() = default;
  ~UserPager();
  bool Init();
  bool CreateVmo(uint64_t pages, Vmo** out) { return CreateVmoWithOptions(pages, 0, out); }
  bool CreateVmoWithOptions(uint64_t pages, uint32_t options, Vmo** out);
  // Unmaps and closes the VMO's handle.
  void ReleaseVmo(Vmo* vmo);
  bool DetachVmo(Vmo* vmo);
  // Supplies generated contents (of page `src_page` on, default: the same pages).
  bool SupplyPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages, uint64_t src_page);
  bool SupplyPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages) {
    return SupplyPages(vmo, offset_pages, len_pages, offset_pages);
  }
  // Supplies from `aux` (consumed: closed).
  bool SupplyPagesFrom(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages, zx_handle_t aux);
  bool FailPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages,
                 zx_status_t code = ZX_ERR_IO);
  bool DirtyPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages);
  bool WritebackBeginPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages);
  bool WritebackBeginZeroPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages);
  bool WritebackEndPages(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages);
  // deadline: 0 = don't wait, kForeverDeadline = "forever" (10 s here).
  bool WaitForPageRead(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages, zx_time_t deadline);
  bool WaitForPageDirty(Vmo* vmo, uint64_t offset_pages, uint64_t len_pages, zx_time_t deadline);
  bool WaitForPageComplete(uint64_t key, zx_time_t deadline);
  bool GetPageReadRequest(Vmo* vmo, zx_time_t deadline, uint64_t* offset_pages,
                          uint64_t* len_pages);
  bool GetPageDirtyRequest(Vmo* vmo, zx_time_t deadline, uint64_t* offset_pages,
                           uint64_t* len_pages);
  // Checks zx_pager_query_dirty_ranges against `ranges` (offsets/lengths in pages).
  bool VerifyDirtyRanges(Vmo* vmo, const zx_vmo_dirty_range_t* ranges, size_t num_ranges);
  // Checks zx_pager_query_vmo_stats's modified bit (and resets it).
  bool VerifyModified(Vmo* vmo);
  bool VerifyNotModified(Vmo* vmo);
  // A thread that supplies every READ request of this pager's VMOs (tagged by key) until the
  // pager goes away.
  bool StartTaggedPageFaultHandler();
  void ClosePagerHandle();
  void ClosePortHandle();
  zx_handle_t pager() const { return pager_; }
  zx_handle_t port() const { return port_; }

 private:
  bool WaitForRequest(uint64_t key, uint16_t command, uint64_t offset, uint64_t length,
                      zx_time_t deadline);
  bool GetRequest(uint64_t key, uint16_t command, zx_time_t deadline, zx_port_packet_t* out);
  bool Take(bool (*match)(const zx_port_packet_t&, const void*), const void* ctx,
            zx_time_t deadline, zx_port_packet_t* out);
  Vmo* FindVmo(uint64_t key);
  bool SupplyOne(const zx_port_packet_t& p);

  zx_handle_t pager_ = ZX_HANDLE_INVALID;
  zx_handle_t port_ = ZX_HANDLE_INVALID;
  uint64_t next_key_ = 1;
  zx_port_packet_t stash_[128];
  size_t stashed_ = 0;
  Vmo* vmos_[256];
  size_t num_vmos_ = 0;
  volatile int handler_stop_ = 0;
  kp_thread_t handler_{};
  bool handler_running_ = false;
};

// "Forever": the deadline helpers turn into now + kForeverWait.
constexpr zx_time_t kForeverDeadline = ZX_TIME_INFINITE;

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
  // The thread took a fatal page fault at `addr`'s page with `status` (kvmpager: the runtime's
  // exception port; the thread's vCPU stays parked).
  bool WaitForCrash(uintptr_t addr, zx_status_t status);
  // kvmpager has no "blocked on the pager" thread state: waits until the thread runs, then
  // gives it 20 ms to reach its fault; false if it has returned.
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
  bool finished_ = false;
  volatile int running_ = 0;
};

}  // namespace pager_tests

// Defines Suite.Name##Vmar and Suite.Name##Vmo, the body taking `bool check_vmar`.
#define VMO_VMAR_TEST(Suite, Name)              \
  static void Name##Body(bool check_vmar);      \
  TEST(Suite, Name##Vmar) { Name##Body(true); } \
  TEST(Suite, Name##Vmo) { Name##Body(false); } \
  static void Name##Body(bool check_vmar)

// A case kvmpager cannot run, registered by its Zircon name with the reason.
#define SKIP_CASE(Suite, Name, why) \
  TEST(Suite, Name) { ZXTEST_SKIP(why); }
#define SKIP_VMO_VMAR(Suite, Name, why) \
  SKIP_CASE(Suite, Name##Vmar, why)     \
  SKIP_CASE(Suite, Name##Vmo, why)

#endif
