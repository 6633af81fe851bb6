//! The C/C++ SDK's headers (`guest/sdk/include`) against `src/abi.rs`: a host program built with
//! the headers prints every constant, `sizeof` and `offsetof` kvmpager's ABI defines, and each
//! must equal the Rust value, so the two can never drift. Also: every header compiles
//! warning-free (`-Wall -Wextra -Werror`) as C11 and C++17 with gcc and with clang (clang is
//! required: CI installs clang-14; without it the test fails saying so).

use std::path::{Path, PathBuf};
use std::process::Command;

use kvmpager::abi::{self, Call, obj_type, packet, pager_op, rights, status, vmo_child, vmo_op};
use kvmpager_vmm::tools::sdk::{self, Toolchain};

const HEADERS: [&str; 12] = [
    "zircon/types.h",
    "zircon/errors.h",
    "zircon/rights.h",
    "zircon/time.h",
    "zircon/syscalls.h",
    "zircon/syscalls/port.h",
    "zircon/syscalls/object.h",
    "zircon/syscalls-next.h",
    "zircon/process.h",
    "zircon/assert.h",
    "zxtest/zxtest.h",
    "kvmpager/sdk.h",
];

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kvmpager-sdk-headers-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_header_compiles_warning_free_as_c11_and_cxx17_with_gcc_and_clang() {
    let dir = sdk::sdk_dir();
    let src = tmp("all.c");
    let body: String = HEADERS
        .iter()
        .map(|h| format!("#include <{h}>\n"))
        .collect();
    std::fs::write(&src, format!("{body}int kp_headers_ok;\n")).unwrap();
    for tc in Toolchain::ALL {
        let (cc, cxx) = tc.commands().unwrap_or_else(|e| panic!("{e}"));
        for (cmd, lang, std) in [(&cc, "c", "-std=c11"), (&cxx, "c++", "-std=c++17")] {
            let flags = if lang == "c" {
                sdk::cflags(&dir)
            } else {
                sdk::cxxflags(&dir)
            };
            run(Command::new(cmd)
                .args(&flags)
                .args([
                    "-Wall",
                    "-Wextra",
                    "-Werror",
                    std,
                    "-x",
                    lang,
                    "-fsyntax-only",
                ])
                .arg(&src));
        }
    }
}

/// Builds and runs a hosted program that prints `NAME VALUE` for each expression.
fn c_values(exprs: &[&str]) -> Vec<(String, i128)> {
    let dir = sdk::sdk_dir();
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <zircon/syscalls.h>\n\
         #include <zircon/syscalls-next.h>\n#include <kvmpager/sdk.h>\nint main(void) {\n",
    );
    for e in exprs {
        c.push_str(&format!(
            "  printf(\"%s %lld\\n\", \"{e}\", (long long)({e}));\n"
        ));
    }
    c.push_str("  return 0;\n}\n");
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let src = tmp(&format!("values{n}.c"));
    let exe = tmp(&format!("values{n}"));
    std::fs::write(&src, c).unwrap();
    run(Command::new("gcc")
        .arg(format!("-I{}", dir.join("include").display()))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(&src));
    run(&mut Command::new(&exe))
        .lines()
        .map(|l| {
            let (n, v) = l.rsplit_once(' ').unwrap();
            (n.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn check(pairs: &[(&str, i128)]) {
    let exprs: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let got = c_values(&exprs);
    for ((name, want), (gname, gv)) in pairs.iter().zip(&got) {
        assert_eq!(name, gname);
        assert_eq!(
            *gv, *want,
            "{name}: C header says {gv}, src/abi.rs says {want}"
        );
    }
}

#[test]
fn constants_match_abi_rs() {
    use status::*;
    let mut v: Vec<(&str, i128)> = vec![
        ("ZX_OK", ZX_OK as i128),
        ("ZX_ERR_INTERNAL", ZX_ERR_INTERNAL as i128),
        ("ZX_ERR_NOT_SUPPORTED", ZX_ERR_NOT_SUPPORTED as i128),
        ("ZX_ERR_NO_RESOURCES", ZX_ERR_NO_RESOURCES as i128),
        ("ZX_ERR_NO_MEMORY", ZX_ERR_NO_MEMORY as i128),
        ("ZX_ERR_INVALID_ARGS", ZX_ERR_INVALID_ARGS as i128),
        ("ZX_ERR_BAD_HANDLE", ZX_ERR_BAD_HANDLE as i128),
        ("ZX_ERR_WRONG_TYPE", ZX_ERR_WRONG_TYPE as i128),
        ("ZX_ERR_BAD_SYSCALL", ZX_ERR_BAD_SYSCALL as i128),
        ("ZX_ERR_OUT_OF_RANGE", ZX_ERR_OUT_OF_RANGE as i128),
        ("ZX_ERR_BUFFER_TOO_SMALL", ZX_ERR_BUFFER_TOO_SMALL as i128),
        ("ZX_ERR_BAD_STATE", ZX_ERR_BAD_STATE as i128),
        ("ZX_ERR_TIMED_OUT", ZX_ERR_TIMED_OUT as i128),
        ("ZX_ERR_SHOULD_WAIT", ZX_ERR_SHOULD_WAIT as i128),
        ("ZX_ERR_CANCELED", ZX_ERR_CANCELED as i128),
        ("ZX_ERR_PEER_CLOSED", ZX_ERR_PEER_CLOSED as i128),
        ("ZX_ERR_NOT_FOUND", ZX_ERR_NOT_FOUND as i128),
        ("ZX_ERR_ALREADY_EXISTS", ZX_ERR_ALREADY_EXISTS as i128),
        ("ZX_ERR_UNAVAILABLE", ZX_ERR_UNAVAILABLE as i128),
        ("ZX_ERR_ACCESS_DENIED", ZX_ERR_ACCESS_DENIED as i128),
        ("ZX_ERR_IO", ZX_ERR_IO as i128),
        ("ZX_ERR_IO_DATA_INTEGRITY", ZX_ERR_IO_DATA_INTEGRITY as i128),
        ("ZX_ERR_NO_SPACE", ZX_ERR_NO_SPACE as i128),
    ];
    use rights::*;
    v.extend([
        ("ZX_RIGHT_DUPLICATE", ZX_RIGHT_DUPLICATE as i128),
        ("ZX_RIGHT_TRANSFER", ZX_RIGHT_TRANSFER as i128),
        ("ZX_RIGHT_READ", ZX_RIGHT_READ as i128),
        ("ZX_RIGHT_WRITE", ZX_RIGHT_WRITE as i128),
        ("ZX_RIGHT_EXECUTE", ZX_RIGHT_EXECUTE as i128),
        ("ZX_RIGHT_MAP", ZX_RIGHT_MAP as i128),
        ("ZX_RIGHT_GET_PROPERTY", ZX_RIGHT_GET_PROPERTY as i128),
        ("ZX_RIGHT_SET_PROPERTY", ZX_RIGHT_SET_PROPERTY as i128),
        ("ZX_RIGHT_SIGNAL", ZX_RIGHT_SIGNAL as i128),
        ("ZX_RIGHT_WAIT", ZX_RIGHT_WAIT as i128),
        ("ZX_RIGHT_INSPECT", ZX_RIGHT_INSPECT as i128),
        ("ZX_RIGHT_RESIZE", ZX_RIGHT_RESIZE as i128),
        ("ZX_RIGHT_ATTACH_VMO", ZX_RIGHT_ATTACH_VMO as i128),
        ("ZX_RIGHT_MANAGE_VMO", ZX_RIGHT_MANAGE_VMO as i128),
        ("ZX_RIGHT_SAME_RIGHTS", ZX_RIGHT_SAME_RIGHTS as i128),
        ("ZX_DEFAULT_PAGER_RIGHTS", ZX_DEFAULT_PAGER_RIGHTS as i128),
        ("ZX_DEFAULT_VMO_RIGHTS", ZX_DEFAULT_VMO_RIGHTS as i128),
        ("ZX_DEFAULT_PORT_RIGHTS", ZX_DEFAULT_PORT_RIGHTS as i128),
        ("ZX_OBJ_TYPE_VMO", obj_type::ZX_OBJ_TYPE_VMO as i128),
        ("ZX_OBJ_TYPE_PORT", obj_type::ZX_OBJ_TYPE_PORT as i128),
        ("ZX_OBJ_TYPE_PAGER", obj_type::ZX_OBJ_TYPE_PAGER as i128),
        (
            "ZX_VMO_RESIZABLE",
            abi::vmo_options::ZX_VMO_RESIZABLE as i128,
        ),
        (
            "ZX_VMO_DISCARDABLE",
            abi::vmo_options::ZX_VMO_DISCARDABLE as i128,
        ),
        (
            "ZX_VMO_TRAP_DIRTY",
            abi::vmo_options::ZX_VMO_TRAP_DIRTY as i128,
        ),
        (
            "ZX_VMO_UNBOUNDED",
            abi::vmo_options::ZX_VMO_UNBOUNDED as i128,
        ),
        ("ZX_VMO_OP_COMMIT", vmo_op::ZX_VMO_OP_COMMIT as i128),
        ("ZX_VMO_OP_DECOMMIT", vmo_op::ZX_VMO_OP_DECOMMIT as i128),
        (
            "ZX_VMO_CHILD_SNAPSHOT",
            vmo_child::ZX_VMO_CHILD_SNAPSHOT as i128,
        ),
        (
            "ZX_VMO_CHILD_RESIZABLE",
            vmo_child::ZX_VMO_CHILD_RESIZABLE as i128,
        ),
        ("ZX_VMO_CHILD_SLICE", vmo_child::ZX_VMO_CHILD_SLICE as i128),
        (
            "ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE",
            vmo_child::ZX_VMO_CHILD_SNAPSHOT_AT_LEAST_ON_WRITE as i128,
        ),
        (
            "ZX_VMO_CHILD_NO_WRITE",
            vmo_child::ZX_VMO_CHILD_NO_WRITE as i128,
        ),
        ("ZX_PAGER_OP_FAIL", pager_op::ZX_PAGER_OP_FAIL as i128),
        ("ZX_PAGER_OP_DIRTY", pager_op::ZX_PAGER_OP_DIRTY as i128),
        (
            "ZX_PAGER_OP_WRITEBACK_BEGIN",
            pager_op::ZX_PAGER_OP_WRITEBACK_BEGIN as i128,
        ),
        (
            "ZX_PAGER_OP_WRITEBACK_END",
            pager_op::ZX_PAGER_OP_WRITEBACK_END as i128,
        ),
        (
            "ZX_VMO_DIRTY_RANGE_IS_ZERO",
            pager_op::ZX_VMO_DIRTY_RANGE_IS_ZERO as i128,
        ),
        (
            "ZX_PKT_TYPE_PAGE_REQUEST",
            packet::ZX_PKT_TYPE_PAGE_REQUEST as i128,
        ),
        ("ZX_PAGER_VMO_READ", packet::ZX_PAGER_VMO_READ as i128),
        (
            "ZX_PAGER_VMO_COMPLETE",
            packet::ZX_PAGER_VMO_COMPLETE as i128,
        ),
        ("ZX_PAGER_VMO_DIRTY", packet::ZX_PAGER_VMO_DIRTY as i128),
        ("ZX_TIME_INFINITE", abi::ZX_TIME_INFINITE as i128),
        ("ZX_HANDLE_INVALID", abi::ZX_HANDLE_INVALID as i128),
        ("ZX_VM_PERM_READ", abi::vm_options::ZX_VM_PERM_READ as i128),
        (
            "ZX_VM_PERM_WRITE",
            abi::vm_options::ZX_VM_PERM_WRITE as i128,
        ),
        (
            "ZX_INFO_VMO_PAGER_BACKED",
            abi::VMO_INFO_FLAG_PAGER_BACKED as i128,
        ),
        ("KVMPAGER_HYPERCALL_PORT", abi::HYPERCALL_PORT as i128),
        ("KVMPAGER_LOAD_ADDR", abi::layout::GUEST_LOAD_ADDR as i128),
        (
            "KVMPAGER_APERTURE_START",
            abi::layout::APERTURE_START as i128,
        ),
        ("KVMPAGER_APERTURE_SIZE", abi::layout::APERTURE_SIZE as i128),
        ("ZX_PAGE_SIZE", abi::PAGE_SIZE as i128),
        ("ZX_VMO_OP_ZERO", vmo_op::ZX_VMO_OP_ZERO as i128),
        ("ZX_VMO_OP_DONT_NEED", vmo_op::ZX_VMO_OP_DONT_NEED as i128),
        (
            "ZX_VMO_OP_ALWAYS_NEED",
            vmo_op::ZX_VMO_OP_ALWAYS_NEED as i128,
        ),
        ("ZX_VMO_OP_PREFETCH", vmo_op::ZX_VMO_OP_PREFETCH as i128),
        (
            "ZX_PAGER_RESET_VMO_STATS",
            pager_op::ZX_PAGER_RESET_VMO_STATS as i128,
        ),
        (
            "ZX_PAGER_VMO_STATS_MODIFIED",
            pager_op::ZX_PAGER_VMO_STATS_MODIFIED as i128,
        ),
        (
            "KVMPAGER_PKT_TYPE_EXCEPTION",
            packet::KVMPAGER_PKT_TYPE_EXCEPTION as i128,
        ),
        (
            "ZX_EXCP_FATAL_PAGE_FAULT",
            packet::ZX_EXCP_FATAL_PAGE_FAULT as i128,
        ),
        ("ZX_VM_MAP_RANGE", abi::vm_options::ZX_VM_MAP_RANGE as i128),
        ("KVMPAGER_EXCEPTION_PORT", abi::EXCEPTION_PORT as i128),
    ]);
    check(&v);
}

#[test]
fn call_numbers_match_abi_rs() {
    // The SDK's KVMPAGER_CALL_* for every call src/abi.rs defines, by the same name.
    let names: Vec<(String, i128)> = Call::ALL
        .iter()
        .map(|c| {
            (
                format!("KVMPAGER_CALL_{}", upper_snake(&format!("{c:?}"))),
                *c as u64 as i128,
            )
        })
        .collect();
    let pairs: Vec<(&str, i128)> = names.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    check(&pairs);
}

fn upper_snake(camel: &str) -> String {
    let mut s = String::new();
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(ch.to_ascii_uppercase());
    }
    s
}

#[test]
fn struct_layouts_match_abi_rs() {
    use std::mem::{offset_of, size_of};
    let pr = "zx_packet_page_request_t";
    let pp = "zx_port_packet_t";
    let e = |s: &str| -> String { s.to_string() };
    let exprs = [
        (format!("sizeof({pp})"), size_of::<abi::PortPacket>()),
        (format!("sizeof({pr})"), size_of::<abi::PageRequest>()),
        (
            format!("offsetof({pp}, key)"),
            offset_of!(abi::PortPacket, key),
        ),
        (
            format!("offsetof({pp}, type)"),
            offset_of!(abi::PortPacket, packet_type),
        ),
        (
            format!("offsetof({pp}, status)"),
            offset_of!(abi::PortPacket, status),
        ),
        (
            format!("offsetof({pp}, page_request)"),
            offset_of!(abi::PortPacket, page_request),
        ),
        (
            format!("offsetof({pr}, command)"),
            offset_of!(abi::PageRequest, command),
        ),
        (
            format!("offsetof({pr}, flags)"),
            offset_of!(abi::PageRequest, flags),
        ),
        (
            format!("offsetof({pr}, reserved0)"),
            offset_of!(abi::PageRequest, reserved0),
        ),
        (
            format!("offsetof({pr}, offset)"),
            offset_of!(abi::PageRequest, offset),
        ),
        (
            format!("offsetof({pr}, length)"),
            offset_of!(abi::PageRequest, length),
        ),
        (
            format!("offsetof({pr}, reserved1)"),
            offset_of!(abi::PageRequest, reserved1),
        ),
        (e("sizeof(zx_vmo_dirty_range_t)"), 24),
        (e("sizeof(zx_info_vmo_t)"), 176),
        (e("ZX_INFO_VMO"), 0x3000_0017),
        (e("offsetof(zx_info_vmo_t, flags)"), 80),
        (e("offsetof(zx_info_vmo_t, committed_bytes)"), 88),
        (e("offsetof(zx_info_vmo_t, populated_bytes)"), 120),
        (
            e("sizeof(zx_pager_vmo_stats_t)"),
            size_of::<abi::VmoStats>(),
        ),
        (
            e("sizeof(zx_vmo_dirty_range_t)"),
            size_of::<abi::DirtyRange>(),
        ),
        (
            e("offsetof(zx_vmo_dirty_range_t, offset)"),
            offset_of!(abi::DirtyRange, offset),
        ),
        (
            e("offsetof(zx_vmo_dirty_range_t, length)"),
            offset_of!(abi::DirtyRange, length),
        ),
        (
            e("offsetof(zx_vmo_dirty_range_t, options)"),
            offset_of!(abi::DirtyRange, options),
        ),
    ];
    let pairs: Vec<(&str, i128)> = exprs
        .iter()
        .map(|(n, v)| (n.as_str(), *v as i128))
        .collect();
    check(&pairs);
}

/// Where each field of kvmpager's exception packet lands in the 48 bytes the port delivers.
fn exception_packet_offsets() -> Vec<(&'static str, usize)> {
    let p = abi::ExceptionPacket {
        key: 0x0101_0101_0101_0101,
        status: 0x0202_0202,
        vcpu: 0x0303_0303,
        exception: 0x0404_0404,
        address: 0x0505_0505_0505_0505,
        vmo_koid: 0x0606_0606_0606_0606,
        vmo_offset: 0x0707_0707_0707_0707,
    };
    let bytes = p.to_port_packet().to_bytes();
    let at = |tag: u8| bytes.iter().position(|b| *b == tag).expect("field present");
    vec![
        ("key", at(1)),
        ("status", at(2)),
        ("kvmpager_exception.vcpu", at(3)),
        ("kvmpager_exception.exception", at(4)),
        ("kvmpager_exception.address", at(5)),
        ("kvmpager_exception.vmo_koid", at(6)),
        ("kvmpager_exception.vmo_offset", at(7)),
    ]
}

#[test]
fn exception_packet_layout_matches_abi_rs() {
    let fields = exception_packet_offsets();
    let exprs: Vec<(String, i128)> = fields
        .iter()
        .map(|(f, off)| (format!("offsetof(zx_port_packet_t, {f})"), *off as i128))
        .collect();
    let pairs: Vec<(&str, i128)> = exprs.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    check(&pairs);
}

#[test]
fn sdk_dir_has_the_runtime_and_linker_script() {
    let d = sdk::sdk_dir();
    for f in [
        "sdk.ld",
        "src/crt0.S",
        "include/zxtest/zxtest.h",
        "tests/pager.cc",
    ] {
        assert!(
            Path::new(&d).join(f).is_file(),
            "{f} missing under {}",
            d.display()
        );
    }
}
