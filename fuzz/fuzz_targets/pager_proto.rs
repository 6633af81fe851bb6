//! External pager protocol fuzzing: any bytes given to the decoder the VMM reads a pager's
//! socket with either decode to a message that re-encodes to the same bytes, or are refused
//! with an error; the decoder never panics.
#![no_main]

use kvmpager_vmm::pager_proto::{Msg, message_size};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Msg::decode(data) {
        let size = message_size(data).expect("a decoded message has a valid header");
        assert_eq!(m.encode(), &data[..size]);
    }
});
