//! The host agent: turns [`HostTables`] into TUN devices inside workload network namespaces,
//! and runs the forwarding loop around the pure forwarder ([`fwd::process`]).
//!
//! * **Devices.** Each bound NIC is a multi-queue TUN device with vnet headers and TSO/USO
//!   offloads, created inside its namespace (on a short-lived thread that entered it — a tokio
//!   worker never changes namespace), then addressed, given its MTU, brought up and given a
//!   default route through rtnetlink from inside the namespace.
//! * **Workers.** N threads (one per core, at most [`MAX_WORKERS`]); worker *w* owns queue *w*
//!   of every device and waits on its own epoll set. A wake-up drains up to [`BATCH`] packets
//!   per ready queue. After traffic the worker busy-polls for [`DEFAULT_BUSY_POLL_US`] before
//!   sleeping again (one worker at a time; [`Tuning`]), which removes the wake-up from
//!   request/response latency: it reads the queues of the devices that sent last directly, one
//!   packet each per pass, and asks epoll for the others every 16 passes. A packet is always
//!   forwarded by the thread that read it. Packets keep their virtio_net_hdr: a GSO
//!   super-packet (up to 64 KiB of one TCP stream) is routed once and written to the
//!   destination TUN as it is, segmentation and checksums left to the receiving kernel — the
//!   same trick as wireguard-go's offloads, minus the crypto. No allocation, lock or log per
//!   packet; counters are relaxed atomics.
//! * **Tables.** The runtime (tables + devices by NIC index) is swapped whole with arc-swap.
//!   Each worker publishes the sequence number of the runtime it is using (or "idle" while
//!   blocked in epoll); [`Agent::install`] acknowledges a generation only once every worker
//!   has moved past the old runtime, so after the ack no packet is forwarded by an old table.
//! * **Reconciliation.** `install` is idempotent: devices whose binding, addresses and MTU are
//!   unchanged are kept; changed ones are removed and re-created; managed namespaces (those of
//!   `vnet vm`) are created when bound and deleted when their last binding goes — only those
//!   this agent's instance made ([`owner`]): an existing namespace of that name that is not
//!   ours is never adopted (the NIC is reported not attached) and never deleted. Devices are
//!   not persistent: they vanish with the process and a restart re-creates them.

pub mod netlink;
pub mod owner;
pub mod pcap;
pub mod sys;

use arc_swap::{ArcSwap, ArcSwapOption};
use plan::{DropReason, HostTables, NicIdx};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{
    fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sys::VNET_HDR_LEN;

pub use sys::dataplane_supported;

/// Most worker threads (and so queues per TUN device).
pub const MAX_WORKERS: usize = 2;
/// Packets read from one queue per wake-up before moving to the next ready queue.
pub const BATCH: usize = 64;
const IDLE: u64 = u64::MAX;
const BUSY: u64 = 0;
/// Largest packet read from a TUN: vnet header + 64 KiB GSO super-packet.
const BUF: usize = VNET_HDR_LEN + 65_536 + 64;
/// Largest capture kept in memory.
const CAPTURE_LIMIT: usize = 256 << 20;

/// Per-NIC counters. "out" is what the workload sent (read from its TUN), "in" what was
/// delivered to it. Packets of a GSO super-packet count as the segments it stands for.
#[derive(Default)]
pub struct Counters {
    pub out_packets: AtomicU64,
    pub out_bytes: AtomicU64,
    pub in_packets: AtomicU64,
    pub in_bytes: AtomicU64,
    pub drops: [AtomicU64; DropReason::COUNT],
}

/// A copy of [`Counters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub out_packets: u64,
    pub out_bytes: u64,
    pub in_packets: u64,
    pub in_bytes: u64,
    /// Non-zero drop counters by reason.
    pub drops: BTreeMap<&'static str, u64>,
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            out_packets: self.out_packets.load(Relaxed),
            out_bytes: self.out_bytes.load(Relaxed),
            in_packets: self.in_packets.load(Relaxed),
            in_bytes: self.in_bytes.load(Relaxed),
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.as_str(), self.drops[*r as usize].load(Relaxed)))
                .filter(|(_, v)| *v > 0)
                .collect(),
        }
    }
    #[inline]
    fn count_drop(&self, r: DropReason) {
        self.drops[r as usize].fetch_add(1, Relaxed);
    }
}

/// What a device is made from; a change means a new device.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DevSpec {
    netns: PathBuf,
    /// The namespace name when vnet manages it.
    managed: Option<String>,
    ifname: String,
    mtu: u16,
    addrs: Vec<(IpAddr, u8)>,
}

pub struct Device {
    id: u64,
    spec: DevSpec,
    queues: Vec<OwnedFd>,
    /// Shared with the NIC's earlier and later devices: a device re-created for a new address
    /// or MTU carries on counting where the old one stopped.
    pub counters: Arc<Counters>,
    capturing: AtomicBool,
    capture: ArcSwapOption<pcap::Capture>,
}

impl Device {
    #[inline]
    fn record(&self, worker: usize, pkt: &[u8]) {
        if self.capturing.load(Relaxed) {
            if let Some(c) = self.capture.load().as_ref() {
                c.record(worker, pkt);
            }
        }
    }
}

/// What the workers forward with: tables and the devices by NIC index, swapped whole.
struct Runtime {
    seq: u64,
    tables: HostTables,
    devs: Vec<Option<Arc<Device>>>,
    /// (device id, NIC index), sorted: epoll tokens are device ids.
    by_id: Vec<(u64, NicIdx)>,
}

impl Runtime {
    fn new(seq: u64, tables: HostTables, devices: &HashMap<String, Arc<Device>>) -> Runtime {
        let devs: Vec<Option<Arc<Device>>> = tables
            .nics
            .iter()
            .map(|n| devices.get(&n.key).cloned())
            .collect();
        let mut by_id: Vec<(u64, NicIdx)> = devs
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.as_ref().map(|d| (d.id, i as NicIdx)))
            .collect();
        by_id.sort_unstable();
        Runtime {
            seq,
            tables,
            devs,
            by_id,
        }
    }
}

struct Shared {
    rt: ArcSwap<Runtime>,
    epolls: Vec<sys::Epoll>,
    /// Per worker: the runtime sequence in use, BUSY while loading, IDLE while waiting.
    epochs: Vec<AtomicU64>,
    stop: AtomicBool,
    tuning: Tuning,
    /// The worker allowed to busy-poll now ([`NO_SPINNER`] when none): at most one core spins.
    spinner: AtomicUsize,
}

const NO_SPINNER: usize = usize::MAX;

/// Default busy-poll window: longer than the gap of a 100 Hz request/response exchange
/// (`ping -i 0.01`), so such traffic never waits for a sleeping worker to be woken (an idle
/// vCPU's wake-up costs tens of microseconds here). At most one worker spins at a time, and
/// none once the window has passed without traffic: an idle agent burns no CPU.
pub const DEFAULT_BUSY_POLL_US: u64 = 20_000;

/// How the workers wait for packets.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// After traffic, keep polling (epoll_wait with a zero timeout) for this long before
    /// sleeping in epoll_wait; zero turns busy-polling off.
    pub busy_poll: Duration,
    /// Yield the CPU between polls while spinning.
    pub yield_spin: bool,
    /// Pin worker w to CPU w.
    pub pin: bool,
}

impl Tuning {
    /// From the environment: VNET_BUSY_POLL_US, VNET_BUSY_POLL_YIELD=0|1, VNET_PIN_WORKERS=0|1.
    pub fn from_env() -> Tuning {
        let num = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(d)
        };
        Tuning {
            busy_poll: Duration::from_micros(num("VNET_BUSY_POLL_US", DEFAULT_BUSY_POLL_US)),
            yield_spin: num("VNET_BUSY_POLL_YIELD", 0) != 0,
            pin: num("VNET_PIN_WORKERS", 0) != 0,
        }
    }
}

#[derive(Default)]
struct Control {
    devices: HashMap<String, Arc<Device>>,
    /// Counters by NIC key, for as long as the NIC stays bound (they outlive its devices).
    counters: HashMap<String, Arc<Counters>>,
    errors: BTreeMap<String, String>,
    managed_ns: BTreeSet<String>,
    seq: u64,
}

/// One NIC's data-plane status.
#[derive(Debug, Clone)]
pub struct NicStatus {
    pub key: String,
    pub name: String,
    pub netns: String,
    pub ifname: String,
    pub mtu: u16,
    pub attached: bool,
    pub error: Option<String>,
    pub counters: CounterSnapshot,
}

pub struct Agent {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    control: Mutex<Control>,
    applied: AtomicU64,
    next_id: AtomicU64,
    /// Whose managed namespaces are ours ([`owner`]): the server's persistent instance id.
    instance: String,
}

impl Agent {
    /// Starts the worker threads with empty tables, owning managed namespaces under a random
    /// instance id (so it adopts none it finds).
    pub fn start() -> io::Result<Arc<Agent>> {
        Self::start_as(&owner::random_instance())
    }

    /// Starts the agent of the server instance `instance` (kept across restarts, so that the
    /// namespaces it made are re-attached rather than refused).
    pub fn start_as(instance: &str) -> io::Result<Arc<Agent>> {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, MAX_WORKERS);
        let epolls = (0..n)
            .map(|_| sys::Epoll::new())
            .collect::<io::Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            rt: ArcSwap::from_pointee(Runtime::new(0, HostTables::default(), &HashMap::new())),
            epolls,
            epochs: (0..n).map(|_| AtomicU64::new(IDLE)).collect(),
            stop: AtomicBool::new(false),
            tuning: Tuning::from_env(),
            spinner: AtomicUsize::new(NO_SPINNER),
        });
        let mut handles = Vec::new();
        for w in 0..n {
            let sh = shared.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("vnet-fwd-{w}"))
                    .spawn(move || worker(sh, w))?,
            );
        }
        Ok(Arc::new(Agent {
            shared,
            workers: Mutex::new(handles),
            control: Mutex::new(Control::default()),
            applied: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            instance: instance.to_string(),
        }))
    }

    /// Whether a managed binding to the namespace `name` could be attached: `Err` says why
    /// not (it exists and is not this instance's). Changes nothing.
    pub fn check_managed_netns(&self, name: &str) -> Result<(), String> {
        match owner::check(name, &self.instance) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(n)) => Err(n.describe(name)),
            Err(e) => Err(format!("cannot check network namespace {name}: {e}")),
        }
    }

    pub fn workers(&self) -> usize {
        self.shared.epolls.len()
    }

    /// The last generation installed and acknowledged.
    pub fn applied_generation(&self) -> u64 {
        self.applied.load(SeqCst)
    }

    fn swap(&self, c: &mut Control, tables: HostTables) {
        c.seq += 1;
        let rt = Arc::new(Runtime::new(c.seq, tables, &c.devices));
        let old = self.shared.rt.swap(rt);
        fence(SeqCst);
        self.quiesce(c.seq);
        drop(old);
    }

    /// Waits until no worker uses a runtime older than `seq`.
    fn quiesce(&self, seq: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let done = self.shared.epochs.iter().all(|e| {
                let v = e.load(SeqCst);
                v == IDLE || (v != BUSY && v >= seq)
            });
            if done || Instant::now() > deadline {
                if !done {
                    tracing::warn!(
                        seq,
                        "forwarding workers did not reach the new tables within 5 s"
                    );
                }
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Installs a generation: reconciles devices and namespaces with the tables' bindings,
    /// swaps the runtime atomically, waits until no worker uses the old one, and acknowledges.
    /// Returns the NICs that could not be attached, with why.
    pub fn install(&self, tables: HostTables) -> BTreeMap<String, String> {
        let mut c = self.control.lock().unwrap_or_else(|e| e.into_inner());
        let generation = tables.generation;
        let mut desired: BTreeMap<String, DevSpec> = BTreeMap::new();
        for n in &tables.nics {
            let Some(b) = &n.binding else { continue };
            let mut addrs: Vec<(IpAddr, u8)> = n
                .addrs
                .iter()
                .map(|a| (a.addr, a.prefix.prefix_len()))
                .collect();
            addrs.sort();
            desired.insert(
                n.key.clone(),
                DevSpec {
                    netns: sys::netns_path(&b.netns),
                    managed: (b.managed && !b.netns.starts_with('/')).then(|| b.netns.clone()),
                    ifname: b.ifname().to_string(),
                    mtu: n.mtu,
                    addrs,
                },
            );
        }
        // Phase 1: take out devices that are gone or changed.
        let removed: Vec<String> = c
            .devices
            .iter()
            .filter(|(k, d)| desired.get(*k) != Some(&d.spec))
            .map(|(k, _)| k.clone())
            .collect();
        if !removed.is_empty() {
            let gone: Vec<Arc<Device>> =
                removed.iter().filter_map(|k| c.devices.remove(k)).collect();
            self.swap(&mut c, tables.clone());
            for d in gone {
                for (w, q) in d.queues.iter().enumerate() {
                    self.shared.epolls[w].delete(q.as_raw_fd());
                }
                close_device(d);
            }
        }
        // Managed namespaces first, then the new devices.
        let want_ns: BTreeSet<String> =
            desired.values().filter_map(|s| s.managed.clone()).collect();
        let mut errors = BTreeMap::new();
        let mut owned = BTreeSet::new();
        for ns in &want_ns {
            let first_nic = desired
                .iter()
                .find(|(_, s)| s.managed.as_deref() == Some(ns.as_str()))
                .map_or("", |(k, _)| k.as_str());
            let why = match owner::claim(ns, &self.instance, first_nic) {
                Ok(Ok(_)) => {
                    owned.insert(ns.clone());
                    continue;
                }
                Ok(Err(n)) => n.describe(ns),
                Err(e) => {
                    // Ours before and unverifiable now (an I/O error): still ours to delete
                    // later, which re-checks ownership first.
                    if c.managed_ns.contains(ns) {
                        owned.insert(ns.clone());
                    }
                    format!("cannot create network namespace {ns}: {e}")
                }
            };
            for (k, s) in &desired {
                if s.managed.as_deref() == Some(ns.as_str()) {
                    errors.insert(k.clone(), why.clone());
                }
            }
        }
        for (k, spec) in &desired {
            if c.devices.contains_key(k) || errors.contains_key(k) {
                continue;
            }
            let counters = c.counters.entry(k.clone()).or_default().clone();
            match self.create_device(spec, counters) {
                Ok(d) => {
                    let d = Arc::new(d);
                    for (w, q) in d.queues.iter().enumerate() {
                        if let Err(e) = self.shared.epolls[w].add(q.as_raw_fd(), d.id) {
                            errors.insert(k.clone(), format!("epoll: {e}"));
                        }
                    }
                    c.devices.insert(k.clone(), d);
                }
                Err(e) => {
                    errors.insert(
                        k.clone(),
                        format!(
                            "cannot attach {} in {}: {e}",
                            spec.ifname,
                            spec.netns.display()
                        ),
                    );
                }
            }
        }
        self.swap(&mut c, tables);
        for ns in c.managed_ns.difference(&want_ns) {
            self.release(ns);
        }
        // Only the namespaces verified ours are deleted later: one that was ours and has been
        // replaced meanwhile drops out here and is left alone.
        c.managed_ns = owned;
        // NICs no longer bound here start from zero if they come back.
        c.counters.retain(|k, _| desired.contains_key(k));
        // Acknowledged once everything of the generation is in place, namespaces included.
        self.applied.store(generation, SeqCst);
        for (k, e) in &errors {
            if c.errors.get(k) != Some(e) {
                tracing::warn!(nic = %k, error = %e, "NIC not attached");
            }
        }
        c.errors = errors.clone();
        errors
    }

    fn create_device(&self, spec: &DevSpec, counters: Arc<Counters>) -> io::Result<Device> {
        let workers = self.workers();
        let s = spec.clone();
        let queues = sys::in_netns(&spec.netns, move || {
            if sys::if_index(&s.ifname).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("an interface {} already exists there", s.ifname),
                ));
            }
            let qs = (0..workers)
                .map(|_| sys::tun_queue(&s.ifname))
                .collect::<io::Result<Vec<_>>>()?;
            let idx = sys::if_index(&s.ifname)?;
            let mut nl = netlink::Netlink::open()?;
            nl.set_link(idx, true, Some(u32::from(s.mtu)))?;
            for (a, len) in &s.addrs {
                nl.add_addr(idx, *a, *len)?;
            }
            for v6 in [false, true] {
                if s.addrs.iter().any(|(a, _)| a.is_ipv6() == v6) {
                    nl.add_default_route(idx, v6, s.managed.is_some())?;
                }
            }
            Ok(qs)
        })?;
        Ok(Device {
            id: self.next_id.fetch_add(1, Relaxed),
            spec: spec.clone(),
            queues,
            counters,
            capturing: AtomicBool::new(false),
            capture: ArcSwapOption::empty(),
        })
    }

    /// Status and counters of every bound NIC of the installed tables.
    pub fn status(&self) -> Vec<NicStatus> {
        let c = self.control.lock().unwrap_or_else(|e| e.into_inner());
        let rt = self.shared.rt.load();
        rt.tables
            .nics
            .iter()
            .filter_map(|n| {
                let b = n.binding.as_ref()?;
                let d = c.devices.get(&n.key);
                Some(NicStatus {
                    key: n.key.clone(),
                    name: n.name.clone(),
                    netns: b.netns.clone(),
                    ifname: b.ifname().to_string(),
                    mtu: n.mtu,
                    attached: d.is_some(),
                    error: c.errors.get(&n.key).cloned(),
                    counters: d.map(|d| d.counters.snapshot()).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Captures the packets a NIC sends and receives for `duration`; returns a pcap file.
    /// Blocking.
    pub fn capture(&self, nic_key: &str, duration: Duration) -> io::Result<Vec<u8>> {
        let d = {
            let c = self.control.lock().unwrap_or_else(|e| e.into_inner());
            c.devices.get(nic_key).cloned().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "the NIC is not attached on this host",
                )
            })?
        };
        let cap = Arc::new(pcap::Capture::new(self.workers(), CAPTURE_LIMIT));
        d.capture.store(Some(cap.clone()));
        d.capturing.store(true, SeqCst);
        std::thread::sleep(duration);
        d.capturing.store(false, SeqCst);
        d.capture.store(None);
        std::thread::sleep(Duration::from_millis(20));
        Ok(cap.finish())
    }

    /// Stops the workers and closes every device (managed namespaces are kept, so that a
    /// restart re-attaches to them).
    pub fn shutdown(&self) {
        self.shared.stop.store(true, SeqCst);
        let hs = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for h in hs {
            let _ = h.join();
        }
        let mut c = self.control.lock().unwrap_or_else(|e| e.into_inner());
        c.devices.clear();
        self.shared.rt.store(Arc::new(Runtime::new(
            u64::MAX - 1,
            HostTables::default(),
            &HashMap::new(),
        )));
    }

    /// Deletes the managed namespaces this agent created (used by tests and `vnet` when
    /// tearing everything down).
    pub fn delete_managed_namespaces(&self) {
        let mut c = self.control.lock().unwrap_or_else(|e| e.into_inner());
        for ns in std::mem::take(&mut c.managed_ns) {
            self.release(&ns);
        }
    }

    /// Deletes a managed namespace if it is still this instance's; says so when it is not.
    fn release(&self, ns: &str) {
        match owner::release(ns, &self.instance) {
            Ok(owner::Released::Deleted | owner::Released::Gone) => {}
            Ok(owner::Released::Kept(n)) => {
                tracing::warn!(netns = %ns, "{}", n.describe(ns));
            }
            Err(e) => tracing::warn!(netns = %ns, error = %e, "cannot delete network namespace"),
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Drops the last reference of a removed device, closing its queues so the kernel deletes the
/// interface before a device of the same name is created.
fn close_device(d: Arc<Device>) {
    let mut d = d;
    for _ in 0..200 {
        match Arc::try_unwrap(d) {
            Ok(dev) => {
                drop(dev);
                return;
            }
            Err(back) => {
                d = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    tracing::warn!("a removed device is still referenced; it closes when released");
}

/// Queues a spinning worker reads directly, without asking epoll: the devices that sent
/// packets most recently. One packet per queue per pass, so a request on one device and its
/// answer on another cross the agent in one read and one write each — a round trip costs four
/// system calls instead of eight (epoll_wait + read + write + a read that finds the queue empty,
/// per direction).
struct HotQueues {
    /// (device id, pass of its last packet), most recent first.
    ids: [(u64, u64); HOT_QUEUES],
    len: usize,
}

/// Most device queues a spinning worker polls directly.
const HOT_QUEUES: usize = 8;
/// A spinning worker asks epoll for the other devices every this many passes.
const EPOLL_EVERY: u64 = 16;
/// A hot queue quiet for this many passes goes back to epoll only.
const HOT_IDLE_PASSES: u64 = 4096;

impl HotQueues {
    fn new() -> HotQueues {
        HotQueues {
            ids: [(0, 0); HOT_QUEUES],
            len: 0,
        }
    }

    /// Marks a device hot at `pass` (inserting it, evicting the stalest when full).
    fn touch(&mut self, id: u64, pass: u64) {
        if let Some(e) = self.ids[..self.len].iter_mut().find(|e| e.0 == id) {
            e.1 = pass;
            return;
        }
        if self.len < HOT_QUEUES {
            self.ids[self.len] = (id, pass);
            self.len += 1;
        } else if let Some(e) = self.ids.iter_mut().min_by_key(|e| e.1) {
            *e = (id, pass);
        }
    }

    /// Drops devices quiet since before `pass - HOT_IDLE_PASSES` or gone from `rt`.
    fn prune(&mut self, pass: u64, rt: &Runtime) {
        let mut i = 0;
        while i < self.len {
            let (id, last) = self.ids[i];
            let gone = rt.by_id.binary_search_by_key(&id, |e| e.0).is_err();
            if gone || pass.saturating_sub(last) > HOT_IDLE_PASSES {
                self.len -= 1;
                self.ids[i] = self.ids[self.len];
            } else {
                i += 1;
            }
        }
    }
}

/// The device with epoll token (device id) `id` in `rt`.
#[inline]
fn device_of(rt: &Runtime, id: u64) -> Option<(NicIdx, &Arc<Device>)> {
    let pos = rt.by_id.binary_search_by_key(&id, |e| e.0).ok()?;
    let idx = rt.by_id[pos].1;
    rt.devs[idx as usize].as_ref().map(|d| (idx, d))
}

fn worker(sh: Arc<Shared>, w: usize) {
    if sh.tuning.pin {
        // Best effort: a worker per core keeps each flow's packets on one cache.
        let _ = sys::pin_to_cpu(w);
    }
    let spin = sh.tuning.busy_poll;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
    let mut buf = vec![0u8; BUF];
    let mut reply = vec![0u8; VNET_HDR_LEN + fwd::REPLY_BUF];
    let mut frag = vec![0u8; VNET_HDR_LEN + usize::from(u16::MAX)];
    // Until when to poll without sleeping: traffic seen recently.
    let mut spin_until: Option<Instant> = None;
    let mut hot = HotQueues::new();
    let mut pass: u64 = 0;
    while !sh.stop.load(Relaxed) {
        pass += 1;
        let spinning = match spin_until {
            Some(t) if Instant::now() < t && sh.spinner.load(Relaxed) == w => true,
            Some(_) => {
                spin_until = None;
                let _ = sh.spinner.compare_exchange(w, NO_SPINNER, SeqCst, Relaxed);
                hot.len = 0;
                false
            }
            None => false,
        };
        let mut seen = false;
        if spinning && hot.len > 0 && !pass.is_multiple_of(EPOLL_EVERY) {
            // Direct pass over the hot queues: one packet each.
            sh.epochs[w].store(BUSY, SeqCst);
            fence(SeqCst);
            let rt = sh.rt.load();
            sh.epochs[w].store(rt.seq, SeqCst);
            for i in 0..hot.len {
                let Some((idx, dev)) = device_of(&rt, hot.ids[i].0) else {
                    continue;
                };
                let fd = dev.queues[w].as_raw_fd();
                if let Some(len) = sys::read(fd, &mut buf) {
                    handle(&rt, w, idx, dev, fd, &mut buf[..len], &mut reply, &mut frag);
                    hot.ids[i].1 = pass;
                    seen = true;
                }
            }
            if pass.is_multiple_of(HOT_IDLE_PASSES) {
                hot.prune(pass, &rt);
            }
            sh.epochs[w].store(IDLE, SeqCst);
            if !seen {
                if sh.tuning.yield_spin {
                    sys::sched_yield();
                }
                continue;
            }
        } else {
            sh.epochs[w].store(IDLE, SeqCst);
            let n = sh.epolls[w].wait(&mut events, if spinning { 0 } else { 100 });
            if n == 0 {
                if spinning && sh.tuning.yield_spin {
                    sys::sched_yield();
                }
                continue;
            }
            sh.epochs[w].store(BUSY, SeqCst);
            fence(SeqCst);
            let rt = sh.rt.load();
            sh.epochs[w].store(rt.seq, SeqCst);
            for ev in &events[..n] {
                let Some((idx, dev)) = device_of(&rt, ev.u64) else {
                    continue;
                };
                let fd = dev.queues[w].as_raw_fd();
                for _ in 0..BATCH {
                    let Some(len) = sys::read(fd, &mut buf) else {
                        break;
                    };
                    handle(&rt, w, idx, dev, fd, &mut buf[..len], &mut reply, &mut frag);
                    seen = true;
                }
                if !spin.is_zero() {
                    hot.touch(ev.u64, pass);
                }
            }
            sh.epochs[w].store(IDLE, SeqCst);
        }
        if seen && !spin.is_zero() {
            // The worker that saw traffic last spins; the one it takes over from stops.
            if sh.spinner.load(Relaxed) != w {
                sh.spinner.store(w, Relaxed);
            }
            spin_until = Some(Instant::now() + spin);
        }
    }
    let _ = sh.spinner.compare_exchange(w, NO_SPINNER, SeqCst, Relaxed);
    sh.epochs[w].store(IDLE, SeqCst);
}

#[inline]
#[allow(clippy::too_many_arguments)]
fn handle(
    rt: &Runtime,
    w: usize,
    idx: NicIdx,
    dev: &Device,
    fd: i32,
    frame: &mut [u8],
    reply: &mut [u8],
    frag: &mut [u8],
) {
    if frame.len() <= VNET_HDR_LEN {
        dev.counters.count_drop(DropReason::Malformed);
        return;
    }
    let (hdr, pkt) = frame.split_at_mut(VNET_HDR_LEN);
    let gso_size = if hdr[1] != sys::VIRTIO_NET_HDR_GSO_NONE {
        u16::from_le_bytes([hdr[4], hdr[5]])
    } else {
        0
    };
    let segs = if gso_size > 0 {
        let hl = usize::from(u16::from_le_bytes([hdr[2], hdr[3]]));
        (pkt.len().saturating_sub(hl).div_ceil(usize::from(gso_size))).max(1) as u64
    } else {
        1
    };
    let plen = pkt.len() as u64;
    dev.counters.out_packets.fetch_add(segs, Relaxed);
    dev.counters.out_bytes.fetch_add(plen, Relaxed);
    dev.record(w, pkt);
    match fwd::process(&rt.tables, idx, pkt, gso_size, &mut reply[VNET_HDR_LEN..]) {
        fwd::Verdict::Forward(t) => match rt.devs[t as usize].as_ref() {
            Some(out) => {
                if sys::write(out.queues[w].as_raw_fd(), frame) {
                    out.counters.in_packets.fetch_add(segs, Relaxed);
                    out.counters.in_bytes.fetch_add(plen, Relaxed);
                    out.record(w, &frame[VNET_HDR_LEN..]);
                } else {
                    dev.counters.count_drop(DropReason::TxError);
                }
            }
            None => dev.counters.count_drop(DropReason::Unbound),
        },
        fwd::Verdict::Fragment { nic, mtu } => match rt.devs[nic as usize].as_ref() {
            Some(out) => {
                let (hdr, pkt) = frame.split_at_mut(VNET_HDR_LEN);
                // A checksum left to offload must be whole before the payload is split.
                if hdr[0] & sys::VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
                    let start = usize::from(u16::from_le_bytes([hdr[6], hdr[7]]));
                    let off = usize::from(u16::from_le_bytes([hdr[8], hdr[9]]));
                    if !fwd::frag::complete_checksum(pkt, start, off) {
                        dev.counters.count_drop(DropReason::Malformed);
                        return;
                    }
                }
                let ofd = out.queues[w].as_raw_fd();
                frag[..VNET_HDR_LEN].fill(0);
                let mut off = 0;
                let mut built = false;
                while let Some((len, next)) =
                    fwd::frag::v4_fragment(pkt, mtu, off, &mut frag[VNET_HDR_LEN..])
                {
                    built = true;
                    if sys::write(ofd, &frag[..VNET_HDR_LEN + len]) {
                        out.counters.in_packets.fetch_add(1, Relaxed);
                        out.counters.in_bytes.fetch_add(len as u64, Relaxed);
                        out.record(w, &frag[VNET_HDR_LEN..VNET_HDR_LEN + len]);
                    } else {
                        dev.counters.count_drop(DropReason::TxError);
                        break;
                    }
                    off = next;
                }
                if !built {
                    // Not one fragment could be built (a header-only packet).
                    dev.counters.count_drop(DropReason::Malformed);
                }
            }
            None => dev.counters.count_drop(DropReason::Unbound),
        },
        fwd::Verdict::Reply { reason, len } => {
            dev.counters.count_drop(reason);
            reply[..VNET_HDR_LEN].fill(0);
            if sys::write(fd, &reply[..VNET_HDR_LEN + len]) {
                dev.counters.in_packets.fetch_add(1, Relaxed);
                dev.counters.in_bytes.fetch_add(len as u64, Relaxed);
                dev.record(w, &reply[VNET_HDR_LEN..VNET_HDR_LEN + len]);
            }
        }
        fwd::Verdict::Drop(r) => dev.counters.count_drop(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_queues_keep_the_most_recent_devices() {
        let mut h = HotQueues::new();
        for id in 1..=HOT_QUEUES as u64 {
            h.touch(id, id);
        }
        assert_eq!(h.len, HOT_QUEUES);
        h.touch(3, 100); // known: refreshed, not added twice
        assert_eq!(h.len, HOT_QUEUES);
        h.touch(99, 101); // full: the stalest (id 1, pass 1) makes room
        let ids: BTreeSet<u64> = h.ids[..h.len].iter().map(|e| e.0).collect();
        assert!(
            !ids.contains(&1) && ids.contains(&99) && ids.contains(&3),
            "{ids:?}"
        );
        h.touch(98, 102); // next stalest: id 2
        let ids: BTreeSet<u64> = h.ids[..h.len].iter().map(|e| e.0).collect();
        assert!(!ids.contains(&2) && ids.contains(&98), "{ids:?}");
    }

    #[test]
    fn hot_queues_forget_quiet_and_removed_devices() {
        let rt = Runtime {
            seq: 1,
            tables: HostTables::default(),
            devs: vec![],
            by_id: vec![(7, 0), (8, 1)],
        };
        let mut h = HotQueues::new();
        h.touch(7, 10);
        h.touch(8, 10 + HOT_IDLE_PASSES);
        h.touch(9, 10 + HOT_IDLE_PASSES); // not in the runtime any more
        h.prune(11 + HOT_IDLE_PASSES, &rt);
        assert_eq!(&h.ids[..h.len], &[(8, 10 + HOT_IDLE_PASSES)]);
    }
}

#[cfg(test)]
mod udp_batch_tests {
    use super::sys::UdpBatch;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    /// A batch arrives whole, in order, each datagram with its own length; flushing empties
    /// it, and a full batch refuses more until flushed.
    #[test]
    fn a_batch_arrives_whole_and_in_order() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dst = match rx.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        let mut b = UdpBatch::new();
        for i in 0..UdpBatch::MAX {
            let slot = b.slot().unwrap();
            let len = 10 + i * 37;
            slot[..len].fill(i as u8);
            b.commit(len);
        }
        assert!(b.slot().is_none(), "full");
        assert_eq!(b.flush(tx.as_raw_fd(), dst), UdpBatch::MAX);
        assert!(b.is_empty());
        let mut buf = [0u8; 4096];
        for i in 0..UdpBatch::MAX {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(n, 10 + i * 37);
            assert!(buf[..n].iter().all(|&x| x == i as u8));
        }
        assert_eq!(
            b.flush(tx.as_raw_fd(), dst),
            0,
            "an empty batch sends nothing"
        );
    }
}
