//! A minimal rtnetlink client: what the agent configures inside a workload namespace
//! (link up and MTU, addresses, default routes). The socket belongs to the namespace of the
//! thread that opens it, so open it on a thread inside the target namespace.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;
const RTA_OIF: u16 = 4;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;

pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

fn attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn family(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        libc::AF_INET as u8
    } else {
        libc::AF_INET6 as u8
    }
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: socket(2); the fd is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a zeroed sockaddr_nl with the family set is a valid address (kernel picks the port).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: valid pointer and length.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Netlink { fd, seq: 1 })
    }

    /// Sends one request (header filled in here) and waits for its acknowledgement.
    fn request(&mut self, ty: u16, flags: u16, body: &[u8]) -> io::Result<()> {
        self.seq += 1;
        let mut m = Vec::with_capacity(16 + body.len());
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        // SAFETY: sends the bytes of m.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: receives into buf.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + 16 <= n {
                let len =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
                let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().expect("2 bytes"));
                let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().expect("4 bytes"));
                if len < 16 {
                    break;
                }
                if ty == NLMSG_ERROR && seq == self.seq && off + 20 <= n {
                    let err =
                        i32::from_ne_bytes(buf[off + 16..off + 20].try_into().expect("4 bytes"));
                    return if err == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-err))
                    };
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// Sets a link up or down, and its MTU.
    pub fn set_link(&mut self, index: u32, up: bool, mtu: Option<u32>) -> io::Result<()> {
        let mut b = Vec::with_capacity(32);
        b.push(libc::AF_UNSPEC as u8);
        b.push(0);
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&(index as i32).to_ne_bytes());
        let flags = if up { libc::IFF_UP as u32 } else { 0 };
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        if let Some(m) = mtu {
            attr(&mut b, IFLA_MTU, &m.to_ne_bytes());
        }
        self.request(RTM_NEWLINK, 0, &b)
    }

    /// Adds (or replaces) an address with its prefix length; IPv6 without duplicate address
    /// detection.
    pub fn add_addr(&mut self, index: u32, a: IpAddr, prefix_len: u8) -> io::Result<()> {
        let mut b = Vec::with_capacity(48);
        b.push(family(a));
        b.push(prefix_len);
        b.push(if a.is_ipv6() { IFA_F_NODAD as u8 } else { 0 });
        b.push(0); // scope universe
        b.extend_from_slice(&index.to_ne_bytes());
        attr(&mut b, IFA_LOCAL, &addr_bytes(a));
        attr(&mut b, IFA_ADDRESS, &addr_bytes(a));
        if a.is_ipv6() {
            attr(&mut b, IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
        }
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &b)
    }

    /// A default route out of the interface. `replace` replaces an existing default route;
    /// otherwise an existing one is kept.
    pub fn add_default_route(&mut self, index: u32, v6: bool, replace: bool) -> io::Result<()> {
        let mut b = Vec::with_capacity(32);
        b.push(if v6 {
            libc::AF_INET6 as u8
        } else {
            libc::AF_INET as u8
        });
        b.extend_from_slice(&[
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_STATIC,
            if v6 { 0 } else { RT_SCOPE_LINK },
            RTN_UNICAST,
        ]);
        b.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut b, RTA_OIF, &index.to_ne_bytes());
        let flags = NLM_F_CREATE | if replace { NLM_F_REPLACE } else { NLM_F_EXCL };
        match self.request(RTM_NEWROUTE, flags, &b) {
            Err(e) if !replace && e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }
}
