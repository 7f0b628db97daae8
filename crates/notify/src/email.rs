//! The e-mail sink: SMTP with STARTTLS (default), implicit TLS or, to a loopback relay only,
//! none; optional authentication; a plain-text part and an HTML part (every log field escaped).

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::config::{Sink, SmtpTls, Target};
use cloudsentinel_core::text::html_escape;

use crate::render::{self, Context, clip};
use crate::route::Notice;
use crate::send::Outcome;

/// The subject, plain text and HTML of a message.
pub fn compose(n: &Notice, ctx: &Context<'_>) -> (String, String, String) {
    // A subject is one line whatever the log fields hold.
    let subject: String = clip(&render::summary(n), 200)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let facts = render::facts(n, ctx);
    let mut text = format!("{}\n\n", render::headline(n));
    text.push_str(&format!("{}\n\n", n.title()));
    for (k, v) in &facts {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str(&format!("\nWhy: {}\n", clip(&n.explanation(), 4000)));
    let link = render::link(n, ctx);
    if let Some(u) = &link {
        text.push_str(&format!("\nOpen the alert: {u}\n"));
    }
    let mut html = String::from("<!doctype html><html><body style=\"font-family:sans-serif\">");
    html.push_str(&format!(
        "<p style=\"color:#555\">{}</p><h2>{}</h2><table cellpadding=\"4\">",
        html_escape(&render::headline(n)),
        html_escape(&clip(n.title(), 300))
    ));
    for (k, v) in &facts {
        html.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            html_escape(k),
            html_escape(v)
        ));
    }
    html.push_str(&format!(
        "</table><p><b>Why:</b> {}</p>",
        html_escape(&clip(&n.explanation(), 4000))
    ));
    if let Some(u) = &link {
        html.push_str(&format!(
            "<p><a href=\"{}\">Open the alert in CloudSentinel</a></p>",
            html_escape(u)
        ));
    }
    html.push_str("</body></html>");
    (subject, text, html)
}

/// Sends the message to every recipient in one SMTP transaction.
pub fn send(sink: &Sink, n: &Notice, ctx: &Context<'_>) -> Outcome {
    let Target::Email {
        host,
        port,
        tls,
        ca_pem,
        username,
        password,
        from,
        to,
    } = &sink.target
    else {
        return Outcome::Failed {
            error: "not an email sink".into(),
        };
    };
    let (subject, text, html) = compose(n, ctx);
    let failed = |e: String| Outcome::Failed { error: e };
    let mut builder = Message::builder().subject(subject);
    match from.parse::<Mailbox>() {
        Ok(m) => builder = builder.from(m),
        Err(e) => return failed(format!("from {from:?}: {e}")),
    }
    for t in to {
        match t.parse::<Mailbox>() {
            Ok(m) => builder = builder.to(m),
            Err(e) => return failed(format!("to {t:?}: {e}")),
        }
    }
    let message = match builder.multipart(
        MultiPart::alternative()
            .singlepart(
                lettre::message::SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text),
            )
            .singlepart(
                lettre::message::SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html),
            ),
    ) {
        Ok(m) => m,
        Err(e) => return failed(format!("message: {e}")),
    };
    let tls_params = || -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(host.clone());
        if let Some(pem) = ca_pem {
            let cert = Certificate::from_pem(pem).map_err(|e| format!("ca_file: {e}"))?;
            b = b.add_root_certificate(cert);
        }
        b.build().map_err(|e| format!("TLS: {e}"))
    };
    let mode = match tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls => match tls_params() {
            Ok(p) => Tls::Required(p),
            Err(e) => return failed(e),
        },
        SmtpTls::Implicit => match tls_params() {
            Ok(p) => Tls::Wrapper(p),
            Err(e) => return failed(e),
        },
    };
    let mut transport = SmtpTransport::builder_dangerous(host.as_str())
        .port(*port)
        .tls(mode)
        .timeout(Some(sink.timeout));
    if let (Some(u), Some(p)) = (username, password) {
        transport = transport.credentials(Credentials::new(u.clone(), p.expose().to_string()));
    }
    match transport.build().send(&message) {
        Ok(_) => Outcome::Sent,
        // A permanent SMTP answer (5xx: unknown recipient, refused credentials) will not
        // change on retry; anything else (4xx, connection, TLS, timeout) might.
        Err(e) if e.is_permanent() => Outcome::Failed {
            error: format!("SMTP: {e}"),
        },
        Err(e) => Outcome::Retry {
            error: format!("SMTP: {e}"),
            after: None,
        },
    }
}
