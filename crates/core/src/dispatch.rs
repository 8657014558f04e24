//! Which database gets a worker next, and when a worker hands its database over: the
//! decisions of lowcode's worker pool (src/worker.rs), in plain Rust (no pgrx), tested by
//! `cargo test`.
//!
//! Like autovacuum, a bounded pool of workers (`lowcode.worker_max`) serves any number of
//! databases. A background worker is bound to one database for its life, so a worker visits a
//! database, does what is due there, and leaves when another database waits for a worker; the
//! launcher starts the next worker where work is most overdue. While no database waits, a
//! worker stays where it is (one database, or a few: the worker of each stays, as before).
//!
//! Shared memory (src/worker_registry.rs) holds one [`Entry`] per database: when its next
//! timer is due, whether events wait for its webhooks, who serves it. The committing backend
//! writes there what it added (a timer due earlier, events for webhooks) and wakes whoever
//! must act: the worker in that database, or the launcher.
//!
//! Times are PostgreSQL timestamps (microseconds since 2000-01-01), `NEVER` meaning nothing.

/// No time: nothing due.
pub const NEVER: i64 = i64::MAX;

/// Is lowcode installed in a database? Known only after a worker has been there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Installed {
    /// Not visited yet (or CREATE EXTENSION lowcode was noted since).
    #[default]
    Unknown = 0,
    Yes = 1,
    No = 2,
}

/// Why a database that has work due has no worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Blocked {
    #[default]
    No = 0,
    /// `lowcode.worker_max` workers are busy in other databases.
    PoolFull = 1,
    /// PostgreSQL had no background worker slot (`max_worker_processes`).
    NoSlot = 2,
}

/// What the pool knows about one database (one slot of shared memory).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// The database's OID; 0: a free slot.
    pub db: u32,
    pub installed: Installed,
    /// `lowcode.worker_databases` leaves it out.
    pub excluded: bool,
    /// The launcher's last look at pg_database found it, so `excluded` is known. (A commit in
    /// a database created since adds its entry: until the launcher lists it, no worker.)
    pub listed: bool,
    /// The earliest time something is due there (a timer, a webhook retry, a lease that
    /// ends); `NEVER`: nothing known.
    pub next_due: i64,
    /// It has active webhooks (as its last visit found them): events written there want a
    /// worker at once.
    pub has_webhooks: bool,
    /// Events were written there since its worker last signalled LISTENers.
    pub events: bool,
    /// Its webhooks changed (or lowcode was installed) since a worker last looked.
    pub changed: bool,
    /// The role the last visit acted as (recorded in its lowcode.worker_state).
    pub owner: u32,
    /// The last worker there released every event it had leased, so the next one need not
    /// wait for leases to run out.
    pub clean: bool,
    /// The worker serving it now (0: none), and that worker's latch (an address in shared
    /// memory, as PostgreSQL's own processes keep them).
    pub pid: i32,
    pub latch: usize,
    /// When the serving worker means to wake up next (a commit wakes it only for earlier).
    pub wake_at: i64,
    /// A worker is being started for it.
    pub starting: bool,
    /// When the current (or last) visit began, and when the last one ended.
    pub arrived: i64,
    pub left: i64,
    pub visits: u64,
    /// When it started waiting for a worker (0: not waiting), and why it still does.
    pub waiting_since: i64,
    pub blocked: Blocked,
}

impl Entry {
    pub const EMPTY: Entry = Entry {
        db: 0,
        installed: Installed::Unknown,
        excluded: false,
        listed: false,
        next_due: NEVER,
        has_webhooks: false,
        events: false,
        changed: false,
        owner: 0,
        clean: false,
        pid: 0,
        latch: 0,
        wake_at: NEVER,
        starting: false,
        arrived: 0,
        left: 0,
        visits: 0,
        waiting_since: 0,
        blocked: Blocked::No,
    };

    /// A database seen for the first time: due at once (a first visit finds out whether
    /// lowcode is there, and when its next timer is due).
    pub fn new(db: u32, now: i64) -> Entry {
        Entry {
            db,
            next_due: now,
            ..Entry::EMPTY
        }
    }

    pub fn served(&self) -> bool {
        self.pid != 0 || self.starting
    }

    /// When it wants a worker; None: never (not a lowcode database, left out, not listed
    /// yet, or served).
    pub fn wants_worker_at(&self) -> Option<i64> {
        if self.db == 0
            || !self.listed
            || self.excluded
            || self.served()
            || self.installed == Installed::No
        {
            return None;
        }
        (self.next_due != NEVER).then_some(self.next_due)
    }
}

/// The databases to start workers for now, most overdue first (ties: the one that waited
/// longest, then the lowest slot), at most `free`; and the number still waiting after them.
pub fn choose(entries: &[Entry], now: i64, free: usize) -> (Vec<usize>, usize) {
    let mut due: Vec<(i64, i64, usize)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let at = e.wants_worker_at()?;
            (at <= now).then_some((
                at,
                if e.waiting_since == 0 {
                    now
                } else {
                    e.waiting_since
                },
                i,
            ))
        })
        .collect();
    due.sort_unstable();
    let start: Vec<usize> = due.iter().take(free).map(|&(_, _, i)| i).collect();
    let waiting = due.len() - start.len();
    (start, waiting)
}

/// Is it a database the pool serves (lowcode there, or not known yet; not left out)?
fn servable(e: &Entry) -> bool {
    e.db != 0 && !e.excluded && e.installed != Installed::No
}

/// While every database the pool serves fits in it, each gets a worker that stays (timers
/// fire without a start-up, LISTENers are signalled a few times a second): the ones without
/// one, however idle, at most `free`. With more databases than workers, none: workers go
/// only where work is due.
pub fn fill(entries: &[Entry], max: usize, free: usize) -> Vec<usize> {
    if entries.iter().filter(|e| servable(e)).count() > max {
        return Vec::new();
    }
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| servable(e) && !e.served())
        .map(|(i, _)| i)
        .take(free)
        .collect()
}

/// Databases wait and the pool is full: the workers to wake so that they hand over (they
/// leave after their round when nothing is due where they are): those that meant to sleep
/// longest, at most `n`.
pub fn to_nudge(entries: &[Entry], now: i64, n: usize) -> Vec<usize> {
    let mut idle: Vec<(i64, usize)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.pid != 0 && e.next_due > now)
        .map(|(i, e)| (e.wake_at, i))
        .collect();
    idle.sort_unstable_by(|a, b| b.cmp(a));
    idle.into_iter().take(n).map(|(_, i)| i).collect()
}

/// When the launcher must look again at the latest: the earliest time a database without a
/// worker becomes due (None: nothing known).
pub fn next_wanted(entries: &[Entry]) -> Option<i64> {
    entries.iter().filter_map(Entry::wants_worker_at).min()
}

/// What a worker does after a round in its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Stay: sleep until the next thing is due here.
    Stay,
    /// Stop taking new webhook batches, finish those in flight, then leave.
    Drain,
    /// Leave now: another database waits and nothing here needs this worker now.
    Leave,
}

/// A worker's view after one round.
#[derive(Clone, Copy, Debug)]
pub struct Round {
    pub now: i64,
    /// When this visit began.
    pub arrived: i64,
    /// Other databases wait for a worker.
    pub others_waiting: bool,
    /// The round fired a full batch of timers (more are due).
    pub full_batch: bool,
    /// The earliest pending timer here (`NEVER`: none).
    pub next_timer: i64,
    /// Webhook deliveries are in flight or queued here.
    pub deliveries_busy: bool,
    /// The longest a visit lasts while other databases wait (microseconds).
    pub slice: i64,
}

/// Stay while nobody else waits; otherwise leave as soon as nothing is due here now, and at
/// the end of the time slice even when something is (draining webhooks first), so that no
/// database starves another.
pub fn after_round(r: &Round) -> Next {
    if !r.others_waiting {
        return Next::Stay;
    }
    let due_here = r.full_batch || r.next_timer <= r.now;
    if r.now - r.arrived >= r.slice {
        return if r.deliveries_busy {
            Next::Drain
        } else {
            Next::Leave
        };
    }
    if due_here || r.deliveries_busy {
        Next::Stay
    } else {
        Next::Leave
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(oid: u32, next_due: i64) -> Entry {
        Entry {
            installed: Installed::Yes,
            listed: true,
            ..Entry::new(oid, next_due)
        }
    }

    #[test]
    fn no_worker_before_the_launcher_has_listed_the_database() {
        let new = Entry {
            installed: Installed::Yes,
            ..Entry::new(7, 10)
        };
        assert_eq!(new.wants_worker_at(), None);
        assert_eq!(choose(&[new], 100, 4).0, Vec::<usize>::new());
        let listed = Entry {
            listed: true,
            ..new
        };
        assert_eq!(listed.wants_worker_at(), Some(10));
        let excluded = Entry {
            excluded: true,
            ..listed
        };
        assert_eq!(excluded.wants_worker_at(), None);
    }

    #[test]
    fn most_overdue_first_and_at_most_free() {
        let entries = [db(1, 50), db(2, 10), db(3, 30), db(4, 200), Entry::EMPTY];
        let (start, waiting) = choose(&entries, 100, 2);
        assert_eq!(start, vec![1, 2]); // due at 10, then 30
        assert_eq!(waiting, 1); // the one due at 50; the one due at 200 is not due yet
    }

    #[test]
    fn ties_go_to_the_one_that_waited_longest() {
        let mut a = db(1, 10);
        a.waiting_since = 90;
        let mut b = db(2, 10);
        b.waiting_since = 20;
        let (start, _) = choose(&[a, b], 100, 1);
        assert_eq!(start, vec![1]);
    }

    #[test]
    fn served_excluded_and_non_lowcode_databases_want_no_worker() {
        let mut served = db(1, 0);
        served.pid = 42;
        let mut starting = db(2, 0);
        starting.starting = true;
        let mut excluded = db(3, 0);
        excluded.excluded = true;
        let mut without = db(4, 0);
        without.installed = Installed::No;
        let idle = db(5, NEVER);
        let entries = [served, starting, excluded, without, idle];
        assert_eq!(choose(&entries, 100, 8), (vec![], 0));
        assert_eq!(next_wanted(&entries), None);
    }

    #[test]
    fn an_unknown_database_is_visited_once_to_find_out() {
        // (As the launcher lists it.)
        let fresh = Entry {
            listed: true,
            ..Entry::new(7, 100)
        };
        assert_eq!(choose(&[fresh], 100, 1), (vec![0], 0));
    }

    #[test]
    fn databases_that_fit_in_the_pool_each_get_a_worker() {
        let mut served = db(1, NEVER);
        served.pid = 5;
        let mut without = db(3, NEVER);
        without.installed = Installed::No;
        let entries = [served, db(2, NEVER), without, db(4, NEVER)];
        assert_eq!(fill(&entries, 3, 2), vec![1, 3]);
        assert_eq!(fill(&entries, 3, 1), vec![1]);
        // More databases than workers: workers only go where work is due.
        assert_eq!(fill(&entries, 2, 2), Vec::<usize>::new());
    }

    #[test]
    fn a_full_pool_nudges_the_workers_with_least_to_do() {
        let mut a = db(1, 500); // something due later
        a.pid = 10;
        a.wake_at = 500;
        let mut b = db(2, NEVER); // nothing due at all
        b.pid = 11;
        b.wake_at = 900;
        let mut c = db(3, 50); // due now: keeps its worker
        c.pid = 12;
        c.wake_at = 50;
        let entries = [a, b, c];
        assert_eq!(to_nudge(&entries, 100, 1), vec![1]);
        assert_eq!(to_nudge(&entries, 100, 5), vec![1, 0]);
    }

    #[test]
    fn the_launcher_wakes_for_the_earliest_unserved_due_time() {
        let mut served = db(1, 5);
        served.pid = 9;
        assert_eq!(next_wanted(&[db(2, 300), served, db(3, 200)]), Some(200));
    }

    fn round() -> Round {
        Round {
            now: 1_000,
            arrived: 900,
            others_waiting: true,
            full_batch: false,
            next_timer: NEVER,
            deliveries_busy: false,
            slice: 500,
        }
    }

    #[test]
    fn nobody_waiting_means_stay() {
        let r = Round {
            others_waiting: false,
            now: 1_000_000,
            ..round()
        };
        assert_eq!(after_round(&r), Next::Stay);
    }

    #[test]
    fn someone_waiting_and_nothing_due_here_means_leave() {
        assert_eq!(after_round(&round()), Next::Leave);
        let later = Round {
            next_timer: 1_500,
            ..round()
        };
        assert_eq!(after_round(&later), Next::Leave);
    }

    #[test]
    fn work_due_here_keeps_the_worker_within_its_slice() {
        let full = Round {
            full_batch: true,
            ..round()
        };
        assert_eq!(after_round(&full), Next::Stay);
        let due = Round {
            next_timer: 1_000,
            ..round()
        };
        assert_eq!(after_round(&due), Next::Stay);
        let busy = Round {
            deliveries_busy: true,
            ..round()
        };
        assert_eq!(after_round(&busy), Next::Stay);
    }

    #[test]
    fn the_slice_ends_every_visit_while_others_wait() {
        let full = Round {
            full_batch: true,
            now: 1_400,
            ..round()
        };
        assert_eq!(after_round(&full), Next::Leave);
        let busy = Round {
            deliveries_busy: true,
            now: 1_400,
            ..round()
        };
        assert_eq!(after_round(&busy), Next::Drain);
    }
}
