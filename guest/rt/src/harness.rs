//! The guest test harness.
//!
//! A test program lists its cases with [`cases!`](crate::cases) and hands them to [`run`]:
//!
//! ```ignore
//! fn main(vcpu: usize, _: usize, _: u64) -> i64 {
//!     if vcpu != 0 { rt::park(); }
//!     rt::harness::run(rt::cases![null_is_ok, close_bad_handle])
//! }
//! fn null_is_ok(_t: &mut TestCtx) -> TestResult {
//!     rt::check_eq!(rt::sys::null(), rt::Status::OK);
//!     Ok(())
//! }
//! ```
//!
//! Output, which the host side can parse line by line:
//! - `registered N cases` first (so a runner can tell that none was skipped),
//! - `[PASS] name` or `[FAIL] name: message` per case, in order,
//! - `P passed, F failed` last.
//!
//! Each result is also sent with the `TestReport` hypercall. [`run`] returns the exit code:
//! 0 when every registered case ran and passed, 1 otherwise. A panicking case is reported as
//! failed by the panic handler, which then exits the VM with code 101 (the remaining cases do
//! not run, which the count line makes visible).

use alloc::string::String;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::{println, sys};

/// What a test case returns: `Err` carries the failure message.
pub type TestResult = Result<(), String>;

/// A test case function.
pub type CaseFn = fn(&mut TestCtx) -> TestResult;

/// A named test case (see [`cases!`](crate::cases)).
#[derive(Clone, Copy)]
pub struct Case {
    /// The case name, as reported.
    pub name: &'static str,
    /// The case body.
    pub run: CaseFn,
}

/// Passed to each case: where it runs.
#[derive(Debug)]
pub struct TestCtx {
    /// Name of the running case.
    pub name: &'static str,
    /// Number of vCPUs in the VM.
    pub ncpus: usize,
    /// Guest RAM size in bytes.
    pub ram: u64,
}

/// Builds a `&[Case]` from case functions (named after the function) or `"name" => function`
/// pairs.
#[macro_export]
macro_rules! cases {
    ($($case:tt)*) => {
        $crate::__cases_inner!([] $($case)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cases_inner {
    ([$($acc:expr,)*]) => {
        &[$($acc,)*] as &[$crate::harness::Case]
    };
    ([$($acc:expr,)*] $name:literal => $f:path $(, $($rest:tt)*)?) => {
        $crate::__cases_inner!(
            [$($acc,)* $crate::harness::Case { name: $name, run: $f },] $($($rest)*)?
        )
    };
    ([$($acc:expr,)*] $f:path $(, $($rest:tt)*)?) => {
        $crate::__cases_inner!(
            [$($acc,)* $crate::harness::Case { name: ::core::stringify!($f), run: $f },]
            $($($rest)*)?
        )
    };
}

/// Counts results and prints the summary.
pub struct Harness {
    registered: Option<usize>,
    passed: usize,
    failed: usize,
}

/// Name of the case that is running (for the panic handler); null when none.
static CURRENT_NAME: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
static CURRENT_LEN: AtomicUsize = AtomicUsize::new(0);

impl Harness {
    /// A harness that does not know in advance how many cases will run.
    pub fn new() -> Self {
        Harness {
            registered: None,
            passed: 0,
            failed: 0,
        }
    }

    /// A harness expecting `n` cases: prints `registered N cases`, and [`Harness::finish`]
    /// fails if a different number ran.
    pub fn expecting(n: usize) -> Self {
        println!("registered {n} cases");
        Harness {
            registered: Some(n),
            ..Harness::new()
        }
    }

    /// Runs one case now and reports it.
    pub fn case(&mut self, name: &'static str, f: impl FnOnce(&mut TestCtx) -> TestResult) {
        let mut ctx = TestCtx {
            name,
            ncpus: crate::ncpus(),
            ram: crate::ram_size(),
        };
        CURRENT_LEN.store(name.len(), Ordering::Relaxed);
        CURRENT_NAME.store(name.as_ptr().cast_mut(), Ordering::Release);
        let result = f(&mut ctx);
        CURRENT_NAME.store(core::ptr::null_mut(), Ordering::Release);
        self.report(name, result);
    }

    /// Records and reports a result obtained elsewhere.
    pub fn report(&mut self, name: &str, result: TestResult) {
        match result {
            Ok(()) => {
                self.passed += 1;
                let _ = sys::test_report(name, true, "");
                println!("[PASS] {name}");
            }
            Err(msg) => {
                self.failed += 1;
                let _ = sys::test_report(name, false, &msg);
                println!("[FAIL] {name}: {msg}");
            }
        }
    }

    /// Number of cases passed so far.
    pub fn passed(&self) -> usize {
        self.passed
    }

    /// Number of cases failed so far.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// Prints `P passed, F failed` and returns the exit code: 0 if nothing failed (and, for
    /// [`Harness::expecting`], exactly the registered number of cases ran), else 1.
    pub fn finish(self) -> i64 {
        let ran = self.passed + self.failed;
        let mut ok = self.failed == 0;
        if let Some(n) = self.registered
            && n != ran
        {
            println!("harness: registered {n} cases but {ran} ran");
            ok = false;
        }
        println!("{} passed, {} failed", self.passed, self.failed);
        if ok { 0 } else { 1 }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `cases` in order with a [`Harness::expecting`] harness and returns the exit code.
pub fn run(cases: &[Case]) -> i64 {
    let mut h = Harness::expecting(cases.len());
    for c in cases {
        h.case(c.name, c.run);
    }
    h.finish()
}

/// Called by the panic handler: reports the running case (if any) as failed.
pub(crate) fn fail_current_case_on_panic() {
    let ptr = CURRENT_NAME.swap(core::ptr::null_mut(), Ordering::Acquire);
    if ptr.is_null() {
        return;
    }
    let len = CURRENT_LEN.load(Ordering::Relaxed);
    // SAFETY: `ptr`/`len` were stored from a `&'static str` by `Harness::case`.
    let name = unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(ptr, len)) };
    let _ = sys::test_report(name, false, "panicked");
    println!("[FAIL] {name}: panicked");
}

/// Fails the case with a message unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr $(,)?) => {
        if !$cond {
            return ::core::result::Result::Err($crate::format!(
                "{}:{}: check failed: {}",
                ::core::file!(),
                ::core::line!(),
                ::core::stringify!($cond)
            ));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return ::core::result::Result::Err($crate::format!(
                "{}:{}: check failed: {}: {}",
                ::core::file!(),
                ::core::line!(),
                ::core::stringify!($cond),
                $crate::format!($($fmt)+)
            ));
        }
    };
}

/// Fails the case unless `left == right`; the message shows both (statuses by name).
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr $(,)?) => {
        $crate::check_eq!($left, $right, "")
    };
    ($left:expr, $right:expr, $($fmt:tt)+) => {
        match (&$left, &$right) {
            (l, r) => {
                if !(*l == *r) {
                    let extra = $crate::format!($($fmt)+);
                    return ::core::result::Result::Err($crate::format!(
                        "{}:{}: {} = {:?}, expected {:?}{}{}",
                        ::core::file!(),
                        ::core::line!(),
                        ::core::stringify!($left),
                        l,
                        r,
                        if extra.is_empty() { "" } else { ": " },
                        extra
                    ));
                }
            }
        }
    };
}

/// Evaluates a `Result<T, Status>`; fails the case (naming the status) on `Err`, else yields
/// the value.
#[macro_export]
macro_rules! check_ok {
    ($e:expr $(,)?) => {
        match $e {
            ::core::result::Result::Ok(v) => v,
            ::core::result::Result::Err(s) => {
                return ::core::result::Result::Err($crate::format!(
                    "{}:{}: {} failed: {:?}",
                    ::core::file!(),
                    ::core::line!(),
                    ::core::stringify!($e),
                    s
                ));
            }
        }
    };
}

/// Fails the case unless a `Result<T, Status>` is `Err(status)`; names both statuses.
#[macro_export]
macro_rules! check_err {
    ($e:expr, $status:expr $(,)?) => {
        match $e {
            ::core::result::Result::Err(s) if s == $status => {}
            other => {
                let got = match other {
                    ::core::result::Result::Ok(_) => $crate::sys::Status::OK,
                    ::core::result::Result::Err(s) => s,
                };
                return ::core::result::Result::Err($crate::format!(
                    "{}:{}: {} = {:?}, expected {:?}",
                    ::core::file!(),
                    ::core::line!(),
                    ::core::stringify!($e),
                    got,
                    $status
                ));
            }
        }
    };
}
