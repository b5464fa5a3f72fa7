//! Seeded synthetic logs of a small shop, with ground truth.
//!
//! This file is the library half of the `gen_logs` example (its `main.rs`
//! is a thin CLI) and is also compiled into the integration tests with
//! `#[path = "../examples/gen_logs/gen.rs"] mod gen_logs;`, so it has no
//! `main` and depends only on std, `serde_json` and `flate2`.
//!
//! **Topology** (six logging services and one uninstrumented database):
//!
//! ```text
//! (client) → gateway → orders ─┬→ postgres   (virtual: `peer` + duration on one line)
//!                              ├→ inventory  (access log; clock 25 ms ahead)
//!                              ├→ payments → fraud   (retried when it fails transiently)
//!                              └→ mailer     (hand-off: client_send, no client_recv)
//! ```
//!
//! Every request is either a *view* (gateway → orders → postgres) or a
//! *checkout* (the whole tree; inventory and payments are called in
//! parallel). Requests start every ~1 ms and last tens of milliseconds, so
//! the lines of many requests interleave in every file.
//!
//! **Dialects** (default mode; every field name is a SPEC §1 default, so
//! hopscope needs no flags):
//! * gateway — logfmt, `ts=…Z req_id=… event=request_received|…`;
//! * orders — pino JSON, `time` RFC 3339 + `requestId` + `kind`, numeric
//!   levels, peers written as URLs/`host:port`, database calls as one line
//!   with `peer` and `duration_ms`;
//! * inventory — a logfmt access log: one line per request stamped at its
//!   end with `elapsed_ms`, no events;
//! * payments — ECS JSON, `@timestamp` epoch milliseconds with a fraction,
//!   `trace_id`, `peer.service`, `http.status_code`, `"error": null`;
//! * fraud — JSON, `ts` with a `+02:00` offset, `correlation_id`, `phase`,
//!   `severity`, textual `status`;
//! * mailer — Python-style logfmt, `time="YYYY-MM-DD HH:MM:SS,ffffff"`
//!   (UTC, no offset), `reqId`, `levelname`.
//!
//! Files rotate by time: `orders/orders.log.2.gz`, `orders.log.1`,
//! `orders.log`; `payments/payments.log.1.gz`, `payments.log`;
//! `gateway/gateway.log.1`, `gateway.log`.
//!
//! **Rich mode** (`rich: true`, for benchmarks): the same topology and
//! failures, but every service writes ~250-byte JSON lines with one schema
//! (`ts`, `level`, `service`, `request_id`, `event`, `peer`, `status`,
//! `error`, …), server and client events on every visit (inventory logs
//! `server_recv`/`server_send`, database calls are `client_send` and
//! `client_recv` with `peer: postgres`), one plain file per service.
//!
//! **Failures**: fraud fails and the failure propagates up to the client;
//! inventory fails and orders swallows it; payments fails transiently and
//! orders retries it; orders' client sees a bad answer from a healthy
//! inventory (the hop fails, no visit does); a database query fails and is
//! retried; the mailer fails long after the client got its answer.
//!
//! **Ground truth**: the generator keeps every true time (integer µs, one
//! clock) and derives, with SPEC §2's rules and nearest-rank quantiles, the
//! figures hopscope should report. They are written to `DIR/truth.json`
//! beside `DIR/logs/`. Output is a pure function of (requests, seed, rich).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

/// 2024-05-01T10:00:00Z in µs since the Unix epoch: the first request's start.
pub const T0_US: i64 = 1_714_557_600_000_000;

/// The service whose clock is skewed, its caller, and the skew in µs
/// (callee clock − true time). Its hops carry cs and cr, so hopscope can
/// measure it.
pub const SKEW: (&str, &str, i64) = ("orders", "inventory", 25_000);

/// What to generate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Output directory: logs go to `out/logs/<service>/`, truth to
    /// `out/truth.json`. `out/logs` must be missing or empty.
    pub out: PathBuf,
    /// Number of requests.
    pub requests: u64,
    /// PRNG seed; the output is a pure function of (requests, seed, rich).
    pub seed: u64,
    /// Benchmark mode: one JSON schema everywhere, ~250-byte lines.
    pub rich: bool,
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Requests generated.
    pub requests: u64,
    /// Log lines written.
    pub lines: u64,
    /// Uncompressed bytes of all log lines.
    pub bytes: u64,
    /// Every log file written (relative to `out/logs`), sorted.
    pub files: Vec<PathBuf>,
}

/// Generates logs and `truth.json` into `opts.out`.
pub fn generate(opts: &Options) -> io::Result<Summary> {
    let logs = opts.out.join("logs");
    if logs.is_dir() && fs::read_dir(&logs)?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} is not empty; remove it first", logs.display()),
        ));
    }
    let mut eng = Engine::new(opts, Some(&logs))?;
    eng.run(opts.requests)?;
    let summary = eng.finish()?;
    let truth = eng.truth.render(opts, &summary);
    let mut f = BufWriter::new(File::create(opts.out.join("truth.json"))?);
    serde_json::to_writer_pretty(&mut f, &truth)?;
    f.write_all(b"\n")?;
    f.flush()?;
    Ok(summary)
}

/// The number of requests whose logs come to about `bytes` (uncompressed),
/// from a deterministic dry run of the first 2,000 requests.
pub fn requests_for_size(bytes: u64, seed: u64, rich: bool) -> u64 {
    const PROBE: u64 = 2_000;
    let opts = Options {
        out: PathBuf::new(),
        requests: PROBE,
        seed,
        rich,
    };
    let Ok(mut eng) = Engine::new(&opts, None) else {
        return 1;
    };
    if eng.run(PROBE).is_err() {
        return 1;
    }
    let per = eng.bytes.max(1) as f64 / PROBE as f64;
    ((bytes as f64 / per).round() as u64).max(1)
}

/// Parses sizes such as `1GB`, `500MB`, `2G`, `1.5GiB` or `12345`
/// (decimal units; `Ki`/`Mi`/`Gi` binary).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * mult).round() as u64)
}

// ---------------------------------------------------------------------------
// Randomness: wyrand, integer-only so the output is identical everywhere.

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        Rng(splitmix(splitmix(seed) ^ stream))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xE703_7ED1_A0B4_28DB);
        (t >> 64) as u64 ^ t as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1) as u128;
        lo + ((u128::from(self.next()) * span) >> 64) as i64
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: i64) -> bool {
        self.range(0, 999) < per_mille
    }

    /// Roughly bell-shaped in `lo..=hi`, with a 3 % tail up to 6× longer.
    fn dur(&mut self, lo: i64, hi: i64) -> i64 {
        let mid = (lo + hi) / 2;
        let v = self.range(lo, mid) + self.range(0, hi - mid);
        if self.chance(30) {
            v * self.range(2, 6)
        } else {
            v
        }
    }

    /// A network leg: 200–600 µs (narrow, so skew is measured cleanly).
    fn leg(&mut self) -> i64 {
        self.range(200, 600)
    }
}

// ---------------------------------------------------------------------------
// Services, events and the per-request model.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Svc {
    Gateway = 0,
    Orders = 1,
    Inventory = 2,
    Payments = 3,
    Fraud = 4,
    Mailer = 5,
    /// The database: never logs (a virtual service in hopscope).
    Postgres = 6,
}

const LOGGING: [Svc; 6] = [
    Svc::Gateway,
    Svc::Orders,
    Svc::Inventory,
    Svc::Payments,
    Svc::Fraud,
    Svc::Mailer,
];

impl Svc {
    fn name(self) -> &'static str {
        match self {
            Svc::Gateway => "gateway",
            Svc::Orders => "orders",
            Svc::Inventory => "inventory",
            Svc::Payments => "payments",
            Svc::Fraud => "fraud",
            Svc::Mailer => "mailer",
            Svc::Postgres => "postgres",
        }
    }

    fn from_u8(v: u8) -> Svc {
        match v {
            0 => Svc::Gateway,
            1 => Svc::Orders,
            2 => Svc::Inventory,
            3 => Svc::Payments,
            4 => Svc::Fraud,
            5 => Svc::Mailer,
            _ => Svc::Postgres,
        }
    }

    /// Clock offset in µs (logged time − true time).
    fn skew(self) -> i64 {
        if self == Svc::Inventory { SKEW.2 } else { 0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sr,
    Ss,
    Cs,
    Cr,
    /// Access-log line: stamped at the end, `dur` long, no event kind.
    Access,
    /// Database call on one line: `peer` + `dur`, stamped at the end.
    Db,
}

/// The line says the record failed (error level, 5xx or error text).
const F_FAIL: u8 = 1;
/// The line carries a client-side error text (cr only).
const F_ERR: u8 = 2;
/// The request is a checkout (else a view).
const F_CHECKOUT: u8 = 4;
/// A failure caused by a callee (the message says so).
const F_UPSTREAM: u8 = 8;
/// A second database call of the visit (an insert, else a select).
const F_WRITE: u8 = 16;

/// One log line to be written: compact, formatted only when flushed.
#[derive(Clone, Copy)]
struct Ev {
    /// Logged time, µs since the epoch, in the service's own clock.
    t: i64,
    /// Generation order: breaks ties deterministically.
    seq: u64,
    id: u128,
    svc: u8,
    kind: Kind,
    peer: u8,
    flags: u8,
    code: u16,
    /// Duration in µs (Access, Db) or a small number for the message.
    dur: u32,
    /// A number for the message text (order number, amount, …).
    aux: u32,
}

/// A visit, in true time.
struct TVisit {
    svc: Svc,
    parent: Option<usize>,
    start: i64,
    end: i64,
    failed: bool,
}

/// A call from one visit to another, in true time.
struct TCall {
    caller: usize,
    callee: usize,
    cs: i64,
    cr: Option<i64>,
    cr_failed: bool,
}

/// The per-request builder: events to write and the true tree.
struct Req {
    rng: Rng,
    id: u128,
    flags: u8,
    aux: u32,
    rich: bool,
    evs: Vec<Ev>,
    visits: Vec<TVisit>,
    calls: Vec<TCall>,
}

impl Req {
    /// Queues one line of `svc` at true time `t` (logged in `svc`'s clock).
    #[allow(clippy::too_many_arguments)] // one line's fields, all positional
    fn ev(&mut self, svc: Svc, t: i64, kind: Kind, peer: Svc, flags: u8, code: u16, dur: i64) {
        self.evs.push(Ev {
            t: t + svc.skew(),
            seq: 0,
            id: self.id,
            svc: svc as u8,
            kind,
            peer: peer as u8,
            flags: flags | (self.flags & F_CHECKOUT),
            code,
            dur: dur as u32,
            aux: self.aux,
        });
    }

    fn visit(&mut self, svc: Svc, parent: Option<usize>, start: i64) -> usize {
        self.visits.push(TVisit {
            svc,
            parent,
            start,
            end: start,
            failed: false,
        });
        self.visits.len() - 1
    }

    fn close(&mut self, v: usize, end: i64, failed: bool) {
        if let Some(v) = self.visits.get_mut(v) {
            v.end = end;
            v.failed = failed;
        }
    }

    fn call(&mut self, caller: usize, callee: usize, cs: i64, cr: Option<i64>, cr_failed: bool) {
        self.calls.push(TCall {
            caller,
            callee,
            cs,
            cr,
            cr_failed,
        });
    }

    /// One database call from `caller` (an `orders` visit) over [cs, cr].
    fn db(&mut self, caller: usize, cs: i64, failed: bool, write: bool) -> i64 {
        let d = self.rng.dur(300, 3_000);
        let cr = cs + d;
        let v = self.visit(Svc::Postgres, Some(caller), cs);
        self.close(v, cr, failed);
        self.call(caller, v, cs, Some(cr), failed);
        let fl = if failed { F_FAIL } else { 0 } | if write { F_WRITE } else { 0 };
        if self.rich {
            self.ev(Svc::Orders, cs, Kind::Cs, Svc::Postgres, 0, 0, 0);
            self.ev(Svc::Orders, cr, Kind::Cr, Svc::Postgres, fl, 0, d);
        } else {
            self.ev(Svc::Orders, cr, Kind::Db, Svc::Postgres, fl, 0, d);
        }
        cr
    }

    /// The whole request; returns nothing, the tree is in `visits`/`calls`.
    fn build(&mut self, start: i64) {
        let checkout = self.flags & F_CHECKOUT != 0;
        let r = &mut self.rng;
        // Which failures this request meets, drawn before its timings.
        let fraud_fail = checkout && r.chance(20);
        let inv_fail = checkout && r.chance(30);
        let inv_client_err = checkout && !inv_fail && r.chance(10);
        let pay_retries = if checkout && r.chance(30) {
            if r.chance(200) { 2 } else { 1 }
        } else {
            0
        };
        let db_fail = r.chance(10);
        let mail_fail = checkout && r.chance(10);

        // gateway
        let g = self.visit(Svc::Gateway, None, start);
        self.ev(Svc::Gateway, start, Kind::Sr, Svc::Gateway, 0, 0, 0);
        let g_cs = start + self.rng.range(80, 400);
        self.ev(Svc::Gateway, g_cs, Kind::Cs, Svc::Orders, 0, 0, 0);

        // orders
        let o_sr = g_cs + self.rng.leg();
        let o = self.visit(Svc::Orders, Some(g), o_sr);
        self.ev(Svc::Orders, o_sr, Kind::Sr, Svc::Orders, 0, 0, 0);
        let mut t = o_sr + self.rng.range(100, 800);
        t = self.db(o, t, db_fail, false);
        if db_fail {
            // Retry the query after a short back-off.
            t += self.rng.range(500, 2_000);
            t = self.db(o, t, false, false);
        }
        let mut o_failed = false;
        if checkout {
            t += self.rng.range(50, 300);
            // inventory, in parallel with payments
            let cs_i = t;
            self.ev(Svc::Orders, cs_i, Kind::Cs, Svc::Inventory, 0, 0, 0);
            let i_sr = cs_i + self.rng.leg();
            let i_ss = i_sr + self.rng.dur(500, 6_000);
            let i = self.visit(Svc::Inventory, Some(o), i_sr);
            self.close(i, i_ss, inv_fail);
            let i_code = if inv_fail { 503 } else { 200 };
            if self.rich {
                self.ev(Svc::Inventory, i_sr, Kind::Sr, Svc::Inventory, 0, 0, 0);
                let fl = if inv_fail { F_FAIL } else { 0 };
                self.ev(
                    Svc::Inventory,
                    i_ss,
                    Kind::Ss,
                    Svc::Inventory,
                    fl,
                    i_code,
                    0,
                );
            } else {
                let fl = if inv_fail { F_FAIL } else { 0 };
                self.ev(
                    Svc::Inventory,
                    i_ss,
                    Kind::Access,
                    Svc::Inventory,
                    fl,
                    i_code,
                    i_ss - i_sr,
                );
            }
            let cr_i = i_ss + self.rng.leg();
            let cr_i_failed = inv_fail || inv_client_err;
            let fl = if inv_fail { F_FAIL | F_UPSTREAM } else { 0 }
                | if inv_client_err { F_ERR | F_FAIL } else { 0 };
            self.ev(Svc::Orders, cr_i, Kind::Cr, Svc::Inventory, fl, i_code, 0);
            self.call(o, i, cs_i, Some(cr_i), cr_i_failed);

            // payments, attempts after transient failures, then the real one
            let mut cs_p = t + self.rng.range(500, 1_500);
            let mut last_cr = cr_i;
            for attempt in 0..=pay_retries {
                let transient = attempt < pay_retries;
                self.ev(Svc::Orders, cs_p, Kind::Cs, Svc::Payments, 0, 0, 0);
                let p_sr = cs_p + self.rng.leg();
                let p = self.visit(Svc::Payments, Some(o), p_sr);
                self.ev(Svc::Payments, p_sr, Kind::Sr, Svc::Payments, 0, 0, 0);
                let (p_ss, p_failed, code, fl) = if transient {
                    (p_sr + self.rng.dur(300, 2_000), true, 503, F_FAIL)
                } else {
                    let cs_f = p_sr + self.rng.range(200, 1_000);
                    self.ev(Svc::Payments, cs_f, Kind::Cs, Svc::Fraud, 0, 0, 0);
                    let f_sr = cs_f + self.rng.leg();
                    let f_ss = f_sr + self.rng.dur(300, 4_000);
                    let f = self.visit(Svc::Fraud, Some(p), f_sr);
                    self.close(f, f_ss, fraud_fail);
                    self.ev(Svc::Fraud, f_sr, Kind::Sr, Svc::Fraud, 0, 0, 0);
                    let (ffl, fcode) = if fraud_fail { (F_FAIL, 500) } else { (0, 200) };
                    self.ev(Svc::Fraud, f_ss, Kind::Ss, Svc::Fraud, ffl, fcode, 0);
                    let cr_f = f_ss + self.rng.leg();
                    let crfl = if fraud_fail { F_FAIL | F_UPSTREAM } else { 0 };
                    self.ev(Svc::Payments, cr_f, Kind::Cr, Svc::Fraud, crfl, fcode, 0);
                    self.call(p, f, cs_f, Some(cr_f), fraud_fail);
                    let p_ss = cr_f + self.rng.range(200, 1_500);
                    if fraud_fail {
                        (p_ss, true, 502, F_FAIL | F_UPSTREAM)
                    } else {
                        (p_ss, false, 200, 0)
                    }
                };
                self.ev(Svc::Payments, p_ss, Kind::Ss, Svc::Payments, fl, code, 0);
                self.close(p, p_ss, p_failed);
                let cr_p = p_ss + self.rng.leg();
                self.ev(
                    Svc::Orders,
                    cr_p,
                    Kind::Cr,
                    Svc::Payments,
                    fl | F_UPSTREAM,
                    code,
                    0,
                );
                self.call(o, p, cs_p, Some(cr_p), p_failed);
                last_cr = last_cr.max(cr_p);
                cs_p = cr_p + self.rng.range(1_000, 5_000);
            }
            t = last_cr + self.rng.range(100, 600);
            if fraud_fail {
                // The charge was refused: orders fails, nothing more to do.
                o_failed = true;
            } else {
                t = self.db(o, t, false, true);
                // hand-off to the mailer
                let cs_m = t + self.rng.range(100, 500);
                self.ev(Svc::Orders, cs_m, Kind::Cs, Svc::Mailer, 0, 0, 0);
                let m_sr = cs_m + self.rng.dur(1_000, 60_000);
                let m_ss = m_sr + self.rng.dur(2_000, 15_000);
                let m = self.visit(Svc::Mailer, Some(o), m_sr);
                self.close(m, m_ss, mail_fail);
                self.ev(Svc::Mailer, m_sr, Kind::Sr, Svc::Mailer, 0, 0, 0);
                let (mfl, mcode) = if mail_fail { (F_FAIL, 451) } else { (0, 250) };
                self.ev(Svc::Mailer, m_ss, Kind::Ss, Svc::Mailer, mfl, mcode, 0);
                self.call(o, m, cs_m, None, false);
                t = cs_m;
            }
        }
        let o_ss = t + self.rng.range(50, 400);
        let (ofl, ocode) = match (o_failed, checkout) {
            (true, _) => (F_FAIL | F_UPSTREAM, 500),
            (false, true) => (0, 201),
            (false, false) => (0, 200),
        };
        self.ev(Svc::Orders, o_ss, Kind::Ss, Svc::Orders, ofl, ocode, 0);
        self.close(o, o_ss, o_failed);

        let g_cr = o_ss + self.rng.leg();
        self.ev(Svc::Gateway, g_cr, Kind::Cr, Svc::Orders, ofl, ocode, 0);
        self.call(g, o, g_cs, Some(g_cr), o_failed);
        let g_ss = g_cr + self.rng.range(50, 300);
        let gcode = if o_failed { 500 } else { 200 };
        self.ev(Svc::Gateway, g_ss, Kind::Ss, Svc::Gateway, ofl, gcode, 0);
        self.close(g, g_ss, o_failed);
    }
}

// ---------------------------------------------------------------------------
// Ground truth.

/// Values of one figure, in µs.
#[derive(Default)]
struct Vals(Vec<i64>);

impl Vals {
    fn block(&mut self) -> Value {
        let v = &mut self.0;
        if v.is_empty() {
            return Value::Null;
        }
        v.sort_unstable();
        let n = v.len();
        let q = |pct: usize| -> f64 {
            let rank = (pct * n).div_ceil(100).max(1);
            v.get(rank - 1).map_or(0.0, |&x| us_to_ms(x))
        };
        let sum: i128 = v.iter().map(|&x| i128::from(x)).sum();
        // As hopscope: exact mean in ns (halves away from zero), then µs.
        let sum_ns = sum * 1000;
        let n128 = n as i128;
        let mean_ns = if sum_ns >= 0 {
            (2 * sum_ns + n128) / (2 * n128)
        } else {
            -((-2 * sum_ns + n128) / (2 * n128))
        };
        let mean_us = (mean_ns + 500).div_euclid(1000);
        json!({
            "count": n,
            "mean": mean_us as f64 / 1000.0,
            "p50": q(50),
            "p90": q(90),
            "p95": q(95),
            "p99": q(99),
            "max": v.last().map_or(0.0, |&x| us_to_ms(x)),
        })
    }
}

fn us_to_ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

#[derive(Default)]
struct HopTruth {
    virtual_: bool,
    calls: u64,
    failed: u64,
    exact: u64,
    call: Vals,
    processing: Vals,
    propagation: Vals,
    request_leg: Vals,
    response_leg: Vals,
}

#[derive(Default)]
struct SvcTruth {
    virtual_: bool,
    visits: u64,
    failed: u64,
    processing: Vals,
}

#[derive(Default)]
struct Truth {
    total: u64,
    failed: u64,
    root_failed: u64,
    latency: Vals,
    services: BTreeMap<&'static str, SvcTruth>,
    hops: BTreeMap<(&'static str, &'static str), HopTruth>,
    chains: BTreeMap<String, (u64, u64)>,
}

fn rate(num: u64, den: u64) -> Value {
    if den == 0 {
        Value::Null
    } else {
        json!(num as f64 / den as f64)
    }
}

impl Truth {
    /// Folds one request's true tree in (SPEC §2).
    fn add(&mut self, visits: &[TVisit], calls: &[TCall]) {
        let Some(root) = visits.iter().find(|v| v.parent.is_none()) else {
            return;
        };
        let failed = visits.iter().any(|v| v.failed);
        self.total += 1;
        self.failed += u64::from(failed);
        self.root_failed += u64::from(root.failed);
        self.latency.0.push(root.end - root.start);
        for v in visits {
            let virt = v.svc == Svc::Postgres;
            let s = self.services.entry(v.svc.name()).or_default();
            s.virtual_ = virt;
            s.visits += 1;
            s.failed += u64::from(v.failed);
            if !virt {
                s.processing.0.push(v.end - v.start);
            }
        }
        let h = self.hops.entry(("(client)", root.svc.name())).or_default();
        h.calls += 1;
        h.failed += u64::from(root.failed);
        h.exact += 1;
        h.processing.0.push(root.end - root.start);
        for c in calls {
            let (Some(p), Some(v)) = (visits.get(c.caller), visits.get(c.callee)) else {
                continue;
            };
            let virt = v.svc == Svc::Postgres;
            let h = self.hops.entry((p.svc.name(), v.svc.name())).or_default();
            h.virtual_ = virt;
            h.calls += 1;
            h.failed += u64::from(v.failed || c.cr_failed);
            if let Some(cr) = c.cr {
                h.call.0.push(cr - c.cs);
                h.exact += 1;
            }
            if virt {
                continue;
            }
            h.processing.0.push(v.end - v.start);
            let req = v.start - c.cs;
            h.request_leg.0.push(req);
            match c.cr {
                Some(cr) => {
                    let resp = cr - v.end;
                    h.response_leg.0.push(resp);
                    h.propagation.0.push(req + resp);
                }
                None => h.propagation.0.push(req),
            }
        }
        let chain = chain_of(visits, visits.iter().position(|v| v.parent.is_none()));
        let e = self.chains.entry(chain).or_default();
        e.0 += 1;
        e.1 += u64::from(failed);
    }

    fn render(&mut self, opts: &Options, summary: &Summary) -> Value {
        let services: Vec<Value> = self
            .services
            .iter_mut()
            .map(|(name, s)| {
                json!({
                    "service": name,
                    "virtual": s.virtual_,
                    "visits": s.visits,
                    "failed": s.failed,
                    "failure_rate": rate(s.failed, s.visits),
                    "processing_ms": s.processing.block(),
                })
            })
            .collect();
        let hops: Vec<Value> = self
            .hops
            .iter_mut()
            .map(|((from, to), h)| {
                json!({
                    "from": from,
                    "to": to,
                    "virtual": h.virtual_,
                    "calls": h.calls,
                    "failed": h.failed,
                    "failure_rate": rate(h.failed, h.calls),
                    "exact_fraction": rate(h.exact, h.calls),
                    "call_ms": h.call.block(),
                    "processing_ms": h.processing.block(),
                    "propagation_ms": h.propagation.block(),
                    "request_leg_ms": h.request_leg.block(),
                    "response_leg_ms": h.response_leg.block(),
                })
            })
            .collect();
        let mut chains: Vec<(&String, &(u64, u64))> = self.chains.iter().collect();
        chains.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(b.0)));
        let chains: Vec<Value> = chains
            .into_iter()
            .map(|(c, (n, f))| {
                json!({"chain": c, "requests": n, "failed": f, "failure_rate": rate(*f, *n)})
            })
            .collect();
        let files: Vec<String> = summary
            .files
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        json!({
            "schema": "gen_logs.truth/v1",
            "generator": {"seed": opts.seed, "requests": opts.requests, "rich": opts.rich},
            "logs": "logs",
            "files": files,
            "lines": summary.lines,
            "bytes": summary.bytes,
            "requests": {
                "total": self.total,
                "complete": self.total,
                "failed": self.failed,
                "root_failed": self.root_failed,
                "failure_rate": rate(self.failed, self.total),
                "latency_ms": self.latency.block(),
            },
            "services": services,
            "hops": hops,
            "chains": chains,
            "skew": [{"from": SKEW.0, "to": SKEW.1, "offset_ms": us_to_ms(SKEW.2)}],
            "notes": "Times are true (unskewed) µs values; quantiles nearest-rank (rank ⌈q·n⌉); \
                      legs are the true network legs (hopscope's differ by its skew estimate's error \
                      on the skewed pair).",
        })
    }
}

/// The chain string of the subtree at `at` (SPEC §2 Chains), virtual
/// callees left out, siblings by start then chain text.
fn chain_of(visits: &[TVisit], at: Option<usize>) -> String {
    let Some(v) = at.and_then(|i| visits.get(i).map(|v| (i, v))) else {
        return String::new();
    };
    let mut kids: Vec<(i64, String)> = visits
        .iter()
        .enumerate()
        .filter(|(_, c)| c.parent == Some(v.0) && c.svc != Svc::Postgres)
        .map(|(i, c)| (c.start, chain_of(visits, Some(i))))
        .collect();
    kids.sort();
    let name = v.1.svc.name();
    match kids.len() {
        0 => name.to_string(),
        1 => format!("{name}>{}", kids.first().map_or("", |k| k.1.as_str())),
        _ => {
            let inner: Vec<&str> = kids.iter().map(|k| k.1.as_str()).collect();
            format!("{name}>{{{}}}", inner.join(","))
        }
    }
}

// ---------------------------------------------------------------------------
// Output: per-service writers, rotation, formatting.

enum Sink {
    Plain(BufWriter<File>),
    Gz(GzEncoder<BufWriter<File>>),
    /// Dry run: count only.
    Null,
}

impl Sink {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gz(w) => w.write_all(b),
            Sink::Null => Ok(()),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gz(w) => w.finish()?.flush(),
            Sink::Null => Ok(()),
        }
    }
}

/// One file of a service: written while the time is below `until`.
struct Segment {
    rel: PathBuf,
    gz: bool,
    /// Exclusive upper bound of logged times (i64::MAX for the live file).
    until: i64,
    sink: Option<Sink>,
    /// The file was created.
    written: bool,
}

struct SvcOut {
    segments: Vec<Segment>,
    cur: usize,
}

const BUF: usize = 1 << 18;

impl SvcOut {
    /// The files of `svc`, oldest first, given the cut times.
    fn new(svc: Svc, rich: bool, cuts: (i64, i64)) -> SvcOut {
        let dir = PathBuf::from(svc.name());
        let seg = |name: &str, gz: bool, until: i64| Segment {
            rel: dir.join(name),
            gz,
            until,
            sink: None,
            written: false,
        };
        let segments = match (rich, svc) {
            (true, _) => vec![seg(&format!("{}.log", svc.name()), false, i64::MAX)],
            (false, Svc::Orders) => vec![
                seg("orders.log.2.gz", true, cuts.0),
                seg("orders.log.1", false, cuts.1),
                seg("orders.log", false, i64::MAX),
            ],
            (false, Svc::Payments) => vec![
                seg("payments.log.1.gz", true, cuts.1),
                seg("payments.log", false, i64::MAX),
            ],
            (false, Svc::Gateway) => vec![
                seg("gateway.log.1", false, cuts.1),
                seg("gateway.log", false, i64::MAX),
            ],
            (false, Svc::Inventory) => vec![seg("access.log", false, i64::MAX)],
            (false, s) => vec![seg(&format!("{}.log", s.name()), false, i64::MAX)],
        };
        SvcOut { segments, cur: 0 }
    }

    fn sink(&mut self, t: i64, root: Option<&Path>) -> io::Result<&mut Sink> {
        while self
            .segments
            .get(self.cur)
            .is_some_and(|s| t >= s.until && self.cur + 1 < self.segments.len())
        {
            if let Some(s) = self.segments.get_mut(self.cur).and_then(|s| s.sink.take()) {
                s.finish()?;
            }
            self.cur += 1;
        }
        let seg = self
            .segments
            .get_mut(self.cur)
            .ok_or_else(|| io::Error::other("no segment"))?;
        if seg.sink.is_none() {
            seg.sink = Some(open(root, &seg.rel, seg.gz)?);
            seg.written = true;
        }
        seg.sink.as_mut().ok_or_else(|| io::Error::other("no sink"))
    }

    /// Closes every file; returns the files written.
    fn finish(&mut self, out: &mut Vec<PathBuf>) -> io::Result<()> {
        for s in &mut self.segments {
            if let Some(sink) = s.sink.take() {
                sink.finish()?;
            }
            if s.written {
                out.push(s.rel.clone());
            }
        }
        Ok(())
    }
}

fn open(root: Option<&Path>, rel: &Path, gz: bool) -> io::Result<Sink> {
    let Some(root) = root else {
        return Ok(Sink::Null);
    };
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let w = BufWriter::with_capacity(BUF, File::create(&path)?);
    Ok(if gz {
        Sink::Gz(GzEncoder::new(w, Compression::fast()))
    } else {
        Sink::Plain(w)
    })
}

struct Engine {
    seed: u64,
    rich: bool,
    root: Option<PathBuf>,
    /// The arrival stream: gaps between request starts.
    arrivals: Rng,
    next_start: i64,
    outs: Vec<SvcOut>,
    pending: Vec<Vec<Ev>>,
    seq: u64,
    line: Vec<u8>,
    lines: u64,
    bytes: u64,
    truth: Truth,
    scratch: Option<Req>,
}

/// Mean gap between request starts, µs (uniform 0..2× this).
const MEAN_GAP_US: i64 = 1_000;

impl Engine {
    fn new(opts: &Options, root: Option<&Path>) -> io::Result<Engine> {
        // Cut the rotated files at the starts of requests 20 % and 50 %.
        let mut arr = Rng::new(opts.seed, u64::MAX);
        let (c1, c2) = (opts.requests / 5, opts.requests / 2);
        let mut t = T0_US;
        let mut cuts = (i64::MAX, i64::MAX);
        for i in 0..opts.requests.max(1) {
            if i == c1 {
                cuts.0 = t;
            }
            if i == c2 {
                cuts.1 = t;
                break;
            }
            t += arr.range(0, 2 * MEAN_GAP_US);
        }
        Ok(Engine {
            seed: opts.seed,
            rich: opts.rich,
            root: root.map(Path::to_path_buf),
            arrivals: Rng::new(opts.seed, u64::MAX),
            next_start: T0_US,
            outs: LOGGING
                .iter()
                .map(|&s| SvcOut::new(s, opts.rich, cuts))
                .collect(),
            pending: LOGGING.iter().map(|_| Vec::new()).collect(),
            seq: 0,
            line: Vec::with_capacity(1024),
            lines: 0,
            bytes: 0,
            truth: Truth::default(),
            scratch: None,
        })
    }

    fn run(&mut self, n: u64) -> io::Result<()> {
        for i in 0..n {
            let start = self.next_start;
            self.request(i, start);
            self.next_start = start + self.arrivals.range(0, 2 * MEAN_GAP_US);
            if i % 512 == 511 {
                self.flush(self.next_start)?;
            }
        }
        self.flush(i64::MAX)
    }

    fn request(&mut self, idx: u64, start: i64) {
        let mut rng = Rng::new(self.seed, idx);
        let hi = rng.next();
        let lo = rng.next();
        // A version-4 UUID (version nibble 4, variant bits 10).
        let id = u128::from(hi) << 64 | u128::from(lo);
        let id = (id & !(0xFu128 << 76)) | (0x4u128 << 76);
        let id = (id & !(0x3u128 << 62)) | (0x2u128 << 62);
        let checkout = rng.chance(600);
        let aux = rng.range(10_000, 99_999) as u32;
        let mut req = match self.scratch.take() {
            Some(mut r) => {
                r.evs.clear();
                r.visits.clear();
                r.calls.clear();
                r.rng = rng;
                r.id = id;
                r.aux = aux;
                r.flags = if checkout { F_CHECKOUT } else { 0 };
                r
            }
            None => Req {
                rng,
                id,
                flags: if checkout { F_CHECKOUT } else { 0 },
                aux,
                rich: self.rich,
                evs: Vec::with_capacity(64),
                visits: Vec::with_capacity(16),
                calls: Vec::with_capacity(16),
            },
        };
        req.build(start);
        self.truth.add(&req.visits, &req.calls);
        for mut e in req.evs.drain(..) {
            e.seq = self.seq;
            self.seq += 1;
            if let Some(p) = self.pending.get_mut(usize::from(e.svc)) {
                p.push(e);
            }
        }
        self.scratch = Some(req);
    }

    /// Writes every pending line logged before `before`, in time order.
    /// Later requests start at or after `before` and no clock runs behind,
    /// so nothing written later can sort before these lines.
    fn flush(&mut self, before: i64) -> io::Result<()> {
        for svc in 0..self.pending.len() {
            let Some(p) = self.pending.get_mut(svc) else {
                continue;
            };
            p.sort_unstable_by_key(|e| (e.t, e.seq));
            let n = p.partition_point(|e| e.t < before);
            let evs: Vec<Ev> = p.drain(..n).collect();
            for e in &evs {
                self.line.clear();
                if self.rich {
                    fmt_rich(&mut self.line, e);
                } else {
                    fmt_plain(&mut self.line, e);
                }
                self.lines += 1;
                self.bytes += self.line.len() as u64;
                let root = self.root.as_deref();
                let out = self
                    .outs
                    .get_mut(svc)
                    .ok_or_else(|| io::Error::other("no output"))?;
                out.sink(e.t, root)?.write_all(&self.line)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<Summary> {
        let mut files = Vec::new();
        for o in &mut self.outs {
            o.finish(&mut files)?;
        }
        files.sort();
        Ok(Summary {
            requests: self.truth.total,
            lines: self.lines,
            bytes: self.bytes,
            files,
        })
    }
}

// ---------------------------------------------------------------------------
// Formatting, by hand into a reused buffer (no allocation per line).

fn push_u64(b: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        if let Some(d) = tmp.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(tmp.get(i..).unwrap_or_default());
}

fn push_pad(b: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut n = n;
    let mut i = tmp.len();
    while i > tmp.len() - width || n > 0 {
        i -= 1;
        if let Some(d) = tmp.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
    }
    b.extend_from_slice(tmp.get(i..).unwrap_or_default());
}

/// `us` as milliseconds with three decimals (`3.512`).
fn push_ms3(b: &mut Vec<u8>, us: u64) {
    push_u64(b, us / 1000);
    b.push(b'.');
    push_pad(b, us % 1000, 3);
}

fn push_uuid(b: &mut Vec<u8>, id: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            b.push(b'-');
        }
        let nib = (id >> (124 - 4 * i)) & 0xF;
        b.push(HEX.get(nib as usize).copied().unwrap_or(b'0'));
    }
}

fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[derive(Clone, Copy)]
enum TsStyle {
    /// `2024-05-01T10:00:00.123456Z`
    Zulu,
    /// `2024-05-01T12:00:00.123456+02:00`
    PlusTwo,
    /// `2024-05-01 10:00:00,123456` (UTC, no offset)
    Python,
}

fn push_ts(b: &mut Vec<u8>, t_us: i64, style: TsStyle) {
    let t = match style {
        TsStyle::PlusTwo => t_us + 7_200_000_000,
        _ => t_us,
    };
    let secs = t.div_euclid(1_000_000);
    let frac = t.rem_euclid(1_000_000) as u64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u64;
    push_pad(b, y as u64, 4);
    b.push(b'-');
    push_pad(b, m, 2);
    b.push(b'-');
    push_pad(b, d, 2);
    b.push(if matches!(style, TsStyle::Python) {
        b' '
    } else {
        b'T'
    });
    push_pad(b, sod / 3600, 2);
    b.push(b':');
    push_pad(b, sod / 60 % 60, 2);
    b.push(b':');
    push_pad(b, sod % 60, 2);
    b.push(if matches!(style, TsStyle::Python) {
        b','
    } else {
        b'.'
    });
    push_pad(b, frac, 6);
    match style {
        TsStyle::Zulu => b.push(b'Z'),
        TsStyle::PlusTwo => b.extend_from_slice(b"+02:00"),
        TsStyle::Python => {}
    }
}

/// Epoch milliseconds with a µs fraction (`1714557600010.123`).
fn push_epoch_ms(b: &mut Vec<u8>, t_us: i64) {
    push_ms3(b, t_us.max(0) as u64);
}

fn s(b: &mut Vec<u8>, x: &str) {
    b.extend_from_slice(x.as_bytes());
}

fn fmt_plain(b: &mut Vec<u8>, e: &Ev) {
    let failed = e.flags & F_FAIL != 0;
    let checkout = e.flags & F_CHECKOUT != 0;
    match Svc::from_u8(e.svc) {
        Svc::Gateway => {
            s(b, "ts=");
            push_ts(b, e.t, TsStyle::Zulu);
            s(
                b,
                if failed && e.kind == Kind::Ss {
                    " level=error"
                } else if failed {
                    " level=warn"
                } else {
                    " level=info"
                },
            );
            s(b, " req_id=");
            push_uuid(b, e.id);
            match e.kind {
                Kind::Sr => {
                    if checkout {
                        s(
                            b,
                            " event=request_received method=POST path=/api/checkout remote=203.0.113.",
                        );
                    } else {
                        s(b, " event=request_received method=GET path=/api/orders/");
                        push_u64(b, u64::from(e.aux));
                        s(b, " remote=198.51.100.");
                    }
                    push_u64(b, u64::from(e.aux % 250 + 2));
                }
                Kind::Cs => s(
                    b,
                    " event=request_sent peer=orders:8080 upstream_ms_budget=2000",
                ),
                Kind::Cr => {
                    s(b, " event=response_received peer=orders:8080 status=");
                    push_u64(b, u64::from(e.code));
                }
                _ => {
                    s(b, " event=response_sent status=");
                    push_u64(b, u64::from(e.code));
                    s(b, " bytes=");
                    push_u64(b, u64::from(e.aux % 4096 + 128));
                }
            }
            b.push(b'\n');
        }
        Svc::Orders => {
            s(b, "{\"level\":");
            s(
                b,
                if failed && matches!(e.kind, Kind::Ss | Kind::Db) {
                    "50"
                } else if failed {
                    "40"
                } else {
                    "30"
                },
            );
            s(b, ",\"time\":\"");
            push_ts(b, e.t, TsStyle::Zulu);
            s(
                b,
                "\",\"pid\":4127,\"hostname\":\"orders-5f7c9d-x2k4p\",\"requestId\":\"",
            );
            push_uuid(b, e.id);
            s(b, "\",");
            let peer = match Svc::from_u8(e.peer) {
                Svc::Inventory => "http://inventory.shop.svc.cluster.local:8080/reservations",
                Svc::Payments => "payments:9090",
                Svc::Mailer => "mailer",
                _ => "postgres",
            };
            match e.kind {
                Kind::Sr => {
                    s(
                        b,
                        if checkout {
                            "\"kind\":\"server_recv\",\"method\":\"POST\",\"url\":\"/orders\""
                        } else {
                            "\"kind\":\"server_recv\",\"method\":\"GET\",\"url\":\"/orders/"
                        },
                    );
                    if !checkout {
                        push_u64(b, u64::from(e.aux));
                        b.push(b'"');
                    }
                    s(b, ",\"msg\":\"incoming request\"}\n");
                }
                Kind::Cs => {
                    s(b, "\"kind\":\"client_send\",\"peer\":\"");
                    s(b, peer);
                    s(
                        b,
                        match Svc::from_u8(e.peer) {
                            Svc::Inventory => "\",\"msg\":\"reserving stock for order ",
                            Svc::Payments => "\",\"msg\":\"charging card for order ",
                            _ => "\",\"queue\":\"emails\",\"msg\":\"queued confirmation for order ",
                        },
                    );
                    push_u64(b, u64::from(e.aux));
                    s(b, "\"}\n");
                }
                Kind::Cr => {
                    s(b, "\"kind\":\"client_recv\",\"peer\":\"");
                    s(b, peer);
                    s(b, "\",\"status\":");
                    push_u64(b, u64::from(e.code));
                    if e.flags & F_ERR != 0 {
                        s(
                            b,
                            ",\"err\":\"response truncated\",\"msg\":\"using cached stock level\"}\n",
                        );
                    } else if failed {
                        s(b, ",\"msg\":\"upstream failed\"}\n");
                    } else {
                        s(b, ",\"msg\":\"ok\"}\n");
                    }
                }
                Kind::Db => {
                    s(b, "\"peer\":\"postgres\",\"duration_ms\":");
                    push_ms3(b, u64::from(e.dur));
                    if failed {
                        s(
                            b,
                            ",\"err\":{\"type\":\"DeadlockError\",\"message\":\"deadlock detected\"},\"msg\":\"query failed, retrying\"}\n",
                        );
                    } else if e.flags & F_WRITE != 0 {
                        s(b, ",\"msg\":\"INSERT INTO orders\",\"rows\":1}\n");
                    } else {
                        s(
                            b,
                            ",\"msg\":\"SELECT * FROM orders WHERE id = $1\",\"rows\":1}\n",
                        );
                    }
                }
                _ => {
                    s(b, "\"kind\":\"server_send\",\"status\":");
                    push_u64(b, u64::from(e.code));
                    s(
                        b,
                        if failed {
                            ",\"msg\":\"payment refused\"}\n"
                        } else {
                            ",\"msg\":\"request completed\"}\n"
                        },
                    );
                }
            }
        }
        Svc::Inventory => {
            s(b, "ts=");
            push_ts(b, e.t, TsStyle::Zulu);
            s(b, " x_request_id=");
            push_uuid(b, e.id);
            s(b, " method=POST path=/reservations status=");
            push_u64(b, u64::from(e.code));
            s(b, " elapsed_ms=");
            push_ms3(b, u64::from(e.dur));
            s(b, " bytes=");
            push_u64(b, if failed { 0 } else { 64 });
            s(b, " ua=\"orders/2.3 (+go)\"\n");
        }
        Svc::Payments => {
            s(b, "{\"@timestamp\":");
            push_epoch_ms(b, e.t);
            s(
                b,
                if failed && e.kind == Kind::Ss {
                    ",\"log.level\":\"error\""
                } else if failed {
                    ",\"log.level\":\"warn\""
                } else {
                    ",\"log.level\":\"info\""
                },
            );
            s(b, ",\"service.name\":\"payments\",\"trace_id\":\"");
            push_uuid(b, e.id);
            match e.kind {
                Kind::Sr => s(
                    b,
                    "\",\"event\":\"request_start\",\"message\":\"POST /v1/charges\"}\n",
                ),
                Kind::Cs => s(
                    b,
                    "\",\"event\":\"calling\",\"peer.service\":\"fraud\",\"message\":\"scoring transaction\"}\n",
                ),
                Kind::Cr => {
                    s(
                        b,
                        "\",\"event\":\"returned\",\"peer.service\":\"fraud\",\"http.status_code\":",
                    );
                    push_u64(b, u64::from(e.code));
                    b.extend_from_slice(b"}\n");
                }
                _ => {
                    s(b, "\",\"event\":\"request_end\",\"http.status_code\":");
                    push_u64(b, u64::from(e.code));
                    if !failed {
                        s(b, ",\"error\":null,\"message\":\"charge captured\"}\n");
                    } else if e.flags & F_UPSTREAM != 0 {
                        s(
                            b,
                            ",\"error\":\"fraud check failed\",\"message\":\"charge refused\"}\n",
                        );
                    } else {
                        s(
                            b,
                            ",\"error\":\"card processor unavailable\",\"message\":\"charge failed\"}\n",
                        );
                    }
                }
            }
        }
        Svc::Fraud => {
            s(b, "{\"ts\":\"");
            push_ts(b, e.t, TsStyle::PlusTwo);
            s(
                b,
                if failed {
                    "\",\"severity\":\"ERROR\",\"correlation_id\":\""
                } else {
                    "\",\"severity\":\"INFO\",\"correlation_id\":\""
                },
            );
            push_uuid(b, e.id);
            match e.kind {
                Kind::Sr => s(
                    b,
                    "\",\"phase\":\"begin\",\"rules\":\"v7\",\"msg\":\"scoring\"}\n",
                ),
                _ if failed => s(
                    b,
                    "\",\"phase\":\"finish\",\"status\":\"error\",\"msg\":\"model timeout\"}\n",
                ),
                _ => {
                    s(b, "\",\"phase\":\"finish\",\"score\":0.");
                    push_pad(b, u64::from(e.aux % 100), 2);
                    s(b, ",\"msg\":\"scored\"}\n");
                }
            }
        }
        Svc::Mailer | Svc::Postgres => {
            s(b, "time=\"");
            push_ts(b, e.t, TsStyle::Python);
            s(
                b,
                if failed {
                    "\" levelname=ERROR reqId="
                } else {
                    "\" levelname=INFO reqId="
                },
            );
            push_uuid(b, e.id);
            match e.kind {
                Kind::Sr => s(
                    b,
                    " event=received queue=emails template=order-confirmation\n",
                ),
                _ => {
                    s(b, " event=sent smtp_code=");
                    push_u64(b, u64::from(e.code));
                    if failed {
                        s(b, " error=\"mailbox unavailable\"\n");
                    } else {
                        s(b, " message_id=<");
                        push_u64(b, u64::from(e.aux));
                        s(b, "@mail.shop.example>\n");
                    }
                }
            }
        }
    }
}

/// Rich mode: one JSON schema, ~250 bytes a line.
fn fmt_rich(b: &mut Vec<u8>, e: &Ev) {
    let svc = Svc::from_u8(e.svc);
    let failed = e.flags & F_FAIL != 0;
    let level_err = failed && (matches!(e.kind, Kind::Ss) || Svc::from_u8(e.peer) == Svc::Postgres);
    s(b, "{\"ts\":\"");
    push_ts(b, e.t, TsStyle::Zulu);
    s(
        b,
        if level_err {
            "\",\"level\":\"error\""
        } else if failed {
            "\",\"level\":\"warn\""
        } else {
            "\",\"level\":\"info\""
        },
    );
    s(b, ",\"service\":\"");
    s(b, svc.name());
    s(b, "\",\"host\":\"");
    s(b, svc.name());
    s(b, "-7d9f8c6b5-x2k4p\"");
    s(b, ",\"thread\":\"worker-");
    push_pad(b, e.id as u64 % 32, 2);
    s(b, "\",\"request_id\":\"");
    push_uuid(b, e.id);
    s(b, "\",\"event\":\"");
    s(
        b,
        match e.kind {
            Kind::Sr => "server_recv",
            Kind::Ss => "server_send",
            Kind::Cs => "client_send",
            _ => "client_recv",
        },
    );
    b.push(b'"');
    if matches!(e.kind, Kind::Cs | Kind::Cr) {
        s(b, ",\"peer\":\"");
        s(b, Svc::from_u8(e.peer).name());
        b.push(b'"');
    }
    if matches!(e.kind, Kind::Ss | Kind::Cr) && e.code != 0 {
        s(b, ",\"status\":");
        push_u64(b, u64::from(e.code));
    }
    if e.flags & F_ERR != 0 {
        s(b, ",\"error\":\"response truncated\"");
    } else if failed && Svc::from_u8(e.peer) == Svc::Postgres {
        s(b, ",\"error\":\"deadlock detected\"");
    }
    if Svc::from_u8(e.peer) == Svc::Postgres && e.kind == Kind::Cr {
        s(b, ",\"db.rows\":1,\"db.statement\":\"");
        s(
            b,
            if e.flags & F_WRITE != 0 {
                "INSERT INTO orders"
            } else {
                "SELECT * FROM orders"
            },
        );
        b.push(b'"');
    }
    s(b, ",\"user_id\":\"u-");
    push_u64(b, u64::from(e.aux));
    s(b, "\",\"msg\":\"");
    s(
        b,
        match (svc, e.kind) {
            (_, Kind::Sr) => "incoming request accepted",
            (_, Kind::Ss) if failed => "request failed",
            (_, Kind::Ss) => "request completed",
            (_, Kind::Cs) => "calling downstream",
            _ => "downstream answered",
        },
    );
    s(b, "\"}\n");
}
