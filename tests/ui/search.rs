//! The events page's search: the query language, the histogram, facets, honest totals, saved
//! searches, and the API's `q` in the same language.

use super::*;

const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const TRAIL: &str = "arn:aws:cloudtrail:us-east-1:111122223333:trail/main";

fn search(s: &Server, cookies: &str, q: &str, extra: &str) -> Page {
    get_page(
        s,
        cookies,
        &format!("/ui/events?range=all&q={}{extra}", urlenc(q)),
    )
}

/// "Matching events: N." as N (`None` for "more than").
fn matching(p: &Page) -> Option<u64> {
    let at = p.body.find("Matching events: ").expect("a total") + "Matching events: ".len();
    let rest = &p.body[at..];
    let n: String = rest.chars().take_while(|c| *c != '.').collect();
    n.replace(',', "").parse().ok()
}

fn api_total(s: &Server, q: &str) -> u64 {
    api(s, &format!("/api/v1/events?q={}", urlenc(q)))["total"]
        .as_u64()
        .unwrap()
}

#[test]
fn the_language_finds_by_bare_arn_resource_and_words_and_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service_with_story(dir.path(), 60);
    // The bare ARN finds bob's events (the display string carries his access key).
    let bobs = api_total(&s, &format!("principal:{BOB}"));
    assert!(bobs >= 5, "{bobs}");
    let p = search(&s, &cookies, &format!("principal:{BOB}"), "");
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(matching(&p), Some(bobs), "the page and the API agree");
    // A resource of the request, and the words of the whole record in order.
    assert_eq!(api_total(&s, &format!("resource:{TRAIL}")), 2);
    assert_eq!(api_total(&s, "\"trail/org\""), 1);
    assert_eq!(api_total(&s, "\"org/trail\""), 0);
    // Terms AND together, a negation excludes.
    let stops = api_total(&s, "action:StopLogging");
    assert!(stops >= 4);
    let on_trail = api_total(&s, &format!("action:StopLogging resource:{TRAIL}"));
    assert_eq!(on_trail, 1, "the other call on the trail deleted it");
    assert_eq!(
        api_total(&s, &format!("action:StopLogging -resource:{TRAIL}")),
        stops - on_trail
    );
    let legacy = api(
        &s,
        "/api/v1/events?operation=StopLogging&source_ip=203.0.113.50",
    )["total"]
        .as_u64()
        .unwrap();
    assert!(
        legacy > 0 && legacy < stops,
        "the background's come from another address"
    );
    assert_eq!(
        api_total(&s, "action:cloudtrail:StopLogging ip:203.0.113.50"),
        legacy
    );
    // The network context of the source address is recorded with the event and searchable.
    let mut r = records("net", 1).remove(0);
    r["sourceIPAddress"] = serde_json::json!("8.8.8.8");
    let (st, v, _) = s.req_h(
        "POST",
        "/api/v1/ingest",
        None,
        Some(r.to_string().as_bytes()),
        &[("X-API-Key", &s.api_key(&s.admin()))],
    );
    assert_eq!(st, 202, "{v}");
    let found = api(
        &s,
        &format!("/api/v1/events?q={}", urlenc("as:AS15169 country:us")),
    );
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["items"][0]["asn"], 15169);
    assert_eq!(found["items"][0]["country"], "US");
    let p = search(&s, &cookies, "as:15169", "");
    assert!(
        p.body.contains("href=\"/ui/entity/as?v=15169\""),
        "{}",
        p.body
    );
    assert!(p.body.contains(">AS15169</a>"));
    // Errors are on the page with the form, as 400, in words.
    let p = search(&s, &cookies, "foo:bar", "");
    assert_eq!(p.status, 400);
    assert!(p.body.contains("unknown field `foo:`"), "{}", p.body);
    assert!(p.body.contains("id=\"ev-q\""), "the form stays");
    let (st, v, _) = s.req(
        "GET",
        "/api/v1/events?q=outcome%3Amaybe",
        Some(&s.admin()),
        None,
    );
    assert_eq!(st, 400);
    assert!(
        v.to_string().contains("outcome:success or outcome:failure"),
        "{v}"
    );
}

#[test]
fn histogram_facets_and_results_are_links_and_searches_are_saved_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service_with_story(dir.path(), 60);
    let p = search(&s, &cookies, "ip:203.0.113.50", "");
    assert_eq!(p.status, 200, "{}", p.body);
    let b = &p.body;
    let n = matching(&p).unwrap();
    assert!(n >= 8, "{n}");
    // The histogram: bars with their counts on hover, linking to their slice; the counts add up.
    assert!(b.contains("id=\"events-histogram\""), "{b}");
    let counts: u64 = b
        .match_indices("<title>")
        .map(|(i, _)| {
            b[i + 7..]
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(counts, n, "every match is in a bar");
    assert!(
        b.contains("since=") && b.contains("until="),
        "bars link to slices"
    );
    // Facets: each value adds its term to the search.
    assert!(b.contains("id=\"events-facets\""));
    let add_key = format!(
        "q={}",
        urlenc(&format!(
            "ip:203.0.113.50 principal:\"{BOB} (AKIAEXAMPLEBOB00001)\""
        ))
    );
    assert!(b.contains(&add_key), "{add_key} in {b}");
    // Results: cards with labels; the principal, the address and the account are pivots.
    assert!(b.contains("class=\"events cards\""));
    assert!(b.contains("data-label=\"Principal\""));
    assert!(b.contains("href=\"/ui/entity/ip?v=203.0.113.50\""));
    assert!(b.contains("href=\"/ui/entity/account?v=111122223333\""));
    assert!(b.contains(&format!(
        "/ui/events?q={}",
        urlenc("action:cloudtrail:StopLogging")
    )));
    // The total is honest: a count, not a cap.
    assert!(!b.contains("100000"));

    // Saving the search keeps it for this user; deleting removes it; a form without its token
    // is refused.
    let csrf = csrf_of(b);
    let params = format!("range=all&q={}", urlenc("ip:203.0.113.50"));
    let r = post_form(
        &s,
        &cookies,
        "/ui/events/saved",
        &format!("csrf={csrf}&name=Story+address&params={}", urlenc(&params)),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let p = get_page(&s, &cookies, "/ui/events");
    assert!(p.body.contains(">Story address</a>"), "{}", p.body);
    assert!(
        p.body.contains(&format!(
            "href=\"/ui/events?q={}",
            urlenc("ip:203.0.113.50")
        )),
        "{}",
        p.body
    );
    let r = post_form(&s, &cookies, "/ui/events/saved", "name=x&params=q%3Dy");
    assert_eq!(r.status, 403);
    let r = post_form(
        &s,
        &cookies,
        "/ui/events/saved/delete",
        &format!("csrf={csrf}&name=Story+address"),
    );
    assert_eq!(r.status, 303);
    let p = get_page(&s, &cookies, "/ui/events");
    assert!(!p.body.contains(">Story address</a>"));
    // A search that does not read is not saved.
    let r = post_form(
        &s,
        &cookies,
        "/ui/events/saved",
        &format!("csrf={csrf}&name=bad&params={}", urlenc("q=foo%3Abar")),
    );
    assert_eq!(r.status, 303);
    let p = get_page(&s, &cookies, "/ui/events");
    assert!(!p.body.contains(">bad</a>"));
}
