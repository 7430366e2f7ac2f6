//! HTML building: every value that reaches a page goes through [`esc`].

use std::fmt::Write;

use axum::http::StatusCode;
use axum::response::Html;

use crate::accounts::Project;

/// Text made safe for HTML content and attribute values.
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

/// The dashboard's pages, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Indicators.
    Overview,
    /// Review queue.
    Review,
    /// Devices and enrollment.
    Devices,
    /// Exports.
    Exports,
    /// Forms.
    Forms,
}

impl Tab {
    const ALL: [(Tab, &'static str, &'static str); 5] = [
        (Tab::Overview, "", "Indicators"),
        (Tab::Review, "/review", "Review"),
        (Tab::Devices, "/devices", "Devices"),
        (Tab::Exports, "/exports", "Exports"),
        (Tab::Forms, "/forms", "Forms"),
    ];
}

/// A whole page: the project's navigation, who is logged in, the body.
pub fn page(title: &str, project: Option<(&Project, Tab)>, user: Option<(&str, &str)>, body: &str) -> Html<String> {
    let mut nav = String::new();
    if let Some((project, active)) = project {
        let _ = write!(nav, "<strong class=\"project\">{}</strong>", esc(&project.name));
        for (tab, path, label) in Tab::ALL {
            let current = if tab == active { " aria-current=\"page\"" } else { "" };
            let _ = write!(nav, "<a href=\"/p/{}{path}\"{current}>{label}</a>", esc(&project.slug));
        }
    }
    let mut who = String::new();
    if let Some((username, csrf)) = user {
        let _ = write!(
            who,
            "<form method=\"post\" action=\"/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <span>{}</span> <button type=\"submit\">Log out</button></form>",
            esc(csrf),
            esc(username)
        );
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · mpaka</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body><header><a class=\"brand\" href=\"/\">mpaka</a><nav>{nav}</nav>{who}</header>\
         <main><h1>{title}</h1>{body}</main></body></html>",
        title = esc(title)
    ))
}

/// A page that says what went wrong.
pub fn error_page(status: StatusCode, message: &str) -> Html<String> {
    page(
        status.canonical_reason().unwrap_or("Error"),
        None,
        None,
        &format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/\">Back to the dashboard</a></p>",
            esc(message)
        ),
    )
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM` UTC, or a dash.
pub fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "–".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_interpolated_is_escaped() {
        assert_eq!(
            esc("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        let project = Project {
            id: 1,
            slug: "p\"x".into(),
            name: "<b>".into(),
        };
        let html = page("<t>", Some((&project, Tab::Review)), Some(("<u>", "c\"")), "").0;
        assert!(!html.contains("<b>") && !html.contains("<t>") && !html.contains("<u>") && !html.contains("c\""));
    }
}
