// Zircon's pager writeback tests (zircon/system/utest/core/pager-writeback/pager-writeback.cc)
// for kvmpager, written against the SDK. Cases needing zx_pager_query_dirty_ranges skip,
// like Zircon's NEEDS_NEXT_SKIP, when the kernel lacks the call (ZX_ERR_BAD_SYSCALL).
#include <zircon/syscalls-next.h>
#include <zircon/syscalls.h>

#include "userpager.h"

using namespace pager_tests;

TEST(PagerWriteback, InvalidPagerOpRange) {
  zx_handle_t pager, port, vmo;
  ASSERT_OK(zx_pager_create(0, &pager));
  ASSERT_OK(zx_port_create(0, &port));
  ASSERT_OK(zx_pager_create_vmo(pager, ZX_VMO_TRAP_DIRTY, port, 0, kPage, &vmo));
  uint32_t ops[] = {ZX_PAGER_OP_FAIL, ZX_PAGER_OP_DIRTY, ZX_PAGER_OP_WRITEBACK_BEGIN,
                    ZX_PAGER_OP_WRITEBACK_END};
  for (uint32_t op : ops) {
    uint64_t data = op == ZX_PAGER_OP_FAIL ? (uint64_t)(int64_t)ZX_ERR_IO : 0;
    EXPECT_EQ(zx_pager_op_range(ZX_HANDLE_INVALID, op, vmo, 0, kPage, data), ZX_ERR_BAD_HANDLE);
    EXPECT_EQ(zx_pager_op_range(port, op, vmo, 0, kPage, data), ZX_ERR_WRONG_TYPE);
    EXPECT_EQ(zx_pager_op_range(pager, op, ZX_HANDLE_INVALID, 0, kPage, data),
              ZX_ERR_BAD_HANDLE);
    EXPECT_EQ(zx_pager_op_range(pager, op, port, 0, kPage, data), ZX_ERR_WRONG_TYPE);
    zx_handle_t plain;
    ASSERT_OK(zx_vmo_create(kPage, 0, &plain));
    EXPECT_EQ(zx_pager_op_range(pager, op, plain, 0, kPage, data), ZX_ERR_INVALID_ARGS);
    zx_handle_close(plain);
    EXPECT_EQ(zx_pager_op_range(pager, op, vmo, 1, kPage, data), ZX_ERR_INVALID_ARGS);
    EXPECT_EQ(zx_pager_op_range(pager, op, vmo, kPage, kPage, data), ZX_ERR_OUT_OF_RANGE);
  }
  // Op 0 is not an op.
  EXPECT_EQ(zx_pager_op_range(pager, 0, vmo, 0, kPage, 0), ZX_ERR_NOT_SUPPORTED);
  // FAIL takes only the permitted codes.
  EXPECT_EQ(zx_pager_op_range(pager, ZX_PAGER_OP_FAIL, vmo, 0, kPage, (uint64_t)(int64_t)ZX_ERR_BAD_HANDLE),
            ZX_ERR_INVALID_ARGS);
  EXPECT_EQ(zx_pager_op_range(pager, ZX_PAGER_OP_FAIL, vmo, 0, kPage, 0x1'0000'0000ull),
            ZX_ERR_INVALID_ARGS);
  // DIRTY of an absent page.
  EXPECT_EQ(zx_pager_op_range(pager, ZX_PAGER_OP_DIRTY, vmo, 0, kPage, 0), ZX_ERR_NOT_FOUND);
  zx_handle_close(vmo);
  zx_handle_close(port);
  zx_handle_close(pager);
}

TEST(PagerWriteback, Unbounded) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo = nullptr;
  EXPECT_FALSE(pager.CreateVmoWithOptions(1, ZX_VMO_UNBOUNDED, &vmo));
}
