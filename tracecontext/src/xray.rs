use crate::{SpanId, TraceId};

/// An `X-Amzn-Trace-Id` header: `Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XrayHeader {
    pub trace_id: TraceId,
    pub parent_id: Option<SpanId>,
    pub sampled: Option<bool>,
}

impl XrayHeader {
    /// Parses the header; fields may come in any order and unknown ones (`Lineage`, `Self`) are ignored.
    /// `None` when there is no valid `Root`.
    pub fn parse(header: &str) -> Option<Self> {
        let mut trace_id = None;
        let mut parent_id = None;
        let mut sampled = None;
        for field in header.split(';') {
            let Some((key, value)) = field.trim().split_once('=') else {
                continue;
            };
            match key.trim() {
                "Root" => trace_id = Some(xray_trace_id(value.trim())?),
                "Parent" => parent_id = SpanId::from_hex(value.trim()),
                "Sampled" => {
                    sampled = match value.trim() {
                        "1" => Some(true),
                        "0" => Some(false),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        Some(Self {
            trace_id: trace_id?,
            parent_id,
            sampled,
        })
    }
}

/// `1-5f35ae12-0c0fec141ab77a00bc047aa2` to the W3C id `5f35ae120c0fec141ab77a00bc047aa2`: the 8 hex digits of
/// the epoch followed by the 24 random ones.
pub(crate) fn xray_trace_id(s: &str) -> Option<TraceId> {
    let rest = s.strip_prefix("1-")?;
    let (epoch, random) = rest.split_once('-')?;
    if epoch.len() != 8 || random.len() != 24 {
        return None;
    }
    let mut joined = [0u8; 32];
    joined[..8].copy_from_slice(epoch.as_bytes());
    joined[8..].copy_from_slice(random.as_bytes());
    TraceId::from_hex(std::str::from_utf8(&joined).ok()?)
}

impl TraceId {
    /// An X-Ray trace id (`1-<8 hex>-<24 hex>`) as a W3C trace id.
    pub fn from_xray(s: &str) -> Option<Self> {
        xray_trace_id(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_lambda_header() {
        let h =
            XrayHeader::parse("Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Parent=2be948a625588e32;Sampled=1")
                .unwrap();
        assert_eq!(h.trace_id.to_string(), "5f35ae120c0fec141ab77a00bc047aa2");
        assert_eq!(h.parent_id.unwrap().to_string(), "2be948a625588e32");
        assert_eq!(h.sampled, Some(true));
    }

    #[test]
    fn tolerates_order_and_unknown_fields() {
        let h = XrayHeader::parse("Sampled=0; Lineage=a87bd80c:0 ;Root=1-5f35ae12-0c0fec141ab77a00bc047aa2")
            .unwrap();
        assert_eq!(h.sampled, Some(false));
        assert!(h.parent_id.is_none());
    }

    #[test]
    fn rejects_malformed_roots() {
        for bad in [
            "Root=2-5f35ae12-0c0fec141ab77a00bc047aa2",
            "Root=1-5f35ae1-0c0fec141ab77a00bc047aa2",
            "Root=1-5f35ae12-0c0fec141ab77a00bc047aa",
            "Root=1-5f35ae12-0c0fec141ab77a00bc047aaz",
            "Root=1-00000000-000000000000000000000000",
            "Parent=2be948a625588e32",
            "",
        ] {
            assert!(XrayHeader::parse(bad).is_none(), "{bad}");
        }
    }
}
