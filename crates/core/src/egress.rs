//! Where webhooks may connect: the egress policy, after Stripe's Smokescreen (private,
//! loopback, link-local and other internal ranges are denied unless named), and the ureq
//! resolver that pins each request to the addresses that were checked for it.
//!
//! `lowcode.webhook_allow` is a comma-separated list of entries, each optionally followed by
//! `:port` (or `:*`):
//! - `host`: that exact host name (or literal address), whatever it resolves to;
//! - `*.domain`: any name under domain; `*`: any host: neither ever allows a denied address;
//! - a literal address (`127.0.0.1`, `[::1]`, `::1`) or a CIDR range (`10.1.2.0/24`,
//!   `fd00::/8`, `[fd00::/8]:443`, `10.0.0.0/8:8080`): any host whose addresses it contains.
//!
//! A host is allowed when every address it resolves to is: by an exact host entry, by a
//! literal or CIDR entry containing it, or by a wildcard when the address is not denied
//! ([`classify`]). The decision ([`decide`]) is pure; [`vet`] resolves (std `ToSocketAddrs`,
//! so every spelling a resolver takes — `127.1`, `2130706433`, `0x7f000001`, `0` — is judged
//! by the address it means) and [`pinned_agent`]'s resolver then connects only to the
//! addresses vetted, never looking the name up a second time (DNS rebinding).
//!
//! No pgrx here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard};

use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

// ------------------------------------------------------------------ address classes

/// Why an address is denied unless lowcode.webhook_allow names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 0.0.0.0/8, `::` (connecting to 0.0.0.0 reaches this host).
    Unspecified,
    /// 127.0.0.0/8, `::1`.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7 (unique local), fec0::/10 (site-local).
    Private,
    /// 100.64/10 (carrier-grade NAT).
    SharedAddressSpace,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 169.254.169.254 and fd00:ec2::254: the cloud instance metadata services.
    Metadata,
    /// 224/4, ff00::/8.
    Multicast,
    /// 240/4 (but the broadcast address).
    Reserved,
    /// 255.255.255.255.
    Broadcast,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Unspecified => "an unspecified (this-host) address",
            Class::Loopback => "a loopback address",
            Class::Private => "a private address",
            Class::SharedAddressSpace => "a shared (carrier-grade NAT) address",
            Class::LinkLocal => "a link-local address",
            Class::Metadata => "a cloud metadata address",
            Class::Multicast => "a multicast address",
            Class::Reserved => "a reserved address",
            Class::Broadcast => "the broadcast address",
        })
    }
}

/// How an IPv6 address carries an IPv4 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// `::ffff:a.b.c.d`
    Mapped,
    /// `::a.b.c.d` (deprecated)
    Compatible,
    /// `64:ff9b::a.b.c.d` and the local-use `64:ff9b:1::/48`
    Nat64,
    /// `2002:aabb:ccdd::/48`
    SixToFour,
}

/// A denied address: its class, and the IPv4 address it carries when that is what is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    pub class: Class,
    pub embedded: Option<(Embedding, Ipv4Addr)>,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.class)?;
        if let Some((how, v4)) = self.embedded {
            let how = match how {
                Embedding::Mapped => "IPv4-mapped",
                Embedding::Compatible => "IPv4-compatible",
                Embedding::Nat64 => "NAT64",
                Embedding::SixToFour => "6to4",
            };
            write!(f, " ({how} {v4})")?;
        }
        Ok(())
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Class> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b) {
        (0, _) => Class::Unspecified,
        (127, _) => Class::Loopback,
        (10, _) => Class::Private,
        (172, 16..=31) => Class::Private,
        (192, 168) => Class::Private,
        (100, 64..=127) => Class::SharedAddressSpace,
        (169, 254) if c == 169 && d == 254 => Class::Metadata,
        (169, 254) => Class::LinkLocal,
        (224..=239, _) => Class::Multicast,
        (255, 255) if c == 255 && d == 255 => Class::Broadcast,
        (240..=255, _) => Class::Reserved,
        _ => return None,
    })
}

/// The class of an address denied by default (None: a public address, allowed by `*`).
pub fn classify(ip: IpAddr) -> Option<Denied> {
    let v6 = match ip {
        IpAddr::V4(v4) => {
            return classify_v4(v4).map(|class| Denied {
                class,
                embedded: None,
            })
        }
        IpAddr::V6(v6) => v6,
    };
    let seg = v6.segments();
    let bits = u128::from(v6);
    let tail = Ipv4Addr::from(bits as u32);
    let embedded = |how: Embedding, v4: Ipv4Addr| {
        classify_v4(v4).map(|class| Denied {
            class,
            embedded: Some((how, v4)),
        })
    };
    let plain = |class| {
        Some(Denied {
            class,
            embedded: None,
        })
    };
    if bits == 0 {
        return plain(Class::Unspecified);
    }
    if bits == 1 {
        return plain(Class::Loopback);
    }
    if bits >> 32 == 0xffff {
        return embedded(Embedding::Mapped, tail);
    }
    if bits >> 32 == 0 {
        return embedded(Embedding::Compatible, tail);
    }
    if bits >> 32 == 0x0064_ff9b_u128 << 64 || (seg[0], seg[1], seg[2]) == (0x64, 0xff9b, 1) {
        return embedded(Embedding::Nat64, tail);
    }
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::from(((seg[1] as u32) << 16) | seg[2] as u32);
        return embedded(Embedding::SixToFour, v4);
    }
    if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return plain(Class::Metadata);
    }
    match seg[0] {
        s if s & 0xfe00 == 0xfc00 => plain(Class::Private),
        s if s & 0xffc0 == 0xfe80 => plain(Class::LinkLocal),
        s if s & 0xffc0 == 0xfec0 => plain(Class::Private),
        s if s & 0xff00 == 0xff00 => plain(Class::Multicast),
        _ => None,
    }
}

/// An IPv4-mapped IPv6 address is the IPv4 address it maps (a dual-stack socket reaches it).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

// ------------------------------------------------------------------ CIDR ranges

/// An address range (a literal address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.1.2.0/24`, `fd00::/8`, `127.0.0.1`, `::1` (host bits are cleared: `10.1.2.3/24` is
    /// `10.1.2.0/24`). An IPv4-mapped range (`::ffff:10.0.0.0/104`) is the IPv4 range.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?))
            }
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => {
                (canonical(addr), prefix - 96)
            }
            _ => (addr, prefix),
        };
        Some(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Does the range hold this address (an IPv4-mapped one as its IPv4 address)?
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - prefix as u32).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & m))
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

// ------------------------------------------------------------------ the allow-list

/// What an entry of lowcode.webhook_allow names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `*`: any host, but never a denied address.
    Any,
    /// `*.domain` (stored as `.domain`): names under it, but never a denied address.
    Under(String),
    /// An exact host name: whatever it resolves to.
    Name(String),
    /// A literal address or a CIDR range: the hosts whose addresses it holds.
    Net(Cidr),
}

/// The ports an entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    Any,
    Only(u16),
    /// A port that is not a number: the entry allows nothing.
    None,
}

impl Ports {
    fn parse(text: Option<&str>) -> Ports {
        match text {
            None | Some("*") => Ports::Any,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_or(Ports::None, Ports::Only)
            }
            Some(_) => Ports::None,
        }
    }

    fn allow(self, port: u16) -> bool {
        match self {
            Ports::Any => true,
            Ports::Only(p) => p == port,
            Ports::None => false,
        }
    }
}

/// One entry of lowcode.webhook_allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub target: Target,
    pub ports: Ports,
}

impl Entry {
    /// One entry (trimmed, any case); None when it cannot be read (it then allows nothing).
    pub fn parse(text: &str) -> Option<Entry> {
        let text = text.trim().to_ascii_lowercase();
        if text.is_empty() {
            return None;
        }
        let (host, port) = if let Some(inner) = text.strip_prefix('[') {
            let (host, after) = inner.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (host.to_string(), port.map(str::to_string))
        } else if let Some((addr, rest)) = text.split_once('/') {
            // A CIDR range: the prefix length holds no colon, so `fd00::/8:443` is clear.
            match rest.split_once(':') {
                Some((prefix, port)) => (format!("{addr}/{prefix}"), Some(port.to_string())),
                None => (text.clone(), None),
            }
        } else if text.matches(':').count() == 1 {
            let (h, p) = text.split_once(':').expect("one colon");
            (h.to_string(), Some(p.to_string()))
        } else {
            (text.clone(), None) // a name, or an IPv6 address without brackets nor port
        };
        if host.is_empty() {
            return None;
        }
        let target = if host == "*" {
            Target::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return None;
            }
            Target::Under(format!(".{domain}"))
        } else if host.contains('/') || host.parse::<IpAddr>().is_ok() {
            Target::Net(Cidr::parse(&host)?)
        } else if host.contains(['*', '/', '[', ']', ' ', '@']) {
            return None;
        } else {
            Target::Name(host)
        };
        Some(Entry {
            target,
            ports: Ports::parse(port.as_deref()),
        })
    }

    fn wildcard_matches(&self, host: &str) -> bool {
        match &self.target {
            Target::Any => true,
            Target::Under(suffix) => host.ends_with(suffix.as_str()),
            _ => false,
        }
    }
}

/// lowcode.webhook_allow read: entries that cannot be read are left out (they allow nothing).
pub fn parse_allow(allow: &str) -> Vec<Entry> {
    allow.split(',').filter_map(Entry::parse).collect()
}

// ------------------------------------------------------------------ the decision

/// Why a host is not deliverable. Names the host and the address, nothing else of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No entry names this host, a domain above it, or a range of its addresses.
    NotListed { host: String },
    /// One of the host's addresses is not allowed (`denied`: why it needed naming).
    Address {
        host: String,
        addr: IpAddr,
        denied: Option<Denied>,
    },
    /// `localhost` or a name under `.localhost` (loopback by definition), matched only by a
    /// wildcard.
    LoopbackName { host: String },
    /// The host does not resolve (retried later).
    Unresolved { host: String, why: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WILDCARD: &str = "(a wildcard never allows loopback or private addresses)";
        match self {
            Refusal::NotListed { host } => {
                write!(f, "host {host:?} is not allowed by lowcode.webhook_allow")
            }
            Refusal::Address {
                host,
                addr,
                denied: Some(denied),
            } => write!(
                f,
                "host {host:?} resolves to {addr}, {denied}, which lowcode.webhook_allow does not name {WILDCARD}"
            ),
            Refusal::Address {
                host,
                addr,
                denied: None,
            } => write!(
                f,
                "host {host:?} resolves to {addr}, which lowcode.webhook_allow does not allow"
            ),
            Refusal::LoopbackName { host } => write!(
                f,
                "host {host:?} is a loopback name, which lowcode.webhook_allow does not name {WILDCARD}"
            ),
            Refusal::Unresolved { host, why } => {
                write!(f, "host {host:?} does not resolve ({why})")
            }
        }
    }
}

impl std::error::Error for Refusal {}

/// The decision for a host (as in the URL: lower case, IPv6 without brackets), its port and
/// every address it resolved to: each address must be allowed — by an exact host entry, by a
/// literal or CIDR entry that holds it, or by a wildcard (`*`, `*.domain`) when it is not
/// denied by [`classify`]. No address: refused.
pub fn decide(host: &str, port: u16, addrs: &[IpAddr], allow: &[Entry]) -> Result<(), Refusal> {
    let host = host.to_ascii_lowercase();
    if addrs.is_empty() {
        return Err(Refusal::Unresolved {
            host,
            why: "no address".into(),
        });
    }
    let entries: Vec<&Entry> = allow.iter().filter(|e| e.ports.allow(port)).collect();
    if entries
        .iter()
        .any(|e| matches!(&e.target, Target::Name(n) if *n == host))
    {
        return Ok(());
    }
    let wildcard = entries.iter().any(|e| e.wildcard_matches(&host));
    let in_range = |ip: IpAddr| {
        entries
            .iter()
            .any(|e| matches!(&e.target, Target::Net(c) if c.contains(ip)))
    };
    for &addr in addrs {
        if in_range(addr) || (wildcard && classify(addr).is_none()) {
            continue;
        }
        if !wildcard && !addrs.iter().any(|&a| in_range(a)) {
            return Err(Refusal::NotListed { host });
        }
        return Err(Refusal::Address {
            host,
            addr,
            denied: classify(addr),
        });
    }
    Ok(())
}

/// `localhost` and names under `.localhost` (RFC 6761: always loopback).
fn is_localhost_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host == "localhost" || host.ends_with(".localhost")
}

/// The check without a DNS lookup (at create_webhook time): a host a resolver reads as an
/// address (`127.1`, `0x7f000001`, `[::1]` ...) is decided on that address; a name passes if
/// an entry names it, a wildcard matches it (never for `localhost`), or a CIDR entry might
/// hold its addresses — those are checked when sending ([`vet`]).
pub fn decide_name(host: &str, port: u16, allow: &[Entry]) -> Result<(), Refusal> {
    let host = host.to_ascii_lowercase();
    if let Some(ip) = numeric_host(&host) {
        return decide(&host, port, &[ip], allow);
    }
    let entries: Vec<&Entry> = allow.iter().filter(|e| e.ports.allow(port)).collect();
    if entries
        .iter()
        .any(|e| matches!(&e.target, Target::Name(n) if *n == host))
    {
        return Ok(());
    }
    let ranges = entries.iter().any(|e| matches!(e.target, Target::Net(_)));
    let wildcard = entries.iter().any(|e| e.wildcard_matches(&host));
    if is_localhost_name(&host) && !ranges {
        return Err(if wildcard {
            Refusal::LoopbackName { host }
        } else {
            Refusal::NotListed { host }
        });
    }
    if wildcard || ranges {
        Ok(())
    } else {
        Err(Refusal::NotListed { host })
    }
}

/// The address a host is when a resolver reads it as one, without any lookup: the system's
/// own parser (getaddrinfo with AI_NUMERICHOST: inet_aton's `127.1`, `2130706433`,
/// `0x7f000001`, `0177.0.0.1`, `0`, and IPv6).
pub fn numeric_host(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    let c_host = std::ffi::CString::new(host).ok()?;
    // SAFETY: getaddrinfo with valid pointers (a NUL-terminated host, zeroed hints, an out
    // pointer); the result list is read while it lives and freed once.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_flags = libc::AI_NUMERICHOST;
        hints.ai_family = libc::AF_UNSPEC;
        hints.ai_socktype = libc::SOCK_STREAM;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) != 0 {
            return None;
        }
        if res.is_null() {
            return None;
        }
        let ai = &*res;
        let ip = if ai.ai_addr.is_null() {
            None
        } else if ai.ai_family == libc::AF_INET {
            let sin = std::ptr::read_unaligned(ai.ai_addr as *const libc::sockaddr_in);
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        } else if ai.ai_family == libc::AF_INET6 {
            let sin6 = std::ptr::read_unaligned(ai.ai_addr as *const libc::sockaddr_in6);
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        } else {
            None
        };
        libc::freeaddrinfo(res);
        ip
    }
}

// ------------------------------------------------------------------ sending

/// A host and port, and the addresses checked for it: the only ones a request may connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vetted {
    pub host: String,
    pub port: u16,
    pub addrs: Vec<SocketAddr>,
}

/// Resolves a host (blocking: getaddrinfo, as any client would, so every spelling of an
/// address is read as the resolver reads it), checks every address against the allow-list,
/// and returns them to connect to. A host that does not resolve is refused.
pub fn vet(host: &str, port: u16, allow: &str) -> Result<Vetted, Refusal> {
    let host = host.to_ascii_lowercase();
    let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(found) => {
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for a in found {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
            addrs
        }
        Err(e) => {
            let why: String = e.to_string().chars().take(200).collect();
            return Err(Refusal::Unresolved { host, why });
        }
    };
    let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    decide(&host, port, &ips, &parse_allow(allow))?;
    Ok(Vetted { host, port, addrs })
}

/// Where an agent made by [`pinned_agent`] may connect: set (for one request) with [`Pin::set`].
#[derive(Debug, Clone, Default)]
pub struct Pin(Arc<Mutex<Option<Vetted>>>);

/// Unpins when dropped.
pub struct Pinned<'a>(&'a Pin);

impl Pin {
    fn lock(&self) -> MutexGuard<'_, Option<Vetted>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The agent's requests connect to these addresses, for this host and port only, until
    /// the returned guard is dropped.
    pub fn set(&self, vetted: Vetted) -> Pinned<'_> {
        *self.lock() = Some(vetted);
        Pinned(self)
    }
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        *self.0.lock() = None;
    }
}

/// ureq's room for resolved addresses (all are checked; the first ones are tried).
const MAX_ADDRS: usize = 16;

/// The resolver of a pinned agent: never looks anything up. It answers with the pinned
/// addresses when the request's host and port are the pinned ones, and fails otherwise.
#[derive(Debug)]
struct PinnedResolver(Pin);

impl Resolver for PinnedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let pinned = self.0.lock();
        let vetted = pinned.as_ref().ok_or(ureq::Error::HostNotFound)?;
        let authority = uri.authority().ok_or(ureq::Error::HostNotFound)?;
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = authority.port_u16().or(match uri.scheme_str() {
            Some("http") => Some(80),
            Some("https") => Some(443),
            _ => None,
        });
        if !host.eq_ignore_ascii_case(&vetted.host) || port != Some(vetted.port) {
            return Err(ureq::Error::HostNotFound);
        }
        let mut out = self.empty();
        for addr in vetted.addrs.iter().take(MAX_ADDRS) {
            out.push(*addr);
        }
        if out.is_empty() {
            Err(ureq::Error::HostNotFound)
        } else {
            Ok(out)
        }
    }
}

/// An agent whose connections go only to the addresses pinned with the returned [`Pin`]
/// (the Host header and TLS SNI stay the URL's host). Requests made while nothing is pinned,
/// or to another host or port, fail with `HostNotFound`.
pub fn pinned_agent(config: ureq::config::Config) -> (ureq::Agent, Pin) {
    let pin = Pin::default();
    let agent = ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        PinnedResolver(pin.clone()),
    );
    (agent, pin)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_classes() {
        use Class::*;
        let table: &[(&str, Option<Class>)] = &[
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("172.15.255.255", None),
            ("172.16.0.0", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.0", None),
            ("192.168.0.1", Some(Private)),
            ("192.169.0.1", None),
            ("100.63.255.255", None),
            ("100.64.0.0", Some(SharedAddressSpace)),
            ("100.127.255.255", Some(SharedAddressSpace)),
            ("100.128.0.0", None),
            ("169.254.0.1", Some(LinkLocal)),
            ("169.254.169.254", Some(Metadata)),
            ("169.253.255.255", None),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.255", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("255.255.255.254", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("223.255.255.255", None),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fd00:ec2::254", Some(Metadata)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("fec0::1", Some(Private)),
            ("ff02::1", Some(Multicast)),
            ("ff00::", Some(Multicast)),
            ("2001:4860:4860::8888", None),
            ("2606:4700::1111", None),
            ("fbff::1", None),
        ];
        for (addr, want) in table {
            let got = classify(ip(addr));
            assert_eq!(got.map(|d| d.class), *want, "{addr}");
            if let Some(denied) = got {
                assert_eq!(denied.embedded, None, "{addr}");
            }
        }
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_as_ipv4() {
        use Embedding::*;
        type Want = Option<(Class, Embedding, &'static str)>;
        let table: &[(&str, Want)] = &[
            (
                "::ffff:127.0.0.1",
                Some((Class::Loopback, Mapped, "127.0.0.1")),
            ),
            (
                "::ffff:7f00:1",
                Some((Class::Loopback, Mapped, "127.0.0.1")),
            ),
            (
                "::ffff:169.254.169.254",
                Some((Class::Metadata, Mapped, "169.254.169.254")),
            ),
            (
                "::ffff:10.1.2.3",
                Some((Class::Private, Mapped, "10.1.2.3")),
            ),
            (
                "::ffff:0.0.0.0",
                Some((Class::Unspecified, Mapped, "0.0.0.0")),
            ),
            ("::ffff:8.8.8.8", None),
            (
                "::127.0.0.1",
                Some((Class::Loopback, Compatible, "127.0.0.1")),
            ),
            ("::10.0.0.1", Some((Class::Private, Compatible, "10.0.0.1"))),
            (
                "::0.0.0.2",
                Some((Class::Unspecified, Compatible, "0.0.0.2")),
            ),
            ("::8.8.8.8", None),
            (
                "64:ff9b::127.0.0.1",
                Some((Class::Loopback, Nat64, "127.0.0.1")),
            ),
            (
                "64:ff9b::a9fe:a9fe",
                Some((Class::Metadata, Nat64, "169.254.169.254")),
            ),
            (
                "64:ff9b:1::192.168.1.1",
                Some((Class::Private, Nat64, "192.168.1.1")),
            ),
            ("64:ff9b::8.8.8.8", None),
            (
                "2002:7f00:1::",
                Some((Class::Loopback, SixToFour, "127.0.0.1")),
            ),
            (
                "2002:a00:1::1",
                Some((Class::Private, SixToFour, "10.0.0.1")),
            ),
            ("2002:808:808::1", None),
        ];
        for (addr, want) in table {
            let got = classify(ip(addr));
            let want = want.map(|(class, how, v4)| Denied {
                class,
                embedded: Some((how, v4.parse().unwrap())),
            });
            assert_eq!(got, want, "{addr}");
        }
    }

    #[test]
    fn cidr_ranges() {
        let c = |s: &str| Cidr::parse(s).unwrap_or_else(|| panic!("{s}"));
        let table: &[(&str, &str, bool)] = &[
            ("10.1.2.0/24", "10.1.2.0", true),
            ("10.1.2.0/24", "10.1.2.255", true),
            ("10.1.2.0/24", "10.1.3.0", false),
            ("10.1.2.0/24", "10.1.1.255", false),
            ("10.1.2.3/24", "10.1.2.200", true), // host bits cleared
            ("127.0.0.0/8", "127.0.0.1", true),
            ("127.0.0.0/8", "127.255.255.255", true),
            ("127.0.0.0/8", "128.0.0.0", false),
            ("127.0.0.0/8", "::ffff:127.0.0.1", true), // mapped is the IPv4 address
            ("127.0.0.0/8", "::1", false),
            ("127.0.0.0/8", "64:ff9b::7f00:1", false), // NAT64 is another host
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "::1", false), // families never mix
            ("::/0", "127.0.0.1", false),
            ("::/0", "::1", true),
            ("10.0.0.1", "10.0.0.1", true), // a literal is a /32
            ("10.0.0.1", "10.0.0.2", false),
            ("10.0.0.1/32", "10.0.0.1", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fc00::1", false),
            ("fc00::/7", "fdff:ffff::1", true),
            ("::1", "::1", true),
            ("::1/128", "::2", false),
            ("::ffff:10.0.0.0/104", "10.200.0.1", true),
            ("::ffff:10.0.0.0/104", "::ffff:10.200.0.1", true),
            ("::ffff:10.0.0.0/104", "11.0.0.1", false),
        ];
        for (net, addr, want) in table {
            assert_eq!(c(net).contains(ip(addr)), *want, "{net} holds {addr}");
        }
        assert_eq!(c("10.1.2.3/24").to_string(), "10.1.2.0/24");
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0/8",
            "example.com/8",
            "10.0.0.0/8/8",
            "127.1",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn allow_list_entries() {
        let e = |s: &str| Entry::parse(s);
        let net = |s: &str, ports| {
            Some(Entry {
                target: Target::Net(Cidr::parse(s).unwrap()),
                ports,
            })
        };
        let name = |s: &str, ports| {
            Some(Entry {
                target: Target::Name(s.into()),
                ports,
            })
        };
        assert_eq!(
            e(" * "),
            Some(Entry {
                target: Target::Any,
                ports: Ports::Any
            })
        );
        assert_eq!(
            e("*:443"),
            Some(Entry {
                target: Target::Any,
                ports: Ports::Only(443)
            })
        );
        assert_eq!(
            e("*.Example.com"),
            Some(Entry {
                target: Target::Under(".example.com".into()),
                ports: Ports::Any
            })
        );
        assert_eq!(
            e("Hooks.Example.com"),
            name("hooks.example.com", Ports::Any)
        );
        assert_eq!(e("localhost:8080"), name("localhost", Ports::Only(8080)));
        assert_eq!(
            e("receiver.internal:*"),
            name("receiver.internal", Ports::Any)
        );
        assert_eq!(e("host:http"), name("host", Ports::None));
        assert_eq!(e("host:99999"), name("host", Ports::None));
        assert_eq!(e("127.1"), name("127.1", Ports::Any)); // an entry is a name unless canonical
        assert_eq!(e("127.0.0.1"), net("127.0.0.1", Ports::Any));
        assert_eq!(e("127.0.0.1:8080"), net("127.0.0.1", Ports::Only(8080)));
        assert_eq!(e("[::1]"), net("::1", Ports::Any));
        assert_eq!(e("[::1]:8080"), net("::1", Ports::Only(8080)));
        assert_eq!(e("::1"), net("::1", Ports::Any));
        assert_eq!(e("10.1.2.0/24"), net("10.1.2.0/24", Ports::Any));
        assert_eq!(e("10.1.2.0/24:8080"), net("10.1.2.0/24", Ports::Only(8080)));
        assert_eq!(e("fd00::/8"), net("fd00::/8", Ports::Any));
        assert_eq!(e("fd00::/8:443"), net("fd00::/8", Ports::Only(443)));
        assert_eq!(e("[fd00::/8]:443"), net("fd00::/8", Ports::Only(443)));
        for bad in [
            "",
            "  ",
            "10.0.0.0/33",
            "[::1",
            "[::1]x",
            "*.",
            "a.*.com",
            "*.*.com",
            "[]:80",
            "foo/8",
        ] {
            assert_eq!(e(bad), None, "{bad:?}");
        }
        assert_eq!(parse_allow(" , *.a.com ,, 10.0.0.0/99, b.com").len(), 2);
    }

    /// (url host, port, resolved addresses, allow-list, allowed?)
    #[test]
    fn decisions() {
        let table: &[(&str, u16, &[&str], &str, bool)] = &[
            // the wildcard: public yes, denied classes never
            ("example.com", 443, &["93.184.215.14"], "*", true),
            ("example.com", 443, &["2606:2800:21f:cb07::1"], "*", true),
            ("127.1", 80, &["127.0.0.1"], "*", false),
            ("2130706433", 80, &["127.0.0.1"], "*", false),
            ("0x7f000001", 80, &["127.0.0.1"], "*", false),
            ("0177.0.0.1", 80, &["127.0.0.1"], "*", false),
            ("0", 80, &["0.0.0.0"], "*", false),
            ("::ffff:127.0.0.1", 80, &["::ffff:127.0.0.1"], "*", false),
            ("::1", 80, &["::1"], "*", false),
            ("localhost", 80, &["::1", "127.0.0.1"], "*", false),
            ("rebound.example.com", 80, &["127.0.0.1"], "*", false),
            ("meta.example.com", 80, &["169.254.169.254"], "*", false),
            ("nat64.example.com", 80, &["64:ff9b::a9fe:a9fe"], "*", false),
            ("x.example.com", 80, &["10.0.0.5"], "*.example.com", false),
            ("x.example.com", 80, &["172.20.0.1"], "*", false),
            ("x.example.com", 80, &["192.168.1.1"], "*", false),
            ("x.example.com", 80, &["100.100.100.100"], "*", false),
            ("x.example.com", 80, &["224.0.0.1"], "*", false),
            ("x.example.com", 80, &["255.255.255.255"], "*", false),
            ("x.example.com", 80, &["fd00::1"], "*", false),
            ("x.example.com", 80, &["fe80::1"], "*", false),
            ("x.example.com", 80, &["ff02::1"], "*", false),
            ("x.example.com", 80, &["::"], "*", false),
            // every address is checked: one private among public ones refuses the host
            (
                "mixed.example.com",
                80,
                &["93.184.215.14", "127.0.0.1"],
                "*",
                false,
            ),
            (
                "x.example.com",
                80,
                &["93.184.215.14"],
                "*.example.com",
                true,
            ),
            (
                "badexample.com",
                80,
                &["93.184.215.14"],
                "*.example.com",
                false,
            ),
            (
                "example.com",
                80,
                &["93.184.215.14"],
                "*.example.com",
                false,
            ),
            ("example.com", 80, &["93.184.215.14"], "", false),
            ("example.com", 80, &[], "*", false), // nothing resolved
            // named hosts: whatever they resolve to
            ("localhost", 80, &["::1", "127.0.0.1"], "localhost", true),
            (
                "receiver.internal",
                80,
                &["10.0.0.7"],
                "receiver.internal",
                true,
            ),
            (
                "receiver.internal",
                80,
                &["10.0.0.7"],
                "other.internal, *",
                false,
            ),
            ("127.0.0.1", 80, &["127.0.0.1"], "127.0.0.1", true),
            ("::1", 80, &["::1"], "[::1]", true),
            ("::1", 80, &["::1"], "::1", true),
            // literal and CIDR entries: any host whose every address they hold
            ("127.1", 80, &["127.0.0.1"], "127.0.0.1", true),
            ("2130706433", 80, &["127.0.0.1"], "127.0.0.0/8", true),
            (
                "::ffff:127.0.0.1",
                80,
                &["::ffff:127.0.0.1"],
                "127.0.0.0/8",
                true,
            ),
            ("0", 80, &["0.0.0.0"], "127.0.0.0/8", false),
            ("localhost", 80, &["::1", "127.0.0.1"], "127.0.0.0/8", false),
            (
                "localhost",
                80,
                &["::1", "127.0.0.1"],
                "127.0.0.0/8, ::1",
                true,
            ),
            ("db.internal", 80, &["10.1.2.9"], "10.1.2.0/24", true),
            ("db.internal", 80, &["10.1.3.9"], "10.1.2.0/24", false),
            ("db.internal", 80, &["fd00::9"], "fd00::/8", true),
            (
                "db.internal",
                80,
                &["fd00::9", "10.1.2.9"],
                "fd00::/8",
                false,
            ),
            ("db.internal", 80, &["10.1.2.9"], "10.1.2.0/24, *", true),
            ("api.example.com", 80, &["8.8.8.8"], "10.0.0.0/8", false),
            (
                "api.example.com",
                80,
                &["8.8.8.8", "10.1.1.1"],
                "10.0.0.0/8",
                false,
            ),
            // ports
            ("127.0.0.1", 8080, &["127.0.0.1"], "127.0.0.1:8080", true),
            ("127.0.0.1", 8081, &["127.0.0.1"], "127.0.0.1:8080", false),
            ("127.1", 8080, &["127.0.0.1"], "127.0.0.0/8:8080", true),
            ("127.1", 8081, &["127.0.0.1"], "127.0.0.0/8:8080", false),
            ("::1", 8080, &["::1"], "[::1]:8080", true),
            ("::1", 8081, &["::1"], "[::1]:8080", false),
            ("example.com", 443, &["93.184.215.14"], "*:443", true),
            ("example.com", 80, &["93.184.215.14"], "*:443", false),
            ("example.com", 80, &["93.184.215.14"], "example.com:*", true),
            (
                "example.com",
                80,
                &["93.184.215.14"],
                "example.com:http",
                false,
            ),
            ("localhost", 8080, &["127.0.0.1"], "localhost:8081", false),
            ("localhost", 8081, &["127.0.0.1"], "localhost:8081, *", true),
        ];
        for (host, port, addrs, allow, want) in table {
            let addrs: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
            let got = decide(host, *port, &addrs, &parse_allow(allow));
            assert_eq!(
                got.is_ok(),
                *want,
                "{host}:{port} at {addrs:?} with {allow:?}: {got:?}"
            );
        }
    }

    #[test]
    fn refusals_say_which_address_and_why() {
        let refuse = |host: &str, addrs: &[&str], allow: &str| {
            let addrs: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
            decide(host, 80, &addrs, &parse_allow(allow))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refuse("127.1", &["127.0.0.1"], "*"),
            "host \"127.1\" resolves to 127.0.0.1, a loopback address, which lowcode.webhook_allow \
             does not name (a wildcard never allows loopback or private addresses)"
        );
        assert_eq!(
            refuse("::ffff:127.0.0.1", &["::ffff:127.0.0.1"], "*"),
            "host \"::ffff:127.0.0.1\" resolves to ::ffff:127.0.0.1, a loopback address \
             (IPv4-mapped 127.0.0.1), which lowcode.webhook_allow does not name (a wildcard \
             never allows loopback or private addresses)"
        );
        assert!(refuse("m.example.com", &["169.254.169.254"], "*")
            .contains("169.254.169.254, a cloud metadata address"));
        assert!(refuse("z", &["0.0.0.0"], "*").contains("0.0.0.0, an unspecified"));
        assert!(
            refuse("mixed.example.com", &["93.184.215.14", "10.0.0.1"], "*")
                .contains("resolves to 10.0.0.1, a private address")
        );
        assert_eq!(
            refuse("evil.com", &["93.184.215.14"], "good.com"),
            "host \"evil.com\" is not allowed by lowcode.webhook_allow"
        );
        assert_eq!(
            refuse("api.example.com", &["8.8.8.8", "10.1.1.1"], "10.0.0.0/8"),
            "host \"api.example.com\" resolves to 8.8.8.8, which lowcode.webhook_allow does not allow"
        );
        assert_eq!(
            refuse("nx.example.com", &[], "*"),
            "host \"nx.example.com\" does not resolve (no address)"
        );
    }

    #[test]
    fn every_spelling_is_read_as_the_resolver_reads_it() {
        let table: &[(&str, &str)] = &[
            ("127.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("127.0.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("0X7F000001", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("017700000001", "127.0.0.1"),
            ("0", "0.0.0.0"),
            ("0x0", "0.0.0.0"),
            ("10.1", "10.0.0.1"),
            ("169.254.43518", "169.254.169.254"),
            ("2852039166", "169.254.169.254"),
            ("::1", "::1"),
            ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
            ("0:0:0:0:0:0:0:1", "::1"),
        ];
        for (spelling, want) in table {
            assert_eq!(numeric_host(spelling), Some(ip(want)), "{spelling}");
            // and the lookup used when sending reads it the same way
            let vetted = vet(spelling, 80, "0.0.0.0/0, ::/0").unwrap();
            let got: Vec<IpAddr> = vetted.addrs.iter().map(|a| a.ip()).collect();
            assert_eq!(got, vec![ip(want)], "{spelling}");
            // and a wildcard refuses every one of them
            let refused = vet(spelling, 80, "*").unwrap_err();
            assert!(
                matches!(
                    refused,
                    Refusal::Address {
                        denied: Some(_),
                        ..
                    }
                ),
                "{spelling}: {refused:?}"
            );
        }
        for name in [
            "example.com",
            "localhost",
            "127.0.0.1.nip.io",
            "1.2.3.4.5",
            "",
        ] {
            assert_eq!(numeric_host(name), None, "{name}");
        }
        // a name that resolves to loopback (/etc/hosts)
        let refused = vet("localhost", 80, "*").unwrap_err();
        assert!(
            matches!(
                refused,
                Refusal::Address {
                    denied: Some(Denied {
                        class: Class::Loopback,
                        ..
                    }),
                    ..
                }
            ),
            "{refused:?}"
        );
        assert!(vet("localhost", 80, "localhost").is_ok());
    }

    #[test]
    fn without_a_lookup_names_pass_addresses_are_decided() {
        let ok = |host: &str, allow: &str| decide_name(host, 80, &parse_allow(allow)).is_ok();
        // numeric hosts: decided on their address
        for spelling in [
            "127.1",
            "2130706433",
            "0x7f000001",
            "0",
            "::ffff:127.0.0.1",
            "::1",
        ] {
            assert!(!ok(spelling, "*"), "{spelling}");
        }
        assert!(ok("127.1", "127.0.0.0/8"));
        assert!(ok("::ffff:127.0.0.1", "127.0.0.0/8"));
        assert!(!ok("0", "127.0.0.0/8"));
        assert!(ok("8.8.8.8", "*"));
        // localhost names: never by a wildcard
        assert_eq!(
            decide_name("localhost", 80, &parse_allow("*")),
            Err(Refusal::LoopbackName {
                host: "localhost".into()
            })
        );
        assert!(!ok("a.localhost", "*"));
        assert!(!ok("localhost.", "*"));
        assert!(ok("localhost", "localhost"));
        assert!(ok("localhost", "127.0.0.0/8")); // its addresses are checked when sending
                                                 // names: by name, wildcard, or a range that may hold them
        assert!(ok("hooks.example.com", "*"));
        assert!(ok("hooks.example.com", "*.example.com"));
        assert!(!ok("hooks.example.org", "*.example.com"));
        assert!(ok("db.internal", "10.0.0.0/8"));
        assert!(!ok("db.internal", ""));
        assert!(!ok("db.internal", "other.internal"));
        assert!(!ok("db.internal", "10.0.0.0/8:81"));
    }

    /// A tiny HTTP server on 127.0.0.1: answers 204 to each request, reports their heads.
    fn receiver() -> (u16, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                let _ = std::io::Read::read_exact(&mut reader, &mut body);
                let _ = stream.write_all(
                    b"HTTP/1.1 204 No Content\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                );
                let _ = tx.send(head);
            }
        });
        (port, rx)
    }

    fn agent() -> (ureq::Agent, Pin) {
        pinned_agent(
            ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(5)))
                .http_status_as_error(false)
                .proxy(None)
                .build(),
        )
    }

    #[test]
    fn the_agent_connects_only_to_vetted_addresses() {
        let (port, heads) = receiver();
        let (http, pin) = agent();
        let url = format!("http://127.1:{port}/hook");
        // a wildcard refuses 127.1: nothing is pinned, nothing is sent
        assert!(vet("127.1", port, "*").is_err());
        assert!(http.post(&url).send("x").is_err(), "nothing pinned");
        // named by a range: sent to the vetted address, the Host header is the URL's
        let vetted = vet("127.1", port, "127.0.0.0/8").unwrap();
        {
            let _pinned = pin.set(vetted.clone());
            let response = http.post(&url).send("x").unwrap();
            assert_eq!(response.status().as_u16(), 204);
            // another host than the vetted one is never looked up
            let other = format!("http://localhost:{port}/hook");
            assert!(matches!(
                http.post(&other).send("x"),
                Err(ureq::Error::HostNotFound)
            ));
            let other_port = format!("http://127.1:{}/hook", port.wrapping_add(1));
            assert!(matches!(
                http.post(&other_port).send("x"),
                Err(ureq::Error::HostNotFound)
            ));
        }
        let head = heads
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("host: 127.1:{port}")),
            "{head}"
        );
        // unpinned again once the guard is gone
        assert!(http.post(&url).send("x").is_err());
        assert!(heads
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        // pinned to an address that is not the host's: the connection goes there, not to a
        // second lookup (here: a closed port, so it fails)
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let _pinned = pin.set(Vetted {
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], closed_port))],
            ..vetted
        });
        assert!(http.post(&url).send("x").is_err());
        assert!(heads
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
    }
}
