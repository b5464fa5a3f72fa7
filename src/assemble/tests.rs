//! One small case per rule of SPEC §2, built from logfmt lines. Times are ms
//! after 10:00:00Z; every expected figure is worked out in the comment above
//! it.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::model::{IdKey, Interner, Record, SpanPair};
use crate::parse::detect::LineFormat;
use crate::parse::{FileContext, FileReader, LineRules, parse_chunk};

const MS: i64 = 1_000_000;
/// 2024-05-01T10:00:00Z in ns.
const T0: i64 = 1_714_557_600_000_000_000;

fn rules() -> LineRules {
    LineRules::default()
}

/// Expands `"<ms> <svc> <rest>"` into a logfmt line of request r1.
fn line(spec: &str) -> String {
    let mut parts = spec.splitn(3, ' ');
    let ms: u32 = parts.next().unwrap().parse().unwrap();
    let svc = parts.next().unwrap();
    let rest = parts.next().unwrap_or("");
    format!(
        "ts=2024-05-01T10:00:{:02}.{:03}Z req_id=r1 svc={svc} {rest}",
        ms / 1000,
        ms % 1000
    )
}

/// Assembles one request from files of line specs, twice as the app does
/// (skew measured on the first pass, applied on the second).
fn assemble_files(files: &[&[&str]], skew: bool) -> Assembled {
    let r = rules();
    let texts: Vec<String> = files
        .iter()
        .map(|f| f.iter().map(|l| line(l) + "\n").collect())
        .collect();
    let mut services = Interner::default();
    let mut peers = Interner::default();
    let mut ids = Interner::default();
    let mut spans = Vec::new();
    let mut records = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let reader = FileReader {
            envelope: None,
            format: Some(LineFormat::Logfmt.into()),
        };
        let ctx = FileContext {
            file: i as u32,
            path_service: "path",
            reader: &reader,
        };

        let c = parse_chunk(t.as_bytes(), 0, &ctx, &r);
        assert_eq!(c.stats.records, c.stats.lines, "a test line did not parse");
        let id_map = |k: IdKey, ids: &mut Interner| match k.text_index() {
            Some(x) => IdKey::interned(ids.intern(c.ids.name(x))),
            None => k,
        };
        let base = spans.len() as u32;
        for p in &c.spans {
            spans.push(SpanPair {
                span: p.span.map(|k| id_map(k, &mut ids)),
                parent: p.parent.map(|k| id_map(k, &mut ids)),
            });
        }
        for mut rec in c.records {
            rec.service = services.intern(c.services.name(rec.service));
            if let Some(p) = rec.peer() {
                rec.peer_id = peers.intern(c.peers.name(p));
            }
            rec.set_req(id_map(rec.req(), &mut ids));
            if rec.spans != Record::NO_SPANS {
                rec.spans += base;
            }
            records.push(rec);
        }
    }
    records.sort_by_key(|a| (a.ts, a.loc));
    let mut u = crate::app::resolve_universe(&BTreeMap::new(), services, &peers);
    u.ids = ids;
    u.spans = spans;
    let opts = AssembleOptions {
        skew,
        max_visits: 100,
        skew_pass: false,
        visit_order: true,
    };
    let first_pass = AssembleOptions {
        skew_pass: true,
        ..opts.clone()
    };
    let first = assemble(&records, &u, None, &first_pass);
    // The light first pass finds the same samples as a full assembly.
    assert_eq!(
        first.skew_samples,
        assemble(&records, &u, None, &opts).skew_samples
    );
    let mut samples = skew::SkewSamples::default();
    for (f, t, v) in first.skew_samples {
        samples.add(f, t, v);
    }
    let (_, offsets) = samples.resolve(skew, MS);
    let mut a = assemble(&records, &u, Some(&offsets), &opts);
    assert_eq!(a.id, "r1");
    // Names instead of ids make the assertions readable.
    a.id = a
        .visits
        .iter()
        .map(|v| u.name(v.service).to_string())
        .collect::<Vec<_>>()
        .join(",");
    a
}

fn visit(a: &Assembled, index: usize) -> &VisitFigures {
    &a.visits[index]
}

/// Every instant of the latency is charged once.
fn assert_critical_sums_to_latency(a: &Assembled) {
    let total: i64 = a
        .visits
        .iter()
        .map(|v| v.critical + v.critical_propagation)
        .sum::<i64>()
        + a.unclaimed.iter().map(|u| u.critical).sum::<i64>();
    assert_eq!(total, a.latency, "critical path of {a:?}");
}

#[test]
fn nesting_with_client_events() {
    // gateway [0,20] calls orders (cs 1, cr 19); orders [3,17] calls
    // payments (cs 4, cr 15); payments [6,12].
    let a = assemble_files(
        &[
            &[
                "0 gateway event=sr",
                "1 gateway event=cs peer=orders",
                "19 gateway event=cr peer=orders",
                "20 gateway event=ss",
            ],
            &[
                "3 orders event=sr",
                "4 orders event=cs peer=payments",
                "15 orders event=cr peer=payments",
                "17 orders event=ss",
            ],
            &["6 payments event=sr", "12 payments event=ss"],
        ],
        true,
    );
    assert_eq!(a.id, "gateway,orders,payments");
    assert_eq!(a.chain, "gateway>orders>payments");
    assert_eq!(a.incomplete, None);
    assert_eq!(a.latency, 20 * MS);
    let o = visit(&a, 1);
    assert_eq!(o.parent, Some(0));
    assert_eq!(o.call, Some(18 * MS)); // 19 − 1
    assert_eq!(o.processing, Some(14 * MS)); // 17 − 3
    assert_eq!(o.request_leg, Some(2 * MS)); // 3 − 1
    assert_eq!(o.response_leg, Some(2 * MS)); // 19 − 17
    assert_eq!(o.self_time, Some(3 * MS)); // 14 − (15 − 4)
    assert!(o.hop_exact);
    let p = visit(&a, 2);
    assert_eq!(p.parent, Some(1));
    assert_eq!(p.propagation, Some(5 * MS)); // (6 − 4) + (15 − 12)
    assert_critical_sums_to_latency(&a);
    // Linear chain: gateway 1 + 1, orders 1 + 2, payments 6, legs 2+2 and 2+3.
    assert_eq!(visit(&a, 0).critical, 2 * MS);
    assert_eq!(o.critical, 3 * MS);
    assert_eq!(p.critical, 6 * MS);
    assert_eq!(o.critical_propagation, 4 * MS);
    assert_eq!(p.critical_propagation, 5 * MS);
}

#[test]
fn async_handoff_has_only_a_request_leg() {
    // orders [0,5] sends to mailer at 2 with no reply; mailer [20,30].
    let a = assemble_files(
        &[
            &[
                "0 orders event=sr",
                "2 orders event=cs peer=mailer",
                "5 orders event=ss",
            ],
            &["20 mailer event=sr", "30 mailer event=ss"],
        ],
        true,
    );
    assert_eq!(a.chain, "orders>mailer");
    assert_eq!(a.latency, 5 * MS);
    let m = visit(&a, 1);
    assert_eq!(m.request_leg, Some(18 * MS));
    assert_eq!(m.response_leg, None);
    assert_eq!(m.propagation, Some(18 * MS));
    assert!(!m.hop_exact);
    // The hand-off does not reduce orders' self time, and mailer ends after
    // the root, so it is off the critical path.
    assert_eq!(visit(&a, 0).self_time, Some(5 * MS));
    assert_eq!(m.critical, 0);
    assert_critical_sums_to_latency(&a);
}

#[test]
fn rule_two_skips_a_container_that_is_a_descendant() {
    // api [10,20] calls cache (cs 11, cr 19); cache [5,30] takes that call
    // (none was sent by its start, 11 is the nearest after), so cache is
    // api's child. api has no call to it: by rule 2 the innermost visit
    // containing 10 is cache (latest start), but cache is its descendant;
    // the next, edge [0,40], is its parent.
    let a = assemble_files(
        &[
            &["0 edge event=sr", "40 edge event=ss"],
            &["5 cache event=sr", "30 cache event=ss"],
            &[
                "10 api event=sr",
                "11 api event=cs peer=cache",
                "19 api event=cr peer=cache",
                "20 api event=ss",
            ],
        ],
        false,
    );
    // Visits in start order: edge, cache, api.
    assert_eq!(a.id, "edge,cache,api");
    assert_eq!(visit(&a, 1).parent, Some(2));
    assert!(matches!(visit(&a, 1).link, Link::Call(_)));
    assert_eq!(visit(&a, 2).parent, Some(0));
    assert_eq!(visit(&a, 2).link, Link::Contains);
    assert_eq!(visit(&a, 0).parent, None);
    assert_eq!(a.incomplete, None);
}

#[test]
fn rule_three_parent_is_a_handoff() {
    // orders [100,105] logs no call; mailer [120,126] starts after it ended.
    let a = assemble_files(
        &[
            &["100 orders event=sr", "105 orders event=ss"],
            &["120 mailer event=sr", "126 mailer event=ss"],
        ],
        true,
    );
    assert_eq!(visit(&a, 1).link, Link::Handoff);
    assert_eq!(visit(&a, 1).request_leg, Some(15 * MS)); // 120 − 105
    assert_eq!(a.incomplete, None);
}

#[test]
fn retry_pairs_each_call_with_its_own_visit() {
    let a = assemble_files(
        &[
            &[
                "0 gateway event=sr",
                "1 gateway event=cs peer=payments",
                "6 gateway event=cr peer=payments status=503",
                "7 gateway event=cs peer=payments",
                "15 gateway event=cr peer=payments status=200",
                "16 gateway event=ss status=200",
            ],
            &[
                "2 payments event=sr",
                "5 payments event=ss status=503",
                "9 payments event=sr",
                "14 payments event=ss",
            ],
        ],
        true,
    );
    assert_eq!(a.chain, "gateway>{payments,payments}");
    assert_eq!(visit(&a, 1).call, Some(5 * MS));
    assert_eq!(visit(&a, 2).call, Some(8 * MS));
    assert!(visit(&a, 1).failed && visit(&a, 1).hop_failed && visit(&a, 1).origin);
    assert!(!visit(&a, 2).hop_failed);
    assert!(a.failed && !a.root_failed);
    assert_eq!(visit(&a, 0).self_time, Some(3 * MS)); // 16 − 5 − 8
    assert_critical_sums_to_latency(&a);
}

#[test]
fn inner_spans_join_the_server_span() {
    let a = assemble_files(
        &[
            &[
                "0 orders span_id=s1 event=sr",
                "2 orders span_id=s2 parent_span_id=s1 msg=inner",
                "4 orders span_id=k1 parent_span_id=s1 event=cs peer=payments",
                "10 orders msg=spanless",
                "13 orders span_id=k1 parent_span_id=s1 event=cr peer=payments",
                "18 orders span_id=s1 event=ss",
            ],
            &[
                "6 payments span_id=c1 parent_span_id=k1 event=sr",
                "11 payments span_id=c1 parent_span_id=k1 event=ss",
            ],
        ],
        true,
    );
    assert_eq!(a.id, "orders,payments");
    assert_eq!(visit(&a, 0).span, Some(IdKey::interned(0))); // "s1", interned first
    assert_eq!(visit(&a, 1).link, Link::Call(0));
    assert_eq!(visit(&a, 1).request_leg, Some(2 * MS));
    assert_eq!(visit(&a, 0).self_time, Some(9 * MS)); // 18 − (13 − 4)
}

#[test]
fn skew_is_measured_and_applied() {
    // payments' clock is 50 ms ahead: raw legs 52 and −48, θ = 50.
    let a = assemble_files(
        &[
            &[
                "0 orders event=sr",
                "1 orders event=cs peer=payments",
                "13 orders event=cr peer=payments",
                "14 orders event=ss",
            ],
            &["53 payments event=sr", "61 payments event=ss"],
        ],
        true,
    );
    let p = visit(&a, 1);
    assert_eq!(p.skew, 50 * MS);
    assert_eq!(p.start, T0 + 3 * MS);
    assert_eq!(p.request_leg, Some(2 * MS));
    assert_eq!(p.response_leg, Some(2 * MS));
    assert!(p.adjusted);
    assert_eq!(p.critical, 8 * MS);
    assert_critical_sums_to_latency(&a);
    // Without correction the legs stay raw and signed.
    let raw = assemble_files(
        &[
            &[
                "0 orders event=sr",
                "1 orders event=cs peer=payments",
                "13 orders event=cr peer=payments",
                "14 orders event=ss",
            ],
            &["53 payments event=sr", "61 payments event=ss"],
        ],
        false,
    );
    assert_eq!(raw.visits[1].request_leg, Some(52 * MS));
    assert_eq!(raw.visits[1].response_leg, Some(-48 * MS));
}

#[test]
fn containment_and_estimated_legs() {
    let a = assemble_files(
        &[
            &[
                "0 gateway msg=a",
                "2 gateway msg=b",
                "15 gateway msg=c",
                "20 gateway msg=d",
            ],
            &["4 orders msg=x", "12 orders msg=y"],
        ],
        true,
    );
    let o = visit(&a, 1);
    assert_eq!(o.link, Link::Contains);
    assert!(!o.exact && !o.hop_exact);
    assert_eq!(o.request_leg, Some(2 * MS)); // 4 − 2
    assert_eq!(o.response_leg, Some(3 * MS)); // 15 − 12
    assert_eq!(visit(&a, 0).self_time, Some(12 * MS));
    assert_critical_sums_to_latency(&a);
}

#[test]
fn virtual_call_from_one_line() {
    let a = assemble_files(
        &[&[
            "0 orders event=sr",
            "50 orders peer=postgres duration=40",
            "60 orders event=ss",
        ]],
        true,
    );
    assert_eq!(a.chain, "orders");
    let pg = visit(&a, 1);
    assert!(pg.virtual_);
    assert_eq!(pg.start, T0 + 10 * MS);
    assert_eq!(pg.call, Some(40 * MS));
    assert_eq!(pg.processing, None);
    assert_eq!(pg.critical, 40 * MS);
    assert_eq!(visit(&a, 0).self_time, Some(20 * MS));
}

#[test]
fn incomplete_reasons_first_that_applies() {
    let no_root = assemble_files(
        &[&[
            "0 orders event=cs peer=postgres",
            "4 orders event=cr peer=postgres",
            "10 orders event=ss",
        ]],
        true,
    );
    assert_eq!(no_root.incomplete, Some(Incomplete::NoRoot));
    let unpaired = assemble_files(
        &[
            &[
                "0 gateway event=sr",
                "1 gateway event=cs peer=payments",
                "15 gateway event=ss",
            ],
            &["0 payments msg=elsewhere"],
        ],
        true,
    );
    // payments logs (so it is not virtual) but its only visit, [0, 0], ends
    // before the call's cs at 1 and hangs on gateway by containment; the
    // call has no cr and no claimant.
    assert_eq!(unpaired.incomplete, Some(Incomplete::UnpairedCall));
    let two_roots = assemble_files(
        &[
            &["0 gateway event=sr", "5 gateway event=ss"],
            &["0 admin event=sr", "9 admin event=ss"],
        ],
        true,
    );
    // Both start at 0; the shorter gateway sits inside admin (rule 2), so one
    // root. Disjoint visits that overlap no one would be two roots:
    assert_eq!(two_roots.incomplete, None);
    assert_eq!(two_roots.chain, "admin>gateway");
    let open = assemble_files(
        &[
            &[
                "0 gateway event=sr",
                "1 gateway event=cs peer=payments",
                "9 gateway event=cr peer=payments",
                "10 gateway event=ss",
            ],
            &["2 payments event=sr"],
        ],
        true,
    );
    assert_eq!(open.incomplete, Some(Incomplete::OpenVisit));
}

#[test]
fn chain_siblings_sort_by_start_then_text_and_escape() {
    let a = assemble_files(
        &[
            &[
                "0 gw event=sr",
                "1 gw event=cs peer=b",
                "1 gw event=cs peer=\"a b\"",
                "9 gw event=cr peer=b",
                "9 gw event=cr peer=\"a b\"",
                "10 gw event=ss",
            ],
            &["2 b event=sr", "8 b event=ss"],
            &["2 \"a b\" event=sr", "8 \"a b\" event=ss"],
        ],
        true,
    );
    assert_eq!(a.chain, "gw>{a\\ b,b}");
}

/// Random trees of synchronous calls: the critical path always sums to the
/// latency and self time never exceeds processing.
fn arb_tree() -> impl Strategy<Value = Vec<(usize, u32, u32, u32, u32)>> {
    // (parent index, offset into parent, request leg, work, response leg)
    prop::collection::vec((0usize..8, 0u32..5, 0u32..4, 1u32..20, 0u32..4), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn critical_path_sums_to_latency(tree in arb_tree()) {
        // Lay the calls out inside [0, 1000) of the root, each child inside
        // its parent's window, with cs/cr on the parent and sr/ss on the child.
        let mut files: Vec<Vec<String>> = vec![vec!["0 s0 event=sr".to_string()]];
        let mut windows: Vec<(u32, u32)> = vec![(0, 900)];
        for (i, &(p, off, leg, work, rleg)) in tree.iter().enumerate() {
            let p = p % windows.len();
            let (ps, pe) = windows[p];
            let cs = ps + 1 + off;
            let sr = cs + leg;
            let ss = sr + work;
            let cr = ss + rleg;
            if cr >= pe { continue; }
            let name = format!("s{}", i + 1);
            files[p].push(format!("{cs} s{p} event=cs peer={name}"));
            files[p].push(format!("{cr} s{p} event=cr peer={name}"));
            files.push(vec![format!("{sr} {name} event=sr"), format!("{ss} {name} event=ss")]);
            windows.push((sr, ss));
        }
        files[0].push("900 s0 event=ss".to_string());
        let refs: Vec<Vec<&str>> = files.iter().map(|f| f.iter().map(String::as_str).collect()).collect();
        let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
        let a = assemble_files(&slices, true);
        prop_assert_eq!(a.latency, 900 * MS);
        assert_critical_sums_to_latency(&a);
        for v in &a.visits {
            if let (Some(s), Some(p)) = (v.self_time, v.processing) {
                prop_assert!(s >= 0 && s <= p);
            }
        }
    }
}
