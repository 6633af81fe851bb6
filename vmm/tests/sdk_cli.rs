//! `kvmpager sdk` as a user runs it: `--path` names a directory with the headers, runtime and
//! linker script; `--cflags`/`--cxxflags` point at its headers; `--ldflags` builds the runtime for
//! the chosen compiler and names it; bad invocations fail with a clear message.

use std::path::Path;
use std::process::Command;

fn kvmpager(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kvmpager"))
        .args(args)
        .output()
        .expect("kvmpager runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn path_names_the_sdk_directory() {
    let (code, out, err) = kvmpager(&["sdk", "--path"]);
    assert_eq!(code, 0, "{err}");
    let dir = Path::new(out.trim());
    for f in [
        "include/zircon/syscalls.h",
        "include/zxtest/zxtest.h",
        "sdk.ld",
        "src/crt0.S",
    ] {
        assert!(dir.join(f).is_file(), "{} has no {f}", dir.display());
    }
}

#[test]
fn flags_point_at_the_sdk() {
    let (_, path, _) = kvmpager(&["sdk", "--path"]);
    let (code, cflags, err) = kvmpager(&["sdk", "--cflags"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        cflags.contains(&format!("-I{}/include", path.trim())),
        "{cflags}"
    );
    assert!(cflags.contains("-ffreestanding"), "{cflags}");
    let (code, cxxflags, _) = kvmpager(&["sdk", "--cxxflags"]);
    assert_eq!(code, 0);
    assert!(cxxflags.contains("-fno-exceptions"), "{cxxflags}");
    for cc in ["gcc", "clang"] {
        let (code, ldflags, err) = kvmpager(&["sdk", "--ldflags", "--cc", cc]);
        assert_eq!(code, 0, "{cc}: {err}");
        assert!(
            ldflags.contains(&format!("-Wl,-T,{}/sdk.ld", path.trim())),
            "{ldflags}"
        );
        let lib = ldflags
            .split_whitespace()
            .find(|f| f.ends_with("libkvmpager_sdk.a"))
            .unwrap_or_else(|| panic!("no runtime library in {ldflags}"));
        assert!(Path::new(lib).is_file(), "{lib} was not built");
    }
}

#[test]
fn bad_invocations_fail_clearly() {
    let (code, _, err) = kvmpager(&["sdk"]);
    assert_eq!(code, 1);
    assert!(err.contains("give exactly one of"), "{err}");
    let (code, _, err) = kvmpager(&["sdk", "--cflags", "--ldflags"]);
    assert_eq!(code, 1);
    assert!(err.contains("give exactly one of"), "{err}");
    let (code, _, err) = kvmpager(&["sdk", "--ldflags", "--cc", "tcc"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown compiler \"tcc\""), "{err}");
    let (code, _, err) = kvmpager(&["test", "--suite", "zircon", "--cc", "tcc"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown compiler"), "{err}");
}
