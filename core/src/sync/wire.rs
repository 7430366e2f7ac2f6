//! Compression of bodies, with a hard bound on what a body may expand to.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// A body that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not gzip, or truncated.
    #[error("the body is not valid gzip: {0}")]
    BadCompression(std::io::Error),
    /// Expands beyond the limit (a compression bomb, or simply too big).
    #[error("the body expands to more than {limit} bytes; send smaller batches")]
    TooLarge {
        /// The limit, in decompressed bytes.
        limit: usize,
    },
}

/// Gzip at the fastest level: on sync batches of ops its output is within
/// a few percent of the default level's at a fraction of the CPU (measured
/// in docs/benchmarks.md), and a phone's CPU is as scarce as its bandwidth.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4 + 64), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// Decompresses `bytes`, refusing to produce more than `limit` bytes.
pub fn gunzip_limited(bytes: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity((bytes.len() * 4).min(limit));
    GzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(WireError::BadCompression)?;
    if out.len() > limit {
        return Err(WireError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_bounds_expansion() {
        let body = br#"{"ops":[]}"#.repeat(1000);
        let packed = gzip(&body);
        assert!(packed.len() < body.len() / 10);
        assert_eq!(gunzip_limited(&packed, body.len()).unwrap(), body);
        assert!(matches!(
            gunzip_limited(&packed, body.len() - 1),
            Err(WireError::TooLarge { .. })
        ));
        // A bomb: 100 MB of zeros in about 100 KB.
        let bomb = gzip(&vec![0u8; 100 << 20]);
        assert!(bomb.len() < 200 << 10);
        assert!(matches!(
            gunzip_limited(&bomb, 1 << 20),
            Err(WireError::TooLarge { .. })
        ));
        assert!(matches!(
            gunzip_limited(b"not gzip", 1 << 20),
            Err(WireError::BadCompression(_))
        ));
        assert!(matches!(
            gunzip_limited(&packed[..packed.len() / 2], 1 << 20),
            Err(WireError::BadCompression(_))
        ));
    }
}
