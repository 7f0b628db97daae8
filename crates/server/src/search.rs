//! The events search language, shared by the dashboard's events page and `GET /api/v1/events?q=`.
//!
//! A search is terms separated by spaces, all of which must hold:
//!
//! - `field:value`: `principal:`, `ip:`, `as:`, `country:`, `action:`, `resource:`, `account:`,
//!   `outcome:` (`success` or `failure`); a value with spaces or quotes is written in double
//!   quotes, with `\"` and `\\` inside (as [`crate::ui::search_term`] writes it);
//! - free text (a word, or `"several words"`): the words, in that order, somewhere in the
//!   record (request parameters, resources, every string value), case-insensitive;
//! - `-term`: the event must not match the term.
//!
//! A word that looks like `name:...` with an unknown name is refused (it is likely a misspelt
//! field) unless it is an ARN; quoting it searches it as text.

use cloudsentinel_store::{EventField, EventTerm};

/// The fields of the language: name, what it stands for, and what it matches (for help texts).
pub const FIELDS: &[(&str, EventField, &str)] = &[
    (
        "principal",
        EventField::Principal,
        "who acted: an ARN or id (bare or with its access key), an access key, a user name",
    ),
    ("ip", EventField::Ip, "the source address"),
    (
        "as",
        EventField::As,
        "the source address's autonomous system (13335 or AS13335)",
    ),
    (
        "country",
        EventField::Country,
        "the source address's country (two letters)",
    ),
    (
        "action",
        EventField::Action,
        "the operation (CreateUser) or service:operation (iam:CreateUser)",
    ),
    (
        "resource",
        EventField::Resource,
        "a resource the event names: an ARN, a bucket, a user name",
    ),
    (
        "account",
        EventField::Account,
        "the account, subscription or project",
    ),
    ("outcome", EventField::Outcome, "success or failure"),
];

/// The name a field is written with (`Text` has none: it is written bare).
pub fn field_name(f: EventField) -> &'static str {
    FIELDS.iter().find(|x| x.1 == f).map(|x| x.0).unwrap_or("")
}

fn field_list() -> String {
    FIELDS
        .iter()
        .map(|f| format!("{}:", f.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Longest search accepted.
pub const MAX_QUERY_CHARS: usize = 2000;
/// Most terms in one search.
pub const MAX_TERMS: usize = 20;

/// Reads a search into its terms. The error says what is wrong and how to write it.
pub fn parse(q: &str) -> Result<Vec<EventTerm>, String> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(format!(
            "the search is longer than {MAX_QUERY_CHARS} characters"
        ));
    }
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    let mut terms = Vec::new();
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let negate = chars[i] == '-' && chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
        if negate {
            i += 1;
        }
        let (field, value) = if chars[i] == '"' {
            let (v, next) = quoted(&chars, i)?;
            i = next;
            (EventField::Text, v)
        } else {
            // A bare word, or `name:` followed by a bare or quoted value.
            let word_start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ':' {
                if chars[i] == '"' {
                    return Err(format!(
                        "a quote inside `{}`: quote the whole value (`field:\"...\"`)",
                        chars[word_start..]
                            .iter()
                            .take_while(|c| !c.is_whitespace())
                            .collect::<String>()
                    ));
                }
                i += 1;
            }
            let name: String = chars[word_start..i].iter().collect();
            if i < chars.len() && chars[i] == ':' && is_field_like(&name) {
                let lower = name.to_ascii_lowercase();
                let Some(&(_, field, _)) = FIELDS.iter().find(|f| f.0 == lower) else {
                    return Err(format!(
                        "unknown field `{name}:` — use one of {}; to search for the text itself, \
                         quote it: \"{}\"",
                        field_list(),
                        chars[word_start..]
                            .iter()
                            .take_while(|c| !c.is_whitespace())
                            .collect::<String>()
                    ));
                };
                i += 1;
                let value = if i < chars.len() && chars[i] == '"' {
                    let (v, next) = quoted(&chars, i)?;
                    i = next;
                    v
                } else {
                    let s = i;
                    while i < chars.len() && !chars[i].is_whitespace() {
                        if chars[i] == '"' {
                            return Err(format!(
                                "a quote inside the value of `{name}:`: quote the whole value \
                                 (`{name}:\"...\"`)"
                            ));
                        }
                        i += 1;
                    }
                    chars[s..i].iter().collect()
                };
                (field, value)
            } else {
                // Free text, `:` included (an ARN, an IPv6 address, `10:00`).
                while i < chars.len() && !chars[i].is_whitespace() {
                    if chars[i] == '"' {
                        return Err(format!(
                            "a quote inside `{}`: put the whole text in quotes",
                            chars[start..i].iter().collect::<String>()
                        ));
                    }
                    i += 1;
                }
                (
                    EventField::Text,
                    chars[word_start..i].iter().collect::<String>(),
                )
            }
        };
        terms.push(checked(field, value, negate)?);
        if terms.len() > MAX_TERMS {
            return Err(format!("more than {MAX_TERMS} terms in one search"));
        }
    }
    Ok(terms)
}

/// Whether `name` before a `:` reads as a field name (letters and `_`), and not as the start of
/// an ARN (`arn:aws:...`) or a URL.
fn is_field_like(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
        && !["arn", "http", "https", "urn"].contains(&name.to_ascii_lowercase().as_str())
}

/// A quoted string starting at `chars[at] == '"'`: its text, and where reading goes on.
fn quoted(chars: &[char], at: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut i = at + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 2;
            }
            '"' => {
                let next = i + 1;
                if next < chars.len() && !chars[next].is_whitespace() {
                    return Err(format!("put a space after the closing quote of \"{out}\""));
                }
                return Ok((out, next));
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(format!(
        "the quote before `{}` is not closed",
        chars[at + 1..].iter().take(30).collect::<String>()
    ))
}

/// A term with its value checked and put in the form the store compares.
fn checked(field: EventField, value: String, negate: bool) -> Result<EventTerm, String> {
    let name = field_name(field);
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(if field == EventField::Text {
            "empty quotes: put the text to search for between them".into()
        } else {
            format!("`{name}:` needs a value, e.g. {}", example(field))
        });
    }
    let value = match field {
        EventField::Outcome => match value.to_ascii_lowercase().as_str() {
            "success" | "succeeded" | "ok" => "success".to_string(),
            "failure" | "failed" | "fail" | "error" => "failure".to_string(),
            _ => {
                return Err(format!(
                    "outcome:{value}: expected outcome:success or outcome:failure"
                ));
            }
        },
        EventField::As => {
            let digits = value
                .strip_prefix("AS")
                .or_else(|| value.strip_prefix("as"))
                .unwrap_or(&value);
            match digits.parse::<u32>() {
                Ok(n) => n.to_string(),
                Err(_) => {
                    return Err(format!(
                        "as:{value}: expected an AS number, e.g. as:13335 or as:AS13335"
                    ));
                }
            }
        }
        EventField::Country => {
            if value.len() != 2 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(format!(
                    "country:{value}: expected a two-letter country code, e.g. country:DE"
                ));
            }
            value.to_ascii_uppercase()
        }
        EventField::Text => {
            if cloudsentinel_core::row::text_tokens(&value).is_empty() {
                return Err(format!(
                    "`{value}` has no letters or digits to search for (free text matches \
                     words of the record)"
                ));
            }
            value
        }
        _ => value,
    };
    Ok(EventTerm {
        field,
        value,
        negate,
    })
}

fn example(field: EventField) -> &'static str {
    match field {
        EventField::Principal => "principal:arn:aws:iam::111122223333:user/alice",
        EventField::Ip => "ip:203.0.113.9",
        EventField::As => "as:13335",
        EventField::Country => "country:DE",
        EventField::Action => "action:CreateUser",
        EventField::Resource => "resource:my-bucket",
        EventField::Account => "account:111122223333",
        EventField::Outcome => "outcome:failure",
        EventField::Text => "\"access denied\"",
    }
}

/// One term written back in the language (what [`parse`] reads as the same term).
pub fn term_text(t: &EventTerm) -> String {
    let body = if t.field == EventField::Text {
        if !t.value.is_empty()
            && !t.value.contains([' ', '"', '\\', '\t'])
            && !t.value.starts_with('-')
            && !t
                .value
                .split_once(':')
                .is_some_and(|(name, _)| is_field_like(name))
        {
            t.value.clone()
        } else {
            format!("\"{}\"", t.value.replace('\\', "\\\\").replace('"', "\\\""))
        }
    } else {
        crate::ui::search_term(field_name(t.field), &t.value)
    };
    if t.negate { format!("-{body}") } else { body }
}

/// Terms written back as one search.
pub fn query_text(terms: &[EventTerm]) -> String {
    terms.iter().map(term_text).collect::<Vec<_>>().join(" ")
}

/// `q` with `term` added (when it is not already there).
pub fn with_term(q: &str, term: &EventTerm) -> String {
    let mut terms = parse(q).unwrap_or_default();
    if terms.contains(term) {
        return query_text(&terms);
    }
    terms.push(term.clone());
    query_text(&terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(field: EventField, value: &str) -> EventTerm {
        EventTerm {
            field,
            value: value.into(),
            negate: false,
        }
    }

    #[test]
    fn fields_free_text_and_negation() {
        let got = parse(
            r#"principal:arn:aws:iam::111122223333:user/alice ip:203.0.113.9 -outcome:success
               "access denied" CreateUser as:AS13335 country:de action:iam:CreateUser"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                t(
                    EventField::Principal,
                    "arn:aws:iam::111122223333:user/alice"
                ),
                t(EventField::Ip, "203.0.113.9"),
                EventTerm {
                    negate: true,
                    ..t(EventField::Outcome, "success")
                },
                t(EventField::Text, "access denied"),
                t(EventField::Text, "CreateUser"),
                t(EventField::As, "13335"),
                t(EventField::Country, "DE"),
                t(EventField::Action, "iam:CreateUser"),
            ]
        );
        assert_eq!(parse("   ").unwrap(), vec![]);
        // Field names in any case; a lone `-` is text... of nothing, so refused.
        assert_eq!(
            parse("IP:10.0.0.1").unwrap(),
            vec![t(EventField::Ip, "10.0.0.1")]
        );
        assert!(parse("-").is_err());
    }

    #[test]
    fn what_search_term_writes_reads_back() {
        for (field, value) in [
            ("principal", "arn:aws:iam::1:user/a b (AKIA1)"),
            ("resource", "say \"hi\" \\ there"),
            ("principal", "carol@example.com"),
            ("resource", ""),
        ] {
            let written = crate::ui::search_term(field, value);
            let got = parse(&written);
            if value.is_empty() {
                assert!(got.unwrap_err().contains("needs a value"));
                continue;
            }
            let got = got.unwrap();
            assert_eq!(got.len(), 1, "{written}");
            assert_eq!(got[0].value, value, "{written}");
            assert_eq!(field_name(got[0].field), field);
            assert_eq!(parse(&query_text(&got)).unwrap(), got);
        }
        for text in ["a:b", "-x", "two words", "arn:aws:s3:::bucket", "q\"uote"] {
            let term = t(EventField::Text, text);
            assert_eq!(parse(&term_text(&term)).unwrap(), vec![term]);
        }
    }

    #[test]
    fn errors_say_what_to_write() {
        let e = parse("foo:bar").unwrap_err();
        assert!(e.contains("unknown field `foo:`"), "{e}");
        assert!(e.contains("principal:, ip:"), "{e}");
        assert!(e.contains("\"foo:bar\""), "{e}");
        // ARNs, addresses and quoted text are text.
        assert_eq!(
            parse("arn:aws:s3:::logs 2001:db8::1 \"foo:bar\"").unwrap(),
            vec![
                t(EventField::Text, "arn:aws:s3:::logs"),
                t(EventField::Text, "2001:db8::1"),
                t(EventField::Text, "foo:bar"),
            ]
        );
        assert!(parse("outcome:maybe").unwrap_err().contains("success or"));
        assert!(parse("as:cloudflare").unwrap_err().contains("AS number"));
        assert!(parse("country:Germany").unwrap_err().contains("two-letter"));
        assert!(parse("ip:").unwrap_err().contains("`ip:` needs a value"));
        assert!(
            parse("principal:\"alice")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(parse("ip:a\"b").unwrap_err().contains("quote"));
        assert!(parse("\"a\"b").unwrap_err().contains("space after"));
        assert!(parse("::").unwrap_err().contains("no letters or digits"));
        let many = "a ".repeat(MAX_TERMS + 1);
        assert!(parse(&many).unwrap_err().contains("more than"));
    }

    #[test]
    fn adding_a_term_keeps_the_others_once() {
        let ip = t(EventField::Ip, "203.0.113.9");
        assert_eq!(with_term("CreateUser", &ip), "CreateUser ip:203.0.113.9");
        assert_eq!(
            with_term("CreateUser ip:203.0.113.9", &ip),
            "CreateUser ip:203.0.113.9"
        );
    }
}
