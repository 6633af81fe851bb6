//! State-machine property test of the pager kernel's syscall surface.
//!
//! One process with 2 pagers, 2 ports, 3 pager VMOs (0..=16 pages, some TRAP_DIRTY) and 4
//! anonymous aux VMOs runs random sequences of SUPPLY (through both entry points), aux writes,
//! COMMIT/DECOMMIT, `pager_vmo_op` / `pager_op_range` with random ops and data, handle
//! close/duplicate/replace with random rights, detach, `vmar_map` and port waits. Handles are
//! drawn from the live ones, closed ones, and garbage. A model predicts every call's exact
//! status (Zircon's check order, `shared/spec`) and every VMO's contents; after each step the
//! kernel's state is compared with it through `Vmo::is_present`, `Vmo::peek` and
//! `Vmo::info`, which never block. Absent pager-VMO pages are never touched in a way that
//! blocks: calls that would wait for a page are not made.
//!
//! Beyond the model, each SUPPLY is checked against the contract directly: on failure the aux
//! range is untouched or fully decommitted (never half); pages present before keep their
//! bytes; on success every destination page is present with the aux bytes (where it was
//! absent) and the aux range is fully decommitted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use kvmpager::Process;
use kvmpager::abi::packet::*;
use kvmpager::abi::pager_op::*;
use kvmpager::abi::rights::*;
use kvmpager::abi::status::*;
use kvmpager::abi::vmo_op::*;
use kvmpager::abi::vmo_options::ZX_VMO_TRAP_DIRTY;
use kvmpager::abi::{Handle, PAGE_SIZE, PageRequest, PortPacket, Rights, Status};
use kvmpager::vmo::{Mapping, Vmo};
use proptest::prelude::*;

const PS: u64 = PAGE_SIZE;
const NPV: usize = 3;
const NAUX: usize = 4;

// ---- the generated program ------------------------------------------------------------------

/// How a step names a handle.
#[derive(Clone, Copy, Debug)]
enum H {
    /// The n-th live handle (modulo their number).
    Live(usize),
    /// The n-th closed handle value.
    Stale(usize),
    Garbage(u32),
    Zero,
    /// A live handle to pager / port / pager VMO / aux VMO n.
    Pager(usize),
    Port(usize),
    PVmo(usize),
    Aux(usize),
    /// A live handle to the pager that owns the step's target pager VMO.
    Owner,
    /// A live handle to the step's target pager VMO.
    Target,
}

#[derive(Clone, Copy, Debug)]
enum RightsSel {
    Same,
    /// The handle's rights masked with this.
    Subset(u32),
    Raw(u32),
}

#[derive(Clone, Debug)]
enum Step {
    Supply {
        via_vmo_op: bool,
        target: usize,
        pager: H,
        vmo: H,
        offset: u64,
        len: u64,
        aux: H,
        aux_offset: u64,
    },
    Write {
        vmo: H,
        offset: u64,
        len: u64,
        seed: u8,
    },
    OpRange {
        vmo: H,
        op: u32,
        offset: u64,
        len: u64,
    },
    PagerOp {
        op_range: bool,
        target: usize,
        pager: H,
        vmo: H,
        op: u32,
        offset: u64,
        len: u64,
        data: u64,
        aux: H,
    },
    Close(H),
    Duplicate(H, RightsSel),
    Replace(H, RightsSel),
    Detach {
        target: usize,
        pager: H,
        vmo: H,
    },
    Map {
        vmo: H,
        offset: u64,
        len: u64,
        writable: bool,
        keep: u8,
    },
    PortWait(H),
    /// `vmo_write` of the whole VMO (a fully committed aux VMO to supply from).
    Fill(H, u8),
}

#[derive(Clone, Debug)]
struct Setup {
    /// Per pager VMO: pages, bytes short of a whole last page, TRAP_DIRTY, owner, port.
    pvmos: Vec<(u64, u64, bool, usize, usize)>,
    aux_pages: Vec<u64>,
    /// Fill every aux VMO before the first step.
    prefill: bool,
}

fn any_h() -> impl Strategy<Value = H> {
    prop_oneof![
        3 => (0usize..64).prop_map(H::Live),
        1 => (0usize..64).prop_map(H::Stale),
        1 => any::<u32>().prop_map(H::Garbage),
        1 => Just(H::Zero),
        2 => (0..2usize).prop_map(H::Pager),
        1 => (0..2usize).prop_map(H::Port),
        2 => (0..NPV).prop_map(H::PVmo),
        2 => (0..NAUX).prop_map(H::Aux),
    ]
}

fn prefer(h: H, weight: u32) -> impl Strategy<Value = H> {
    prop_oneof![weight => Just(h), 1 => any_h()]
}

fn aux_h() -> impl Strategy<Value = H> {
    prop_oneof![6 => (0..NAUX).prop_map(H::Aux), 1 => any_h()]
}

/// Offsets: mostly page aligned, some unaligned, a few huge.
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => (0u64..18).prop_map(|p| p * PS),
        2 => 0u64..18 * PS,
        1 => prop_oneof![
            Just(u64::MAX),
            Just(!(PS - 1)),
            (1u64 << 62..u64::MAX)
        ],
    ]
}

/// Lengths: mostly a few whole pages, some unaligned, a few huge.
fn length() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => (0u64..7).prop_map(|p| p * PS),
        2 => 0u64..8 * PS,
        1 => prop_oneof![
            Just(u64::MAX),
            Just(!(PS - 1)),
            (1u64 << 62..u64::MAX)
        ],
    ]
}

/// Page-aligned offsets or lengths of a few pages.
fn small_pages(pages: std::ops::Range<u64>) -> impl Strategy<Value = u64> {
    pages.prop_map(|p| p * PS)
}

fn rights_sel() -> impl Strategy<Value = RightsSel> {
    prop_oneof![
        2 => Just(RightsSel::Same),
        3 => any::<u32>().prop_map(RightsSel::Subset),
        1 => any::<u32>().prop_map(RightsSel::Raw),
    ]
}

fn op_data() -> impl Strategy<Value = u64> {
    let codes = [
        ZX_ERR_IO,
        ZX_ERR_IO_DATA_INTEGRITY,
        ZX_ERR_BAD_STATE,
        ZX_ERR_NO_SPACE,
        ZX_ERR_BUFFER_TOO_SMALL,
        ZX_ERR_INTERNAL,
        ZX_ERR_NOT_FOUND,
    ];
    prop_oneof![
        2 => Just(0u64),
        1 => Just(1u64),
        4 => proptest::sample::select(codes.to_vec()).prop_map(|c| c as i64 as u64),
        1 => proptest::sample::select(codes.to_vec()).prop_map(|c| c as u32 as u64),
        1 => Just(10u64),
        1 => Just(0x11_ffff_ffffu64),
        1 => (0u64..8).prop_map(|p| p * PS),
        1 => any::<u64>(),
    ]
}

fn pager_op() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => Just(ZX_PAGER_OP_FAIL),
        2 => Just(ZX_PAGER_OP_DIRTY),
        2 => Just(ZX_PAGER_OP_WRITEBACK_BEGIN),
        2 => Just(ZX_PAGER_OP_WRITEBACK_END),
        1 => Just(0u32),
        1 => Just(5u32),
        1 => Just(ZX_PAGER_SUPPLY_PAGES),
        1 => any::<u32>(),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let supply = (
        any::<bool>(),
        0..NPV,
        prefer(H::Owner, 10),
        prefer(H::Target, 10),
        prop_oneof![4 => small_pages(0..8), 1 => offset()],
        prop_oneof![4 => small_pages(1..5), 1 => length()],
        aux_h(),
        prop_oneof![4 => small_pages(0..4), 1 => offset()],
    )
        .prop_map(
            |(via_vmo_op, target, pager, vmo, offset, len, aux, aux_offset)| Step::Supply {
                via_vmo_op,
                target,
                pager,
                vmo,
                offset,
                len,
                aux,
                aux_offset,
            },
        );
    let write =
        (aux_h(), offset(), 0u64..3 * PS, any::<u8>()).prop_map(|(vmo, offset, len, seed)| {
            Step::Write {
                vmo,
                offset,
                len,
                seed,
            }
        });
    let op_range = (
        aux_h(),
        prop_oneof![4 => Just(ZX_VMO_OP_COMMIT), 2 => Just(ZX_VMO_OP_DECOMMIT), 1 => any::<u32>()],
        offset(),
        length(),
    )
        .prop_map(|(vmo, op, offset, len)| Step::OpRange {
            vmo,
            op,
            offset,
            len,
        });
    let pager_op = (
        any::<bool>(),
        0..NPV,
        prefer(H::Owner, 8),
        prefer(H::Target, 8),
        pager_op(),
        prop_oneof![3 => small_pages(0..8), 1 => offset()],
        prop_oneof![3 => small_pages(0..5), 1 => length()],
        op_data(),
        aux_h(),
    )
        .prop_map(
            |(op_range, target, pager, vmo, op, offset, len, data, aux)| Step::PagerOp {
                op_range,
                target,
                pager,
                vmo,
                op,
                offset,
                len,
                data,
                aux,
            },
        );
    let detach = (0..NPV, prefer(H::Owner, 6), prefer(H::Target, 6))
        .prop_map(|(target, pager, vmo)| Step::Detach { target, pager, vmo });
    let map = (
        prop_oneof![3 => (0..NAUX).prop_map(H::Aux), 1 => any_h()],
        offset(),
        length(),
        any::<bool>(),
        1u8..4,
    )
        .prop_map(|(vmo, offset, len, writable, keep)| Step::Map {
            vmo,
            offset,
            len,
            writable,
            keep,
        });
    prop_oneof![
        8 => supply,
        8 => (aux_h(), any::<u8>()).prop_map(|(h, seed)| Step::Fill(h, seed)),
        3 => write,
        4 => op_range,
        4 => pager_op,
        1 => any_h().prop_map(Step::Close),
        1 => (any_h(), rights_sel()).prop_map(|(h, r)| Step::Duplicate(h, r)),
        1 => (any_h(), rights_sel()).prop_map(|(h, r)| Step::Replace(h, r)),
        1 => detach,
        1 => map,
        1 => prop_oneof![3 => (0..2usize).prop_map(H::Port), 1 => any_h()].prop_map(Step::PortWait),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        proptest::collection::vec(
            (
                0u64..=16,
                0u64..PS,
                proptest::bool::weighted(0.25),
                0..2usize,
                0..2usize,
            ),
            NPV,
        ),
        proptest::collection::vec(prop_oneof![1 => 0u64..=3, 4 => 6u64..=16], NAUX),
        proptest::bool::weighted(0.75),
    )
        .prop_map(|(pvmos, aux_pages, prefill)| Setup {
            pvmos,
            aux_pages,
            prefill,
        })
}

// ---- the model ------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Obj {
    Pager(usize),
    Port(usize),
    PVmo(usize),
    Aux(usize),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pager,
    Port,
    Vmo,
}

impl Obj {
    fn is(self, kind: Kind) -> bool {
        matches!(
            (self, kind),
            (Obj::Pager(_), Kind::Pager)
                | (Obj::Port(_), Kind::Port)
                | (Obj::PVmo(_) | Obj::Aux(_), Kind::Vmo)
        )
    }
}

/// Model of one pager VMO.
struct PV {
    vmo: Arc<Vmo>,
    pager: usize,
    port: usize,
    key: u64,
    trap_dirty: bool,
    size: u64,
    present: Vec<bool>,
    bytes: Vec<u8>,
    dirty: Vec<bool>,
    awaiting_clean: Vec<bool>,
    detached: bool,
    complete_sent: bool,
}

/// Model of one anonymous VMO.
struct Aux {
    vmo: Arc<Vmo>,
    size: u64,
    committed: Vec<bool>,
    bytes: Vec<u8>,
}

struct Model {
    p: Arc<Process>,
    handles: BTreeMap<Handle, (Obj, Rights)>,
    stale: Vec<Handle>,
    pv: Vec<PV>,
    aux: Vec<Aux>,
    /// Keys of the COMPLETE packets each port holds, in order.
    ports: [VecDeque<u64>; 2],
    maps: Vec<(Mapping, Obj, u8)>,
}

type R<T> = Result<T, Status>;

/// `Vmo::page_range`: the pages `[offset, offset + len)` touches, or OUT_OF_RANGE.
fn page_range(size: u64, offset: u64, len: u64) -> R<std::ops::Range<usize>> {
    let end = offset.checked_add(len).ok_or(ZX_ERR_OUT_OF_RANGE)?;
    if end > size {
        return Err(ZX_ERR_OUT_OF_RANGE);
    }
    let first = (offset / PS) as usize;
    if len == 0 {
        return Ok(first..first);
    }
    Ok(first..end.div_ceil(PS) as usize)
}

fn aligned(x: u64) -> bool {
    x.is_multiple_of(PS)
}

fn page_bytes(v: &mut [u8], page: usize) -> &mut [u8] {
    &mut v[page * PS as usize..(page + 1) * PS as usize]
}

fn complete_packet(key: u64) -> PortPacket {
    PortPacket {
        key,
        packet_type: ZX_PKT_TYPE_PAGE_REQUEST,
        status: ZX_OK,
        page_request: PageRequest {
            command: ZX_PAGER_VMO_COMPLETE,
            ..Default::default()
        },
    }
}

fn show(r: &R<impl Sized>) -> &'static str {
    match r {
        Ok(_) => "ZX_OK",
        Err(s) => name(*s),
    }
}

impl Model {
    fn new(s: &Setup) -> Model {
        let p = Process::new();
        let mut handles = BTreeMap::new();
        let mut pagers = Vec::new();
        for i in 0..2 {
            let h = p.pager_create(0).expect("pager_create");
            handles.insert(h, (Obj::Pager(i), ZX_DEFAULT_PAGER_RIGHTS));
            pagers.push(h);
        }
        let mut ports = Vec::new();
        for i in 0..2 {
            let h = p.port_create(0).expect("port_create");
            handles.insert(h, (Obj::Port(i), ZX_DEFAULT_PORT_RIGHTS));
            ports.push(h);
        }
        let mut pv = Vec::new();
        for (i, &(pages, short, trap_dirty, pager, port)) in s.pvmos.iter().enumerate() {
            let bytes = if pages == 0 { 0 } else { pages * PS - short };
            let key = 0xabc0 + i as u64;
            let opts = if trap_dirty { ZX_VMO_TRAP_DIRTY } else { 0 };
            let h = p
                .pager_create_vmo(pagers[pager], opts, ports[port], key, bytes)
                .expect("pager_create_vmo");
            handles.insert(h, (Obj::PVmo(i), ZX_DEFAULT_VMO_RIGHTS));
            let n = pages as usize;
            pv.push(PV {
                vmo: p.vmo_object(h).unwrap(),
                pager,
                port,
                key,
                trap_dirty,
                size: pages * PS,
                present: vec![false; n],
                bytes: vec![0; n * PS as usize],
                dirty: vec![false; n],
                awaiting_clean: vec![false; n],
                detached: false,
                complete_sent: false,
            });
        }
        let mut aux = Vec::new();
        for (i, &pages) in s.aux_pages.iter().enumerate() {
            let h = p.vmo_create(pages * PS, 0).expect("vmo_create");
            handles.insert(h, (Obj::Aux(i), ZX_DEFAULT_VMO_RIGHTS));
            let n = pages as usize;
            aux.push(Aux {
                vmo: p.vmo_object(h).unwrap(),
                size: pages * PS,
                committed: vec![false; n],
                bytes: vec![0; n * PS as usize],
            });
        }
        Model {
            p,
            handles,
            stale: Vec::new(),
            pv,
            aux,
            ports: Default::default(),
            maps: Vec::new(),
        }
    }

    // ---- handle selection and expected lookups ----

    fn live_for(&self, obj: Obj) -> Handle {
        self.handles
            .iter()
            .find(|(_, (o, _))| *o == obj)
            .map(|(h, _)| *h)
            .unwrap_or_else(|| self.stale.first().copied().unwrap_or(0x7fff_fff3))
    }

    fn resolve(&self, h: H, target: usize) -> Handle {
        match h {
            H::Live(i) if !self.handles.is_empty() => {
                *self.handles.keys().nth(i % self.handles.len()).unwrap()
            }
            H::Live(_) | H::Zero => 0,
            H::Stale(i) if !self.stale.is_empty() => self.stale[i % self.stale.len()],
            H::Stale(i) => 0x1000_0003 ^ (i as u32) << 12,
            H::Garbage(x) => x,
            H::Pager(i) => self.live_for(Obj::Pager(i)),
            H::Port(i) => self.live_for(Obj::Port(i)),
            H::PVmo(i) => self.live_for(Obj::PVmo(i)),
            H::Aux(i) => self.live_for(Obj::Aux(i)),
            H::Owner => self.live_for(Obj::Pager(self.pv[target].pager)),
            H::Target => self.live_for(Obj::PVmo(target)),
        }
    }

    /// The handle table's lookup: BAD_HANDLE, WRONG_TYPE, ACCESS_DENIED.
    fn look(&self, h: Handle, kind: Kind, rights: Rights) -> R<(Obj, Rights)> {
        let &(obj, have) = self.handles.get(&h).ok_or(ZX_ERR_BAD_HANDLE)?;
        if !obj.is(kind) {
            return Err(ZX_ERR_WRONG_TYPE);
        }
        if have & rights != rights {
            return Err(ZX_ERR_ACCESS_DENIED);
        }
        Ok((obj, have))
    }

    /// Pager checks, VMO checks (WRITE), ownership: the pager VMO index.
    fn owned(&self, pager: Handle, pager_rights: Rights, vmo: Handle) -> R<usize> {
        let (pobj, _) = self.look(pager, Kind::Pager, pager_rights)?;
        let (vobj, _) = self.look(vmo, Kind::Vmo, ZX_RIGHT_WRITE)?;
        match (pobj, vobj) {
            (Obj::Pager(p), Obj::PVmo(v)) if self.pv[v].pager == p => Ok(v),
            _ => Err(ZX_ERR_INVALID_ARGS),
        }
    }

    fn mappings_of(&self, obj: Obj) -> usize {
        self.maps.iter().filter(|(_, o, _)| *o == obj).count()
    }

    // ---- state changes the model applies ----

    /// Detach (`evict`) or pager close: clean pages are evicted only on a detach (a closed
    /// pager leaves the supplied pages readable, Zircon's ClosePagerTest).
    fn detach_model(&mut self, v: usize, evict: bool) {
        let pv = &mut self.pv[v];
        if pv.detached {
            return;
        }
        pv.detached = true;
        for p in 0..pv.present.len() {
            if !evict {
                break;
            }
            if pv.present[p] && !pv.dirty[p] {
                pv.present[p] = false;
                page_bytes(&mut pv.bytes, p).fill(0);
            }
        }
    }

    fn remove_handle(&mut self, h: Handle) {
        let (obj, _) = self.handles.remove(&h).expect("removing a live handle");
        self.stale.push(h);
        if let Obj::Pager(i) = obj
            && !self.handles.values().any(|(o, _)| *o == obj)
        {
            // Last pager handle: its VMOs are detached without COMPLETE, and a queued COMPLETE
            // is withdrawn.
            for v in 0..self.pv.len() {
                if self.pv[v].pager == i {
                    self.detach_model(v, false);
                    let (port, key) = (self.pv[v].port, self.pv[v].key);
                    self.ports[port].retain(|k| *k != key);
                }
            }
        }
    }

    fn add_handle(&mut self, h: Handle, obj: Obj, rights: Rights) {
        assert_ne!(h, 0, "new handle is ZX_HANDLE_INVALID");
        assert_eq!(h & 3, 3, "handle values have their low two bits set");
        assert!(
            !self.handles.contains_key(&h),
            "handle {h:#x} handed out twice"
        );
        self.handles.insert(h, (obj, rights));
    }

    // ---- steps ----

    fn run(&mut self, step: &Step) {
        self.maps.retain_mut(|(_, _, keep)| {
            *keep -= 1;
            *keep > 0
        });
        match *step {
            Step::Supply {
                via_vmo_op,
                target,
                pager,
                vmo,
                offset,
                len,
                aux,
                aux_offset,
            } => {
                let (pager, vmo, aux) = (
                    self.resolve(pager, target),
                    self.resolve(vmo, target),
                    self.resolve(aux, target),
                );
                self.supply(via_vmo_op, pager, vmo, offset, len, aux, aux_offset);
            }
            Step::Write {
                vmo,
                offset,
                len,
                seed,
            } => self.write(self.resolve(vmo, 0), offset, len, seed),
            Step::OpRange {
                vmo,
                op,
                offset,
                len,
            } => self.op_range(self.resolve(vmo, 0), op, offset, len),
            Step::PagerOp {
                op_range,
                target,
                pager,
                vmo,
                op,
                offset,
                len,
                data,
                aux,
            } => {
                let (pager, vmo, aux) = (
                    self.resolve(pager, target),
                    self.resolve(vmo, target),
                    self.resolve(aux, target),
                );
                if op == ZX_PAGER_SUPPLY_PAGES && !op_range {
                    self.supply(true, pager, vmo, offset, len, aux, data);
                } else {
                    self.pager_op(op_range, pager, vmo, op, offset, len, data, aux);
                }
            }
            Step::Close(h) => {
                let h = self.resolve(h, 0);
                let got = self.p.handle_close(h);
                let want = if h == 0 || self.handles.contains_key(&h) {
                    Ok(())
                } else {
                    Err(ZX_ERR_BAD_HANDLE)
                };
                assert_eq!(got, want, "handle_close({h:#x})");
                if h != 0 && got.is_ok() {
                    self.remove_handle(h);
                }
            }
            Step::Duplicate(h, sel) => {
                let h = self.resolve(h, 0);
                let rights = self.rights_for(h, sel);
                let got = self.p.handle_duplicate(h, rights);
                let want = self
                    .handles
                    .get(&h)
                    .copied()
                    .ok_or(ZX_ERR_BAD_HANDLE)
                    .and_then(|(obj, have)| {
                        if have & ZX_RIGHT_DUPLICATE == 0 {
                            return Err(ZX_ERR_ACCESS_DENIED);
                        }
                        Ok((obj, narrowed(have, rights)?))
                    });
                assert_eq!(
                    got.map(|_| ()),
                    want.map(|_| ()),
                    "handle_duplicate({h:#x}, {rights:#x})"
                );
                if let (Ok(new), Ok((obj, r))) = (got, want) {
                    self.add_handle(new, obj, r);
                }
            }
            Step::Replace(h, sel) => {
                let h = self.resolve(h, 0);
                let rights = self.rights_for(h, sel);
                let got = self.p.handle_replace(h, rights);
                let want = self
                    .handles
                    .get(&h)
                    .copied()
                    .ok_or(ZX_ERR_BAD_HANDLE)
                    .and_then(|(obj, have)| Ok((obj, narrowed(have, rights)?)));
                assert_eq!(
                    got.map(|_| ()),
                    want.map(|_| ()),
                    "handle_replace({h:#x}, {rights:#x})"
                );
                if let (Ok(new), Ok((obj, r))) = (got, want) {
                    self.add_handle(new, obj, r);
                    self.remove_handle(h);
                }
            }
            Step::Detach { target, pager, vmo } => {
                let (pager, vmo) = (self.resolve(pager, target), self.resolve(vmo, target));
                let got = self.p.pager_detach_vmo(pager, vmo);
                let want = self.owned(pager, ZX_RIGHT_ATTACH_VMO | ZX_RIGHT_MANAGE_VMO, vmo);
                assert_eq!(
                    show(&got),
                    show(&want),
                    "pager_detach_vmo({pager:#x}, {vmo:#x})"
                );
                if let Ok(v) = want {
                    self.detach_model(v, true);
                    if !self.pv[v].complete_sent {
                        self.pv[v].complete_sent = true;
                        let (port, key) = (self.pv[v].port, self.pv[v].key);
                        self.ports[port].push_back(key);
                    }
                }
            }
            Step::Map {
                vmo,
                offset,
                len,
                writable,
                keep,
            } => {
                let h = self.resolve(vmo, 0);
                let need = ZX_RIGHT_MAP | ZX_RIGHT_READ | if writable { ZX_RIGHT_WRITE } else { 0 };
                let got = self.p.vmar_map(h, offset, len, writable);
                let want = self.look(h, Kind::Vmo, need).and_then(|(obj, _)| {
                    if len == 0 || !aligned(offset) || !aligned(len) {
                        return Err(ZX_ERR_INVALID_ARGS);
                    }
                    page_range(self.size_of(obj), offset, len)?;
                    Ok(obj)
                });
                assert_eq!(
                    show(&got),
                    show(&want),
                    "vmar_map({h:#x}, {offset:#x}, {len:#x}, {writable})"
                );
                if let (Ok(m), Ok(obj)) = (got, want) {
                    assert_eq!(m.host_addr(), m.vmo().host_addr() + offset);
                    self.maps.push((m, obj, keep));
                }
            }
            Step::Fill(h, seed) => {
                let h = self.resolve(h, 0);
                let size = match self.handles.get(&h) {
                    Some((obj @ (Obj::Aux(_) | Obj::PVmo(_)), _)) => self.size_of(*obj),
                    _ => PS,
                };
                self.write(h, 0, size, seed);
            }
            Step::PortWait(h) => {
                let h = self.resolve(h, 0);
                let got = self.p.port_wait(h, Some(Instant::now()));
                let want = self
                    .look(h, Kind::Port, ZX_RIGHT_READ)
                    .and_then(|(obj, _)| {
                        let Obj::Port(i) = obj else { unreachable!() };
                        let key = self.ports[i].front().copied().ok_or(ZX_ERR_TIMED_OUT)?;
                        Ok((i, complete_packet(key)))
                    });
                assert_eq!(
                    got,
                    want.map(|(_, p)| p),
                    "port_wait({h:#x}): only COMPLETE packets of detached VMOs, in order"
                );
                if let Ok((i, _)) = want {
                    self.ports[i].pop_front();
                }
            }
        }
        self.check();
    }

    fn size_of(&self, obj: Obj) -> u64 {
        match obj {
            Obj::PVmo(i) => self.pv[i].size,
            Obj::Aux(i) => self.aux[i].size,
            _ => unreachable!(),
        }
    }

    fn rights_for(&self, h: Handle, sel: RightsSel) -> Rights {
        let have = self.handles.get(&h).map(|(_, r)| *r).unwrap_or(0);
        match sel {
            RightsSel::Same => ZX_RIGHT_SAME_RIGHTS,
            RightsSel::Subset(mask) => have & mask,
            RightsSel::Raw(r) => r,
        }
    }

    /// SUPPLY through either entry point, with the exact expected status and the contract's
    /// invariants checked on the observed state.
    #[allow(clippy::too_many_arguments)]
    fn supply(
        &mut self,
        via_vmo_op: bool,
        pager: Handle,
        vmo: Handle,
        offset: u64,
        len: u64,
        aux: Handle,
        aux_offset: u64,
    ) {
        // Expected outcome: (status, whether the aux range was taken, dst index, aux index).
        let mut taken = false;
        let mut idx = None;
        let want = (|| -> R<()> {
            if !aligned(offset) || !aligned(len) || !aligned(aux_offset) {
                return Err(ZX_ERR_INVALID_ARGS);
            }
            let v = self.owned(pager, ZX_RIGHT_MANAGE_VMO, vmo)?;
            let (aobj, _) = self.look(aux, Kind::Vmo, ZX_RIGHT_READ | ZX_RIGHT_WRITE)?;
            let Obj::Aux(a) = aobj else {
                return Err(ZX_ERR_BAD_STATE); // a pager VMO is no aux (nor is the VMO itself)
            };
            let apages = page_range(self.aux[a].size, aux_offset, len)?;
            idx = Some((v, a, apages.clone()));
            if self.mappings_of(aobj) > 0 || apages.clone().any(|p| !self.aux[a].committed[p]) {
                return Err(ZX_ERR_BAD_STATE);
            }
            taken = true;
            page_range(self.pv[v].size, offset, len)?;
            if len == 0 {
                return Ok(());
            }
            if self.pv[v].detached {
                return Err(ZX_ERR_BAD_STATE);
            }
            Ok(())
        })();
        let aux_before = idx.as_ref().map(|(_, a, pages)| {
            let a = &self.aux[*a];
            let bytes = a.bytes[pages.start * PS as usize..pages.end * PS as usize].to_vec();
            (a.committed[pages.clone()].to_vec(), bytes)
        });
        let got = if via_vmo_op {
            self.p.pager_vmo_op(
                pager,
                vmo,
                ZX_PAGER_SUPPLY_PAGES,
                offset,
                len,
                aux,
                aux_offset,
            )
        } else {
            self.p
                .pager_supply_pages(pager, vmo, offset, len, aux, aux_offset)
        };
        let what = format!(
            "supply(pager {pager:#x}, vmo {vmo:#x}, {offset:#x}, {len:#x}, aux {aux:#x}, \
             {aux_offset:#x}) via {}",
            if via_vmo_op {
                "pager_vmo_op"
            } else {
                "pager_supply_pages"
            }
        );

        // The contract, checked on what the kernel did (before comparing with the model).
        if let (Some((v, a, apages)), Some((committed_before, bytes_before))) = (&idx, &aux_before)
        {
            let avmo = &self.aux[*a].vmo;
            let now: Vec<bool> = apages.clone().map(|p| avmo.is_present(p as u64)).collect();
            let none = now.iter().all(|c| !c);
            if got.is_err() {
                let mut bytes = vec![0u8; bytes_before.len()];
                avmo.peek(apages.start as u64 * PS, &mut bytes).unwrap();
                let untouched = now == *committed_before && bytes == *bytes_before;
                assert!(
                    untouched || none,
                    "{what} failed ({}) but left the aux range half taken: {now:?}",
                    show(&got)
                );
            } else {
                assert!(
                    none,
                    "{what} succeeded but aux pages remain committed: {now:?}"
                );
            }
            // Destination pages present before keep their bytes; new ones hold the aux bytes.
            let pv = &self.pv[*v];
            if let Ok(dst) = page_range(pv.size, offset, len)
                && aligned(offset)
            {
                for (i, p) in dst.clone().enumerate() {
                    let mut page = vec![0u8; PS as usize];
                    pv.vmo.peek(p as u64 * PS, &mut page).unwrap();
                    let is = pv.vmo.is_present(p as u64);
                    if pv.present[p] {
                        assert!(is, "{what}: present page {p} vanished");
                        assert!(
                            page[..] == pv.bytes[p * PS as usize..(p + 1) * PS as usize],
                            "{what}: present page {p} was replaced"
                        );
                    } else if is {
                        let src = &bytes_before[i * PS as usize..(i + 1) * PS as usize];
                        assert!(
                            page[..] == *src,
                            "{what}: page {p} does not hold the aux bytes"
                        );
                    } else {
                        assert!(got.is_err(), "{what} succeeded but page {p} is absent");
                    }
                }
            }
        }

        assert_eq!(show(&got), show(&want), "{what}");
        if taken {
            let (v, a, apages) = idx.unwrap();
            let src = aux_before.unwrap().1;
            if want.is_ok() && len > 0 {
                let first = (offset / PS) as usize;
                let pv = &mut self.pv[v];
                for i in 0..(len / PS) as usize {
                    let p = first + i;
                    if !pv.present[p] {
                        pv.present[p] = true;
                        pv.dirty[p] = false;
                        pv.awaiting_clean[p] = false;
                        page_bytes(&mut pv.bytes, p)
                            .copy_from_slice(&src[i * PS as usize..(i + 1) * PS as usize]);
                    }
                }
            }
            let aux = &mut self.aux[a];
            for p in apages {
                aux.committed[p] = false;
                page_bytes(&mut aux.bytes, p).fill(0);
            }
        }
    }

    /// Whether a call on detached pager VMO `v` over `pages` fails with BAD_STATE: some page
    /// it needs is absent (or clean, for a write to a TRAP_DIRTY VMO).
    fn detached_fails(&self, v: usize, pages: &std::ops::Range<usize>, write: bool) -> bool {
        let pv = &self.pv[v];
        pv.detached
            && !pages
                .clone()
                .all(|p| pv.present[p] && (!write || !pv.trap_dirty || pv.dirty[p]))
    }

    /// Whether a blocking call on pager VMO `v` over `pages` returns without waiting.
    fn pager_call_is_safe(&self, v: usize, pages: &std::ops::Range<usize>, write: bool) -> bool {
        let pv = &self.pv[v];
        pv.detached
            || pages
                .clone()
                .all(|p| pv.present[p] && (!write || !pv.trap_dirty || pv.dirty[p]))
    }

    fn write(&mut self, h: Handle, offset: u64, len: u64, seed: u8) {
        let buf: Vec<u8> = (0..len).map(|i| seed ^ (i % 251) as u8 ^ 0x80).collect();
        let want = self
            .look(h, Kind::Vmo, ZX_RIGHT_WRITE)
            .and_then(|(obj, _)| Ok((obj, page_range(self.size_of(obj), offset, len)?)));
        if let Ok((Obj::PVmo(v), pages)) = &want
            && !self.pager_call_is_safe(*v, pages, true)
        {
            return; // would block on an absent (or clean TRAP_DIRTY) page
        }
        let got = self.p.vmo_write(h, &buf, offset);
        let want = want.and_then(|(obj, pages)| match obj {
            Obj::PVmo(v) if self.detached_fails(v, &pages, true) => Err(ZX_ERR_BAD_STATE),
            _ => Ok((obj, pages)),
        });
        assert_eq!(
            show(&got),
            show(&want),
            "vmo_write({h:#x}, {offset:#x}, {len:#x})"
        );
        if let Ok((obj, pages)) = want {
            let at = offset as usize;
            match obj {
                Obj::Aux(a) => {
                    let aux = &mut self.aux[a];
                    pages.for_each(|p| aux.committed[p] = true);
                    aux.bytes[at..at + len as usize].copy_from_slice(&buf);
                }
                Obj::PVmo(v) => {
                    let pv = &mut self.pv[v];
                    for p in pages {
                        pv.dirty[p] = true;
                        pv.awaiting_clean[p] = false;
                    }
                    pv.bytes[at..at + len as usize].copy_from_slice(&buf);
                }
                _ => unreachable!(),
            }
        }
    }

    fn op_range(&mut self, h: Handle, op: u32, offset: u64, len: u64) {
        let want = self
            .look(h, Kind::Vmo, ZX_RIGHT_WRITE)
            .and_then(|(obj, _)| {
                let size = self.size_of(obj);
                match (op, obj) {
                    (ZX_VMO_OP_COMMIT, _) => Ok((obj, page_range(size, offset, len)?)),
                    (ZX_VMO_OP_DECOMMIT, Obj::PVmo(_)) => Err(ZX_ERR_NOT_SUPPORTED),
                    (ZX_VMO_OP_DECOMMIT, _) => Ok((obj, page_range(size, offset, len)?)),
                    _ => Err(ZX_ERR_NOT_SUPPORTED),
                }
            });
        if let Ok((Obj::PVmo(v), pages)) = &want
            && !self.pager_call_is_safe(*v, pages, false)
        {
            return; // COMMIT would wait for absent pages
        }
        let got = self.p.vmo_op_range(h, op, offset, len);
        let want = want.and_then(|(obj, pages)| match obj {
            Obj::PVmo(v) if self.detached_fails(v, &pages, false) => Err(ZX_ERR_BAD_STATE),
            _ => Ok((obj, pages)),
        });
        assert_eq!(
            show(&got),
            show(&want),
            "vmo_op_range({h:#x}, {op}, {offset:#x}, {len:#x})"
        );
        if let Ok((Obj::Aux(a), pages)) = want {
            let aux = &mut self.aux[a];
            for p in pages {
                aux.committed[p] = op == ZX_VMO_OP_COMMIT;
                if op == ZX_VMO_OP_DECOMMIT {
                    page_bytes(&mut aux.bytes, p).fill(0);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pager_op(
        &mut self,
        op_range: bool,
        pager: Handle,
        vmo: Handle,
        op: u32,
        offset: u64,
        len: u64,
        data: u64,
        aux: Handle,
    ) {
        let want = (|| -> R<usize> {
            if !aligned(offset) || !aligned(len) {
                return Err(ZX_ERR_INVALID_ARGS);
            }
            let v = self.owned(pager, ZX_RIGHT_MANAGE_VMO, vmo)?;
            let pv = &self.pv[v];
            let range = || page_range(pv.size, offset, len);
            match op {
                ZX_PAGER_OP_FAIL => {
                    let ok = i32::try_from(data as i64).is_ok_and(|s| {
                        [
                            ZX_ERR_IO,
                            ZX_ERR_IO_DATA_INTEGRITY,
                            ZX_ERR_BAD_STATE,
                            ZX_ERR_NO_SPACE,
                            ZX_ERR_BUFFER_TOO_SMALL,
                        ]
                        .contains(&s)
                    });
                    if !ok {
                        return Err(ZX_ERR_INVALID_ARGS);
                    }
                    range()?;
                    if pv.detached {
                        return Err(ZX_ERR_BAD_STATE);
                    }
                }
                ZX_PAGER_OP_DIRTY => {
                    if data != 0 {
                        return Err(ZX_ERR_INVALID_ARGS);
                    }
                    let pages = range()?;
                    if !pv.trap_dirty {
                        return Err(ZX_ERR_NOT_SUPPORTED);
                    }
                    if pv.detached {
                        return Err(ZX_ERR_BAD_STATE);
                    }
                    if pages.clone().any(|p| !pv.present[p]) {
                        return Err(ZX_ERR_NOT_FOUND);
                    }
                }
                ZX_PAGER_OP_WRITEBACK_BEGIN => {
                    if data > ZX_VMO_DIRTY_RANGE_IS_ZERO {
                        return Err(ZX_ERR_INVALID_ARGS);
                    }
                    range()?;
                }
                ZX_PAGER_OP_WRITEBACK_END => {
                    if data != 0 {
                        return Err(ZX_ERR_INVALID_ARGS);
                    }
                    range()?;
                }
                _ if op_range => return Err(ZX_ERR_NOT_SUPPORTED),
                _ => return Err(ZX_ERR_INVALID_ARGS),
            }
            Ok(v)
        })();
        let got = if op_range {
            self.p.pager_op_range(pager, op, vmo, offset, len, data)
        } else {
            self.p.pager_vmo_op(pager, vmo, op, offset, len, aux, data)
        };
        assert_eq!(
            show(&got),
            show(&want),
            "{}(pager {pager:#x}, vmo {vmo:#x}, op {op:#x}, {offset:#x}, {len:#x}, data {data:#x})",
            if op_range {
                "pager_op_range"
            } else {
                "pager_vmo_op"
            }
        );
        if let Ok(v) = want {
            let pv = &mut self.pv[v];
            let pages = page_range(pv.size, offset, len).unwrap();
            for p in pages {
                match op {
                    ZX_PAGER_OP_DIRTY => {
                        pv.dirty[p] = true;
                        pv.awaiting_clean[p] = false;
                    }
                    ZX_PAGER_OP_WRITEBACK_BEGIN if pv.dirty[p] => pv.awaiting_clean[p] = true,
                    ZX_PAGER_OP_WRITEBACK_END if pv.awaiting_clean[p] => {
                        pv.awaiting_clean[p] = false;
                        pv.dirty[p] = false;
                    }
                    _ => {}
                }
            }
        }
    }

    /// Compares every VMO's observable state with the model.
    fn check(&self) {
        for (i, pv) in self.pv.iter().enumerate() {
            let mut bytes = vec![0u8; pv.bytes.len()];
            pv.vmo.peek(0, &mut bytes).unwrap();
            for (p, &present) in pv.present.iter().enumerate() {
                assert_eq!(
                    pv.vmo.is_present(p as u64),
                    present,
                    "pager VMO {i} page {p}"
                );
                assert!(
                    page_bytes(&mut bytes, p) == &pv.bytes[p * PS as usize..(p + 1) * PS as usize],
                    "pager VMO {i} page {p} bytes"
                );
            }
            let info = pv.vmo.info(0);
            let present = pv.present.iter().filter(|p| **p).count() as u64;
            assert_eq!(info.size, pv.size, "pager VMO {i} size");
            assert_eq!(
                info.committed_bytes,
                present * PS,
                "pager VMO {i} committed"
            );
            assert_eq!(
                info.flags & kvmpager::abi::VMO_INFO_FLAG_DETACHED != 0,
                pv.detached,
                "pager VMO {i} detached flag"
            );
            assert_ne!(info.flags & kvmpager::abi::VMO_INFO_FLAG_PAGER_BACKED, 0);
            assert_eq!(info.mappings as usize, self.mappings_of(Obj::PVmo(i)));
        }
        for (i, aux) in self.aux.iter().enumerate() {
            let mut bytes = vec![0u8; aux.bytes.len()];
            aux.vmo.peek(0, &mut bytes).unwrap();
            for (p, &c) in aux.committed.iter().enumerate() {
                assert_eq!(
                    aux.vmo.is_present(p as u64),
                    c,
                    "aux {i} page {p} committed"
                );
            }
            assert!(bytes == aux.bytes, "aux {i} bytes");
            let info = aux.vmo.info(0);
            let committed = aux.committed.iter().filter(|c| **c).count() as u64;
            assert_eq!(
                info.committed_bytes,
                committed * PS,
                "aux {i} committed bytes"
            );
            assert_eq!(info.flags & kvmpager::abi::VMO_INFO_FLAG_PAGER_BACKED, 0);
            assert_eq!(info.mappings as usize, self.mappings_of(Obj::Aux(i)));
        }
        assert_eq!(self.p.handle_count(), self.handles.len(), "live handles");
    }
}

fn narrowed(have: Rights, want: Rights) -> R<Rights> {
    if want == ZX_RIGHT_SAME_RIGHTS {
        return Ok(have);
    }
    if want & !have != 0 {
        return Err(ZX_ERR_INVALID_ARGS);
    }
    Ok(want)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_pager_programs_match_the_model(
        setup in setup(),
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let mut m = Model::new(&setup);
        m.check();
        if setup.prefill {
            for i in 0..NAUX {
                m.run(&Step::Fill(H::Aux(i), i as u8 + 1));
            }
        }
        for s in &steps {
            m.run(s);
        }
        // Drain: every remaining COMPLETE packet is there, in order, and nothing else.
        for port in 0..2 {
            let h = m.live_for(Obj::Port(port));
            if m.handles.get(&h).is_some_and(|(_, r)| r & ZX_RIGHT_READ != 0) {
                while !m.ports[port].is_empty() {
                    m.run(&Step::PortWait(H::Port(port)));
                }
                m.run(&Step::PortWait(H::Port(port)));
            }
        }
    }
}
