//! Showing attacker-controlled text safely: log fields reach terminals and spreadsheets.
//!
//! - [`printable`]: for a terminal or a one-line text format. Control characters (which carry
//!   terminal escape sequences such as `ESC[2J` or `ESC]0;title BEL`), line breaks and the
//!   Unicode bidirectional overrides (which make text read in another order than it is) are
//!   written as visible `\u{..}` escapes.
//! - [`clip`]: for a list or a page: a field longer than a screen is cut (the whole value stays
//!   available on demand), so that one 10 MB user agent does not make a 20 MB page.
//! - [`csv_safe`]: for a CSV cell: a value a spreadsheet would run as a formula (starting with
//!   `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`.

use std::borrow::Cow;

fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character and bidi override escaped as `\u{..}`; borrowed when there
/// was nothing to escape.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Longest value of one field that lists and pages show.
pub const SHOWN_FIELD_CHARS: usize = 1024;

/// `s` cut to at most `max` characters, ending in `…` when cut; borrowed when it fits.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((end, _)) => {
            let keep = s[..end].char_indices().last().map_or(0, |(i, _)| i);
            Cow::Owned(format!("{}…", &s[..keep]))
        }
    }
}

/// `s` escaped for HTML text and attribute values (`&`, `<`, `>`, `"`, `'`).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// `s` defused for a CSV cell: a leading `'` before what a spreadsheet would take for a formula.
/// (Quoting is the CSV writer's job.)
pub fn csv_safe(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_and_bidi_overrides_become_visible() {
        assert!(matches!(printable("plain text"), Cow::Borrowed(_)));
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("\u{1b}]0;pwned\u{7}"), "\\u{1b}]0;pwned\\u{7}");
        assert_eq!(printable("line\nforged"), "line\\u{a}forged");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m", "C1 CSI");
        assert_eq!(printable("user\u{202e}gpj.exe"), "user\\u{202e}gpj.exe");
        assert_eq!(printable("café ünïcode"), "café ünïcode");
    }

    #[test]
    fn long_fields_are_clipped_at_a_character_boundary() {
        assert!(matches!(clip("short", 10), Cow::Borrowed(_)));
        assert_eq!(clip("abcdefghij", 10), "abcdefghij");
        assert_eq!(clip("abcdefghijk", 10), "abcdefghi…");
        assert_eq!(clip("ééééééé", 4).chars().count(), 4);
        assert_eq!(
            clip(&"x".repeat(10_000_000), SHOWN_FIELD_CHARS)
                .chars()
                .count(),
            1024
        );
    }

    #[test]
    fn formula_cells_are_defused() {
        for f in [
            "=cmd|' /C calc'!A0",
            "+HYPERLINK(\"x\")",
            "@SUM(A1)",
            "-2+3",
            "\tx",
            "\rx",
        ] {
            assert_eq!(csv_safe(f), format!("'{f}"));
        }
        assert!(matches!(
            csv_safe("arn:aws:iam::1:user/a=b"),
            Cow::Borrowed(_)
        ));
    }
}
