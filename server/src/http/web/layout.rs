//! What every page shares: the frame around it (navigation, who is logged
//! in), the error page and the stylesheet.
//!
//! Pages are built with maud, which escapes every value it interpolates,
//! in text and in attribute values alike: nothing reaches a page unescaped
//! unless wrapped in `PreEscaped`, which the dashboard never does.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::accounts::Project;

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

/// A whole page: the project's navigation (with the current tab), who is
/// logged in (user name and CSRF token, for the logout form), the body.
pub fn page(title: &str, project: Option<(&Project, Tab)>, user: Option<(&str, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mpaka" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                header {
                    a class="brand" href="/" { "mpaka" }
                    nav {
                        @if let Some((project, active)) = project {
                            strong class="project" { (project.name) }
                            @for (tab, path, label) in Tab::ALL {
                                a href={ "/p/" (project.slug) (path) } aria-current=[(tab == active).then_some("page")] {
                                    (label)
                                }
                            }
                        }
                    }
                    @if let Some((username, csrf)) = user {
                        form method="post" action="/logout" class="logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            span { (username) }
                            " "
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page that says what went wrong.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    page(
        status.canonical_reason().unwrap_or("Error"),
        None,
        None,
        html! {
            p class="error" role="alert" { (message) }
            p { a href="/" { "Back to the dashboard" } }
        },
    )
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM` UTC, or a dash.
pub fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "–".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

const STYLESHEET: &str = include_str!("app.css");

/// The stylesheet every page links (the only thing the pages load).
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_interpolated_is_escaped() {
        // maud leaves `'` alone: every attribute it writes is in double quotes.
        assert_eq!(
            html! { ("<script>\"x\" & 'y'</script>") }.into_string(),
            "&lt;script&gt;&quot;x&quot; &amp; 'y'&lt;/script&gt;"
        );
        let project = Project {
            id: 1,
            slug: "p\"x".into(),
            name: "<b>".into(),
        };
        let html = page("<t>", Some((&project, Tab::Review)), Some(("<u>", "c\"")), html! {}).into_string();
        assert!(!html.contains("<b>") && !html.contains("<t>") && !html.contains("<u>") && !html.contains("c\""));
        assert!(html.contains("<title>&lt;t&gt; · mpaka</title>") && html.contains("<span>&lt;u&gt;</span>"));
        assert!(html.contains("<a href=\"/p/p&quot;x/review\" aria-current=\"page\">Review</a>"));
        let error = error_page(StatusCode::FORBIDDEN, "<script>alert(\"x\")</script>").into_string();
        assert!(error.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") && !error.contains("<script>"));
    }
}
