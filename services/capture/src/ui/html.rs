//! The viewer's HTML toolkit: escaping, the page shell and its stylesheet, the service palette,
//! and how times and durations read.
//!
//! Hand-written rather than a templating crate: the viewer is three pages of tables and
//! `<details>`, the chaos report already renders the same way, and the capture's dependency tree
//! stays what it was. The rule that makes that safe: every piece of captured text reaches the
//! page through [`esc`] (element text and quoted attribute values alike) or [`url_param`] (query
//! strings), and ids are checked as hex before they become paths or fragments ([`is_hex`]).

use std::fmt::Write as _;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved characters).
pub fn url_param(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Whether `id` is `digits` hexadecimal digits (a trace id is 32, a span id 16).
pub fn is_hex(id: &str, digits: usize) -> bool {
    id.len() == digits && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The colour of a service's spans, chips and bars. The five services have fixed colours so a
/// screenshot reads the same every time; anything else takes one of the spare colours by name.
pub fn service_colour(service: &str) -> &'static str {
    const SPARE: [&str; 5] = ["#b07aa1", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"];
    match service {
        "gateway" => "#4e79a7",
        "reservation" => "#f28e2b",
        "inventory" => "#59a14f",
        "payment" => "#e15759",
        "analytics" => "#76b7b2",
        other => {
            let sum = other
                .bytes()
                .fold(0usize, |a, b| a.wrapping_add(b as usize));
            SPARE[sum % SPARE.len()]
        }
    }
}

/// A service's name in its colour, linking to the traces that touched it.
pub fn service_chip(service: &str) -> String {
    format!(
        "<a class=\"svc\" style=\"background:{}\" href=\"/ui/?service={}\" title=\"traces through {}\">{}</a>",
        service_colour(service),
        url_param(service),
        esc(service),
        esc(service)
    )
}

/// A small label: `kind` is the CSS class (`comp`, `dup`, `err`, `orphan`, an outcome).
pub fn badge(kind: &str, text: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", esc(kind), esc(text))
}

/// A duration in the unit that reads best.
pub fn duration(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// An instant as `YYYY-MM-DD HH:MM:SS.mmm` UTC. (Howard Hinnant's days-to-civil algorithm:
/// a date library for one line of text is not worth its weight here.)
pub fn clock(unix_ns: i128) -> String {
    let ms = unix_ns.div_euclid(1_000_000);
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

/// A whole page: `title` (plain text) and `body` (HTML, already escaped).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · Faultline capture</title><style>{STYLE}</style></head><body>\
<header><a class=\"home\" href=\"/ui/\">Faultline capture</a> \
<nav><a href=\"/ui/\">traces</a> <a href=\"/ui/logs\">log lines</a> <a href=\"/stats\">stats</a></nav></header>\
<main>{body}</main></body></html>",
        esc(title)
    )
}

/// One stylesheet for every page, inline: no second request, no build step.
const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}\
header{background:#263238;color:#fff;padding:8px 16px;display:flex;gap:24px;align-items:baseline}\
header a{color:#fff;text-decoration:none}header .home{font-weight:600}nav a{margin-right:12px;opacity:.85}\
main{padding:12px 16px;max-width:1400px}h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:20px 0 8px}\
code,.mono{font-family:ui-monospace,monospace;font-size:12px}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{border-bottom:1px solid #e3e3e3;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#eceff1;font-weight:600}\
form.search{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:end;background:#fff;padding:10px;border:1px solid #ddd}\
form.search label{display:flex;flex-direction:column;font-size:12px;color:#555}\
form.search input[name=q]{width:28em}\
.svc{display:inline-block;color:#fff;border-radius:3px;padding:0 5px;font-size:12px;text-decoration:none;margin:1px 2px 1px 0}\
.badge{display:inline-block;border-radius:3px;padding:0 5px;font-size:11px;font-weight:600;margin-left:4px;border:1px solid}\
.badge.comp{background:#fff3e0;color:#b45309;border-color:#f59e0b}\
.badge.dup{background:#ede7f6;color:#5b21b6;border-color:#8b5cf6}\
.badge.err{background:#fde8e8;color:#b91c1c;border-color:#ef4444}\
.badge.orphan{background:#eee;color:#555;border-color:#999}\
.badge.inst{background:#fff;color:#333;border-color:#bbb;font-weight:400}\
.badge.CONFIRMED{background:#e6f4ea;color:#166534;border-color:#22c55e}\
.badge.CANCELLED{background:#fff3e0;color:#b45309;border-color:#f59e0b}\
.badge.REJECTED{background:#e0f2fe;color:#075985;border-color:#0ea5e9}\
.problem{background:#fff;border-left:4px solid #ef4444;padding:10px 14px}\
.facts{display:flex;flex-wrap:wrap;gap:4px 24px;margin:6px 0 10px}.facts b{font-weight:600}\
.axis,.span>summary{display:grid;grid-template-columns:minmax(320px,38%) 1fr;align-items:center}\
.axis{font-size:11px;color:#666;border-bottom:1px solid #ccc;background:#fff}\
.ticks{position:relative;height:16px}.ticks span{position:absolute;white-space:nowrap;transform:translateX(-50%)}\
.ticks span:first-child{transform:none}.ticks span:last-child{transform:translateX(-100%)}\
.waterfall{background:#fff;border:1px solid #ddd}\
.span{border-bottom:1px solid #f0f0f0}.span>summary{cursor:pointer;list-style:none;padding:2px 4px}\
.span>summary::-webkit-details-marker{display:none}.span>summary:hover{background:#f5f8ff}\
.span:target>summary,.log:target{background:#fff8c5}\
.label{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}\
.lane{position:relative;height:16px}\
.bar{position:absolute;top:3px;height:10px;border-radius:2px;min-width:2px}\
.dur{position:absolute;top:0;font-size:11px;color:#444;white-space:nowrap;padding-left:4px}\
.detail{padding:6px 10px 10px 30px;background:#fcfcfc;font-size:12px}\
.detail table{width:auto;min-width:50%}.detail td,.detail th{padding:2px 8px}\
.log td{font-size:12px}.log .msg{font-weight:500}.lvl{font-weight:600}\
.lvl-WARN .lvl{color:#b45309}.lvl-ERROR .lvl{color:#b91c1c}.lvl-DEBUG .lvl,.lvl-TRACE .lvl{color:#777}\
.fields span{display:inline-block;margin-right:10px}.fields i{color:#666;font-style:normal}\
.muted{color:#777}ol.comp li{margin:2px 0}\
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_captured_text_is_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x" + 'y') & more</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; + &#39;y&#39;) &amp; more&lt;/script&gt;"
        );
    }

    #[test]
    fn a_query_value_is_percent_encoded() {
        assert_eq!(url_param("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(url_param("booking-1_x.y~"), "booking-1_x.y~");
    }

    #[test]
    fn an_instant_reads_as_utc() {
        assert_eq!(clock(0), "1970-01-01 00:00:00.000");
        assert_eq!(
            clock(1_709_251_199_999_000_000),
            "2024-02-29 23:59:59.999",
            "a leap day"
        );
    }

    #[test]
    fn the_five_services_keep_their_colours() {
        assert_eq!(service_colour("payment"), "#e15759");
        assert_eq!(service_colour("other"), service_colour("other"));
    }
}
