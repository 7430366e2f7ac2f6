//! Exports: the options (language, personal fields, drafts), every table's
//! downloads, and the downloads themselves (streamed).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::project_page;
use crate::export::{ExportOptions, Plan};
use crate::http::AppState;
use crate::http::download::{self, Download, OptionsQuery};
use crate::http::web::WebError;
use crate::http::web::layout::Tab;
use crate::http::web::session::DashboardProject;

pub async fn exports(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
    query: Result<Query<OptionsQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(q) = query.map_err(|e| WebError::Page(StatusCode::BAD_REQUEST, e.body_text()))?;
    let p = project.clone();
    let forms = state.blocking(move |data| Ok(data.store(&p)?.forms()?)).await?;
    let options: ExportOptions = q.into();
    let plan = Plan::new(&forms, &options);
    let mut languages: Vec<String> = forms.iter().flat_map(|f| f.languages.iter().cloned()).collect();
    languages.sort();
    languages.dedup();
    languages.retain(|l| l != mpaka_core::form::definition::DEFAULT_LANGUAGE);
    let mut query = Vec::new();
    if let Some(l) = &options.language {
        query.push(format!("language={}", url_encode(l)));
    }
    if options.without_personal {
        query.push("without_personal=true".into());
    }
    if options.include_drafts {
        query.push("include_drafts=true".into());
    }
    let qs = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let slug = &project.slug;
    let body = html! {
        form method="get" class="inline options" {
            label {
                "Headers and choices "
                select name="language" {
                    option value="" { "names and codes" }
                    @for l in &languages {
                        option value=(l) selected[options.language.as_deref() == Some(l)] { "labels in " (l) }
                    }
                }
            }
            label {
                input type="checkbox" name="without_personal" value="true" checked[options.without_personal];
                " without names, phones, years of birth, locations"
            }
            label {
                input type="checkbox" name="include_drafts" value="true" checked[options.include_drafts];
                " include drafts"
            }
            button type="submit" { "Apply" }
        }
        p {
            a class="button" id="download-xlsx" href={ "/p/" (slug) "/exports/all.xlsx" (qs) } {
                "Every table as one Excel workbook"
            }
            " "
            a class="button" href={ "/p/" (slug) "/exports/indicators.csv" } { "Indicators (CSV)" }
        }
        table class="exports" {
            thead { tr { th { "Table" } th { "Columns" } th { "Download" } } }
            tbody {
                @for t in &plan.tables {
                    tr {
                        td { (t.name) }
                        td class="num" { (t.headers.len()) }
                        td {
                            a href={ "/p/" (slug) "/exports/" (t.name) ".csv" (qs) } id={ "csv-" (t.name) } { "CSV" }
                            " · "
                            a href={ "/p/" (slug) "/exports/" (t.name) ".jsonl" (qs) } { "JSON lines" }
                        }
                    }
                }
            }
        }
        p class="hint" {
            "CSV files are UTF-8 with a byte-order mark, so Excel reads accents right. Downloads stream: large \
             projects start at once and never time out."
        }
    };
    Ok(project_page("Exports", Tab::Exports, &project, &session, body))
}

/// Percent-encodes a query value (everything but unreserved characters).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn download(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
    Path((_, file)): Path<(String, String)>,
    query: Result<Query<OptionsQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(q) = query.map_err(|e| WebError::Page(StatusCode::BAD_REQUEST, e.body_text()))?;
    let what = Download::parse(&file)?;
    tracing::info!(user = session.principal.user_id, "export from the dashboard");
    Ok(download::download(&state, project, what, q.into()).await?)
}
