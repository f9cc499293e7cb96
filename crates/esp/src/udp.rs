//! UDP encapsulation of ESP for NAT traversal (RFC 3948), and the demultiplexing of UDP port
//! 4500, which carries ESP, IKE (behind a non-ESP marker, RFC 7296 §2.23) and NAT-keepalives.

use core::fmt;
use std::ops::Range;

/// The NAT traversal port (RFC 3948 §2, RFC 7296 §2.23).
pub const NAT_T_PORT: u16 = 4500;
/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;
/// Non-ESP marker: four zero octets before an IKE message on port 4500 (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// NAT-keepalive payload: a single 0xFF octet (RFC 3948 §2.3).
pub const NAT_KEEPALIVE: [u8; 1] = [0xff];

/// What a UDP payload received on port 4500 is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Demux {
    /// A NAT-keepalive: drop it.
    Keepalive,
    /// An IKE message at `payload[message]` (after the non-ESP marker).
    Ike { message: Range<usize> },
    /// An ESP packet (the whole payload) for the SA with this SPI.
    Esp { spi: u32 },
    /// Neither: drop it.
    Invalid(DemuxError),
}

/// Why a port-4500 payload is none of the three.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemuxError {
    /// Zero-length payload.
    Empty,
    /// Shorter than an ESP header (SPI and sequence number) and not a keepalive.
    Truncated,
}

/// Classifies a UDP payload received on port 4500 (RFC 3948 §2.2, §2.3).
pub fn classify(payload: &[u8]) -> Demux {
    match payload {
        [] => Demux::Invalid(DemuxError::Empty),
        [0xff] => Demux::Keepalive,
        [0, 0, 0, 0, ..] => Demux::Ike {
            message: NON_ESP_MARKER.len()..payload.len(),
        },
        [a, b, c, d, _, _, _, _, ..] => Demux::Esp {
            spi: u32::from_be_bytes([*a, *b, *c, *d]),
        },
        _ => Demux::Invalid(DemuxError::Truncated),
    }
}

/// A parsed UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    /// Length field: header plus payload.
    pub length: u16,
    pub checksum: u16,
}

/// Why a UDP datagram could not be framed or unframed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than a UDP header, or than its length field says.
    Truncated,
    /// The length field is below 8.
    BadLength,
    /// The datagram would exceed 65535 octets.
    TooLong,
    /// The buffer cannot hold the header and payload.
    BufferTooSmall { needed: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated => f.write_str("truncated UDP datagram"),
            FrameError::BadLength => f.write_str("bad UDP length field"),
            FrameError::TooLong => f.write_str("UDP datagram over 65535 octets"),
            FrameError::BufferTooSmall { needed } => {
                write!(f, "buffer too small, {needed} octets needed")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Parses the UDP header at the start of `datagram` and returns it with the payload range
/// (taken from the length field; octets beyond it are ignored). The checksum is not checked:
/// RFC 3948 §2.1 senders send zero, and receivers must not depend on it.
pub fn unframe_udp(datagram: &[u8]) -> Result<(UdpHeader, Range<usize>), FrameError> {
    if datagram.len() < UDP_HEADER_LEN {
        return Err(FrameError::Truncated);
    }
    let field = |i: usize| u16::from_be_bytes([datagram[i], datagram[i + 1]]);
    let h = UdpHeader {
        src_port: field(0),
        dst_port: field(2),
        length: field(4),
        checksum: field(6),
    };
    let len = usize::from(h.length);
    if len < UDP_HEADER_LEN {
        return Err(FrameError::BadLength);
    }
    if len > datagram.len() {
        return Err(FrameError::Truncated);
    }
    Ok((h, UDP_HEADER_LEN..len))
}

fn write_udp_header(
    buf: &mut [u8],
    src_port: u16,
    dst_port: u16,
    payload_len: usize,
) -> Result<usize, FrameError> {
    let total = UDP_HEADER_LEN
        .checked_add(payload_len)
        .ok_or(FrameError::TooLong)?;
    let length = u16::try_from(total).map_err(|_| FrameError::TooLong)?;
    if buf.len() < total {
        return Err(FrameError::BufferTooSmall { needed: total });
    }
    buf[0..2].copy_from_slice(&src_port.to_be_bytes());
    buf[2..4].copy_from_slice(&dst_port.to_be_bytes());
    buf[4..6].copy_from_slice(&length.to_be_bytes());
    // RFC 3948 §2.1: the checksum SHOULD be sent as zero.
    buf[6..8].copy_from_slice(&[0, 0]);
    Ok(total)
}

/// Frames an ESP packet already placed at `buf[8..8 + esp_len]` (e.g. sealed into
/// `&mut buf[8..]`) as a UDP datagram: writes the UDP header, checksum zero. Returns the
/// datagram length. Use this where the UDP header is built by hand (raw sockets, pcap);
/// a UDP socket on port 4500 sends the ESP packet itself as the payload.
pub fn frame_esp_in_udp(
    buf: &mut [u8],
    src_port: u16,
    dst_port: u16,
    esp_len: usize,
) -> Result<usize, FrameError> {
    write_udp_header(buf, src_port, dst_port, esp_len)
}

/// Frames an IKE message already placed at `buf[12..12 + ike_len]`: writes the UDP header and
/// the non-ESP marker. Returns the datagram length.
pub fn frame_ike_in_udp(
    buf: &mut [u8],
    src_port: u16,
    dst_port: u16,
    ike_len: usize,
) -> Result<usize, FrameError> {
    let payload = NON_ESP_MARKER
        .len()
        .checked_add(ike_len)
        .ok_or(FrameError::TooLong)?;
    let total = write_udp_header(buf, src_port, dst_port, payload)?;
    buf[UDP_HEADER_LEN..UDP_HEADER_LEN + NON_ESP_MARKER.len()].copy_from_slice(&NON_ESP_MARKER);
    Ok(total)
}

/// The IKE message of a port-4500 payload, if it is one.
pub fn ike_message(payload: &[u8]) -> Option<&[u8]> {
    match classify(payload) {
        Demux::Ike { message } => Some(&payload[message]),
        _ => None,
    }
}
