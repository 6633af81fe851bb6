// Zircon's pager core tests (zircon/system/utest/core/pager/pager.cc) for kvmpager, written
// against the SDK from the tests' names, call sequences and expected results. Cases kvmpager
// cannot run are registered as named skips with the reason.
#include <stdio.h>
#include <zircon/syscalls.h>
#include <zircon/syscalls/object.h>

#include "userpager.h"

using namespace pager_tests;

namespace {

// Reads pages through the mapping or with zx_vmo_read, as the [V] cases do.
bool Check(Vmo* vmo, bool check_vmar, uint64_t off, uint64_t len) {
  return check_vmar ? vmo->CheckVmar(off, len) : vmo->CheckVmo(off, len);
}

zx_time_t Soon() { return zx_deadline_after(ZX_MSEC(50)); }

}  // namespace

VMO_VMAR_TEST(Pager, SinglePageTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  TestThread t([vmo, check_vmar]() { return Check(vmo, check_vmar, 0, 1); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  ASSERT_TRUE(t.Wait());
}

VMO_VMAR_TEST(Pager, PresupplyTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  TestThread t([vmo, check_vmar]() { return Check(vmo, check_vmar, 0, 1); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(t.Wait());
  ASSERT_TRUE(pager.NoMorePackets(Soon()));
}

VMO_VMAR_TEST(Pager, EarlySupplyTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(2, &vmo));
  TestThread t1([vmo, check_vmar]() { return Check(vmo, check_vmar, 0, 1); });
  TestThread t2([vmo, check_vmar]() { return Check(vmo, check_vmar, 1, 1); });
  ASSERT_TRUE(t1.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(t2.Start());
  ASSERT_TRUE(t2.WaitForBlocked());
  // Supplying both pages before the second request is read withdraws it.
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 2));
  ASSERT_TRUE(t1.Wait());
  ASSERT_TRUE(t2.Wait());
  ASSERT_TRUE(pager.NoMorePackets(Soon()));
}

VMO_VMAR_TEST(Pager, SequentialMultipageTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr uint64_t kPages = 32;
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(kPages, &vmo));
  TestThread t([vmo, check_vmar]() { return Check(vmo, check_vmar, 0, kPages); });
  ASSERT_TRUE(t.Start());
  if (check_vmar) {
    for (uint64_t i = 0; i < kPages; i++) {
      ASSERT_TRUE(pager.WaitForPageRead(vmo, i, 1), "page %lu", (unsigned long)i);
      ASSERT_TRUE(pager.SupplyPages(vmo, i, 1));
    }
  } else {
    ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, kPages));
    ASSERT_TRUE(pager.SupplyPages(vmo, 0, kPages));
  }
  ASSERT_TRUE(t.Wait());
}

VMO_VMAR_TEST(Pager, ConcurrentMultipageAccessTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(2, &vmo));
  TestThread t([vmo, check_vmar]() { return Check(vmo, check_vmar, 0, 1); });
  TestThread t2([vmo, check_vmar]() { return Check(vmo, check_vmar, 1, 1); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(t2.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 1, 1));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 2));
  ASSERT_TRUE(t.Wait());
  ASSERT_TRUE(t2.Wait());
}

VMO_VMAR_TEST(Pager, BulkSingleSupplyTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr uint64_t kPages = 8;
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(kPages, &vmo));
  TestThread* ts[kPages];
  for (uint64_t i = 0; i < kPages; i++) {
    ts[i] = new TestThread([vmo, i, check_vmar]() { return Check(vmo, check_vmar, i, 1); });
    ASSERT_TRUE(ts[i]->Start());
    ASSERT_TRUE(pager.WaitForPageRead(vmo, i, 1));
  }
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, kPages));
  for (uint64_t i = 0; i < kPages; i++) {
    ASSERT_TRUE(ts[i]->Wait());
    delete ts[i];
  }
}

VMO_VMAR_TEST(Pager, OverlapSupplyTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(2, &vmo));
  // Page 0 first gets other contents; the later supply of both pages must not overwrite it.
  zx_handle_t alt;
  ASSERT_OK(zx_vmo_create(kPage, 0, &alt));
  static uint64_t other[kPage / 8];
  for (uint64_t i = 0; i < kPage / 8; i++) other[i] = ~i;
  ASSERT_OK(zx_vmo_write(alt, other, 0, kPage));
  ASSERT_TRUE(pager.SupplyPagesFrom(vmo, 0, 1, alt));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 2));
  TestThread t([vmo, check_vmar]() {
    return check_vmar ? vmo->CheckVmar(0, 1, other) && vmo->CheckVmar(1, 1)
                      : vmo->CheckVmo(0, 1, other) && vmo->CheckVmo(1, 1);
  });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(t.Wait());
  ASSERT_TRUE(pager.NoMorePackets(Soon()));
  zx_handle_close(alt);
}

TEST(Pager, SuccessiveVmoTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  for (int i = 0; i < 64; i++) {
    Vmo* vmo;
    ASSERT_TRUE(pager.CreateVmo(1, &vmo));
    TestThread t([vmo]() { return vmo->CheckVmar(0, 1); });
    ASSERT_TRUE(t.Start());
    ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
    ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
    ASSERT_TRUE(t.Wait());
    pager.ReleaseVmo(vmo);
    ASSERT_TRUE(pager.WaitForPageComplete(vmo->key()));
    delete vmo;
  }
}

TEST(Pager, MultipleConcurrentVmoTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr int kNum = 8;
  Vmo* vmos[kNum];
  TestThread* ts[kNum];
  for (int i = 0; i < kNum; i++) {
    ASSERT_TRUE(pager.CreateVmo(1, &vmos[i]));
    Vmo* v = vmos[i];
    ts[i] = new TestThread([v]() { return v->CheckVmar(0, 1); });
    ASSERT_TRUE(ts[i]->Start());
  }
  for (int i = 0; i < kNum; i++) ASSERT_TRUE(pager.WaitForPageRead(vmos[i], 0, 1));
  for (int i = 0; i < kNum; i++) ASSERT_TRUE(pager.SupplyPages(vmos[i], 0, 1));
  for (int i = 0; i < kNum; i++) {
    ASSERT_TRUE(ts[i]->Wait());
    delete ts[i];
  }
}

TEST(Pager, VmoInfoPagerTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  zx_info_vmo_t info;
  ASSERT_OK(zx_object_get_info(vmo->vmo(), ZX_INFO_VMO, &info, sizeof info, nullptr, nullptr));
  EXPECT_EQ(ZX_INFO_VMO_PAGER_BACKED, info.flags & ZX_INFO_VMO_PAGER_BACKED);
  zx_handle_t plain;
  ASSERT_OK(zx_vmo_create(kPage, 0, &plain));
  ASSERT_OK(zx_object_get_info(plain, ZX_INFO_VMO, &info, sizeof info, nullptr, nullptr));
  EXPECT_EQ(0u, info.flags & ZX_INFO_VMO_PAGER_BACKED);
  zx_handle_close(plain);
}

TEST(Pager, DetachPageCompleteTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  ASSERT_TRUE(pager.DetachVmo(vmo));
  ASSERT_TRUE(pager.WaitForPageComplete(vmo->key()));
}

TEST(Pager, ClosePageCompleteTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  uint64_t key = vmo->key();
  pager.ReleaseVmo(vmo);
  ASSERT_TRUE(pager.WaitForPageComplete(key));
}

TEST(Pager, DetachClosePagerTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  ASSERT_TRUE(pager.DetachVmo(vmo));
  // kvmpager drops a destroyed pager's queued packets: read the COMPLETE before the close.
  ASSERT_TRUE(pager.WaitForPageComplete(vmo->key()));
  pager.ClosePagerHandle();
  ASSERT_TRUE(pager.NoMorePackets(Soon()));
}

TEST(Pager, SupplyAfterDetach) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  ASSERT_TRUE(pager.DetachVmo(vmo));
  zx_handle_t aux;
  ASSERT_OK(zx_vmo_create(kPage, 0, &aux));
  ASSERT_OK(zx_vmo_op_range(aux, ZX_VMO_OP_COMMIT, 0, kPage, nullptr, 0));
  EXPECT_EQ(ZX_ERR_BAD_STATE, zx_pager_supply_pages(pager.pager(), vmo->vmo(), 0, kPage, aux, 0));
  zx_handle_close(aux);
}

TEST(Pager, DetachNonMappingAccess) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(2, &vmo));
  TestThread t([vmo]() { return vmo->CheckVmo(0, 2); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 2));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  ASSERT_TRUE(pager.DetachVmo(vmo));
  ASSERT_TRUE(t.WaitForFailure());
}

TEST(Pager, ReadCloseInterruptLateTestVmo) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  TestThread t([vmo]() { return vmo->CheckVmo(0, 1); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  pager.ClosePagerHandle();
  ASSERT_TRUE(t.WaitForFailure());
  // Zircon then queues a COMPLETE; kvmpager drops a destroyed pager's packets.
}

TEST(Pager, ReadDetachInterruptLateTestVmo) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  TestThread t([vmo]() { return vmo->CheckVmo(0, 1); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.DetachVmo(vmo));
  ASSERT_TRUE(t.WaitForFailure());
  ASSERT_TRUE(pager.WaitForPageComplete(vmo->key()));
}

TEST(Pager, SimpleCommitTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr uint64_t kPages = 555;
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(kPages, &vmo));
  TestThread t([vmo]() { return vmo->Commit(0, kPages); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, kPages));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, kPages));
  ASSERT_TRUE(t.Wait());
}

TEST(Pager, SplitCommitTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr uint64_t kPages = 4;
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(kPages, &vmo));
  ASSERT_TRUE(pager.SupplyPages(vmo, 1, 1));
  TestThread t([vmo]() { return vmo->Commit(0, kPages); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 2, kPages - 2));
  ASSERT_TRUE(pager.SupplyPages(vmo, 2, kPages - 2));
  ASSERT_TRUE(t.Wait());
}

TEST(Pager, OverlapCommitTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(4, &vmo));
  TestThread t1([vmo]() { return vmo->Commit(0, 3); });
  TestThread t2([vmo]() { return vmo->Commit(1, 3); });
  ASSERT_TRUE(t1.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 3));
  ASSERT_TRUE(t2.Start());
  ASSERT_TRUE(t2.WaitForBlocked());
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 3));
  ASSERT_TRUE(t1.Wait());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 3, 1));
  ASSERT_TRUE(pager.SupplyPages(vmo, 3, 1));
  ASSERT_TRUE(t2.Wait());
  ASSERT_TRUE(pager.NoMorePackets(Soon()));
}

TEST(Pager, MultisupplyCommitTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr uint64_t kPages = 32;
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(kPages, &vmo));
  TestThread t([vmo]() { return vmo->Commit(0, kPages); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, kPages));
  for (uint64_t i = 0; i < kPages; i++) ASSERT_TRUE(pager.SupplyPages(vmo, i, 1));
  ASSERT_TRUE(t.Wait());
}

TEST(Pager, MulticommitSupplyTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr uint64_t kCommits = 5, kSupplies = 7, kPages = kCommits * kSupplies;
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(kPages, &vmo));
  TestThread* ts[kCommits];
  for (uint64_t i = 0; i < kCommits; i++) {
    ts[i] = new TestThread([vmo, i]() { return vmo->Commit(i * kSupplies, kSupplies); });
    ASSERT_TRUE(ts[i]->Start());
    ASSERT_TRUE(pager.WaitForPageRead(vmo, i * kSupplies, kSupplies));
  }
  for (uint64_t i = 0; i < kSupplies; i++) ASSERT_TRUE(pager.SupplyPages(vmo, i * kCommits, kCommits));
  for (uint64_t i = 0; i < kCommits; i++) {
    ASSERT_TRUE(ts[i]->Wait());
    delete ts[i];
  }
}

TEST(Pager, CommitRedundantSupplyTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr uint64_t kPages = 8;
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(kPages, &vmo));
  TestThread t([vmo]() { return vmo->Commit(0, kPages); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, kPages));
  for (uint64_t i = 1; i <= kPages; i++) ASSERT_TRUE(pager.SupplyPages(vmo, 0, i));
  ASSERT_TRUE(t.Wait());
}

TEST(Pager, InvalidPagerCreate) {
  zx_handle_t handle;
  ASSERT_EQ(zx_pager_create(1, &handle), ZX_ERR_INVALID_ARGS);
}

TEST(Pager, InvalidPagerCreateVmo) {
  zx_handle_t pager, port, vmo;
  ASSERT_OK(zx_pager_create(0, &pager));
  ASSERT_OK(zx_port_create(0, &port));
  // Bad and wrong-type pager handles.
  EXPECT_EQ(zx_pager_create_vmo(ZX_HANDLE_INVALID, 0, port, 0, kPage, &vmo), ZX_ERR_BAD_HANDLE);
  EXPECT_EQ(zx_pager_create_vmo(port, 0, port, 0, kPage, &vmo), ZX_ERR_WRONG_TYPE);
  // Bad and wrong-type port handles.
  EXPECT_EQ(zx_pager_create_vmo(pager, 0, ZX_HANDLE_INVALID, 0, kPage, &vmo), ZX_ERR_BAD_HANDLE);
  EXPECT_EQ(zx_pager_create_vmo(pager, 0, pager, 0, kPage, &vmo), ZX_ERR_WRONG_TYPE);
  // A port without WRITE.
  zx_handle_t ro_port;
  ASSERT_OK(zx_handle_duplicate(port, ZX_RIGHT_DUPLICATE | ZX_RIGHT_READ, &ro_port));
  EXPECT_EQ(zx_pager_create_vmo(pager, 0, ro_port, 0, kPage, &vmo), ZX_ERR_ACCESS_DENIED);
  // Bad options and a size too big.
  EXPECT_EQ(zx_pager_create_vmo(pager, ~0u, port, 0, kPage, &vmo), ZX_ERR_INVALID_ARGS);
  EXPECT_EQ(zx_pager_create_vmo(pager, 0, port, 0, UINT64_MAX, &vmo), ZX_ERR_OUT_OF_RANGE);
  zx_handle_close(ro_port);
  zx_handle_close(port);
  zx_handle_close(pager);
}

TEST(Pager, InvalidPagerDetachVmo) {
  zx_handle_t pager, port, vmo;
  ASSERT_OK(zx_pager_create(0, &pager));
  ASSERT_OK(zx_port_create(0, &port));
  ASSERT_OK(zx_pager_create_vmo(pager, 0, port, 0, kPage, &vmo));
  EXPECT_EQ(zx_pager_detach_vmo(ZX_HANDLE_INVALID, vmo), ZX_ERR_BAD_HANDLE);
  EXPECT_EQ(zx_pager_detach_vmo(port, vmo), ZX_ERR_WRONG_TYPE);
  EXPECT_EQ(zx_pager_detach_vmo(pager, ZX_HANDLE_INVALID), ZX_ERR_BAD_HANDLE);
  EXPECT_EQ(zx_pager_detach_vmo(pager, port), ZX_ERR_WRONG_TYPE);
  zx_handle_t plain;
  ASSERT_OK(zx_vmo_create(kPage, 0, &plain));
  EXPECT_EQ(zx_pager_detach_vmo(pager, plain), ZX_ERR_INVALID_ARGS);
  zx_handle_t pager2;
  ASSERT_OK(zx_pager_create(0, &pager2));
  EXPECT_EQ(zx_pager_detach_vmo(pager2, vmo), ZX_ERR_INVALID_ARGS);
  zx_handle_close(pager2);
  zx_handle_close(plain);
  zx_handle_close(vmo);
  zx_handle_close(port);
  zx_handle_close(pager);
}

TEST(Pager, InvalidPagerSupplyPages) {
  zx_handle_t pager, port, vmo, aux;
  ASSERT_OK(zx_pager_create(0, &pager));
  ASSERT_OK(zx_port_create(0, &port));
  ASSERT_OK(zx_pager_create_vmo(pager, 0, port, 0, kPage, &vmo));
  ASSERT_OK(zx_vmo_create(kPage, 0, &aux));
  ASSERT_OK(zx_vmo_op_range(aux, ZX_VMO_OP_COMMIT, 0, kPage, nullptr, 0));
  // Handles.
  EXPECT_EQ(zx_pager_supply_pages(ZX_HANDLE_INVALID, vmo, 0, 0, aux, 0), ZX_ERR_BAD_HANDLE);
  EXPECT_EQ(zx_pager_supply_pages(port, vmo, 0, 0, aux, 0), ZX_ERR_WRONG_TYPE);
  EXPECT_EQ(zx_pager_supply_pages(pager, ZX_HANDLE_INVALID, 0, 0, aux, 0), ZX_ERR_BAD_HANDLE);
  EXPECT_EQ(zx_pager_supply_pages(pager, port, 0, 0, aux, 0), ZX_ERR_WRONG_TYPE);
  // Another pager's VMO, or a VMO that is not a pager VMO.
  zx_handle_t pager2;
  ASSERT_OK(zx_pager_create(0, &pager2));
  EXPECT_EQ(zx_pager_supply_pages(pager2, vmo, 0, 0, aux, 0), ZX_ERR_INVALID_ARGS);
  EXPECT_EQ(zx_pager_supply_pages(pager, aux, 0, 0, aux, 0), ZX_ERR_INVALID_ARGS);
  zx_handle_close(pager2);
  // Aux handle: bad, wrong type, missing rights.
  EXPECT_EQ(zx_pager_supply_pages(pager, vmo, 0, 0, ZX_HANDLE_INVALID, 0), ZX_ERR_BAD_HANDLE);
  EXPECT_EQ(zx_pager_supply_pages(pager, vmo, 0, 0, port, 0), ZX_ERR_WRONG_TYPE);
  zx_handle_t aux_ro;
  ASSERT_OK(zx_handle_duplicate(aux, ZX_RIGHT_READ, &aux_ro));
  EXPECT_EQ(zx_pager_supply_pages(pager, vmo, 0, kPage, aux_ro, 0), ZX_ERR_ACCESS_DENIED);
  zx_handle_close(aux_ro);
  // Misaligned offsets and lengths.
  EXPECT_EQ(zx_pager_supply_pages(pager, vmo, 1, kPage, aux, 0), ZX_ERR_INVALID_ARGS);
  EXPECT_EQ(zx_pager_supply_pages(pager, vmo, 0, 1, aux, 0), ZX_ERR_INVALID_ARGS);
  EXPECT_EQ(zx_pager_supply_pages(pager, vmo, 0, kPage, aux, 1), ZX_ERR_INVALID_ARGS);
  // Out of range of the pager VMO or of the aux VMO.
  EXPECT_EQ(zx_pager_supply_pages(pager, vmo, kPage, kPage, aux, 0), ZX_ERR_OUT_OF_RANGE);
  EXPECT_EQ(zx_pager_supply_pages(pager, vmo, 0, kPage, aux, kPage), ZX_ERR_OUT_OF_RANGE);
  zx_handle_close(aux);
  zx_handle_close(vmo);
  zx_handle_close(port);
  zx_handle_close(pager);
}

TEST(Pager, FailSinglePageVmo) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  TestThread t([vmo]() { return vmo->CheckVmo(0, 1); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.FailPages(vmo, 0, 1));
  ASSERT_TRUE(t.WaitForFailure());
}

TEST(Pager, FailExactRange) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr uint64_t kPages = 11;
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(kPages, &vmo));
  TestThread t([vmo]() { return vmo->Commit(0, kPages); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, kPages));
  ASSERT_TRUE(pager.FailPages(vmo, 0, kPages));
  ASSERT_TRUE(t.WaitForFailure());
}

TEST(Pager, FailMultipleVmos) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo *vmo1, *vmo2;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo1));
  ASSERT_TRUE(pager.CreateVmo(1, &vmo2));
  TestThread t1([vmo1]() { return vmo1->CheckVmo(0, 1); });
  TestThread t2([vmo2]() { return vmo2->CheckVmo(0, 1); });
  ASSERT_TRUE(t1.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo1, 0, 1));
  ASSERT_TRUE(t2.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo2, 0, 1));
  // Failing vmo1's page does not touch vmo2's request.
  ASSERT_TRUE(pager.FailPages(vmo1, 0, 1));
  ASSERT_TRUE(t1.WaitForFailure());
  ASSERT_FALSE(t2.Done());
  ASSERT_TRUE(pager.SupplyPages(vmo2, 0, 1));
  ASSERT_TRUE(t2.Wait());
}

TEST(Pager, FailOverlappingRangeCommit) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr uint64_t kPages = 4;
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(kPages, &vmo));
  TestThread t([vmo]() { return vmo->Commit(0, kPages); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, kPages));
  // Supply the first half, fail a range overlapping the rest.
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 2));
  ASSERT_TRUE(pager.FailPages(vmo, 1, 3));
  ASSERT_TRUE(t.WaitForFailure());
  ASSERT_TRUE(vmo->CheckVmo(0, 2));
}

TEST(Pager, FailOverlappingRangeRead) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  constexpr uint64_t kPages = 4;
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(kPages, &vmo));
  TestThread t([vmo]() { return vmo->CheckVmo(0, kPages); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, kPages));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 2));
  ASSERT_TRUE(pager.FailPages(vmo, 1, 3));
  ASSERT_TRUE(t.WaitForFailure());
}

TEST(Pager, FailRedundant) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  // Failing a present page changes nothing.
  ASSERT_TRUE(pager.FailPages(vmo, 0, 1));
  ASSERT_TRUE(vmo->CheckVmo(0, 1));
  ASSERT_TRUE(vmo->CheckVmar(0, 1));
  ASSERT_TRUE(pager.NoMorePackets(Soon()));
}

TEST(Pager, FailAfterDetach) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  ASSERT_TRUE(pager.DetachVmo(vmo));
  EXPECT_EQ(ZX_ERR_BAD_STATE,
            zx_pager_op_range(pager.pager(), ZX_PAGER_OP_FAIL, vmo->vmo(), 0, kPage,
                              (uint64_t)(int64_t)ZX_ERR_IO));
}

TEST(Pager, SupplyAfterFail) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  TestThread t1([vmo]() { return vmo->CheckVmo(0, 1); });
  ASSERT_TRUE(t1.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.FailPages(vmo, 0, 1));
  ASSERT_TRUE(t1.WaitForFailure());
  // A failure is not sticky: the next access asks again and a supply answers it.
  TestThread t2([vmo]() { return vmo->CheckVmo(0, 1); });
  ASSERT_TRUE(t2.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  ASSERT_TRUE(t2.Wait());
}

TEST(Pager, RacyPortDequeue) {
  for (int i = 0; i < 1000; i++) {
    zx_handle_t pager, port, vmo;
    ASSERT_OK(zx_pager_create(0, &pager));
    ASSERT_OK(zx_port_create(0, &port));
    ASSERT_OK(zx_pager_create_vmo(pager, 0, port, 0, kPage, &vmo));
    // Closing the VMO queues a COMPLETE; destroying the pager meanwhile must not lose or
    // corrupt it.
    TestThread t([port]() {
      zx_port_packet_t p;
      zx_status_t s = zx_port_wait(port, zx_deadline_after(ZX_SEC(5)), &p);
      return s == ZX_OK || s == ZX_ERR_TIMED_OUT;
    });
    ASSERT_TRUE(t.Start());
    zx_handle_close(vmo);
    zx_handle_close(pager);
    ASSERT_TRUE(t.Wait());
    zx_handle_close(port);
  }
}

TEST(Pager, ZeroHandlesRace) {
  zx_handle_t port;
  ASSERT_OK(zx_port_create(0, &port));
  for (int i = 0; i < 1000; i++) {
    zx_handle_t pager;
    ASSERT_OK(zx_pager_create(0, &pager));
    volatile int go = 0;
    TestThread t([pager, &go]() {
      while (!go) __builtin_ia32_pause();
      return zx_handle_close(pager) == ZX_OK;
    });
    ASSERT_TRUE(t.Start());
    go = 1;
    zx_handle_t vmo = ZX_HANDLE_INVALID;
    zx_status_t s = zx_pager_create_vmo(pager, 0, port, 0, kPage, &vmo);
    ASSERT_TRUE(s == ZX_OK || s == ZX_ERR_BAD_HANDLE, "status %d", s);
    ASSERT_TRUE(t.Wait());
    zx_handle_close(vmo);
  }
  zx_handle_close(port);
}

// ---- Clones (kvmpager: ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE of pager VMOs) ----

VMO_VMAR_TEST(Pager, CloneReadFromCloneTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  Vmo* clone = vmo->Clone();
  ASSERT_NOT_NULL(clone);
  TestThread t([clone, check_vmar]() { return Check(clone, check_vmar, 0, 1); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  ASSERT_TRUE(t.Wait());
}

VMO_VMAR_TEST(Pager, CloneReadFromParentTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  Vmo* clone = vmo->Clone();
  ASSERT_NOT_NULL(clone);
  TestThread t([vmo, check_vmar]() { return Check(vmo, check_vmar, 0, 1); });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  ASSERT_TRUE(t.Wait());
  // The clone sees the page without another request.
  TestThread t2([clone, check_vmar]() { return Check(clone, check_vmar, 0, 1); });
  ASSERT_TRUE(t2.Start());
  ASSERT_TRUE(t2.Wait());
  ASSERT_TRUE(pager.NoMorePackets(Soon()));
}

VMO_VMAR_TEST(Pager, CloneSimultaneousReadTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  Vmo* clone = vmo->Clone();
  ASSERT_NOT_NULL(clone);
  TestThread t1([vmo, check_vmar]() { return Check(vmo, check_vmar, 0, 1); });
  TestThread t2([clone, check_vmar]() { return Check(clone, check_vmar, 0, 1); });
  ASSERT_TRUE(t1.Start());
  ASSERT_TRUE(t2.Start());
  ASSERT_TRUE(t1.WaitForBlocked());
  ASSERT_TRUE(t2.WaitForBlocked());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  ASSERT_TRUE(t1.Wait());
  ASSERT_TRUE(t2.Wait());
  ASSERT_TRUE(pager.NoMorePackets(Soon()));
}

VMO_VMAR_TEST(Pager, CloneSimultaneousChildReadTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  Vmo* c1 = vmo->Clone();
  Vmo* c2 = vmo->Clone();
  ASSERT_NOT_NULL(c1);
  ASSERT_NOT_NULL(c2);
  TestThread t1([c1, check_vmar]() { return Check(c1, check_vmar, 0, 1); });
  TestThread t2([c2, check_vmar]() { return Check(c2, check_vmar, 0, 1); });
  ASSERT_TRUE(t1.Start());
  ASSERT_TRUE(t2.Start());
  ASSERT_TRUE(t1.WaitForBlocked());
  ASSERT_TRUE(t2.WaitForBlocked());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  ASSERT_TRUE(t1.Wait());
  ASSERT_TRUE(t2.Wait());
  ASSERT_TRUE(pager.NoMorePackets(Soon()));
}

VMO_VMAR_TEST(Pager, CloneWriteToCloneTest) {
  UserPager pager;
  ASSERT_TRUE(pager.Init());
  Vmo* vmo;
  ASSERT_TRUE(pager.CreateVmo(1, &vmo));
  Vmo* clone = vmo->Clone();
  ASSERT_NOT_NULL(clone);
  TestThread t([clone, check_vmar]() {
    uint64_t v = 0xc0ffee;
    if (check_vmar) {
      *reinterpret_cast<volatile uint64_t*>(clone->base()) = v;
      return true;
    }
    return zx_vmo_write(clone->vmo(), &v, 0, sizeof v) == ZX_OK;
  });
  ASSERT_TRUE(t.Start());
  ASSERT_TRUE(pager.WaitForPageRead(vmo, 0, 1));
  ASSERT_TRUE(pager.SupplyPages(vmo, 0, 1));
  ASSERT_TRUE(t.Wait());
  // The write forked the page: the parent keeps its contents.
  ASSERT_TRUE(vmo->CheckVmo(0, 1));
  uint64_t first = 0;
  ASSERT_OK(zx_vmo_read(clone->vmo(), &first, 0, sizeof first));
  ASSERT_EQ(first, 0xc0ffeeu);
}

// ---- Named skips: what kvmpager cannot run (yet), with the reason ----

#define SKIP_CASE(Suite, Name, why) \
  TEST(Suite, Name) { ZXTEST_SKIP(why); }
#define SKIP_VMO_VMAR(Suite, Name, why) \
  SKIP_CASE(Suite, Name##Vmar, why)     \
  SKIP_CASE(Suite, Name##Vmo, why)

SKIP_VMO_VMAR(Pager, UncommittedSinglePageTest,
              "kvmpager refuses an uncommitted aux VMO (BAD_STATE), Zircon supplies zero pages")
SKIP_VMO_VMAR(Pager, ConcurrentOverlappingAccessTest, "needs 32 blocked threads (31 worker vCPUs)")
SKIP_VMO_VMAR(Pager, BulkOddLengthSupplyTest, "needs 95 concurrent threads (31 worker vCPUs)")
SKIP_VMO_VMAR(Pager, BulkOddOffsetSupplyTest, "needs 95 concurrent threads (31 worker vCPUs)")
SKIP_VMO_VMAR(Pager, ManyRequestTest, "needs 257 blocked threads (31 worker vCPUs)")
SKIP_CASE(Pager, VmarUnmapTest, "needs fatal-fault reports to the guest (zx_kvmpager_set_exception_port)")
SKIP_CASE(Pager, VmarRemapTest, "needs ZX_VM_SPECIFIC_OVERWRITE")
SKIP_CASE(Pager, VmarMapRangeTest, "needs ZX_VM_MAP_RANGE")
SKIP_VMO_VMAR(Pager, ReadResizeTest, "needs zx_vmo_set_size on pager VMOs")
SKIP_VMO_VMAR(Pager, SuspendReadTest, "needs thread suspend")
SKIP_CASE(Pager, SuspendCommitTest, "needs thread suspend")
SKIP_VMO_VMAR(Pager, DecommitOnDetachTest, "needs fatal-fault reports to the guest")
SKIP_CASE(Pager, ReadCloseInterruptLateTestVmar, "needs fatal-fault reports to the guest")
SKIP_CASE(Pager, ReadDetachInterruptLateTestVmar, "needs fatal-fault reports to the guest")
SKIP_VMO_VMAR(Pager, ReadCloseInterruptEarlyTest, "needs a blocked-on-pager thread state")
SKIP_VMO_VMAR(Pager, ReadDetachInterruptEarlyTest, "needs a blocked-on-pager thread state")
SKIP_CASE(Pager, ClosePagerTest, "needs fatal-fault reports to the guest")
SKIP_CASE(Pager, ClosePortTest, "kvmpager fails requests blocked before a port close (README)")
SKIP_CASE(Pager, CloneDetachTest, "needs fatal-fault reports to the guest")
SKIP_CASE(Pager, CloneCommitTest, "needs populated_bytes of clones")
SKIP_CASE(Pager, CloneChainCommitTest, "needs populated_bytes of clones")
SKIP_CASE(Pager, CloneSplitCommitTest, "needs populated_bytes of clones")
SKIP_CASE(Pager, CloneResizeCloneHazard, "needs zx_vmo_set_size on clones")
SKIP_CASE(Pager, CloneResizeParentOK, "needs zx_vmo_set_size on clones")
SKIP_CASE(Pager, CloneShrinkGrowParent, "needs zx_vmo_set_size on clones")
SKIP_CASE(Pager, OverlapCommitSupplyTest, "needs 36 concurrent threads (31 worker vCPUs)")
SKIP_CASE(Pager, ResizeCommitTest, "needs zx_vmo_set_size on pager VMOs")
SKIP_CASE(Pager, MappedSupplyPages, "kvmpager refuses a mapped aux VMO (BAD_STATE)")
SKIP_CASE(Pager, PinnedSupplyPages, "needs a system resource and BTI pins")
SKIP_CASE(Pager, ResizeBlockedPin, "needs a system resource and BTI pins")
SKIP_CASE(Pager, ResizeNonresizableVmo, "needs zx_vmo_set_size")
SKIP_CASE(Pager, DecommitTest, "needs DECOMMIT of pager VMOs to give NOT_SUPPORTED")
SKIP_CASE(Pager, UncommittedSupply, "kvmpager refuses an uncommitted aux VMO (BAD_STATE)")
SKIP_CASE(Pager, FailSinglePageVmar, "needs fatal-fault reports to the guest")
SKIP_CASE(Pager, FailMultipleCommits, "needs 22 concurrent threads and a blocked-thread state")
SKIP_CASE(Pager, FailEarlyWake, "needs early wake-up on partial supply")
SKIP_CASE(Pager, FailOverlapRequest, "needs a blocked-on-pager thread state")
SKIP_CASE(Pager, FailErrorCode, "buffers in mappings are not syscall buffers on kvmpager")
SKIP_CASE(Pager, DeepHierarchy, "needs clone hierarchies with populated_bytes")
SKIP_CASE(Pager, CloneMightSeeIntermediateForks, "needs clone hierarchies")
SKIP_CASE(Pager, CloneSeesCorrectParentPages, "needs clone hierarchies")
SKIP_CASE(Pager, CloneCommitSingleBatch, "needs batched clone commits")
SKIP_CASE(Pager, CloneCommitTwoBatches, "needs batched clone commits")
SKIP_CASE(Pager, CloneCommitMultipleBatches, "needs batched clone commits")
SKIP_CASE(Pager, CloneCommitRandomBatches, "needs batched clone commits")
SKIP_CASE(Pager, PageRequestBatchingChecksAncestorPages, "needs batched clone commits")
SKIP_CASE(Pager, EvictionHintAlwaysNeed, "needs ZX_VMO_OP_ALWAYS_NEED on pager VMOs")
SKIP_CASE(Pager, EvictionHintsOpRange, "needs ZX_VMO_OP_DONT_NEED/ALWAYS_NEED on pager VMOs")
SKIP_CASE(Pager, EvictionHintsWithClones, "needs eviction hints through clones")
SKIP_CASE(Pager, EvictionHintsWithResize, "needs zx_vmo_set_size")
SKIP_CASE(Pager, EvictionHintsVmar, "needs zx_vmar_op_range")
SKIP_CASE(Pager, EvictionHintsNestedVmar, "needs zx_vmar_allocate and zx_vmar_op_range")
SKIP_CASE(Pager, EvictionHintsCloneVmar, "needs zx_vmar_op_range")
SKIP_CASE(Pager, OpCommitVmar, "needs zx_vmar_op_range")
SKIP_CASE(Pager, OpCommitCloneVmar, "needs zx_vmar_op_range")
SKIP_CASE(Pager, PresentPageSplitsRange, "needs a blocked-on-pager thread state")
SKIP_CASE(Pager, EarlyWakeOnSupply, "needs early wake-up on partial supply")
SKIP_CASE(Pager, EarlyWakeNonLinearSupply, "needs early wake-up on partial supply")
SKIP_CASE(Pager, EarlyWakeOverlappingRequests, "needs early wake-up on partial supply")
SKIP_CASE(Pager, EarlyWakeWithResize, "needs early wake-up and zx_vmo_set_size")
SKIP_CASE(Pager, EarlyWakeCloneRace, "needs early wake-up with clones")
SKIP_CASE(Pager, Prefetch, "needs ZX_VMO_OP_PREFETCH and ZX_VMO_CHILD_SLICE")
