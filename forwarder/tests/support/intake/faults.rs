//! Fault injection: a scripted queue of answers, then either the vendor's normal behaviour or a seeded random
//! mix of failures. Everything here is decided per request before the answer is written.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// The `Retry-After` an injected status carries, in either form RFC 9110 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>`, this many seconds after the moment of answering (to the second, as the
    /// format allows).
    DateIn(u64),
}

/// How the intake answers one request instead of (or on top of) its normal behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The vendor's normal behaviour (contract checks, then its success or refusal), after `delay`.
    Pass { delay: Option<Duration> },
    /// This status regardless of the request, after `delay`, with `Retry-After` when given.
    /// The body is still read and checked, so contract violations are recorded either way.
    Status {
        code: u16,
        retry_after: Option<RetryAfter>,
        delay: Option<Duration>,
    },
    /// A redirect (`code` in 3xx) to `location`, as a proxy, a load balancer or a moved intake answers.
    Redirect { code: u16, location: String },
    /// The vendor's partial success: OTLP answers 200 with `partial_success.rejected_log_records` = `refused`
    /// (at most the records the request held) and keeps the others; Dynatrace answers its documented 200,
    /// which does not say how many it refused, so the intake keeps none of that request. Datadog has no
    /// partial success: its normal answer. Which records an OTLP backend refused is not said either; the
    /// intake keeps the first ones, so that what it kept is what a client counting the last ones refused
    /// counts delivered.
    Partial { refused: usize },
    /// Read the body, then never answer: the connection stays open until the client gives up. Recorded as
    /// received but not acknowledged, like a reset.
    Hang,
    /// Close the connection after reading the whole body, without an answer: the client cannot know
    /// whether the data counts, so the request is recorded as received but not acknowledged.
    Reset,
}

impl Answer {
    pub fn pass() -> Self {
        Answer::Pass { delay: None }
    }

    pub fn status(code: u16) -> Self {
        Answer::Status {
            code,
            retry_after: None,
            delay: None,
        }
    }

    pub fn redirect(code: u16, location: impl Into<String>) -> Self {
        Answer::Redirect {
            code,
            location: location.into(),
        }
    }

    pub fn partial(refused: usize) -> Self {
        Answer::Partial { refused }
    }

    /// Adds `Retry-After: <seconds>`; only on `Status`.
    pub fn retry_after(self, seconds: u64) -> Self {
        self.with_retry_after(RetryAfter::Seconds(seconds))
    }

    /// Adds `Retry-After: <HTTP-date>` that many seconds ahead; only on `Status`.
    pub fn retry_after_date(self, seconds: u64) -> Self {
        self.with_retry_after(RetryAfter::DateIn(seconds))
    }

    fn with_retry_after(mut self, value: RetryAfter) -> Self {
        if let Answer::Status { retry_after, .. } = &mut self {
            *retry_after = Some(value);
        }
        self
    }

    /// Waits this long before answering; only on `Pass` and `Status`.
    pub fn delay(mut self, wait: Duration) -> Self {
        match &mut self {
            Answer::Pass { delay } | Answer::Status { delay, .. } => *delay = Some(wait),
            Answer::Redirect { .. } | Answer::Partial { .. } | Answer::Hang | Answer::Reset => {}
        }
        self
    }

    pub(crate) fn wait(&self) -> Option<Duration> {
        match self {
            Answer::Pass { delay } | Answer::Status { delay, .. } => *delay,
            Answer::Redirect { .. } | Answer::Partial { .. } | Answer::Hang | Answer::Reset => None,
        }
    }
}

/// The random mode: each request fails with probability `fraction`, in one of several ways drawn uniformly.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomFaults {
    pub fraction: f64,
    pub seed: u64,
    /// `Retry-After` sent with the injected 429s.
    pub retry_after: u64,
    /// The "slow" fault waits this long and then answers 504, as a gateway that gave up would.
    pub slow: Duration,
    /// Bodies larger than this (uncompressed) can also draw a 413, so a client's splitting gets exercised.
    pub too_large_above: usize,
}

impl RandomFaults {
    pub fn new(fraction: f64, seed: u64) -> Self {
        RandomFaults {
            fraction,
            seed,
            retry_after: 1,
            slow: Duration::from_millis(200),
            too_large_above: 1_000_000,
        }
    }
}

/// What was injected for one vendor, so a test can reconcile what it sent with what was accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injected {
    /// Injected statuses (scripted or random), by code.
    pub statuses: BTreeMap<u16, u64>,
    /// Connections closed after the body was read: data received but not acknowledged.
    pub resets: u64,
    /// Answers delayed on purpose (whatever the status).
    pub delayed: u64,
    /// Partial successes answered.
    pub partial: u64,
    /// Requests left without an answer until the client gave up.
    pub hangs: u64,
}

impl Injected {
    /// Requests that the client saw fail because of an injection (delays and partial successes do not
    /// count).
    pub fn failures(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.resets + self.hangs
    }

    pub(crate) fn count(&mut self, answer: &Answer) {
        if answer.wait().is_some() {
            self.delayed += 1;
        }
        match answer {
            Answer::Status { code, .. } | Answer::Redirect { code, .. } => {
                *self.statuses.entry(*code).or_default() += 1
            }
            Answer::Partial { .. } => self.partial += 1,
            Answer::Hang => self.hangs += 1,
            Answer::Reset => self.resets += 1,
            Answer::Pass { .. } => {}
        }
    }
}

/// One vendor's fault plan: the script first, then the random mode if set, else normal behaviour.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    script: VecDeque<Answer>,
    random: Option<(RandomFaults, SplitMix64)>,
    pub(crate) injected: Injected,
}

impl Plan {
    pub(crate) fn set_script(&mut self, answers: Vec<Answer>) {
        self.script = answers.into();
    }

    pub(crate) fn set_random(&mut self, faults: Option<RandomFaults>) {
        self.random = faults.map(|f| {
            let rng = SplitMix64(f.seed);
            (f, rng)
        });
    }

    /// The answer for the next request, `None` for normal behaviour. `body_len` is the uncompressed size.
    pub(crate) fn next(&mut self, body_len: usize) -> Option<Answer> {
        let answer = match self.script.pop_front() {
            Some(answer) => Some(answer),
            None => self
                .random
                .as_mut()
                .and_then(|(faults, rng)| draw(faults, rng, body_len)),
        };
        if let Some(answer) = &answer {
            self.injected.count(answer);
        }
        answer.filter(|a| *a != Answer::pass())
    }
}

fn draw(faults: &RandomFaults, rng: &mut SplitMix64, body_len: usize) -> Option<Answer> {
    // Always two draws per request, so the sequence of decisions depends on the seed alone.
    let fails = rng.unit() < faults.fraction;
    let kind = rng.next();
    if !fails {
        return None;
    }
    let kinds = if body_len > faults.too_large_above { 6 } else { 5 };
    Some(match kind % kinds {
        0 => Answer::status(429).retry_after(faults.retry_after),
        1 => Answer::status(500),
        2 => Answer::status(503),
        3 => Answer::status(504).delay(faults.slow),
        4 => Answer::Reset,
        _ => Answer::status(413),
    })
}

/// A tiny deterministic generator: the tests need reproducible draws, not quality randomness, and this
/// avoids a dependency.
#[derive(Debug, Default, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
