//! The `TRACEHOSE_REDACT` presets: patterns for what most often leaks into logs. A match keeps its context
//! (the key, the quotes, the header name) and only the secret itself becomes a label, so a line still says
//! what was there.
//!
//! Every pattern is for the `regex` crate, whose search is linear in the text. Replacing every match also
//! needs each search to stop soon after its match, which holds when no alternative that a match outranks
//! can stay alive for long; the quoted values below are therefore read exactly at their own escaping level,
//! so that each ends at the next quote of that level, and the few unbounded runs cannot hold other matches.

/// The presets, by name. Each has one or more patterns; in a pattern, the capture groups whose names start
/// with [`SECRET_GROUP`] hold the secret (one of them takes part in any match), and a pattern without such
/// groups is a secret as a whole.
pub(super) fn preset(name: &str) -> Option<Vec<(String, &'static str)>> {
    Some(match name {
        "email" => vec![(
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}".to_owned(),
            "[email]",
        )],
        // Written out rather than as `(?:octet\.){3}`, which measured 40 times slower on lines without an
        // address: the regex crate then finds no literal (the dots) to skip to.
        "ipv4" => vec![(
            format!(r"(?-u:\b){OCTET}\.{OCTET}\.{OCTET}\.{OCTET}(?-u:\b)"),
            "[ipv4]",
        )],
        "secrets" => vec![(secrets(), REDACTED), (PRIVATE_KEY.to_owned(), REDACTED)],
        _ => return None,
    })
}

pub(super) const SECRET_GROUP: &str = "s_";

const OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";

const REDACTED: &str = "[redacted]";

/// A PEM private key block. Its own pattern: its body is the one part of any preset that runs until a fixed
/// end marker, and alone it cannot hold back another pattern's matches.
const PRIVATE_KEY: &str = r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?s:.)*?-----END[A-Z ]*PRIVATE KEY-----";

/// Keys whose value is a secret wherever they are in a longer key (`db_password`, `aws_secret_access_key`,
/// `X-Amz-Security-Token`, `clientSecret`), and short ones that must start a word or follow `_` (`pass`,
/// `MYSQL_PWD`, `auth`), so that `bypass` and `compass` are not keys. Each word is written in the cases keys
/// are (`password`, `Password`, `PASSWORD`) rather than case-insensitively: the few literals that makes
/// let the regex crate skip to candidates, where every casing of every word would make it read each byte.
fn keys() -> String {
    let long = [
        cased(&["pass"]) + "(?:word|wd|phrase|WORD|WD|PHRASE)",
        cased(&["secret"]),
        cased(&["token"]),
        cased(&["api", "key"]),
        cased(&["access", "key"]),
        cased(&["private", "key"]),
        cased(&["credential"]) + "(?:s|S)?",
        cased(&["signature"]),
        cased(&["session", "id"]),
    ];
    let short = [cased(&["pwd"]), cased(&["pass"]), cased(&["auth"])];
    format!(
        "(?:{})(?:[_.-]?(?:{}[_-]?)?{})?|(?:(?-u:\\b)|_)(?:{})",
        long.join("|"),
        cased(&["access"]),
        cased(&["key"]),
        short.join("|")
    )
}

/// `api_key` as `[Aa]pi[_-]?[Kk]ey|API[_-]?KEY`: lowercase, capitalised or camel case, or upper case, with the
/// parts joined by `_`, `-` or nothing.
fn cased(parts: &[&str]) -> String {
    let capitalised: Vec<String> = parts
        .iter()
        .map(|p| {
            let mut chars = p.chars();
            match chars.next() {
                Some(first) => format!("[{}{first}]{}", first.to_ascii_uppercase(), chars.as_str()),
                None => String::new(),
            }
        })
        .collect();
    let upper: Vec<String> = parts.iter().map(|p| p.to_ascii_uppercase()).collect();
    format!("(?:{}|{})", capitalised.join("[_-]?"), upper.join("[_-]?"))
}

/// Between a key and its value: the key's closing quote (escaped, in JSON inside a string), then `=`, `:`,
/// `:=` or `=>`, with spacing.
const SEPARATOR: &str = r#"(?:\\*["'])?\s*(?::=|=>|[:=])\s*"#;

/// A quoted value, whole whatever it holds (spaces, escaped quotes): `"..."` and `'...'` as JSON and most
/// languages escape them; `\"...\"`, a JSON string inside a JSON string, with the inner escapes doubled; and
/// deeper levels (`\\\"...\\\"`), up to the next escaped quote.
const QUOTED: &str = r#""(?P<s_Tq>(?:[^"\\]|\\(?s:.))+)"|'(?P<s_Ta>(?:[^'\\]|\\(?s:.))+)'|\\"(?P<s_Te>(?:[^"\\]|\\[^"\\]|\\\\\\["\\]|\\\\[^"\\])+)\\"|\\\\+"(?P<s_Td>(?:[^"\\]|\\+[^"\\])+)\\+""#;

/// An unquoted value: up to spacing, a quote, or what ends a value in JSON, query strings and `k=v, k=v`
/// lists (`,;&}]`).
const UNQUOTED: &str = r#"(?P<s_Tu>(?:[^\s"'\\,;&}\]]|\\[^\s"'])+)"#;

/// `Authorization`'s scheme stays: the line still says how the request was authenticated.
const SCHEMES: &str = r"(?i:bearer|basic|digest|negotiate|ntlm|token|api-token|apikey|aws4-hmac-sha256)\s+";

/// The longest JWT header segment read: real ones are a few dozen bytes; bounding it keeps a long run of
/// base64 from holding back the search for what follows.
const JWT_HEADER_MAX: usize = 512;

fn secrets() -> String {
    // Python's `b'...'` and `r'...'` literals are quoted values too.
    let quoted = |tag: &str| format!("[bBrRuU]{{0,2}}(?:{})", QUOTED.replace("_T", &format!("_{tag}")));
    let unquoted = |tag: &str| UNQUOTED.replace("_T", &format!("_{tag}"));
    let alternatives = [
        format!(
            "(?:{})?{}{SEPARATOR}(?:{}|(?:{SCHEMES})?{})",
            cased(&["proxy-"]),
            cased(&["authorization"]),
            quoted("h"),
            unquoted("h")
        ),
        // A cookie header's value is all secret: every name=value pair, to the end of the line.
        format!(
            r#"(?:{})?{}{SEPARATOR}(?:{}|(?P<s_cu>[^\r\n"']+))"#,
            cased(&["set-"]),
            cased(&["cookie"]),
            quoted("c")
        ),
        format!("(?:{}){SEPARATOR}(?:{}|{})", keys(), quoted("k"), unquoted("k")),
        // URL userinfo: `scheme://user:password@host`.
        r"://[^\s/?#@:]*:(?P<s_url>[^\s/?#@]+)@".to_owned(),
        // A bearer token or a JWT without a key before it; a bearer token of at least 16 characters, so that
        // prose ("the bearer returned") is not taken for one.
        format!(
            r"{}\s+(?P<s_bearer>[A-Za-z0-9._~+/-]{{16,}}=*)",
            cased(&["bearer"])
        ),
        format!(r"(?P<s_jwt>eyJ[A-Za-z0-9_-]{{8,{JWT_HEADER_MAX}}}\.eyJ[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]*)"),
        // AWS access key ids: not secret on their own, but half of a credential pair.
        r"(?-u:\b)(?P<s_akid>(?:AKIA|ASIA)[A-Z0-9]{16})(?-u:\b)".to_owned(),
    ];
    alternatives.join("|")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::deliver::Filter;

    fn redacting(presets: &str) -> Filter {
        Filter::from_lookup(&|name| (name == "TRACEHOSE_REDACT").then(|| presets.to_owned())).unwrap()
    }

    fn scrub(line: &str) -> String {
        redacting("email,secrets,ipv4").scrub(line).into_owned()
    }

    /// Issue 15: each shape that went out unchanged, and the shapes around them an attacker would try.
    #[test]
    fn secrets_in_every_shape_they_are_logged() {
        for (line, want) in [
            // JSON logged inside a string, at one and two levels of escaping.
            (
                r#"{"body":"{\"password\":\"s3cr3t\",\"api_key\":\"AKIAIOSFODNN7EXAMPLE\",\"user\":\"bob\"}"}"#,
                r#"{"body":"{\"password\":\"[redacted]\",\"api_key\":\"[redacted]\",\"user\":\"bob\"}"}"#,
            ),
            (
                r#"{\"token\":\"a\\\"b c\\\\\",\"n\":1}"#,
                r#"{\"token\":\"[redacted]\",\"n\":1}"#,
            ),
            (
                r#"{\"msg\":\"{\\\"secret\\\":\\\"deep value\\\"}\"}"#,
                r#"{\"msg\":\"{\\\"secret\\\":\\\"[redacted]\\\"}\"}"#,
            ),
            // AWS credentials, in any key that ends in one of the words.
            (
                "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY region=eu-west-1",
                "aws_secret_access_key=[redacted] region=eu-west-1",
            ),
            (
                "export AWS_SESSION_TOKEN='IQoJb3JpZ2luX2VjEJr//////////wEaCWV1' && run",
                "export AWS_SESSION_TOKEN='[redacted]' && run",
            ),
            ("using key AKIAIOSFODNN7EXAMPLE now", "using key [redacted] now"),
            // Quoted values with spaces and escaped quotes, in double and single quotes.
            (
                r#"password = "correct horse battery staple" ok"#,
                r#"password = "[redacted]" ok"#,
            ),
            (
                r#"{"password": "say \"hi\" now", "user": "bob"}"#,
                r#"{"password": "[redacted]", "user": "bob"}"#,
            ),
            (
                r"{'password': 'it\'s mine', 'user': 'bob'}",
                r"{'password': '[redacted]', 'user': 'bob'}",
            ),
            (
                "{'password': b'raw bytes', 'user': bob}",
                "{'password': b'[redacted]', 'user': bob}",
            ),
            // `key: value`, `key=value`, `key := value`, `key => value`, numbers, and the short keys.
            ("pass: hunter2 next", "pass: [redacted] next"),
            ("pwd=hunter2&user=bob", "pwd=[redacted]&user=bob"),
            ("MYSQL_PWD=x1 DB_PASS=x2 dbPassword: x3", "MYSQL_PWD=[redacted] DB_PASS=[redacted] dbPassword: [redacted]"),
            (r#"{"pin":1,"passwd":12345}"#, r#"{"pin":1,"passwd":[redacted]}"#),
            ("clientSecret := abc, auth => def;", "clientSecret := [redacted], auth => [redacted];"),
            ("x-api-key: k-123 X-Auth-Token: t-456", "x-api-key: [redacted] X-Auth-Token: [redacted]"),
            // Headers: the scheme stays, a quoted value goes whole, cookies go to the end of the line.
            (
                "Authorization: Bearer abc.def-ghi\nnext line",
                "Authorization: Bearer [redacted]\nnext line",
            ),
            ("Proxy-Authorization: Basic dXNlcjpwYXNz", "Proxy-Authorization: Basic [redacted]"),
            (r#"{"Authorization": "Basic dXNlcjpwYXNz"}"#, r#"{"Authorization": "[redacted]"}"#),
            ("authorization=dt0c01.ABC.DEF", "authorization=[redacted]"),
            (
                "Cookie: session=abc123; theme=dark\nHost: x",
                "Cookie: [redacted]\nHost: x",
            ),
            (
                "Set-Cookie: sid=xyz; Path=/; HttpOnly",
                "Set-Cookie: [redacted]",
            ),
            (r#"{"cookie": "sid=1; t=2", "n": 1}"#, r#"{"cookie": "[redacted]", "n": 1}"#),
            // URLs: userinfo and query parameters.
            (
                "connecting to redis://default:s3cr3t@cache:6379/0",
                "connecting to redis://default:[redacted]@cache:6379/0",
            ),
            (
                "GET /login?user=bob&password=hunter2&next=/home 302",
                "GET /login?user=bob&password=[redacted]&next=/home 302",
            ),
            (
                "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261121&X-Amz-Security-Token=IQo&X-Amz-Signature=5d67",
                "https://b.s3.amazonaws.com/k?X-Amz-Credential=[redacted]&X-Amz-Security-Token=[redacted]&X-Amz-Signature=[redacted]",
            ),
            // Tokens without a key, and a private key block.
            ("sent Bearer abcdefgh12345678== upstream", "sent Bearer [redacted] upstream"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
                "jwt [redacted] end",
            ),
            (
                "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY----- loaded",
                "key: [redacted] loaded",
            ),
            // The other presets.
            ("user bob@example.com from 10.0.0.255", "user [email] from [ipv4]"),
        ] {
            assert_eq!(scrub(line), want, "{line}");
        }
    }

    /// What merely looks like a secret key stays: a redaction that eats trace ids or counters is a bug too.
    #[test]
    fn look_alikes_stay() {
        for line in [
            "bypass=true compass: north passed: 3 tokens=5 author=bob",
            "secret_name=prod/db token_type: bearer expires_in=3600 password_policy=strict",
            "the Bearer scheme, and the bearer returned",
            "trace_id=0af7651916cd43dd8448eb211c80319c span_id=00f067aa0ba902b7 request_id=8f507cfc",
            "version 1.2.3.4567 and 256.1.1.1",
            "the password was wrong",
            "AKIAIOSFODNN7EXAMPLEX and xAKIAIOSFODNN7EXAMPLE",
            "https://example.com/path?page=2 and http://host:8080/",
        ] {
            assert_eq!(scrub(line), line);
        }
    }

    /// Presets apply in the order listed: an e-mail address first turns a URL's password into `[email]`,
    /// which hides it all the same.
    #[test]
    fn order_of_presets() {
        let url = "postgres://app:s3cr3t@db.internal.example/orders";
        assert_eq!(
            redacting("email,secrets").scrub(url),
            "postgres://app:[email]/orders"
        );
        assert_eq!(
            redacting("secrets,email").scrub(url),
            "postgres://app:[redacted]@db.internal.example/orders"
        );
    }

    /// Every search stays linear in the line: a mebibyte of each shape's opening, with a secret after it that
    /// must still go. A quadratic search would not finish.
    #[test]
    fn hostile_lines_of_a_mebibyte() {
        const MIB: usize = 1 << 20;
        let filter = redacting("email,secrets,ipv4");
        for unit in [
            "password=",
            "password=\"",
            "password=\\\"",
            "password=\\\\\\\"",
            "password='",
            "\"password\":\"",
            "password=\" token=x ",
            "password=\\\"token=x ",
            "\"password\":\"\\\"token\\\":\\\"v\\\" ",
            "pass:",
            "_pwd ",
            "Authorization: Bearer ",
            "authorization:",
            "Cookie:",
            "Set-Cookie: a=\"",
            "https://u:",
            "a://",
            "Bearer ",
            "eyJ",
            "eyJabcdefghij.",
            "AKIA",
            "-----BEGIN PRIVATE KEY-----",
            "a@",
            "a@b.",
            "1.1.1.",
            "\\",
            "\"",
            "'",
        ] {
            let line = format!("{} password=hunter2", unit.repeat(MIB / unit.len()));
            let scrubbed = filter.scrub(&line);
            assert!(!scrubbed.contains("hunter2"), "{unit}");
        }
        let spaces = format!("password{}= hunter2", " ".repeat(MIB));
        assert!(!filter.scrub(&spaces).contains("hunter2"));
        let value = format!("password=\"{}\"", "x ".repeat(MIB / 2));
        assert_eq!(filter.scrub(&value), "password=\"[redacted]\"");
    }
}
