//! Webhook delivery inside the database worker (src/worker.rs).
//!
//! Each webhook is an outbox consumer named `webhook:<name>`. The worker's main thread (the
//! only one that talks to PostgreSQL) polls its events, hands them in order to the webhook's
//! own HTTP thread, and records what came back: every attempt in `lowcode.webhook_attempts`,
//! delivered events acknowledged, a failed one nacked with its backoff (or the endpoint's
//! Retry-After), which the outbox turns into a dead letter after the webhook's max attempts.
//!
//! - In order per webhook: one batch in flight per webhook, sent in event order; its thread
//!   stops at the first failure. The failed event is nacked (due again after its backoff);
//!   the events after it stay leased in memory and go out only after it, once the outbox
//!   hands it back (the webhook polls one event at a time then, and for 30 s, `CAREFUL`).
//!   If their lease would end before the retry, they are nacked to come back with it
//!   (the outbox then orders retries by when they became due, so a later failure of the same
//!   event can let them pass it: in order holds for retries within a lease). A worker that starts waits one lease (`VISIBILITY_SECS`)
//!   before it polls, so that the events a killed worker had leased come back first.
//! - One slow endpoint never holds up another, nor the timers: each webhook has its own
//!   thread, and the main loop never waits for HTTP.
//! - At least once: an event is acknowledged only after its 2xx; a worker killed in between
//!   gets it again once its lease runs out.
//! - The HTTP threads never call PostgreSQL (nor read settings: the allow-list travels with
//!   each batch) and block every signal, which stay the main thread's.
//! - Where they connect (crates/core/src/egress.rs): before each POST the URL's host is resolved and every
//!   address it resolves to is checked against the allow-list (a wildcard never allows a
//!   loopback, private, link-local ... address); the agent's resolver then hands ureq those
//!   addresses only, so ureq never looks the name up again (no DNS rebinding).
//!
//! Only the functions in `mod outbox` below know the outbox's SQL signatures.

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

use crate::background::in_transaction;
use crate::egress;
use crate::webhook::{self, Verdict};

/// `lowcode.webhook_allow`: host patterns webhooks may be sent to (default none).
pub static WEBHOOK_ALLOW: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub fn init() {
    GucRegistry::define_string_guc(
        c"lowcode.webhook_allow",
        c"Hosts lowcode's webhooks may POST to: comma-separated host, *.domain, *, address or CIDR range (10.1.2.0/24, fd00::/8), each optionally with :port.",
        c"Empty (the default) allows none, so a fresh install sends nothing. Every address a \
          host resolves to is checked when sending: a wildcard never allows a loopback, \
          private, link-local, shared, multicast or reserved address (127.0.0.0/8, 10/8, \
          169.254/16, ::1, fc00::/7 ...): name the host (localhost, receiver.internal), the \
          address ([::1]) or its range (127.0.0.0/8).",
        &WEBHOOK_ALLOW,
        GucContext::Sighup,
        GucFlags::default(),
    );
}

pub fn allow_list() -> String {
    WEBHOOK_ALLOW
        .get()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How long a polled event stays leased to this worker.
pub(crate) const VISIBILITY_SECS: i32 = 15;
/// Events polled per webhook at a time.
const POLL_MAX: i32 = 500;
/// Response bodies read at most (the rest is dropped with the connection).
const BODY_CAP: u64 = 64 * 1024;
/// How long a webhook polls one event at a time after a failure.
const CAREFUL: Duration = Duration::from_secs(30);
/// How often the webhooks' settings are read again.
const REFRESH: Duration = Duration::from_secs(1);

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A webhook's settings, as the worker read them.
#[derive(Clone, PartialEq)]
struct Config {
    url: String,
    topics: Vec<String>,
    key: Vec<u8>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    backoff: Vec<Duration>,
    rate_limit: Option<u32>,
    active: bool,
    /// Its app ('' for every app): its attempts are written with it.
    app: String,
}

/// One event on its way to a webhook.
#[derive(Clone)]
struct Event {
    /// The outbox's delivery id (acknowledged by it).
    id: i64,
    /// Stable across retries: the `webhook-id`.
    event_id: i64,
    topic: String,
    attempt: i32,
    body: String,
    /// When the outbox takes it back unless acknowledged (its id is then stale).
    leased_until: Instant,
}

/// What one attempt gave.
struct Outcome {
    id: i64,
    event_id: i64,
    attempt: i32,
    at: f64,
    status: Option<u16>,
    latency_ms: f64,
    error: Option<String>,
    verdict: Verdict,
}

struct Job {
    config: Arc<Config>,
    /// `lowcode.webhook_allow` when the batch was handed out.
    allow: String,
    events: Vec<Event>,
}

struct Finished {
    hook: String,
    outcomes: Vec<Outcome>,
}

struct Hook {
    config: Arc<Config>,
    jobs: Sender<Job>,
    stop: Arc<AtomicBool>,
    queue: VecDeque<Event>,
    in_flight: bool,
    /// Nothing is polled before this (a failed event's retry, a fresh worker's wait).
    not_before: Instant,
    /// Until then, one event at a time: a failure was recent (with the 0.1.0 outbox an event
    /// polled but not attempted counts as an attempt, so a batch behind a failing event would
    /// lose attempts).
    careful_until: Instant,
    /// A failed event due again (event id, give up waiting at): nothing after it is sent
    /// before the outbox hands it back.
    held: Option<(i64, Instant)>,
}

pub struct Deliveries {
    started: Instant,
    /// How long after `started` the first poll waits: one lease when the events a previous
    /// worker leased may still be out, none when it handed them back as it left.
    lease_wait: Duration,
    hooks: HashMap<String, Hook>,
    refreshed: Option<Instant>,
    done_tx: Sender<Finished>,
    done_rx: Receiver<Finished>,
}

impl Deliveries {
    pub fn new(wait_for_leases: bool) -> Self {
        let (done_tx, done_rx) = channel();
        Deliveries {
            started: Instant::now(),
            lease_wait: if wait_for_leases {
                Duration::from_secs(VISIBILITY_SECS as u64)
            } else {
                Duration::ZERO
            },
            hooks: HashMap::new(),
            refreshed: None,
            done_tx,
            done_rx,
        }
    }

    /// One step of the delivery loop: read settings now and then, record finished batches,
    /// poll and hand out new ones (none while `draining`: the worker is about to leave).
    /// Returns true while deliveries are in flight or waiting.
    pub fn step(&mut self, dbname: &str, draining: bool) -> bool {
        if self.refreshed.is_none_or(|at| at.elapsed() >= REFRESH) {
            self.refreshed = Some(Instant::now());
            match in_transaction(outbox::webhooks) {
                Ok(Ok(configs)) => self.apply(configs),
                Ok(Err(e)) => log!("lowcode worker for database \"{dbname}\": webhooks: {e}"),
                Err(e) => log!("lowcode worker for database \"{dbname}\": webhooks: {e}"),
            }
        }
        let finished: Vec<Finished> = self.done_rx.try_iter().collect();
        for f in finished {
            self.record(dbname, f);
        }
        self.dispatch(dbname, draining);
        self.hooks
            .values()
            .any(|h| h.in_flight || (!h.queue.is_empty() && h.config.active))
    }

    /// Read the webhooks' settings at the next step (they changed).
    pub fn refresh(&mut self) {
        self.refreshed = None;
    }

    /// Are there active webhooks here (events written here want a worker at once)?
    pub fn has_active(&self) -> bool {
        self.hooks.values().any(|h| h.config.active)
    }

    fn apply(&mut self, configs: Vec<(String, Config)>) {
        let names: Vec<&String> = configs.iter().map(|(n, _)| n).collect();
        self.hooks.retain(|name, hook| {
            let keep = names.contains(&name);
            if !keep {
                hook.stop.store(true, Ordering::SeqCst);
            }
            keep
        });
        for (name, config) in configs {
            match self.hooks.get_mut(&name) {
                Some(hook) => {
                    if *hook.config != config {
                        hook.config = Arc::new(config);
                    }
                }
                None => {
                    let stop = Arc::new(AtomicBool::new(false));
                    let jobs = spawn_sender(name.clone(), self.done_tx.clone(), stop.clone());
                    self.hooks.insert(
                        name,
                        Hook {
                            config: Arc::new(config),
                            jobs,
                            stop,
                            queue: VecDeque::new(),
                            in_flight: false,
                            not_before: self.started + self.lease_wait,
                            careful_until: Instant::now(),
                            held: None,
                        },
                    );
                }
            }
        }
    }

    /// Records a finished batch: attempts, acknowledgements, the retry or dead letter, and
    /// hands the batch's events that were not attempted back to the outbox.
    fn record(&mut self, dbname: &str, finished: Finished) {
        let Some(hook) = self.hooks.get_mut(&finished.hook) else {
            return; // dropped meanwhile: its unacknowledged events are the outbox's again
        };
        hook.in_flight = false;
        let name = finished.hook.clone();
        let backoff = hook.config.backoff.clone();
        let app = hook.config.app.clone();
        let outcomes = finished.outcomes;
        let attempted: Vec<i64> = outcomes.iter().map(|o| o.id).collect();
        hook.queue.retain(|e| !attempted.contains(&e.id));
        // The events after a failed one stay leased to us, in memory, while the failed one
        // waits for its retry, unless their lease would end first (or the webhook is now
        // disabled): then they go back to the outbox, due with the failed one.
        let failed = outcomes.iter().find(|o| o.verdict != Verdict::Delivered);
        let release = match failed.map(|o| &o.verdict) {
            Some(Verdict::Gone) => true,
            Some(Verdict::Retry { after }) => {
                let delay = after.unwrap_or(Duration::from_secs(3600)).min(
                    crate::retry::delay(
                        &crate::retry::WEBHOOK,
                        failed.map_or(1, |o| o.attempt.max(1) as u32),
                        &backoff,
                        0,
                    )
                    .mul_f64(1.3),
                );
                hook.queue.front().is_some_and(|e| {
                    e.leased_until < Instant::now() + delay + Duration::from_secs(5)
                })
            }
            _ => false,
        };
        let rest: Vec<i64> = if release {
            hook.queue.drain(..).map(|e| e.id).collect()
        } else {
            Vec::new()
        };
        let result = in_transaction(|| outbox::record(&name, &app, &outcomes, &backoff, &rest));
        let (retry_in, gone) = match result {
            Ok(Ok(r)) => r,
            failed => {
                let e = match failed {
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e,
                    Ok(Ok(_)) => unreachable!(),
                };
                warning!("lowcode worker for database \"{dbname}\": webhook {name}: {e}");
                // Nothing recorded: the events come back after their lease.
                hook.queue.clear();
                hook.careful_until = Instant::now() + CAREFUL;
                hook.not_before = Instant::now() + Duration::from_secs(VISIBILITY_SECS as u64);
                return;
            }
        };
        if gone {
            log!("lowcode worker for database \"{dbname}\": webhook {name} answered 410 Gone: disabled");
        }
        match retry_in {
            Some((event_id, delay)) => {
                hook.careful_until = Instant::now() + delay + CAREFUL;
                hook.held = Some((event_id, Instant::now() + delay + Duration::from_secs(30)));
                // The outbox hands the failed event out again at now + delay (its clock).
                hook.not_before = Instant::now() + delay + Duration::from_millis(20);
            }
            None if outcomes.iter().all(|o| o.verdict == Verdict::Delivered) => {}
            None => hook.careful_until = Instant::now() + CAREFUL,
        }
    }

    fn dispatch(&mut self, dbname: &str, draining: bool) {
        let now = Instant::now();
        let wanting: Vec<(String, i32)> = self
            .hooks
            .iter()
            .filter(|(_, h)| {
                !draining
                    && h.config.active
                    && !h.in_flight
                    && (h.queue.is_empty() || h.held.is_some())
                    && h.not_before <= now
            })
            .map(|(n, h)| {
                let careful = h.careful_until > now || h.held.is_some();
                (n.clone(), if careful { 1 } else { POLL_MAX })
            })
            .collect();
        if !wanting.is_empty() {
            let polled = in_transaction(|| {
                let mut all = Vec::new();
                for (name, max) in &wanting {
                    all.push((name.clone(), outbox::poll(name, *max)));
                }
                all
            });
            match polled {
                Ok(all) => {
                    for (name, events) in all {
                        match events {
                            Ok(events) => self.take(&name, events),
                            Err(e) => {
                                warning!(
                                    "lowcode worker for database \"{dbname}\": webhook {name}: {e}"
                                )
                            }
                        }
                    }
                }
                Err(e) => warning!("lowcode worker for database \"{dbname}\": webhooks: {e}"),
            }
        }
        // Topics a webhook does not want are acknowledged without a call.
        let mut skipped: Vec<(String, Vec<i64>)> = Vec::new();
        for (name, hook) in self.hooks.iter_mut() {
            let topics = hook.config.topics.clone();
            let unwanted: Vec<i64> = hook
                .queue
                .iter()
                .filter(|e| !crate::topics::matches(&e.topic, Some(&topics)))
                .map(|e| e.id)
                .collect();
            if !unwanted.is_empty() {
                hook.queue.retain(|e| !unwanted.contains(&e.id));
                skipped.push((name.clone(), unwanted));
            }
        }
        if !skipped.is_empty() {
            let _ = in_transaction(|| {
                for (name, ids) in &skipped {
                    let _ = outbox::ack(name, ids);
                }
            });
        }
        let allow = allow_list();
        let now = Instant::now();
        for hook in self.hooks.values_mut() {
            // Events whose lease ended come back from the outbox with new ids.
            hook.queue
                .retain(|e| e.leased_until > now + Duration::from_secs(1));
            if let Some((_, give_up)) = hook.held {
                if give_up > now {
                    continue; // the failed event is not back yet
                }
                hook.held = None;
            }
            if hook.in_flight || hook.queue.is_empty() {
                continue;
            }
            if !hook.config.active {
                hook.queue.clear(); // paused meanwhile: they come back after their lease
                continue;
            }
            hook.in_flight = true;
            let job = Job {
                config: hook.config.clone(),
                allow: allow.clone(),
                events: hook.queue.iter().cloned().collect(),
            };
            if hook.jobs.send(job).is_err() {
                hook.in_flight = false;
                hook.queue.clear();
            }
        }
    }

    /// Adds polled events to a webhook's queue, in event order; the held event is back.
    fn take(&mut self, name: &str, events: Vec<Event>) {
        let Some(hook) = self.hooks.get_mut(name) else {
            return;
        };
        if let Some((held, _)) = hook.held {
            if events.iter().any(|e| e.event_id <= held) {
                hook.held = None;
            }
        }
        hook.queue.extend(events);
        hook.queue.make_contiguous().sort_by_key(|e| e.event_id);
    }

    /// The outbox consumers of the active webhooks here.
    pub fn active_consumers(&self) -> Vec<String> {
        self.hooks
            .iter()
            .filter(|(_, h)| h.config.active)
            .map(|(name, _)| outbox::consumer(name))
            .collect()
    }

    pub fn shutdown(&mut self) {
        for hook in self.hooks.values() {
            hook.stop.store(true, Ordering::SeqCst);
        }
        self.hooks.clear();
    }
}

/// Internal: raises unless url is an http(s) URL allowed by lowcode.webhook_allow and secret a
/// whsec_ secret (the error never shows the secret).
#[pg_extern(stable)]
fn webhook_check(url: &str, secret: &str) {
    if let Err(e) = webhook::host_allowed(url, &allow_list()) {
        crate::report::raise("webhook", e);
    }
    if let Err(e) = webhook::secret_key(secret) {
        crate::report::raise("webhook", e);
    }
}

// ------------------------------------------------------------------ the HTTP threads

/// Starts a webhook's HTTP thread, with every signal blocked (they are the main thread's).
fn spawn_sender(name: String, done: Sender<Finished>, stop: Arc<AtomicBool>) -> Sender<Job> {
    let (tx, rx) = channel::<Job>();
    // SAFETY: plain libc signal-mask calls; the old mask is restored right after the spawn.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let spawned = std::thread::Builder::new()
            .name(format!("webhook {name}"))
            .spawn(move || sender_loop(name, rx, done, stop));
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        drop(spawned);
    }
    tx
}

/// A webhook thread's HTTP client: connects only to the addresses pinned for each request.
/// Made again when the timeout or the allow-list changes (so that no pooled connection
/// outlives the list it was checked against).
struct Http {
    timeout: Duration,
    allow: String,
    agent: ureq::Agent,
    pin: egress::Pin,
    /// The last addresses vetted (under `allow`) and when: reused for `VET_REUSE`, so that a
    /// batch does not look its host up once per event.
    recent: Option<(Instant, egress::Vetted)>,
}

/// How long the addresses vetted for a host are used again without a new lookup.
const VET_REUSE: Duration = Duration::from_secs(5);

impl Http {
    /// The addresses a POST to this URL may connect to, each checked against `self.allow`
    /// (resolved now, or up to `VET_REUSE` ago). A refusal is never reused.
    fn vet(&mut self, url: &str) -> Result<egress::Vetted, webhook::WebhookError> {
        let (host, port) = webhook::url_host(url)?;
        if let Some((at, vetted)) = &self.recent {
            if at.elapsed() < VET_REUSE && vetted.host == host && vetted.port == port {
                return Ok(vetted.clone());
            }
        }
        self.recent = None;
        let vetted = webhook::vet_url(url, &self.allow)?;
        self.recent = Some((Instant::now(), vetted.clone()));
        Ok(vetted)
    }
}

fn sender_loop(name: String, jobs: Receiver<Job>, done: Sender<Finished>, stop: Arc<AtomicBool>) {
    let mut agent: Option<Http> = None;
    let mut last_send: Option<Instant> = None;
    while let Ok(job) = jobs.recv() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let timeout = job.config.timeout;
        if agent
            .as_ref()
            .is_none_or(|h| h.timeout != timeout || h.allow != job.allow)
        {
            let (http, pin) = new_agent(timeout);
            agent = Some(Http {
                timeout,
                allow: job.allow.clone(),
                agent: http,
                pin,
                recent: None,
            });
        }
        let http = agent.as_mut().expect("just set");
        let mut outcomes = Vec::new();
        for event in job.events {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if event.leased_until <= Instant::now() + Duration::from_secs(1) {
                break; // its lease is ending: the outbox hands it out again
            }
            if let Some(rate) = job.config.rate_limit {
                let gap = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
                if let Some(at) = last_send {
                    let since = at.elapsed();
                    if since < gap {
                        std::thread::sleep(gap - since);
                    }
                }
            }
            last_send = Some(Instant::now());
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                send_one(http, &job.config, &event)
            }))
            .unwrap_or_else(|_| Outcome {
                id: event.id,
                event_id: event.event_id,
                attempt: event.attempt,
                at: unix_now(),
                status: None,
                latency_ms: 0.0,
                error: Some("internal error in the webhook sender".into()),
                verdict: Verdict::Retry { after: None },
            });
            let stop_here = outcome.verdict != Verdict::Delivered;
            outcomes.push(outcome);
            if stop_here {
                break;
            }
        }
        if done
            .send(Finished {
                hook: name.clone(),
                outcomes,
            })
            .is_err()
        {
            return;
        }
    }
}

/// An agent whose resolver returns only the addresses pinned for the request being sent
/// (crates/core/src/egress.rs), never following redirects, never using a proxy.
fn new_agent(timeout: Duration) -> (ureq::Agent, egress::Pin) {
    egress::pinned_agent(
        ureq::Agent::config_builder()
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .proxy(None)
            .user_agent("lowcode-webhooks")
            .build(),
    )
}

/// One POST. The error text never holds the secret or the headers. `http.allow` is the
/// batch's allow-list.
fn send_one(http: &mut Http, config: &Config, event: &Event) -> Outcome {
    let started = Instant::now();
    let at = unix_now();
    let timestamp = at as i64;
    let id = format!("evt_{}", event.event_id);
    let mut outcome = Outcome {
        id: event.id,
        event_id: event.event_id,
        attempt: event.attempt,
        at,
        status: None,
        latency_ms: 0.0,
        error: None,
        verdict: Verdict::Retry { after: None },
    };
    // The allow-list as it is now (a reload may have narrowed it: `http` is then new),
    // checked against every address the host resolves to (now, or at most `VET_REUSE` ago);
    // the request may connect to those addresses only.
    let vetted = match http.vet(&config.url) {
        Ok(vetted) => vetted,
        Err(e) => {
            outcome.error = Some(e.to_string());
            outcome.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            return outcome;
        }
    };
    let _pinned = http.pin.set(vetted);
    let signature = webhook::sign(&config.key, &id, timestamp, event.body.as_bytes());
    let mut request = http
        .agent
        .post(&config.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", &timestamp.to_string())
        .header("webhook-signature", &signature);
    for (k, v) in &config.headers {
        request = request.header(k, v);
    }
    match request.send(event.body.as_bytes()) {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            // Read (at most BODY_CAP of) the body so that the connection can be reused.
            let mut sink = Vec::new();
            let _ = response
                .body_mut()
                .as_reader()
                .take(BODY_CAP)
                .read_to_end(&mut sink);
            outcome.status = Some(status);
            outcome.verdict = webhook::verdict(Some(status), retry_after.as_deref(), timestamp);
            if outcome.verdict != Verdict::Delivered {
                outcome.error = Some(format!("HTTP {status}"));
            }
        }
        Err(e) => outcome.error = Some(describe(&e)),
    }
    outcome.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    outcome
}

/// An HTTP error, without URLs' query strings or anything a header carried.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timeout ({t})"),
        ureq::Error::Io(io) => format!("connection: {}", io.kind()),
        // Our resolver answers only for the host checked: the URL's host as ureq reads it
        // is not that one.
        ureq::Error::HostNotFound => "host not found (not the host that was checked)".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::TooManyRedirects => "redirect (not followed)".into(),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS error".into(),
        other => {
            let text = other.to_string();
            text.chars().take(200).collect()
        }
    }
}

// ------------------------------------------------------------------ the SQL layer

/// Everything that knows the outbox's and the webhooks' SQL.
mod outbox {
    use super::*;
    use pgrx::spi::SpiError;

    pub fn consumer(hook: &str) -> String {
        format!("webhook:{hook}")
    }

    /// The webhooks' settings (the worker runs as the extension's owner: it may read secrets).
    pub fn webhooks() -> Result<Vec<(String, Config)>, SpiError> {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT w.name, w.url, coalesce(w.topics, '{}'), w.secret, w.headers::pg_catalog.text,
                        w.timeout_ms,
                        coalesce((SELECT pg_catalog.array_agg((pg_catalog.date_part('epoch', b)
                                            OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8 ORDER BY o)
                                    FROM pg_catalog.unnest(w.backoff) WITH ORDINALITY u(b, o)), '{}'),
                        w.rate_limit, w.status OPERATOR(pg_catalog.=) 'active', w.app
                   FROM lowcode.webhooks w ORDER BY w.name",
                None,
                &[],
            )?;
            let mut out = Vec::new();
            for row in rows {
                let name: String = row.get(1)?.unwrap_or_default();
                let app: Option<String> = row.get(10)?;
                // (With the runtime distributed, the worker of its app's node delivers it.)
                if !crate::placement::is_here(app.as_deref()) {
                    continue;
                }
                let secret: String = row.get(4)?.unwrap_or_default();
                let Ok(key) = webhook::secret_key(&secret) else {
                    continue; // create_webhook checked it
                };
                let headers: String = row.get(5)?.unwrap_or_else(|| "{}".into());
                let headers: Vec<(String, String)> =
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&headers)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| {
                            (
                                k,
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string()),
                            )
                        })
                        .collect();
                let backoff: Vec<i64> = row.get(7)?.unwrap_or_default();
                out.push((
                    name,
                    Config {
                        url: row.get(2)?.unwrap_or_default(),
                        topics: row.get(3)?.unwrap_or_default(),
                        key,
                        headers,
                        timeout: Duration::from_millis(
                            row.get::<i32>(6)?.unwrap_or(10_000).max(1) as u64
                        ),
                        backoff: backoff
                            .into_iter()
                            .map(|ms| Duration::from_millis(ms.max(0) as u64))
                            .collect(),
                        rate_limit: row.get::<i32>(8)?.map(|r| r.max(1) as u32),
                        active: row.get(9)?.unwrap_or(false),
                        app: app.unwrap_or_default(),
                    },
                ));
            }
            Ok(out)
        })
    }

    /// Polls a webhook's consumer. Reads `event_id` when the outbox has it (else the id is the
    /// event's id).
    pub fn poll(hook: &str, max: i32) -> Result<Vec<Event>, SpiError> {
        let consumer = consumer(hook);
        let leased_until = Instant::now() + Duration::from_secs(VISIBILITY_SECS as u64);
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT p.id, coalesce((pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.->>) 'event_id')::pg_catalog.int8, p.id),
                        p.topic, p.attempt,
                        pg_catalog.jsonb_build_object('type', p.topic, 'timestamp', p.created_at, 'data', p.payload,
                                           'record_id', pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.->) 'record_id')::pg_catalog.text
                   FROM lowcode.poll_events($1, $2, pg_catalog.make_interval(secs => $3)) p",
                None,
                &[consumer.as_str().into(), max.into(), (VISIBILITY_SECS as f64).into()],
            )?;
            let mut out = Vec::new();
            for row in rows {
                out.push(Event {
                    id: row.get(1)?.unwrap_or_default(),
                    event_id: row.get(2)?.unwrap_or_default(),
                    topic: row.get(3)?.unwrap_or_default(),
                    attempt: row.get(4)?.unwrap_or(1),
                    body: row.get(5)?.unwrap_or_default(),
                    leased_until,
                });
            }
            Ok(out)
        })
    }

    pub fn ack(hook: &str, ids: &[i64]) -> Result<(), SpiError> {
        let consumer = consumer(hook);
        Spi::run_with_args(
            "SELECT lowcode.ack_events($1, $2)",
            &[consumer.as_str().into(), ids.to_vec().into()],
        )
    }

    /// Records a finished batch, and hands `rest` (polled, not attempted) back to the outbox
    /// to come back with the failed event. Returns the failed event's retry delay, if any, and
    /// whether the endpoint answered 410 (the webhook is then disabled).
    pub fn record(
        hook: &str,
        app: &str,
        outcomes: &[Outcome],
        backoff: &[Duration],
        rest: &[i64],
    ) -> Result<(Option<(i64, Duration)>, bool), SpiError> {
        let consumer = consumer(hook);
        let delivered: Vec<i64> = outcomes
            .iter()
            .filter(|o| o.verdict == Verdict::Delivered)
            .map(|o| o.id)
            .collect();
        if !delivered.is_empty() {
            Spi::run_with_args(
                "SELECT lowcode.ack_events($1, $2)",
                &[consumer.as_str().into(), delivered.into()],
            )?;
        }
        let mut held = None;
        let mut gone = false;
        let mut kinds = Vec::new();
        let mut next_try: Vec<Option<f64>> = Vec::new();
        for o in outcomes {
            match &o.verdict {
                Verdict::Delivered => {
                    kinds.push("delivered".to_string());
                    next_try.push(None);
                }
                Verdict::Gone => {
                    gone = true;
                    kinds.push("gone".to_string());
                    next_try.push(None);
                    // Back to the outbox, to go out again once the webhook is resumed.
                    Spi::get_one_with_args::<String>(
                        "SELECT lowcode.nack_event($1, $2, 'HTTP 410: the webhook is disabled', '0'::pg_catalog.interval)",
                        &[consumer.as_str().into(), o.id.into()],
                    )?;
                    Spi::run_with_args(
                        "UPDATE lowcode.webhooks SET status = 'disabled',
                                disabled_reason = 'the endpoint answered 410 Gone at '
                                    OPERATOR(pg_catalog.||) pg_catalog.now()::pg_catalog.text
                          WHERE name OPERATOR(pg_catalog.=) $1",
                        &[hook.into()],
                    )?;
                }
                Verdict::Retry { after } => {
                    let seed = (o.event_id as u64)
                        .wrapping_mul(31)
                        .wrapping_add(o.attempt as u64);
                    let delay = after.unwrap_or_else(|| {
                        crate::retry::delay(
                            &crate::retry::WEBHOOK,
                            o.attempt.max(1) as u32,
                            backoff,
                            seed,
                        )
                    });
                    let error = o.error.clone().unwrap_or_else(|| "failed".into());
                    let verdict = Spi::get_one_with_args::<String>(
                        "SELECT lowcode.nack_event($1, $2, $3, pg_catalog.make_interval(secs => $4))",
                        &[
                            consumer.as_str().into(),
                            o.id.into(),
                            error.as_str().into(),
                            delay.as_secs_f64().into(),
                        ],
                    )?;
                    if verdict.as_deref() == Some("dead") {
                        kinds.push("dead".to_string());
                        next_try.push(None);
                    } else {
                        kinds.push("retry".to_string());
                        next_try.push(Some(delay.as_secs_f64()));
                        held = Some((o.event_id, delay));
                    }
                }
            }
        }
        // The events after the failed one go back too, due with it (or at once after a dead
        // letter or a 410): the outbox hands out the oldest first.
        let release = held.map_or(Duration::ZERO, |(_, d)| d);
        for id in rest {
            Spi::get_one_with_args::<String>(
                "SELECT lowcode.nack_event($1, $2, 'not attempted: behind a failed delivery', pg_catalog.make_interval(secs => $3))",
                &[consumer.as_str().into(), (*id).into(), release.as_secs_f64().into()],
            )?;
        }
        let event_ids: Vec<i64> = outcomes.iter().map(|o| o.event_id).collect();
        let attempts: Vec<i32> = outcomes.iter().map(|o| o.attempt).collect();
        let at: Vec<f64> = outcomes.iter().map(|o| o.at).collect();
        let codes: Vec<Option<i32>> = outcomes.iter().map(|o| o.status.map(i32::from)).collect();
        let latency: Vec<f64> = outcomes.iter().map(|o| o.latency_ms).collect();
        let errors: Vec<Option<String>> = outcomes.iter().map(|o| o.error.clone()).collect();
        Spi::run_with_args(
            "INSERT INTO lowcode.webhook_attempts
                    (webhook, event_id, attempt, attempted_at, status_code, latency_ms, error, outcome, next_try, app)
             SELECT $1, u.e, u.a, pg_catalog.to_timestamp(u.t), u.c, u.l, u.err, u.k,
                    pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => u.n), $10
               FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.int4[]),
                               pg_catalog.unnest($4::pg_catalog.float8[]), pg_catalog.unnest($5::pg_catalog.int4[]),
                               pg_catalog.unnest($6::pg_catalog.float8[]), pg_catalog.unnest($7::pg_catalog.text[]),
                               pg_catalog.unnest($8::pg_catalog.text[]), pg_catalog.unnest($9::pg_catalog.float8[]))
                    AS u(e, a, t, c, l, err, k, n)",
            &[
                hook.into(),
                event_ids.into(),
                attempts.into(),
                at.into(),
                codes.into(),
                latency.into(),
                errors.into(),
                kinds.into(),
                next_try.into(),
                app.into(),
            ],
        )?;
        Ok((held, gone))
    }
}
