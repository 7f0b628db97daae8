//! Just enough XML for AWS's answers (S3 listings, STS credentials, error documents): elements,
//! their text, the five predefined entities and character references. Attributes, namespaces
//! and mixed content are ignored; a document that is not well formed is an error.

/// The text of every leaf element, with the path of element names leading to it
/// (`ListBucketResult/Contents/Key`), in document order.
pub fn leaves(doc: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    // Open elements, and whether each has had a child element.
    let mut stack: Vec<(&str, bool)> = Vec::new();
    let mut text = String::new();
    let mut rest = doc;
    while let Some(lt) = rest.find('<') {
        text.push_str(&rest[..lt]);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<?") {
            rest = &after[after.find("?>").ok_or("unterminated declaration")? + 2..];
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = &after[after.find("-->").ok_or("unterminated comment")? + 3..];
        } else if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").ok_or("unterminated CDATA")?;
            // Kept raw: escaped so that unescaping below restores it.
            text.push_str(&after[..end].replace('&', "&amp;"));
            rest = &after[end + 3..];
        } else {
            let gt = rest.find('>').ok_or("unterminated tag")?;
            let tag = &rest[1..gt];
            rest = &rest[gt + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let name = name.trim();
                let (open, had_child) = stack
                    .pop()
                    .ok_or_else(|| format!("</{name}> closes nothing"))?;
                if open != name {
                    return Err(format!("</{name}> closes <{open}>"));
                }
                if !had_child {
                    out.push((path(&stack, name), unescape(text.trim())?));
                }
            } else {
                let self_closing = tag.ends_with('/');
                let name = tag
                    .trim_end_matches('/')
                    .split_whitespace()
                    .next()
                    .ok_or("empty tag")?;
                if let Some(parent) = stack.last_mut() {
                    parent.1 = true;
                }
                if self_closing {
                    out.push((path(&stack, name), String::new()));
                } else {
                    stack.push((name, false));
                }
            }
            text.clear();
        }
    }
    if let Some((open, _)) = stack.pop() {
        return Err(format!("<{open}> is not closed"));
    }
    Ok(out)
}

fn path(stack: &[(&str, bool)], name: &str) -> String {
    let mut p = String::new();
    for (open, _) in stack {
        p.push_str(open);
        p.push('/');
    }
    p.push_str(name);
    p
}

/// The first leaf whose path ends with `suffix` (`Error/Code` finds `ErrorResponse/Error/Code`).
pub fn first<'a>(leaves: &'a [(String, String)], suffix: &str) -> Option<&'a str> {
    leaves
        .iter()
        .find(|(p, _)| p == suffix || p.ends_with(&format!("/{suffix}")))
        .map(|(_, v)| v.as_str())
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';').ok_or("& without ;")? + amp;
        let entity = &rest[amp + 1..semi];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{entity};"))?
            }
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_listing_with_escaped_keys() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>trail</Name>
<Contents><Key>AWSLogs/1/a&amp;b &#x263A;.json.gz</Key><Size>12</Size></Contents>
<Contents><Key>k2</Key><Size>3</Size></Contents><IsTruncated>false</IsTruncated>
<CommonPrefixes><Prefix>AWSLogs/</Prefix></CommonPrefixes><Empty/></ListBucketResult>"#;
        let l = leaves(doc).unwrap();
        let keys: Vec<&str> = l
            .iter()
            .filter(|(p, _)| p == "ListBucketResult/Contents/Key")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(keys, ["AWSLogs/1/a&b ☺.json.gz", "k2"]);
        assert_eq!(first(&l, "IsTruncated"), Some("false"));
        assert_eq!(first(&l, "CommonPrefixes/Prefix"), Some("AWSLogs/"));
        assert!(leaves("<a><b>x</a>").is_err());
        assert!(leaves("<a>x &bogus; y</a>").is_err());
    }
}
