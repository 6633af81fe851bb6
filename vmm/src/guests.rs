//! The guest programs of `guest/programs/src/bin/`, built by `vmm/build.rs` and embedded in
//! the VMM.
//!
//! Each program is a static ELF executable linked at `abi::layout::GUEST_LOAD_ADDR` with only
//! `PT_LOAD` segments; it expects the entry state described in `guest/rt/src/lib.rs` ("Entry
//! contract"). There is one constant per program (named after it in upper case, e.g.
//! [`HELLO`]); adding `guest/programs/src/bin/foo.rs` adds `FOO` here.
//!
//! The built files also stay on disk: [`GuestProgram::path`] is each ELF's path and the
//! `KVMPAGER_GUEST_DIR` compile-time variable the directory holding them (for tests that run
//! the `kvmpager` binary on a file).

/// One guest program.
#[derive(Clone, Copy, Debug)]
pub struct GuestProgram {
    /// Program name: the file name in `guest/programs/src/bin/` without `.rs`.
    pub name: &'static str,
    /// Absolute path of the ELF file as built (under `OUT_DIR`).
    pub path: &'static str,
    /// The ELF image.
    pub elf: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/guest_programs.rs"));

/// Every guest program, sorted by name.
pub fn all() -> &'static [GuestProgram] {
    ALL
}

/// The guest program called `name`, if there is one.
pub fn by_name(name: &str) -> Option<&'static GuestProgram> {
    ALL.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_static_elf_executables_at_the_load_address() {
        assert!(by_name("hello").is_some());
        assert!(by_name("no such program").is_none());
        for p in all() {
            let e = p.elf;
            assert_eq!(&e[..4], b"\x7fELF", "{}", p.name);
            assert_eq!(e[4], 2, "{}: not ELF64", p.name);
            assert_eq!(
                u16::from_le_bytes([e[16], e[17]]),
                2,
                "{}: not ET_EXEC",
                p.name
            );
            let entry = u64::from_le_bytes(e[24..32].try_into().unwrap());
            assert_eq!(entry, kvmpager::abi::layout::GUEST_LOAD_ADDR, "{}", p.name);
            let phoff = u64::from_le_bytes(e[32..40].try_into().unwrap()) as usize;
            let phnum = u16::from_le_bytes([e[56], e[57]]) as usize;
            for i in 0..phnum {
                let ph = &e[phoff + 56 * i..phoff + 56 * (i + 1)];
                let p_type = u32::from_le_bytes(ph[0..4].try_into().unwrap());
                assert_eq!(p_type, 1, "{}: segment {i} is not PT_LOAD", p.name);
                let paddr = u64::from_le_bytes(ph[24..32].try_into().unwrap());
                assert!(
                    paddr >= kvmpager::abi::layout::GUEST_LOAD_ADDR,
                    "{}",
                    p.name
                );
            }
        }
    }
}
