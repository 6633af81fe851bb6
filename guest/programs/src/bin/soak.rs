//! Soak: two vCPUs, many pager VMOs, concurrent faults and supplies for about a minute, every
//! byte verified (`vmm/tests/vmm_soak.rs`).
//!
//! **vCPU 0 is the pager.** It creates one pager and one port, then runs rounds until
//! [`DURATION_NS`] of guest clock or [`MAX_ROUNDS`] rounds, whichever comes first. Each round
//! it creates 32–64 pager VMOs of varied sizes (1 page to 2 MiB, at most
//! [`MAX_ROUND_PAGES`] pages in all), pre-supplies a few ranges (sometimes a whole 2 MiB VMO
//! from a small-page or a huge-page aux VMO, so the remap and huge-move paths run), publishes
//! the handles to vCPU 1 and serves the port: every READ request is answered by writing the
//! expected content into an aux VMO (`zx_vmo_write`) and supplying it, alternating
//! `PagerVmoOp(SUPPLY)` and `zx_pager_supply_pages`. Between packets it races the faults with
//! unasked supplies ("prefetches"): at the page vCPU 1 is touching right now (so the queued
//! READ must be withdrawn), at random ranges, over ranges that are already present (SUPPLY must
//! keep those pages), up to a budget of [`PREFETCH_PERCENT`] % of the round's pages. It also
//! re-reads ranges it knows are present with `zx_vmo_read` and checks them (it never reads an
//! absent page: it is the only pager, so that would wait for itself). When vCPU 1 reports the
//! round done, vCPU 0 closes every VMO and must get exactly one COMPLETE packet per VMO.
//!
//! **vCPU 1 faults and verifies.** It maps about three quarters of the round's VMOs with
//! `zx_vmar_map`, cuts every VMO into units of 1–32 pages, shuffles the units of all VMOs
//! together and verifies each unit once: through the mapping (page order scrambled; the first
//! access of a page is a read at a random word, or an atomic `xor` on word 0 — a write fault
//! that returns the supplied value, which is checked, and leaves a *stamp*) or with
//! `zx_vmo_read`. Read-first pages are stamped too, half of the time. Then a final pass checks
//! every byte of every VMO again with `zx_vmo_read` and, for mapped VMOs, through the mapping,
//! expecting the stamps: a SUPPLY that overwrote a present page, or a mapping that no longer
//! shows the VMO's pages, shows up there. Then it unmaps everything and reports the round done.
//!
//! Content is a function of the round, the VMO index and the byte offset ([`content_word`]),
//! so it differs between rounds and VMOs and every byte is checkable.
//!
//! Output: a line every [`REPORT_EVERY_NS`], then
//! `soak: rounds=R vmos=V pages=P bytes_verified=B supplies=S prefetches=F seconds=T` and a
//! `soak: detail ...` line; exit 0. `bytes_verified` counts the bytes of the unit pass
//! (exactly `pages * 4096`); the re-checks are `reverified_bytes` and `pager_checked_bytes`.
//!
//! Failures (never a silent hang; every wait is bounded): a wrong byte prints the round, VMO,
//! offset, expected and found bytes and exits [`EXIT_MISMATCH`]; an unexpected status names
//! the call and exits [`EXIT_CALL`]; no progress for [`STALL_NS`] (a lost wakeup: a vCPU
//! blocked on a page that was supplied, or a packet that never came) prints what each vCPU
//! was doing and exits [`EXIT_STALL`]; an unexpected packet exits [`EXIT_PROTOCOL`].
//! A stall in which both vCPUs are stuck inside calls is caught by the VMM's fault timeout
//! (`vmm/tests/vmm_soak.rs` sets one), which names the VMO and offset.
#![no_std]
#![no_main]

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use kvmpager_guest_programs::rng::{Rng, mix};
use rt::abi::packet::{ZX_PAGER_VMO_COMPLETE, ZX_PAGER_VMO_READ, ZX_PKT_TYPE_PAGE_REQUEST};
use rt::abi::pager_op::ZX_PAGER_SUPPLY_PAGES;
use rt::abi::vm_options::{ZX_VM_PERM_READ, ZX_VM_PERM_WRITE};
use rt::abi::vmo_options::KVMPAGER_VMO_HUGE;
use rt::abi::{PAGE_SIZE, PortPacket, layout};
use rt::sys::{self, Handle};
use rt::{Pager, Port, Status, Vec, Vmo, println, vec};

rt::entry!(main);

/// How long the soak runs, in guest-clock nanoseconds (no new round starts after this).
const DURATION_NS: i64 = 60_000_000_000;
/// Most rounds, whatever the clock says.
const MAX_ROUNDS: u64 = 100_000;
/// No progress for this long (ns) is a stall: the guest reports it and exits [`EXIT_STALL`].
const STALL_NS: i64 = 10_000_000_000;
/// How often vCPU 0 prints a progress line (ns).
const REPORT_EVERY_NS: i64 = 10_000_000_000;

/// Fewest pager VMOs per round.
const MIN_VMOS: usize = 32;
/// Most pager VMOs per round.
const MAX_VMOS: usize = 64;
/// Largest pager VMO, in pages (2 MiB).
const MAX_VMO_PAGES: u64 = 512;
/// Most pages of all of a round's VMOs together (6 MiB).
const MAX_ROUND_PAGES: u64 = 1536;
/// Unasked supplies may add at most this share (%) of a round's pages.
const PREFETCH_PERCENT: u64 = 35;
/// Pages of the vCPUs' bounce buffers (the largest single `vmo_write`/`vmo_read`).
const BUF_PAGES: u64 = 64;
/// Pages of the aux VMOs (one whole 2 MiB VMO).
const AUX_PAGES: u64 = MAX_VMO_PAGES;
/// How long vCPU 0 waits for a packet before it looks around again (ns).
const IDLE_WAIT_NS: i64 = 2_000_000;
/// How long vCPU 1 naps while it waits for a round (ns).
const NAP_NS: i64 = 500_000;
/// Aperture distance between the mappings of consecutive VMOs (2 MiB aligned, with a gap).
const MAP_STRIDE: u64 = 4 << 20;

/// Words per page.
const WORDS: u64 = PAGE_SIZE / 8;
/// XORed into word 0 of a page by vCPU 1's stamp. Every byte is non-zero, so every byte of a
/// stamped word differs from the supplied one.
const STAMP_XOR: u64 = 0xa55a_3cc3_0ff0_9669;
/// Port keys are `KEY_TAG | round << 8 | index`.
const KEY_TAG: u64 = 0x50ac << 48;

/// Exit code: a byte differed from the expected content.
const EXIT_MISMATCH: i64 = 1;
/// Exit code: a call returned an unexpected status.
const EXIT_CALL: i64 = 2;
/// Exit code: no progress for [`STALL_NS`].
const EXIT_STALL: i64 = 3;
/// Exit code: an unexpected packet.
const EXIT_PROTOCOL: i64 = 4;
/// Exit code: fewer than 2 vCPUs.
const EXIT_VCPUS: i64 = 5;

/// What vCPU 1 is doing (for stall reports and for the pager's chasing prefetches).
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
enum Phase {
    /// Waiting for the next round.
    Waiting = 0,
    /// `zx_vmar_map` of the round's VMOs.
    Mapping,
    /// Touching a page through the mapping.
    Touch,
    /// `zx_vmo_read` of a unit.
    VmoRead,
    /// The final re-check.
    Final,
    /// `zx_vmar_unmap` of the round's VMOs.
    Unmapping,
}

impl Phase {
    /// The name of the phase stored as `v` in [`Shared::v1_phase`].
    fn name(v: u32) -> &'static str {
        match v {
            0 => "waiting for a round",
            1 => "VmarMap",
            2 => "touching through the mapping",
            3 => "VmoRead of a unit",
            4 => "final re-check",
            5 => "VmarUnmap",
            _ => "?",
        }
    }
}

/// State shared by the two vCPUs (all in guest RAM, atomics only).
struct Shared {
    /// `r + 1` once round `r`'s VMOs are published.
    round: AtomicU64,
    /// vCPU 0 starts no more rounds.
    finished: AtomicBool,
    /// Number of VMOs in the published round.
    count: AtomicUsize,
    /// The published VMO handles.
    handles: [AtomicU32; MAX_VMOS],
    /// The published VMO sizes, in pages.
    pages: [AtomicU64; MAX_VMOS],
    /// `r + 1` once vCPU 1 verified round `r` and unmapped its VMOs.
    done: AtomicU64,
    /// vCPU 0's heartbeat: bumped on every packet, supply and VMO creation.
    v0_beat: AtomicU64,
    /// vCPU 1's heartbeat: bumped on every unit, mapping and re-check.
    v1_beat: AtomicU64,
    /// vCPU 1's [`Phase`].
    v1_phase: AtomicU32,
    /// The round vCPU 1 is in.
    v1_round: AtomicU64,
    /// The VMO index vCPU 1 is touching.
    v1_vmo: AtomicUsize,
    /// The page vCPU 1 is touching.
    v1_page: AtomicU64,
    /// vCPU 1's counters, read by vCPU 0 for the summary.
    v1: V1Counters,
}

/// What vCPU 1 counts.
struct V1Counters {
    /// Bytes checked in the unit pass (each byte of each VMO once).
    bytes_verified: AtomicU64,
    /// Bytes checked again in the final pass (`zx_vmo_read` and mappings).
    reverified_bytes: AtomicU64,
    /// Pages first touched through a mapping by a read.
    read_touches: AtomicU64,
    /// Pages first touched through a mapping by an atomic xor (a write fault).
    write_touches: AtomicU64,
    /// Units verified with `zx_vmo_read`.
    vmo_read_units: AtomicU64,
    /// Pages stamped.
    stamps: AtomicU64,
    /// VMOs mapped.
    mapped_vmos: AtomicU64,
}

/// The one instance of [`Shared`].
static SH: Shared = Shared {
    round: AtomicU64::new(0),
    finished: AtomicBool::new(false),
    count: AtomicUsize::new(0),
    handles: [const { AtomicU32::new(0) }; MAX_VMOS],
    pages: [const { AtomicU64::new(0) }; MAX_VMOS],
    done: AtomicU64::new(0),
    v0_beat: AtomicU64::new(0),
    v1_beat: AtomicU64::new(0),
    v1_phase: AtomicU32::new(0),
    v1_round: AtomicU64::new(0),
    v1_vmo: AtomicUsize::new(0),
    v1_page: AtomicU64::new(0),
    v1: V1Counters {
        bytes_verified: AtomicU64::new(0),
        reverified_bytes: AtomicU64::new(0),
        read_touches: AtomicU64::new(0),
        write_touches: AtomicU64::new(0),
        vmo_read_units: AtomicU64::new(0),
        stamps: AtomicU64::new(0),
        mapped_vmos: AtomicU64::new(0),
    },
};

/// Bumps a heartbeat.
fn beat(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Reads a counter.
fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

// ---- content ---------------------------------------------------------------------------

/// The seed of VMO `index` of round `round`.
fn vmo_seed(round: u64, index: usize) -> u64 {
    mix(round.wrapping_mul(0x0000_0100_0000_01b3) ^ ((index as u64) << 52) ^ 0x50ac_5eed)
}

/// The expected 64-bit word at word index `word` (byte offset / 8) of a VMO with `seed`.
fn content_word(seed: u64, word: u64) -> u64 {
    mix(seed ^ word.wrapping_mul(0xd6e8_feb8_6659_fd93))
}

/// Fills `buf` with the content of pages `first_page..` of a VMO with `seed`.
fn fill(buf: &mut [u8], seed: u64, first_page: u64) {
    let first_word = first_page * WORDS;
    for (i, w) in buf.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&content_word(seed, first_word + i as u64).to_le_bytes());
    }
}

/// Where a checked word came from, for mismatch reports.
struct Where {
    /// Which vCPU checked and how.
    how: &'static str,
    /// The round.
    round: u64,
    /// The VMO's index in its round.
    vmo: usize,
    /// The VMO's handle.
    handle: Handle,
    /// The VMO's size in pages.
    pages: u64,
}

/// Reports a wrong word at byte offset `offset` and exits [`EXIT_MISMATCH`].
fn mismatch(w: &Where, offset: u64, want: u64, got: u64) -> ! {
    let diff = want ^ got;
    let byte = u64::from(diff.trailing_zeros() / 8);
    let shift = byte * 8;
    println!(
        "soak: MISMATCH round {} vmo {} (handle {:#x}, {} pages) offset {:#x} via {}: \
         expected {:#04x} found {:#04x} (word at {:#x}: expected {:#018x} found {:#018x})",
        w.round,
        w.vmo,
        w.handle.0,
        w.pages,
        offset + byte,
        w.how,
        (want >> shift) & 0xff,
        (got >> shift) & 0xff,
        offset,
        want,
        got
    );
    sys::exit(EXIT_MISMATCH)
}

/// Checks that `got` at byte offset `offset` is `want`.
#[inline(always)]
fn check_word(w: &Where, offset: u64, want: u64, got: u64) {
    if got != want {
        mismatch(w, offset, want, got);
    }
}

/// Checks a word that may be written concurrently (from `want` to `alt`, by vCPU 1's stamp):
/// each byte must be one or the other (a host copy may see a torn word).
fn check_word_either(w: &Where, offset: u64, want: u64, alt: u64, got: u64) {
    for b in 0..8 {
        let byte = |x: u64| (x >> (8 * b)) & 0xff;
        if byte(got) != byte(want) && byte(got) != byte(alt) {
            mismatch(w, offset, want, got);
        }
    }
}

/// Checks `buf`, read from page `first_page` on, against the content of `seed`; `stamped`
/// says whether a page's word 0 carries a stamp (`Some(true)`), not (`Some(false)`), or may
/// be getting one right now (`None`).
fn check_buf(
    w: &Where,
    buf: &[u8],
    seed: u64,
    first_page: u64,
    stamped: impl Fn(u64) -> Option<bool>,
) {
    for (i, chunk) in buf.chunks_exact(8).enumerate() {
        let word = first_page * WORDS + i as u64;
        let got = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let want = content_word(seed, word);
        let offset = word * 8;
        if !word.is_multiple_of(WORDS) {
            check_word(w, offset, want, got);
            continue;
        }
        match stamped(word / WORDS) {
            Some(false) => check_word(w, offset, want, got),
            Some(true) => check_word(w, offset, want ^ STAMP_XOR, got),
            None => check_word_either(w, offset, want, want ^ STAMP_XOR, got),
        }
    }
}

// ---- small helpers -------------------------------------------------------------------------

/// Page bitmaps for the VMOs of a round.
struct Bitmaps(Vec<[u64; (MAX_VMO_PAGES / 64) as usize]>);

impl Bitmaps {
    /// All clear, for [`MAX_VMOS`] VMOs of up to [`MAX_VMO_PAGES`] pages.
    fn new() -> Self {
        Bitmaps(vec![[0; (MAX_VMO_PAGES / 64) as usize]; MAX_VMOS])
    }

    /// Whether the bit of `page` of VMO `vmo` is set.
    fn get(&self, vmo: usize, page: u64) -> bool {
        self.0[vmo][(page / 64) as usize] & (1 << (page % 64)) != 0
    }

    /// Sets the bit; returns whether it was clear.
    fn set(&mut self, vmo: usize, page: u64) -> bool {
        let word = &mut self.0[vmo][(page / 64) as usize];
        let was_clear = *word & (1 << (page % 64)) == 0;
        *word |= 1 << (page % 64);
        was_clear
    }

    /// Clears every bit.
    fn clear(&mut self) {
        for b in self.0.iter_mut() {
            *b = [0; (MAX_VMO_PAGES / 64) as usize];
        }
    }
}

/// The guest clock (ns).
fn now() -> i64 {
    sys::clock_monotonic()
}

/// Reports a call that failed and exits [`EXIT_CALL`].
fn call_failed(who: &str, call: &str, status: Status, what: fmt::Arguments<'_>) -> ! {
    println!("soak: FAIL {who}: {call} ({what}) returned {status:?}");
    sys::exit(EXIT_CALL)
}

/// Reports an unexpected packet and exits [`EXIT_PROTOCOL`].
fn bad_packet(why: &str, round: u64, pkt: &PortPacket) -> ! {
    println!("soak: FAIL vCPU 0: {why} in round {round}: {pkt:?}");
    sys::exit(EXIT_PROTOCOL)
}

/// The aperture address of VMO `index`'s mapping.
fn map_gpa(index: usize) -> u64 {
    layout::APERTURE_START + index as u64 * MAP_STRIDE
}

/// vCPU 0 pages, vCPU 1 faults and verifies, any others park.
fn main(vcpu: usize, ncpus: usize, _ram: u64) -> i64 {
    match vcpu {
        0 if ncpus < 2 => {
            println!("soak: needs 2 vCPUs (vCPU 0 pages, vCPU 1 faults)");
            EXIT_VCPUS
        }
        0 => PagerSide::new().run(),
        1 => accessor(),
        _ => rt::park(),
    }
}

// ---- vCPU 0: the pager -------------------------------------------------------------------

/// Names vCPU 0 in messages.
const WHO: &str = "vCPU 0";

/// vCPU 0's objects, buffers and counters.
struct PagerSide {
    /// The pager of every VMO.
    pager: Pager,
    /// Where every VMO's page requests arrive.
    port: Port,
    /// Small-page aux VMO (also the remap path for whole 2 MiB supplies).
    aux: Vmo,
    /// Huge-page aux VMO for whole 2 MiB supplies (`None` if the host refuses one).
    aux_huge: Option<Vmo>,
    /// Bounce buffer for content going into the aux VMOs and for re-reads.
    buf: Vec<u8>,
    /// Decisions of the current round.
    rng: Rng,
    /// The current round's VMOs and their sizes in pages.
    vmos: Vec<Vmo>,
    /// Sizes of `vmos`, in pages.
    sizes: Vec<u64>,
    /// Pages vCPU 0 has supplied in the current round (all present).
    supplied: Bitmaps,
    /// The current round.
    round: u64,
    /// Pages of the current round's VMOs.
    round_pages: u64,
    /// Pages the current round's unasked supplies made present.
    round_prefetched: u64,
    /// The guest clock at the start.
    start: i64,
    /// When the next progress line is due.
    next_report: i64,
    /// What vCPU 0 counts.
    c: PagerCounters,
}

/// vCPU 0's counters.
#[derive(Default)]
struct PagerCounters {
    /// Rounds started.
    rounds: u64,
    /// Pager VMOs created.
    vmos: u64,
    /// Pages of those VMOs.
    pages: u64,
    /// Supply calls (demand and unasked).
    supplies: u64,
    /// Unasked supplies (prefetches, pre-supplies, chases, re-supplies of present pages).
    prefetches: u64,
    /// Pages the unasked supplies made present.
    prefetched_pages: u64,
    /// Unasked supplies at the page vCPU 1 was touching.
    chases: u64,
    /// Unasked supplies of ranges that were all present already.
    present_resupplies: u64,
    /// Whole 2 MiB supplies (from the small-page / the huge-page aux VMO).
    whole_small: u64,
    /// See `whole_small`.
    whole_huge: u64,
    /// READ packets served, and their pages.
    reads: u64,
    /// See `reads`.
    read_pages: u64,
    /// READ packets whose pages were all present when they were read.
    stale_reads: u64,
    /// COMPLETE packets.
    completes: u64,
    /// Bytes vCPU 0 re-read with `zx_vmo_read` and checked.
    pager_checked_bytes: u64,
}

impl PagerSide {
    /// Creates the pager, the port and the aux VMOs.
    fn new() -> Self {
        let pager = Pager::create(0)
            .unwrap_or_else(|s| call_failed(WHO, "PagerCreate", s, format_args!("")));
        let port =
            Port::create(0).unwrap_or_else(|s| call_failed(WHO, "PortCreate", s, format_args!("")));
        let aux = Vmo::create(AUX_PAGES * PAGE_SIZE, 0)
            .unwrap_or_else(|s| call_failed(WHO, "VmoCreate", s, format_args!("aux")));
        let aux_huge = Vmo::create(AUX_PAGES * PAGE_SIZE, KVMPAGER_VMO_HUGE).ok();
        let start = now();
        PagerSide {
            pager,
            port,
            aux,
            aux_huge,
            buf: vec![0; (BUF_PAGES * PAGE_SIZE) as usize],
            rng: Rng::new(0x9a9e),
            vmos: Vec::with_capacity(MAX_VMOS),
            sizes: Vec::with_capacity(MAX_VMOS),
            supplied: Bitmaps::new(),
            round: 0,
            round_pages: 0,
            round_prefetched: 0,
            start,
            next_report: start + REPORT_EVERY_NS,
            c: PagerCounters::default(),
        }
    }

    /// Runs every round, prints the summary and returns the exit code (0).
    fn run(mut self) -> i64 {
        println!(
            "soak: 2 vCPUs, {MIN_VMOS}-{MAX_VMOS} pager VMOs a round, up to {} s or {MAX_ROUNDS} rounds",
            DURATION_NS / 1_000_000_000
        );
        while self.round < MAX_ROUNDS && now() - self.start < DURATION_NS {
            self.create_round();
            self.publish();
            self.serve_round();
            self.close_round();
            self.round += 1;
        }
        SH.finished.store(true, Ordering::Release);
        self.summary();
        0
    }

    /// Creates the round's VMOs and pre-supplies some ranges.
    fn create_round(&mut self) {
        let round = self.round;
        self.rng = Rng::new(round ^ 0x9a9e_0000);
        let n = self.rng.range(MIN_VMOS as u64, MAX_VMOS as u64) as usize;
        self.supplied.clear();
        self.sizes.clear();
        let mut left = MAX_ROUND_PAGES;
        for i in 0..n {
            let want = match self.rng.below(100) {
                0..25 => self.rng.range(1, 4),
                25..75 => self.rng.range(5, 32),
                75..94 => self.rng.range(33, 128),
                _ => MAX_VMO_PAGES,
            };
            // Leave at least one page for each VMO still to come.
            let room = left - (n - i - 1) as u64;
            let pages = want.min(room).max(1);
            left -= pages;
            self.sizes.push(pages);
        }
        self.round_pages = self.sizes.iter().sum();
        self.round_prefetched = 0;
        for i in 0..n {
            let key = KEY_TAG | round << 8 | i as u64;
            let vmo = self
                .pager
                .create_vmo(0, &self.port, key, self.sizes[i] * PAGE_SIZE)
                .unwrap_or_else(|s| {
                    call_failed(
                        WHO,
                        "PagerCreateVmo",
                        s,
                        format_args!("round {round} vmo {i}, {} pages", self.sizes[i]),
                    )
                });
            self.vmos.push(vmo);
            beat(&SH.v0_beat);
        }
        // Pre-supply: a whole 2 MiB VMO now and then, and a few ranges.
        for i in 0..n {
            if self.sizes[i] == MAX_VMO_PAGES && self.rng.chance(40) {
                self.supply_whole(i);
            }
        }
        for _ in 0..self.rng.below(4) {
            self.prefetch_random();
        }
        self.c.rounds += 1;
        self.c.vmos += n as u64;
        self.c.pages += self.round_pages;
    }

    /// Hands the round's VMOs to vCPU 1.
    fn publish(&self) {
        for (i, vmo) in self.vmos.iter().enumerate() {
            SH.handles[i].store(vmo.raw(), Ordering::Relaxed);
            SH.pages[i].store(self.sizes[i], Ordering::Relaxed);
        }
        SH.count.store(self.vmos.len(), Ordering::Relaxed);
        SH.round.store(self.round + 1, Ordering::Release);
    }

    /// Serves packets and races them with unasked supplies until vCPU 1 is done.
    fn serve_round(&mut self) {
        let mut last_progress = now();
        let mut last_v1 = SH.v1_beat.load(Ordering::Relaxed);
        while SH.done.load(Ordering::Acquire) != self.round + 1 {
            let t = now();
            if t >= self.next_report {
                self.progress_line(t);
                self.next_report += REPORT_EVERY_NS;
            }
            let v1 = SH.v1_beat.load(Ordering::Relaxed);
            if v1 != last_v1 {
                last_v1 = v1;
                last_progress = t;
            }
            if t - last_progress > STALL_NS {
                self.stall(t - last_progress);
            }
            if self.round_prefetched * 100 < self.round_pages * PREFETCH_PERCENT
                && self.rng.chance(25)
            {
                self.prefetch();
            }
            if self.rng.chance(5) {
                self.pager_check();
            }
            match self.port.wait(t + IDLE_WAIT_NS) {
                Ok(pkt) => {
                    self.handle_packet(&pkt);
                    last_progress = now();
                }
                Err(Status::ERR_TIMED_OUT) => {}
                Err(s) => call_failed(WHO, "PortWait", s, format_args!("round {}", self.round)),
            }
        }
    }

    /// Checks a packet's key; returns the VMO index.
    fn vmo_of(&self, pkt: &PortPacket) -> usize {
        if pkt.packet_type != ZX_PKT_TYPE_PAGE_REQUEST || pkt.status != 0 {
            bad_packet("not a page request", self.round, pkt);
        }
        let index = (pkt.key & 0xff) as usize;
        if pkt.key & !0xff != KEY_TAG | self.round << 8 || index >= self.vmos.len() {
            bad_packet("a packet for no VMO of this round", self.round, pkt);
        }
        index
    }

    /// Serves one packet: a READ inside a VMO of this round is supplied; anything else is a
    /// protocol failure.
    fn handle_packet(&mut self, pkt: &PortPacket) {
        let i = self.vmo_of(pkt);
        let req = pkt.page_request;
        if req.command != ZX_PAGER_VMO_READ {
            bad_packet("not a READ while the VMOs are open", self.round, pkt);
        }
        let size = self.sizes[i] * PAGE_SIZE;
        if !req.offset.is_multiple_of(PAGE_SIZE)
            || !req.length.is_multiple_of(PAGE_SIZE)
            || req.length == 0
            || req.offset >= size
            || req.length > size - req.offset
            || req.flags != 0
        {
            bad_packet("a READ outside the VMO", self.round, pkt);
        }
        let (first, count) = (req.offset / PAGE_SIZE, req.length / PAGE_SIZE);
        if (first..first + count).all(|p| self.supplied.get(i, p)) {
            self.c.stale_reads += 1;
        }
        self.c.reads += 1;
        self.c.read_pages += count;
        self.supply(i, first, count);
        beat(&SH.v0_beat);
    }

    /// Supplies pages `first..first + count` of VMO `i` with their content, in pieces of at
    /// most [`BUF_PAGES`]; returns how many were not supplied before.
    fn supply(&mut self, i: usize, first: u64, count: u64) -> u64 {
        let seed = vmo_seed(self.round, i);
        let mut new = 0;
        let mut done = 0;
        while done < count {
            let n = (count - done).min(BUF_PAGES);
            let page = first + done;
            let bytes = (n * PAGE_SIZE) as usize;
            fill(&mut self.buf[..bytes], seed, page);
            if let Err(s) = self.aux.write(&self.buf[..bytes], 0) {
                call_failed(WHO, "VmoWrite", s, format_args!("aux, {n} pages"));
            }
            self.supply_from_aux(i, page, n, false);
            for p in page..page + n {
                new += u64::from(self.supplied.set(i, p));
            }
            done += n;
        }
        new
    }

    /// Supplies `[page, +n)` of VMO `i` from offset 0 of an aux VMO, alternating the two calls.
    fn supply_from_aux(&mut self, i: usize, page: u64, n: u64, huge: bool) {
        let aux = match (huge, &self.aux_huge) {
            (true, Some(a)) => a,
            _ => &self.aux,
        };
        let (off, len) = (page * PAGE_SIZE, n * PAGE_SIZE);
        let vmo = &self.vmos[i];
        let (call, r) = if self.rng.chance(50) {
            (
                "PagerSupplyPages",
                self.pager.supply_pages(vmo, off, len, aux, 0),
            )
        } else {
            (
                "PagerVmoOp(SUPPLY)",
                self.pager
                    .vmo_op(vmo, ZX_PAGER_SUPPLY_PAGES, off, len, Some(aux), 0),
            )
        };
        if let Err(s) = r {
            call_failed(
                WHO,
                call,
                s,
                format_args!(
                    "round {} vmo {i} [{off:#x}, +{len:#x}) of {} pages",
                    self.round, self.sizes[i]
                ),
            );
        }
        self.c.supplies += 1;
        beat(&SH.v0_beat);
    }

    /// An unasked supply of one of four kinds.
    fn prefetch(&mut self) {
        match self.rng.below(100) {
            0..35 => self.prefetch_chase(),
            35..70 => self.prefetch_random(),
            _ => self.prefetch_present(),
        }
    }

    /// Records an unasked supply that made `new` pages present.
    fn count_prefetch(&mut self, new: u64) {
        self.c.prefetches += 1;
        self.c.prefetched_pages += new;
        self.round_prefetched += new;
    }

    /// Supplies 1–4 pages from the one vCPU 1 is touching (its READ, if queued, must be
    /// withdrawn).
    fn prefetch_chase(&mut self) {
        if SH.v1_round.load(Ordering::Relaxed) != self.round
            || SH.v1_phase.load(Ordering::Relaxed) != Phase::Touch as u32
        {
            return self.prefetch_random();
        }
        let i = SH.v1_vmo.load(Ordering::Relaxed);
        let page = SH.v1_page.load(Ordering::Relaxed);
        if i >= self.vmos.len() || page >= self.sizes[i] {
            return self.prefetch_random();
        }
        let n = self.rng.range(1, 4).min(self.sizes[i] - page);
        let new = self.supply(i, page, n);
        self.c.chases += 1;
        self.count_prefetch(new);
    }

    /// Supplies 1–16 pages somewhere (present pages in the range are kept).
    fn prefetch_random(&mut self) {
        let i = self.rng.below(self.vmos.len() as u64) as usize;
        let size = self.sizes[i];
        let page = self.rng.below(size);
        let n = self.rng.range(1, 16).min(size - page);
        let new = self.supply(i, page, n);
        self.count_prefetch(new);
    }

    /// Supplies a range that is all present already (vCPU 1 may have stamped it since: the
    /// final pass checks the stamps survive).
    fn prefetch_present(&mut self) {
        let i = self.rng.below(self.vmos.len() as u64) as usize;
        let size = self.sizes[i];
        let page = self.rng.below(size);
        if !self.supplied.get(i, page) {
            return self.prefetch_random();
        }
        let mut n = 1;
        while n < 16 && page + n < size && self.supplied.get(i, page + n) {
            n += 1;
        }
        let new = self.supply(i, page, n);
        if new != 0 {
            println!("soak: FAIL vCPU 0: bookkeeping: {new} of a present range were new");
            sys::exit(EXIT_PROTOCOL);
        }
        self.c.present_resupplies += 1;
        self.count_prefetch(0);
    }

    /// Supplies all 2 MiB of VMO `i` in one call from an aux VMO (small or huge pages).
    fn supply_whole(&mut self, i: usize) {
        let seed = vmo_seed(self.round, i);
        let huge = self.aux_huge.is_some() && self.rng.chance(50);
        for piece in 0..AUX_PAGES / BUF_PAGES {
            let page = piece * BUF_PAGES;
            fill(&mut self.buf, seed, page);
            let aux = match (huge, &self.aux_huge) {
                (true, Some(a)) => a,
                _ => &self.aux,
            };
            if let Err(s) = aux.write(&self.buf, page * PAGE_SIZE) {
                call_failed(WHO, "VmoWrite", s, format_args!("aux for 2 MiB"));
            }
        }
        self.supply_from_aux(i, 0, AUX_PAGES, huge);
        let mut new = 0;
        for p in 0..AUX_PAGES {
            new += u64::from(self.supplied.set(i, p));
        }
        if huge {
            self.c.whole_huge += 1;
        } else {
            self.c.whole_small += 1;
        }
        self.count_prefetch(new);
    }

    /// Re-reads up to 16 pages that vCPU 0 knows are present with `zx_vmo_read` and checks
    /// them (word 0 of a page may carry vCPU 1's stamp, or be getting it right now).
    fn pager_check(&mut self) {
        let i = self.rng.below(self.vmos.len() as u64) as usize;
        let size = self.sizes[i];
        let page = self.rng.below(size);
        if !self.supplied.get(i, page) {
            return;
        }
        let mut n = 1;
        while n < 16 && page + n < size && self.supplied.get(i, page + n) {
            n += 1;
        }
        let bytes = (n * PAGE_SIZE) as usize;
        let vmo = &self.vmos[i];
        if let Err(s) = vmo.read(&mut self.buf[..bytes], page * PAGE_SIZE) {
            call_failed(
                WHO,
                "VmoRead",
                s,
                format_args!("round {} vmo {i}, present pages {page}+{n}", self.round),
            );
        }
        let w = Where {
            how: "vCPU 0 zx_vmo_read of present pages",
            round: self.round,
            vmo: i,
            handle: vmo.handle(),
            pages: size,
        };
        check_buf(
            &w,
            &self.buf[..bytes],
            vmo_seed(self.round, i),
            page,
            |_| None,
        );
        self.c.pager_checked_bytes += bytes as u64;
    }

    /// Closes the round's VMOs and collects exactly one COMPLETE packet for each.
    fn close_round(&mut self) {
        let n = self.vmos.len();
        for (i, vmo) in self.vmos.drain(..).enumerate() {
            if let Err(s) = vmo.close() {
                call_failed(
                    WHO,
                    "HandleClose",
                    s,
                    format_args!("round {} vmo {i}", self.round),
                );
            }
        }
        // `vmos` is empty now: packets are checked against the round and `n` here.
        let mut got = 0u64;
        let deadline = now() + STALL_NS;
        while got.count_ones() < n as u32 {
            match self.port.wait(deadline) {
                Ok(pkt) => {
                    let index = (pkt.key & 0xff) as usize;
                    if pkt.packet_type != ZX_PKT_TYPE_PAGE_REQUEST
                        || pkt.key & !0xff != KEY_TAG | self.round << 8
                        || index >= n
                        || pkt.page_request.command != ZX_PAGER_VMO_COMPLETE
                        || got & (1 << index) != 0
                    {
                        bad_packet("expected one COMPLETE per closed VMO", self.round, &pkt);
                    }
                    got |= 1 << index;
                    self.c.completes += 1;
                }
                Err(Status::ERR_TIMED_OUT) => {
                    println!(
                        "soak: STALL vCPU 0: round {}: {} of {n} COMPLETE packets after {} s \
                         (got mask {got:#x})",
                        self.round,
                        got.count_ones(),
                        STALL_NS / 1_000_000_000
                    );
                    sys::exit(EXIT_STALL)
                }
                Err(s) => call_failed(
                    WHO,
                    "PortWait",
                    s,
                    format_args!("COMPLETE packets of round {}", self.round),
                ),
            }
        }
    }

    /// Prints a progress line.
    fn progress_line(&self, t: i64) {
        println!(
            "soak: t={}s round={} pages={} reads={} supplies={} prefetches={} bytes_verified={}",
            (t - self.start) / 1_000_000_000,
            self.round,
            self.c.pages,
            self.c.reads,
            self.c.supplies,
            self.c.prefetches,
            get(&SH.v1.bytes_verified)
        );
    }

    /// Reports a stall (no packet and no progress of vCPU 1 for `idle` ns) and exits.
    fn stall(&self, idle: i64) -> ! {
        let phase = SH.v1_phase.load(Ordering::Relaxed);
        let i = SH.v1_vmo.load(Ordering::Relaxed);
        let page = SH.v1_page.load(Ordering::Relaxed);
        println!(
            "soak: STALL round {}: no packet and no progress of vCPU 1 for {} ms; vCPU 1 is in \
             round {}, {} (vmo {i}, page {page})",
            self.round,
            idle / 1_000_000,
            SH.v1_round.load(Ordering::Relaxed),
            Phase::name(phase),
        );
        if i < self.vmos.len() && page < self.sizes[i] {
            let info = self.vmos[i].get_info();
            println!(
                "soak: STALL: vCPU 0 supplied that page: {}; the VMO has {} pages, info {info:?}",
                self.supplied.get(i, page),
                self.sizes[i],
            );
        }
        println!(
            "soak: STALL: so far rounds={} reads={} supplies={} prefetches={}",
            self.c.rounds, self.c.reads, self.c.supplies, self.c.prefetches
        );
        sys::exit(EXIT_STALL)
    }

    /// Prints the summary line and the detail lines.
    fn summary(&self) {
        let elapsed = now() - self.start;
        let c = &self.c;
        let v1 = &SH.v1;
        println!(
            "soak: rounds={} vmos={} pages={} bytes_verified={} supplies={} prefetches={} \
             seconds={}.{:03}",
            c.rounds,
            c.vmos,
            c.pages,
            get(&v1.bytes_verified),
            c.supplies,
            c.prefetches,
            elapsed / 1_000_000_000,
            elapsed % 1_000_000_000 / 1_000_000
        );
        println!(
            "soak: detail reads={} read_pages={} stale_reads={} prefetched_pages={} chases={} \
             present_resupplies={} whole_small={} whole_huge={} completes={} \
             reverified_bytes={} pager_checked_bytes={}",
            c.reads,
            c.read_pages,
            c.stale_reads,
            c.prefetched_pages,
            c.chases,
            c.present_resupplies,
            c.whole_small,
            c.whole_huge,
            c.completes,
            get(&v1.reverified_bytes),
            c.pager_checked_bytes,
        );
        println!(
            "soak: detail mapped_vmos={} read_touches={} write_touches={} vmo_read_units={} \
             stamps={}",
            get(&v1.mapped_vmos),
            get(&v1.read_touches),
            get(&v1.write_touches),
            get(&v1.vmo_read_units),
            get(&v1.stamps),
        );
    }
}

// ---- vCPU 1: faults and verifies ---------------------------------------------------------

/// A unit of vCPU 1's work: `count` pages from `first` of VMO `vmo`, through the mapping
/// (`touch`) or with `zx_vmo_read`.
#[derive(Clone, Copy)]
struct Unit {
    /// VMO index.
    vmo: u8,
    /// Through the mapping (else `zx_vmo_read`).
    touch: bool,
    /// First page.
    first: u16,
    /// Number of pages.
    count: u16,
}

/// vCPU 1's view of a round.
struct Round {
    /// The round number.
    round: u64,
    /// Number of VMOs.
    n: usize,
    /// Their handles (owned by vCPU 0).
    handles: [Handle; MAX_VMOS],
    /// Their sizes in pages.
    pages: [u64; MAX_VMOS],
    /// Which ones vCPU 1 mapped (at [`map_gpa`]).
    mapped: [bool; MAX_VMOS],
}

impl Round {
    /// A [`Where`] for VMO `i` checked `how`.
    fn at(&self, i: usize, how: &'static str) -> Where {
        Where {
            how,
            round: self.round,
            vmo: i,
            handle: self.handles[i],
            pages: self.pages[i],
        }
    }
}

/// Publishes what vCPU 1 is doing.
fn set_phase(phase: Phase, vmo: usize, page: u64) {
    SH.v1_vmo.store(vmo, Ordering::Relaxed);
    SH.v1_page.store(page, Ordering::Relaxed);
    SH.v1_phase.store(phase as u32, Ordering::Relaxed);
}

/// vCPU 1: waits for each round, faults and verifies every byte, reports the round done.
fn accessor() -> ! {
    let nap = Port::create(0)
        .unwrap_or_else(|s| call_failed("vCPU 1", "PortCreate", s, format_args!("nap port")));
    let mut buf = vec![0u8; (BUF_PAGES * PAGE_SIZE) as usize];
    let mut units: Vec<Unit> = Vec::with_capacity(MAX_ROUND_PAGES as usize);
    let mut stamped = Bitmaps::new();
    let mut round = 0u64;
    loop {
        let Some(mut r) = wait_for_round(&nap, round) else {
            rt::park()
        };
        let mut rng = Rng::new(round ^ 0xacce_55ed);
        stamped.clear();
        map_round(&mut r, &mut rng);
        // Units of 1–8 (touch) or 1–32 (vmo_read) pages, all VMOs' shuffled together.
        units.clear();
        for i in 0..r.n {
            let mut page = 0;
            while page < r.pages[i] {
                let touch = r.mapped[i] && rng.chance(80);
                let max = if touch { 8 } else { 32 };
                let count = rng.range(1, max).min(r.pages[i] - page);
                units.push(Unit {
                    vmo: i as u8,
                    touch,
                    first: page as u16,
                    count: count as u16,
                });
                page += count;
            }
        }
        for k in (1..units.len()).rev() {
            units.swap(k, rng.below(k as u64 + 1) as usize);
        }
        for u in &units {
            if u.touch {
                touch_unit(&r, *u, &mut rng, &mut stamped);
            } else {
                read_unit(&r, *u, &mut buf);
            }
            beat(&SH.v1_beat);
        }
        final_pass(&r, &mut buf, &stamped);
        for i in 0..r.n {
            if r.mapped[i] {
                set_phase(Phase::Unmapping, i, 0);
                if let Err(s) = sys::vmar_unmap(map_gpa(i), r.pages[i] * PAGE_SIZE) {
                    call_failed(
                        "vCPU 1",
                        "VmarUnmap",
                        s,
                        format_args!("round {round} vmo {i}"),
                    );
                }
                beat(&SH.v1_beat);
            }
        }
        set_phase(Phase::Waiting, 0, 0);
        SH.done.store(round + 1, Ordering::Release);
        round += 1;
    }
}

/// Waits (napping in `PortWait` on an empty port) until round `round` is published; `None`
/// when vCPU 0 starts no more rounds. A vCPU 0 without progress for [`STALL_NS`] is a stall.
fn wait_for_round(nap: &Port, round: u64) -> Option<Round> {
    SH.v1_round.store(round, Ordering::Relaxed);
    let mut last = SH.v0_beat.load(Ordering::Relaxed);
    let mut since = now();
    while SH.round.load(Ordering::Acquire) != round + 1 {
        if SH.finished.load(Ordering::Acquire) {
            return None;
        }
        let t = now();
        let b = SH.v0_beat.load(Ordering::Relaxed);
        if b != last {
            last = b;
            since = t;
        } else if t - since > STALL_NS {
            println!(
                "soak: STALL vCPU 1: round {round} not published and no progress of vCPU 0 \
                 for {} ms",
                (t - since) / 1_000_000
            );
            sys::exit(EXIT_STALL)
        }
        match nap.wait(t + NAP_NS) {
            Err(Status::ERR_TIMED_OUT) => {}
            other => {
                println!("soak: FAIL vCPU 1: PortWait on an empty port gave {other:?}");
                sys::exit(EXIT_CALL)
            }
        }
    }
    let n = SH.count.load(Ordering::Relaxed);
    let mut r = Round {
        round,
        n,
        handles: [Handle::INVALID; MAX_VMOS],
        pages: [0; MAX_VMOS],
        mapped: [false; MAX_VMOS],
    };
    for i in 0..n {
        r.handles[i] = Handle(SH.handles[i].load(Ordering::Relaxed));
        r.pages[i] = SH.pages[i].load(Ordering::Relaxed);
    }
    Some(r)
}

/// Maps about three quarters of the round's VMOs (sets `r.mapped`).
fn map_round(r: &mut Round, rng: &mut Rng) {
    for i in 0..r.n {
        if !rng.chance(75) {
            continue;
        }
        set_phase(Phase::Mapping, i, 0);
        let len = r.pages[i] * PAGE_SIZE;
        if let Err(s) = sys::vmar_map(
            ZX_VM_PERM_READ | ZX_VM_PERM_WRITE,
            map_gpa(i),
            r.handles[i],
            0,
            len,
        ) {
            call_failed(
                "vCPU 1",
                "VmarMap",
                s,
                format_args!(
                    "round {} vmo {i} at {:#x}, {len:#x} bytes",
                    r.round,
                    map_gpa(i)
                ),
            );
        }
        r.mapped[i] = true;
        add(&SH.v1.mapped_vmos, 1);
        beat(&SH.v1_beat);
    }
}

/// Reads the word at aperture address `addr` (8-aligned, inside a live mapping).
fn read_word(addr: u64) -> u64 {
    // SAFETY: `addr` is an 8-aligned address inside a live aperture mapping of a pager VMO,
    // which the guest's page tables identity-map; the read may block inside KVM until the
    // page is supplied. Nothing else in the guest accesses it except through atomics/volatile.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

/// Atomically XORs `x` into the word at aperture address `addr` (8-aligned, inside a live,
/// writable mapping) and returns the old value. The access is a write: on an absent page it is
/// a write fault, and the supplied value comes back.
fn xor_word(addr: u64, x: u64) -> u64 {
    // SAFETY: as in `read_word`; the mapping is writable, the address 8-aligned, and the word
    // is only accessed with volatile reads and atomics while the mapping lives.
    let word = unsafe { AtomicU64::from_ptr(addr as *mut u64) };
    word.fetch_xor(x, Ordering::SeqCst)
}

/// Verifies the pages of `u` through the mapping, in scrambled order: each page's first
/// access is a read at a random word or an atomic XOR (stamp) on word 0; read-first pages are
/// stamped half of the time after the check.
fn touch_unit(r: &Round, u: Unit, rng: &mut Rng, stamped: &mut Bitmaps) {
    let i = usize::from(u.vmo);
    let seed = vmo_seed(r.round, i);
    let w = r.at(i, "vCPU 1 through the mapping (unit pass)");
    let (first, count) = (u64::from(u.first), u64::from(u.count));
    let descending = rng.chance(50);
    for k in 0..count {
        let page = first + if descending { count - 1 - k } else { k };
        set_phase(Phase::Touch, i, page);
        let addr = map_gpa(i) + page * PAGE_SIZE;
        let word0 = content_word(seed, page * WORDS);
        let mut from = 0;
        if rng.chance(30) {
            check_word(&w, page * PAGE_SIZE, word0, xor_word(addr, STAMP_XOR));
            stamped.set(i, page);
            add(&SH.v1.stamps, 1);
            add(&SH.v1.write_touches, 1);
            from = 1;
        } else {
            let at = rng.below(WORDS);
            let got = read_word(addr + at * 8);
            check_word(
                &w,
                (page * WORDS + at) * 8,
                content_word(seed, page * WORDS + at),
                got,
            );
            add(&SH.v1.read_touches, 1);
        }
        for k in from..WORDS {
            let word = page * WORDS + k;
            check_word(
                &w,
                word * 8,
                content_word(seed, word),
                read_word(addr + k * 8),
            );
        }
        if from == 0 && rng.chance(50) {
            check_word(&w, page * PAGE_SIZE, word0, xor_word(addr, STAMP_XOR));
            stamped.set(i, page);
            add(&SH.v1.stamps, 1);
        }
        add(&SH.v1.bytes_verified, PAGE_SIZE);
    }
}

/// Verifies the pages of `u` with one `zx_vmo_read`.
fn read_unit(r: &Round, u: Unit, buf: &mut [u8]) {
    let i = usize::from(u.vmo);
    let (first, count) = (u64::from(u.first), u64::from(u.count));
    set_phase(Phase::VmoRead, i, first);
    let bytes = (count * PAGE_SIZE) as usize;
    if let Err(s) = sys::vmo_read(r.handles[i], &mut buf[..bytes], first * PAGE_SIZE) {
        call_failed(
            "vCPU 1",
            "VmoRead",
            s,
            format_args!("round {} vmo {i} pages {first}+{count}", r.round),
        );
    }
    let w = r.at(i, "vCPU 1 zx_vmo_read (unit pass)");
    // Units are disjoint and only touch units stamp: these pages carry no stamp.
    check_buf(&w, &buf[..bytes], vmo_seed(r.round, i), first, |_| {
        Some(false)
    });
    add(&SH.v1.bytes_verified, bytes as u64);
    add(&SH.v1.vmo_read_units, 1);
}

/// Checks every byte of every VMO again, stamps included: with `zx_vmo_read`, and through
/// the mapping for mapped VMOs.
fn final_pass(r: &Round, buf: &mut [u8], stamped: &Bitmaps) {
    for i in 0..r.n {
        set_phase(Phase::Final, i, 0);
        let seed = vmo_seed(r.round, i);
        let size = r.pages[i];
        let w = r.at(i, "vCPU 1 zx_vmo_read (final pass)");
        let mut page = 0;
        while page < size {
            let n = (size - page).min(BUF_PAGES);
            let bytes = (n * PAGE_SIZE) as usize;
            if let Err(s) = sys::vmo_read(r.handles[i], &mut buf[..bytes], page * PAGE_SIZE) {
                call_failed(
                    "vCPU 1",
                    "VmoRead",
                    s,
                    format_args!("round {} vmo {i} pages {page}+{n} (final)", r.round),
                );
            }
            check_buf(&w, &buf[..bytes], seed, page, |p| Some(stamped.get(i, p)));
            add(&SH.v1.reverified_bytes, bytes as u64);
            page += n;
        }
        if r.mapped[i] {
            let w = r.at(i, "vCPU 1 through the mapping (final pass)");
            for page in 0..size {
                let addr = map_gpa(i) + page * PAGE_SIZE;
                for k in 0..WORDS {
                    let word = page * WORDS + k;
                    let mut want = content_word(seed, word);
                    if k == 0 && stamped.get(i, page) {
                        want ^= STAMP_XOR;
                    }
                    check_word(&w, word * 8, want, read_word(addr + k * 8));
                }
            }
            add(&SH.v1.reverified_bytes, size * PAGE_SIZE);
        }
        beat(&SH.v1_beat);
    }
}
