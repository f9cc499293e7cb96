//! Thin, checked wrappers over the Linux calls the agent needs: TUN devices with vnet_hdr
//! offloads and multiple queues, network namespaces (named ones as `ip netns` makes them), and
//! epoll. Every `unsafe` block is a single libc call on memory owned here.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Size of `struct virtio_net_hdr` (the TUN default vnet header size).
pub const VNET_HDR_LEN: usize = 10;
pub const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
pub const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;

const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
const TUN_F_USO4: libc::c_uint = 0x20;
const TUN_F_USO6: libc::c_uint = 0x40;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens one queue of the multi-queue TUN device `name` in the calling thread's network
/// namespace (creating the device with the first queue), with vnet headers and TSO/USO
/// offloads. Non-blocking, close-on-exec.
pub fn tun_queue(name: &str) -> io::Result<OwnedFd> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    // SAFETY: open(2) with a NUL-terminated constant path.
    let fd = cvt(unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fd was just returned by open and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ifr = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TUN | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE,
        _pad: [0; 22],
    };
    ifr.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq, which IfReq lays out (40 bytes).
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut ifr as *mut IfReq) })?;
    let full = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6;
    // SAFETY: TUNSETOFFLOAD takes the flags by value.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD, full as libc::c_ulong) } < 0 {
        // Kernels before 6.2 have no USO: TCP offloads only.
        // SAFETY: as above.
        cvt(unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                TUNSETOFFLOAD,
                (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) as libc::c_ulong,
            )
        })?;
    }
    Ok(fd)
}

/// Turns a TUN queue's segmentation offloads off, keeping checksum offload: reads then
/// return single packets no larger than the MTU, for readers that cannot split GSO
/// super-packets (`vnet ipsec up`).
pub fn tun_no_gso(fd: RawFd) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes the flags by value.
    cvt(unsafe { libc::ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM as libc::c_ulong) })?;
    Ok(())
}

/// Index of an interface in the calling thread's network namespace.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// Where named namespaces live (as with `ip netns`).
pub const NETNS_DIR: &str = "/run/netns";

/// The path of a namespace given by name or path.
pub fn netns_path(ns: &str) -> PathBuf {
    if ns.starts_with('/') {
        PathBuf::from(ns)
    } else {
        Path::new(NETNS_DIR).join(ns)
    }
}

/// Runs `f` on a new thread that has entered the network namespace at `path`; the calling
/// thread (often a tokio worker) never changes namespace.
pub fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let ns = File::open(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("network namespace {}: {e}", path.display()),
        )
    })?;
    std::thread::Builder::new()
        .name("vnet-netns".into())
        .spawn(move || {
            // SAFETY: setns on an fd we own; affects only this thread, which ends with `f`.
            cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
            f()
        })?
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
}

fn mount(src: &str, target: &Path, flags: libc::c_ulong) -> io::Result<()> {
    let s = CString::new(src).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let t = CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: NUL-terminated strings; no data argument.
    cvt(unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            c"none".as_ptr(),
            flags,
            std::ptr::null(),
        )
    })
    .map(|_| ())
}

/// Creates the named namespace `name` under /run/netns the way `ip netns add` does (a
/// bind mount of a new namespace, /run/netns a shared mount), unless it exists. Returns true
/// when it was created.
pub fn create_named_netns(name: &str) -> io::Result<bool> {
    netns_add(name, false)
}

fn netns_add(name: &str, exclusive: bool) -> io::Result<bool> {
    let dir = Path::new(NETNS_DIR);
    std::fs::create_dir_all(dir)?;
    if mount("", dir, libc::MS_SHARED | libc::MS_REC).is_err() {
        mount(NETNS_DIR, dir, libc::MS_BIND | libc::MS_REC)?;
        mount("", dir, libc::MS_SHARED | libc::MS_REC)?;
    }
    let path = dir.join(name);
    if !exclusive && path.exists() && File::open(&path).is_ok_and(|f| is_netns(&f)) {
        return Ok(false);
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(!exclusive)
        .create_new(exclusive)
        .truncate(false)
        .open(&path)?;
    let p = path.clone();
    let r = std::thread::Builder::new()
        .name("vnet-netns-add".into())
        .spawn(move || -> io::Result<()> {
            // SAFETY: unshare affects only this thread, which ends here.
            cvt(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
            mount("/proc/thread-self/ns/net", &p, libc::MS_BIND)?;
            let mut nl = crate::netlink::Netlink::open()?;
            nl.set_link(1, true, None)
        })?
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?;
    if let Err(e) = r {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(true)
}

/// Whether an open file is a network namespace (nsfs).
pub(crate) fn is_netns(f: &File) -> bool {
    // SAFETY: fstatfs into a zeroed struct we own.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let ok = unsafe { libc::fstatfs(f.as_raw_fd(), &mut s) } == 0;
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    ok && s.f_type as i64 == NSFS_MAGIC
}

/// Creates the named namespace `name`, failing with `AlreadyExists` when anything is at its
/// path (never adopts one: see [`crate::owner`]).
pub fn create_netns_exclusive(name: &str) -> io::Result<()> {
    netns_add(name, true).map(|_| ())
}

/// The namespace's `SO_NETNS_COOKIE`: a 64-bit id the kernel never reuses, unlike nsfs
/// inode numbers. `None` on kernels without it (before 5.14).
pub fn netns_cookie(path: &Path) -> Option<u64> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    in_netns(path, || {
        // SAFETY: a plain socket call; the fd is owned right after.
        let fd =
            cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: fd was just returned by socket and is owned only here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut v: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        // SAFETY: v and len are valid for writes of the sizes given.
        cvt(unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_NETNS_COOKIE,
                (&mut v as *mut u64).cast(),
                &mut len,
            )
        })?;
        Ok(v)
    })
    .ok()
}

/// Removes a named namespace made by [`create_named_netns`] (or `ip netns add`).
pub fn delete_named_netns(name: &str) -> io::Result<()> {
    let path = Path::new(NETNS_DIR).join(name);
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a NUL-terminated path.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Enters the network namespace at `path` in the calling thread and replaces the process with
/// `argv` (for `vnet vm exec`). Returns only on failure.
pub fn exec_in_netns(path: &Path, argv: &[String]) -> io::Error {
    let run = || -> io::Result<()> {
        let ns = File::open(path)?;
        // SAFETY: setns on an fd we own.
        cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
        Ok(())
    };
    if let Err(e) = run() {
        return io::Error::new(
            e.kind(),
            format!("cannot enter network namespace {}: {e}", path.display()),
        );
    }
    use std::os::unix::process::CommandExt;
    let Some((cmd, args)) = argv.split_first() else {
        return io::Error::new(io::ErrorKind::InvalidInput, "no command given");
    };
    std::process::Command::new(cmd).args(args).exec()
}

/// An epoll instance.
pub struct Epoll(OwnedFd);

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fresh fd.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: a valid event struct.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })
            .map(|_| ())
    }
    pub fn delete(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as above; failure (already gone) is harmless.
        unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }
    /// Waits for events; returns how many were stored.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> usize {
        // SAFETY: the buffer is valid for events.len() entries.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout_ms,
            )
        };
        n.max(0) as usize
    }
}

/// read(2) on a non-blocking fd: Some(n), or None when nothing is ready (or an error).
#[inline]
pub fn read(fd: RawFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: writes at most buf.len() bytes into buf.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    (n > 0).then_some(n as usize)
}

/// write(2) of a whole packet; true when it was taken.
#[inline]
pub fn write(fd: RawFd, buf: &[u8]) -> bool {
    // SAFETY: reads buf.len() bytes from buf.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    n == buf.len() as isize
}

/// writev(2) of header + packet; true when it was taken.
#[inline]
pub fn write2(fd: RawFd, a: &[u8], b: &[u8]) -> bool {
    let iov = [
        libc::iovec {
            iov_base: a.as_ptr() as *mut _,
            iov_len: a.len(),
        },
        libc::iovec {
            iov_base: b.as_ptr() as *mut _,
            iov_len: b.len(),
        },
    ];
    // SAFETY: two valid iovecs over borrowed slices.
    let n = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
    n == (a.len() + b.len()) as isize
}

/// Pins the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t we own, filled by CPU_SET, passed by reference.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; CPU_SET bounds-checks cpu against the set size.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: as above.
    cvt(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) })
        .map(|_| ())
}

/// Gives up the CPU to another runnable thread, if any.
#[inline]
pub fn sched_yield() {
    // SAFETY: no arguments.
    unsafe { libc::sched_yield() };
}

/// Whether this process can run the data plane: root and /dev/net/tun.
pub fn dataplane_supported() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun is missing".into());
    }
    Ok(())
}

/// Datagrams to one destination, sent with one sendmmsg(2) per [`UdpBatch::MAX`]: the ESP
/// path seals a burst of packets read from a TUN device and hands them to the kernel at once.
/// Buffers are allocated once; adding and flushing allocate nothing.
pub struct UdpBatch {
    data: Vec<u8>,
    lens: Vec<usize>,
}

impl UdpBatch {
    pub const MAX: usize = 32;
    /// Largest datagram a slot holds.
    pub const SLOT: usize = 2048;

    pub fn new() -> UdpBatch {
        UdpBatch {
            data: vec![0u8; Self::MAX * Self::SLOT],
            lens: Vec::with_capacity(Self::MAX),
        }
    }

    /// The next free slot, to write a datagram into; None when the batch is full.
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        let i = self.lens.len();
        (i < Self::MAX).then(|| &mut self.data[i * Self::SLOT..(i + 1) * Self::SLOT])
    }

    /// Keeps the first `len` bytes of the slot last handed out.
    pub fn commit(&mut self, len: usize) {
        if self.lens.len() < Self::MAX {
            self.lens.push(len.min(Self::SLOT));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Sends every datagram of the batch to `dst` from socket `fd`, then empties it. Returns
    /// how many the kernel took (the rest are dropped, as a full socket buffer drops).
    pub fn flush(&mut self, fd: RawFd, dst: std::net::SocketAddrV4) -> usize {
        if self.lens.is_empty() {
            return 0;
        }
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: dst.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(dst.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; Self::MAX];
        // SAFETY: mmsghdr is plain data; every field used is set below.
        let mut msgs: [libc::mmsghdr; Self::MAX] = unsafe { std::mem::zeroed() };
        let n = self.lens.len();
        for i in 0..n {
            iov[i] = libc::iovec {
                iov_base: self.data[i * Self::SLOT..].as_mut_ptr().cast(),
                iov_len: self.lens[i],
            };
            msgs[i].msg_hdr.msg_name = (&sa as *const libc::sockaddr_in).cast_mut().cast();
            msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < n {
            // SAFETY: msgs[sent..n] point at live iovecs over self.data and at `sa`.
            let r = unsafe { libc::sendmmsg(fd, msgs[sent..].as_mut_ptr(), (n - sent) as u32, 0) };
            if r <= 0 {
                break;
            }
            sent += r as usize;
        }
        self.lens.clear();
        sent
    }
}

impl Default for UdpBatch {
    fn default() -> Self {
        Self::new()
    }
}
