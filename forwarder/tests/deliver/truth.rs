//! Random mixes of backend answers, per request: 2xx with and without partial success, 3xx, 413, 429 and 503
//! with `Retry-After` in either form, 500, resets, hangs. Whatever the mix, for every destination the ledger
//! accounts for every line, what the intake kept is exactly what the ledger counts delivered, duplicates come
//! only from retries, nothing reaches the host a redirect names, and the summary agrees with the ledger.
//!
//! Hangs end by the request timeout (shortened here), not by the deadline, which is far: so no request is
//! cut short while its answer is on the way, and the equalities hold exactly.

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;

use super::honest::{message, DESTINATIONS};
use super::intake::{Answer, Intake, IntakeConfig};
use super::{destination, payload, setup, ship, DD_KEY, DT_TOKEN};

/// How long a request may wait for its answer: what a hang costs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// One scripted answer, before the redirect target is known.
#[derive(Debug, Clone)]
enum Kind {
    Pass,
    Partial(usize),
    Redirect(u16),
    TooLarge,
    BusySeconds(u64),
    BusyDate(u64),
    Error,
    Reset,
    Hang,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Pass),
        2 => (0usize..6).prop_map(Kind::Partial),
        1 => prop::sample::select(vec![301u16, 302, 303, 307, 308]).prop_map(Kind::Redirect),
        2 => Just(Kind::TooLarge),
        1 => (0u64..2).prop_map(Kind::BusySeconds),
        1 => (0u64..2).prop_map(Kind::BusyDate),
        1 => Just(Kind::Error),
        1 => Just(Kind::Reset),
        1 => Just(Kind::Hang),
    ]
}

fn answer(kind: &Kind, redirect_to: &str) -> Answer {
    match kind {
        Kind::Pass => Answer::pass(),
        Kind::Partial(refused) => Answer::partial(*refused),
        Kind::Redirect(code) => Answer::redirect(*code, redirect_to),
        Kind::TooLarge => Answer::status(413),
        Kind::BusySeconds(seconds) => Answer::status(429).retry_after(*seconds),
        Kind::BusyDate(seconds) => Answer::status(503).retry_after_date(*seconds),
        Kind::Error => Answer::status(500),
        Kind::Reset => Answer::Reset,
        Kind::Hang => Answer::Hang,
    }
}

async fn one_case(lines: usize, scripts: [Vec<Kind>; 3]) -> Result<(), TestCaseError> {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    let elsewhere = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    for ((_, vendor), script) in DESTINATIONS.iter().zip(&scripts) {
        let to = format!("{}{}", elsewhere.base_url(), vendor.path());
        intake.script(*vendor, script.iter().map(|k| answer(k, &to)).collect());
    }
    // Small batches, so that one run has several, and both retries and splits happen.
    let mut setup = setup(&intake, &[("TRACEHOSE_BATCH_MAX_BYTES", "2048")]);
    for d in &mut setup.destinations.http {
        d.destination.timeout = REQUEST_TIMEOUT;
    }
    let messages: Vec<String> = (0..lines).map(|i| format!("truth line {i}")).collect();
    let (summary, ledger) = ship(
        &setup,
        vec![payload("/aws/lambda/f", messages)],
        Duration::from_secs(120),
    )
    .await;

    for (name, vendor) in DESTINATIONS {
        let d = destination(&ledger, name);
        prop_assert_eq!(d.received, lines as u64, "{}: {}", name, ledger);
        prop_assert_eq!(
            d.delivered + d.failed + d.rejected,
            d.received,
            "{}: every line ends somewhere: {}",
            name,
            ledger
        );
        let kept: Vec<String> = intake
            .kept_entries(vendor)
            .iter()
            .map(|e| message(vendor, e))
            .collect();
        let distinct: HashSet<&String> = kept.iter().collect();
        prop_assert_eq!(
            distinct.len() as u64,
            d.delivered,
            "{}: what the intake kept is what the ledger says was delivered: {}",
            name,
            ledger
        );
        prop_assert!(
            (kept.len() - distinct.len()) as u64 <= d.retried,
            "{}: duplicates only from retries: {}",
            name,
            ledger
        );
        let sent = intake
            .requests()
            .iter()
            .filter(|r| r.vendor == Some(vendor))
            .count();
        prop_assert_eq!(d.requests, sent as u64, "{}: requests counted as sent", name);
    }
    prop_assert!(
        elsewhere.requests().is_empty(),
        "a redirect was followed: {:?}",
        elsewhere.requests()
    );
    prop_assert_eq!(
        summary.events_in,
        summary.delivered + summary.failed_events + summary.rejected_events,
        "{}",
        summary
    );
    prop_assert_eq!(summary.failed_events, ledger.retryable_lines());
    prop_assert_eq!(
        summary.rejected_events,
        ledger.failed_lines() - ledger.retryable_lines()
    );
    prop_assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    intake.shutdown().await;
    elsewhere.shutdown().await;
    Ok(())
}

proptest! {
    // Each case runs a real stage against real sockets; a few dozen mixes cover the answers' combinations
    // without making CI wait (a hang costs the request timeout).
    #![proptest_config(ProptestConfig { cases: 20, ..ProptestConfig::default() })]

    #[test]
    fn what_the_intake_kept_is_what_the_ledger_says(
        lines in 1usize..80,
        dynatrace in prop::collection::vec(kind(), 0..8),
        otlp in prop::collection::vec(kind(), 0..8),
        datadog in prop::collection::vec(kind(), 0..8),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(one_case(lines, [dynatrace, otlp, datadog]))?;
    }
}
