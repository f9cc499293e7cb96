//! RFC 3948 UDP encapsulation helpers.

use std::time::Instant;

use super::{ipv4_packet, pair};
use crate::udp::{
    classify, frame_esp_in_udp, frame_ike_in_udp, ike_message, unframe_udp, Demux, DemuxError,
    FrameError, NAT_KEEPALIVE, NAT_T_PORT, UDP_HEADER_LEN,
};
use crate::{EspSuite, Opened};

#[test]
fn classify_port_4500_payloads() {
    assert_eq!(classify(&[]), Demux::Invalid(DemuxError::Empty));
    assert_eq!(classify(&NAT_KEEPALIVE), Demux::Keepalive);
    assert_eq!(classify(&[0xfe]), Demux::Invalid(DemuxError::Truncated));
    assert_eq!(classify(&[0xff, 0]), Demux::Invalid(DemuxError::Truncated));
    assert_eq!(classify(&[0, 0, 0, 0]), Demux::Ike { message: 4..4 });
    let ike = [0u8, 0, 0, 0, 0x11, 0x22, 0x33];
    assert_eq!(classify(&ike), Demux::Ike { message: 4..7 });
    assert_eq!(ike_message(&ike), Some(&ike[4..]));
    assert_eq!(
        classify(&[0, 0, 0, 1, 0, 0, 0]),
        Demux::Invalid(DemuxError::Truncated)
    );
    assert_eq!(
        classify(&[0, 0, 1, 0, 0, 0, 0, 1]),
        Demux::Esp { spi: 0x100 }
    );
    assert_eq!(ike_message(&[0, 0, 1, 0, 0, 0, 0, 1]), None);
}

#[test]
fn esp_in_udp_round_trip() {
    let (mut tx, mut rx) = pair(EspSuite::AES_GCM_256, false, Instant::now());
    let inner = ipv4_packet(300, 7);
    let mut buf = vec![0u8; UDP_HEADER_LEN + tx.sealed_len(inner.len())];
    let esp_len = tx
        .seal(Instant::now(), &inner, 4, &mut buf[UDP_HEADER_LEN..])
        .unwrap();
    let n = frame_esp_in_udp(&mut buf, 40000, NAT_T_PORT, esp_len).unwrap();
    assert_eq!(n, buf.len());
    assert_eq!(
        &buf[..8],
        &[0x9c, 0x40, 0x11, 0x94, (n >> 8) as u8, n as u8, 0, 0]
    );
    let (h, range) = unframe_udp(&buf).unwrap();
    assert_eq!((h.src_port, h.dst_port, h.checksum), (40000, 4500, 0));
    let payload = &mut buf[range];
    assert_eq!(classify(payload), Demux::Esp { spi: tx.spi() });
    match rx.open(Instant::now(), payload).unwrap() {
        Opened::Packet { payload: r, .. } => assert_eq!(&payload[r], &inner[..]),
        Opened::Dummy { .. } => panic!(),
    }
}

#[test]
fn ike_in_udp_framing() {
    let msg = [0xaau8; 28];
    let mut buf = vec![0u8; 12 + msg.len()];
    buf[12..].copy_from_slice(&msg);
    let n = frame_ike_in_udp(&mut buf, 4500, 4500, msg.len()).unwrap();
    let (h, range) = unframe_udp(&buf[..n]).unwrap();
    assert_eq!(usize::from(h.length), n);
    assert_eq!(ike_message(&buf[range]), Some(&msg[..]));
}

#[test]
fn framing_errors() {
    assert_eq!(unframe_udp(&[0; 7]), Err(FrameError::Truncated));
    assert_eq!(
        unframe_udp(&[0, 1, 0, 2, 0, 7, 0, 0]),
        Err(FrameError::BadLength)
    );
    assert_eq!(
        unframe_udp(&[0, 1, 0, 2, 0, 10, 0, 0, 1]),
        Err(FrameError::Truncated)
    );
    // Octets past the length field are ignored.
    assert_eq!(
        unframe_udp(&[0, 1, 0, 2, 0, 9, 0, 0, 1, 2]).unwrap().1,
        8..9
    );
    let mut small = [0u8; 20];
    assert_eq!(
        frame_esp_in_udp(&mut small, 1, 2, 13),
        Err(FrameError::BufferTooSmall { needed: 21 })
    );
    let mut big = vec![0u8; 70000];
    assert_eq!(
        frame_esp_in_udp(&mut big, 1, 2, 65528),
        Err(FrameError::TooLong)
    );
    assert_eq!(frame_esp_in_udp(&mut big, 1, 2, 65527), Ok(65535));
}
