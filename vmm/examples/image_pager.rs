//! External pager example in Rust, on `kvmpager_vmm::pager_proto::client`: serves guest RAM
//! from a raw memory image, each request widened to its aligned 2 MiB window.
//!
//! ```text
//! cargo build --release --example image_pager
//! kvmpager run --pager-exec target/release/examples/image_pager       # image from KVMPAGER_IMAGE
//! kvmpager restore DIR --pager-exec target/release/examples/image_pager   # serves DIR/ram.img
//! ```

use std::fs::File;
use std::os::unix::fs::FileExt;

use kvmpager::abi::packet::ZX_PAGER_VMO_READ;
use kvmpager_vmm::pager_proto::client::Client;

const WINDOW: u64 = 2 << 20;

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("KVMPAGER_IMAGE").ok())
        .ok_or_else(|| std::io::Error::other("usage: image_pager IMAGE (or KVMPAGER_IMAGE)"))?;
    let image = File::open(path)?;
    serve(&image, &mut Client::from_env()?)
}

/// Serves every read request of `c`'s VMOs from `image` until the VM goes away.
pub fn serve(image: &File, c: &mut Client) -> std::io::Result<()> {
    while let Some(p) = c.next_packet()? {
        let Some(vmo) = c.vmos.iter().find(|v| v.key == p.key).copied() else {
            continue;
        };
        if p.page_request.command != ZX_PAGER_VMO_READ {
            continue;
        }
        let start = p.page_request.offset & !(WINDOW - 1);
        let end = (p.page_request.offset + p.page_request.length)
            .next_multiple_of(WINDOW)
            .min(vmo.size);
        let mut buf = vec![0u8; (end - start) as usize];
        let n = image.read_at(&mut buf, start).unwrap_or(0);
        buf[n..].fill(0);
        let status = c.supply(p.key, start, &buf)?;
        if status != 0 {
            return Err(std::io::Error::other(format!("SUPPLY failed: {status}")));
        }
    }
    Ok(())
}
