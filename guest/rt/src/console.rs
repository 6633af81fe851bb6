//! Console output: [`print!`](crate::print) and [`println!`](crate::println) over the
//! `ConsoleWrite` hypercall.
//!
//! Formatting goes through a 256-byte stack buffer, so a line of up to 256 bytes is one
//! hypercall (and is not interleaved with other vCPUs' output).

use core::fmt;

use crate::sys;

const BUF_SIZE: usize = 256;

/// A [`fmt::Write`] sink that buffers bytes and sends them with `ConsoleWrite`.
pub struct Console {
    buf: [u8; BUF_SIZE],
    len: usize,
}

impl Console {
    /// An empty console buffer.
    pub const fn new() -> Self {
        Console {
            buf: [0; BUF_SIZE],
            len: 0,
        }
    }

    /// Sends the buffered bytes.
    pub fn flush(&mut self) {
        if self.len > 0 {
            // Nothing useful can be done if the console fails.
            let _ = sys::console_write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            if self.len == BUF_SIZE {
                self.flush();
            }
            let n = bytes.len().min(BUF_SIZE - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Formats `args` to the console (used by the macros).
#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let mut c = Console::new();
    let _ = fmt::Write::write_fmt(&mut c, args);
    c.flush();
}

/// Prints to the VM console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::_print(::core::format_args!($($arg)*))
    };
}

/// Prints a line to the VM console.
#[macro_export]
macro_rules! println {
    () => {
        $crate::console::_print(::core::format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::console::_print(::core::format_args!("{}\n", ::core::format_args!($($arg)*)))
    };
}
