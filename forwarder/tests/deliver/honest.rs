//! Each case where a backend's answer could make the stage report what did not happen, as it was reported:
//! a redirect counted delivered, secrets following a redirect to another host, a partial success ignored, a
//! 413 for everything turned into one request per line, `Retry-After` as a date ignored. Every assertion is on
//! counts and on what the intakes received, never on time.

use std::time::Duration;

use serde_json::Value;

use super::intake::{Answer, Intake, IntakeConfig, Vendor};
use super::{destination, payload, setup, ship, ship_noting, DD_KEY, DT_TOKEN};

/// Every HTTP destination the test setup configures: its ledger name and the intake endpoint it reaches.
pub const DESTINATIONS: [(&str, Vendor); 3] = [
    ("dynatrace", Vendor::Dynatrace),
    ("otlp", Vendor::Otlp),
    ("datadog", Vendor::Datadog),
];

const OTLP_HEADER: (&str, &str) = ("x-otlp-key", "otlp-secret");

pub fn lines(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("line {i}")).collect()
}

/// The message of an entry as the vendor keeps it (a telemetry entry's metric or span name).
pub fn message(vendor: Vendor, entry: &Value) -> String {
    let key = match vendor {
        Vendor::Dynatrace => "content",
        Vendor::Datadog => "message",
        Vendor::Otlp | Vendor::DynatraceOtlp => "body",
        Vendor::OtlpMetrics | Vendor::DynatraceOtlpMetrics | Vendor::DatadogMetrics => "metric",
        Vendor::OtlpTraces | Vendor::DynatraceOtlpTraces => "name",
    };
    entry[key].as_str().unwrap_or_default().to_owned()
}

fn requests_to(intake: &Intake, vendor: Vendor) -> usize {
    intake
        .requests()
        .iter()
        .filter(|r| r.vendor == Some(vendor))
        .count()
}

/// Issue 15, item 1: a 301/302/303 used to become a bodiless GET whose 200 counted as delivered. Now no
/// redirect is followed: nothing reaches the other intake, each batch costs one request, and its lines are
/// failed, so that the source keeps them until the URL is fixed.
#[tokio::test]
async fn a_redirect_is_never_counted_delivered() {
    let elsewhere = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    for code in [301, 302, 303, 307, 308] {
        let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
        for (_, vendor) in DESTINATIONS {
            let location = format!("{}{}", elsewhere.base_url(), vendor.path());
            intake.script(vendor, vec![Answer::redirect(code, location); 3]);
        }
        let setup = setup(&intake, &[]);
        let (summary, ledger, errors) = ship_noting(
            &setup,
            vec![payload("/aws/lambda/f", lines(10))],
            Duration::from_secs(30),
        )
        .await;
        for (name, vendor) in DESTINATIONS {
            let d = destination(&ledger, name);
            assert_eq!(
                (d.delivered, d.failed, d.rejected, d.requests),
                (0, 10, 0, 1),
                "{code} {name}: {ledger}"
            );
            assert_eq!(requests_to(&intake, vendor), 1, "{code} {name}: not retried");
        }
        assert_eq!((summary.delivered, summary.failed_events), (0, 10), "{summary}");
        assert_eq!(ledger.retryable_lines(), 10, "the source keeps them");
        assert!(
            summary.has_failures(),
            "a run that delivered nothing does not exit 0"
        );
        let named = errors
            .iter()
            .filter(|e| e.contains(&format!("HTTP {code}")) && e.contains(&elsewhere.base_url()))
            .count();
        assert_eq!(
            named, 3,
            "each destination's error names the redirect's host: {errors:#?}"
        );
        intake.shutdown().await;
    }
    assert!(elsewhere.requests().is_empty(), "{:#?}", elsewhere.requests());
}

/// Issue 15, item 2: on a 307/308 to another host, DD-API-KEY and the OTEL_EXPORTER_OTLP_HEADERS went along.
/// The configured intake sees every secret; the host the redirect names sees no request at all, so none of
/// its headers.
#[tokio::test]
async fn secrets_never_reach_the_host_a_redirect_names() {
    let elsewhere = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    let mut config = IntakeConfig::new(DT_TOKEN, DD_KEY);
    config.otlp_header = Some((OTLP_HEADER.0.into(), OTLP_HEADER.1.into()));
    let intake = Intake::start(config).await;
    for code in [307, 308] {
        for (_, vendor) in DESTINATIONS {
            let location = format!("{}{}", elsewhere.base_url(), vendor.path());
            intake.script(vendor, vec![Answer::redirect(code, location)]);
        }
        let headers = format!("{}={}", OTLP_HEADER.0, OTLP_HEADER.1);
        let setup = setup(&intake, &[("OTEL_EXPORTER_OTLP_HEADERS", headers.as_str())]);
        let (summary, _) = ship(
            &setup,
            vec![payload("/aws/lambda/f", lines(3))],
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(summary.delivered, 0, "{code}: {summary}");
    }
    let sent = intake.requests();
    let carried = |header: &str, value: &str| {
        sent.iter()
            .any(|r| r.headers.get(header).is_some_and(|v| v.contains(value)))
    };
    assert!(carried("dd-api-key", DD_KEY), "the configured intake got the key");
    assert!(carried(OTLP_HEADER.0, OTLP_HEADER.1));
    assert!(carried("authorization", DT_TOKEN));
    let leaked: Vec<_> = elsewhere.requests().into_iter().map(|r| r.headers).collect();
    assert!(leaked.is_empty(), "the other host saw: {leaked:#?}");
    intake.shutdown().await;
    elsewhere.shutdown().await;
}

/// Issue 15, item 3: an OTLP answer with `partial_success.rejected_log_records: 5`, and Dynatrace's 200, were
/// counted all delivered. The OTLP refusal counts 5 rejected and what the intake kept is what the ledger
/// says was delivered; Dynatrace's 200 does not say how many it refused, so the request counts rejected
/// whole. A line refused by any destination is a rejected event of the summary.
#[tokio::test]
async fn a_partial_success_counts_its_refused_lines() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    intake.script(Vendor::Otlp, vec![Answer::partial(5)]);
    intake.script(Vendor::Dynatrace, vec![Answer::partial(0)]);
    let setup = setup(&intake, &[]);
    let (summary, ledger, errors) = ship_noting(
        &setup,
        vec![payload("/aws/lambda/f", lines(1000))],
        Duration::from_secs(30),
    )
    .await;
    let otlp = destination(&ledger, "otlp");
    assert_eq!(
        (otlp.delivered, otlp.rejected, otlp.failed, otlp.requests),
        (995, 5, 0, 1),
        "{ledger}"
    );
    assert_eq!(intake.kept_entries(Vendor::Otlp).len(), 995);
    let dynatrace = destination(&ledger, "dynatrace");
    assert_eq!((dynatrace.delivered, dynatrace.rejected), (0, 1000), "{ledger}");
    assert!(intake.kept_entries(Vendor::Dynatrace).is_empty());
    let datadog = destination(&ledger, "datadog");
    assert_eq!(datadog.delivered, 1000, "{ledger}");
    assert_eq!(
        (summary.delivered, summary.failed_events, summary.rejected_events),
        (0, 0, 1000),
        "{summary}"
    );
    assert_eq!(ledger.retryable_lines(), 0, "a retry cannot undo a refusal");
    for name in ["otlp", "dynatrace"] {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(name) && e.contains("accepted only part")),
            "{name}: {errors:#?}"
        );
    }
}

/// Issue 15, item 4: a 413 for everything split down to single entries, one request each (1,999 requests
/// for 1,000 lines). Splitting now stops at `TRACEHOSE_SPLIT_DEPTH` halvings (4): at most 31 requests per
/// batch, the lines counted rejected, in the ledger and the summary alike.
#[tokio::test]
async fn a_413_for_everything_costs_at_most_31_requests_a_batch() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    for (_, vendor) in DESTINATIONS {
        intake.script(vendor, vec![Answer::status(413); 100]);
    }
    let setup = setup(&intake, &[]);
    let (summary, ledger) = ship(
        &setup,
        vec![payload("/aws/lambda/f", lines(1000))],
        Duration::from_secs(60),
    )
    .await;
    // 1,000 short lines are one batch for each destination.
    for (name, vendor) in DESTINATIONS {
        let d = destination(&ledger, name);
        assert_eq!(
            (d.delivered, d.failed, d.rejected, d.requests),
            (0, 0, 1000, 31),
            "{name}: {ledger}"
        );
        assert_eq!(requests_to(&intake, vendor), 31, "{name}");
    }
    assert_eq!(
        (summary.failed_events, summary.rejected_events),
        (0, 1000),
        "the summary says what the ledger says: {summary}"
    );
    assert_eq!(ledger.retryable_lines(), 0);
    intake.shutdown().await;
}

/// 20,000 lines had cost 9,427 requests at 200 s and were still going. Datadog's batches hold 1,000 entries:
/// 20 batches, 31 requests each, 620 in all; with `TRACEHOSE_SPLIT_DEPTH=0`, one request a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_lines_refused_with_413_cost_620_requests() {
    for (depth, per_batch) in [("4", 31), ("0", 1)] {
        let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
        intake.script(Vendor::Datadog, vec![Answer::status(413); 700]);
        let setup = setup(&intake, &[("TRACEHOSE_SPLIT_DEPTH", depth)]);
        let (summary, ledger) = ship(
            &setup,
            vec![payload("/aws/lambda/f", lines(20_000))],
            Duration::from_secs(120),
        )
        .await;
        let d = destination(&ledger, "datadog");
        assert_eq!(
            (d.delivered, d.failed, d.rejected, d.requests),
            (0, 0, 20_000, 20 * per_batch),
            "depth {depth}: {ledger}"
        );
        assert_eq!(requests_to(&intake, Vendor::Datadog) as u64, 20 * per_batch);
        assert_eq!(destination(&ledger, "otlp").delivered, 20_000);
        assert_eq!((summary.failed_events, summary.rejected_events), (0, 20_000));
        intake.shutdown().await;
    }
}

/// Issue 14: `Retry-After` as an HTTP-date was ignored, and the client retried on its own backoff. A wait in
/// either form that ends past the deadline now ends the send at once (one request, lines failed); a short
/// one is waited out and the retry delivers.
#[tokio::test]
async fn retry_after_in_either_form_is_honoured() {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    intake.script(
        Vendor::Datadog,
        vec![Answer::status(503).retry_after_date(3600), Answer::pass()],
    );
    intake.script(
        Vendor::Otlp,
        vec![Answer::status(429).retry_after(3600), Answer::pass()],
    );
    let far = setup(&intake, &[]);
    let (_, ledger) = ship(
        &far,
        vec![payload("/aws/lambda/f", lines(10))],
        Duration::from_secs(20),
    )
    .await;
    for name in ["datadog", "otlp"] {
        let d = destination(&ledger, name);
        assert_eq!(
            (d.delivered, d.failed, d.requests),
            (0, 10, 1),
            "{name} waits as told, past the deadline: {ledger}"
        );
    }
    assert_eq!(destination(&ledger, "dynatrace").delivered, 10);
    intake.shutdown().await;

    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    intake.script(
        Vendor::Datadog,
        vec![Answer::status(503).retry_after_date(1), Answer::pass()],
    );
    intake.script(
        Vendor::Otlp,
        vec![Answer::status(429).retry_after(1), Answer::pass()],
    );
    let near = setup(&intake, &[]);
    let (_, ledger) = ship(
        &near,
        vec![payload("/aws/lambda/f", lines(10))],
        Duration::from_secs(20),
    )
    .await;
    for name in ["datadog", "otlp"] {
        let d = destination(&ledger, name);
        assert_eq!(
            (d.delivered, d.retried, d.requests),
            (10, 10, 2),
            "{name}: {ledger}"
        );
    }
    intake.shutdown().await;
}
