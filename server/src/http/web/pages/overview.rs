//! The project's first page: the indicators, as cards and charts.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::{project_page, words};
use crate::http::AppState;
use crate::http::web::WebError;
use crate::http::web::charts::{self, Bar};
use crate::http::web::layout::Tab;
use crate::http::web::session::DashboardProject;

/// Rows of a stacked chart from (row label, series, value) triples: rows in
/// label order, each row's segments in series order, repeats added up.
fn stacked(keys: Vec<(String, String, f64)>) -> Vec<Bar> {
    let mut rows: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for (label, series, value) in keys {
        let row = rows.entry(label).or_default();
        match row.iter_mut().find(|(s, _)| *s == series) {
            Some((_, v)) => *v += value,
            None => row.push((series, value)),
        }
    }
    rows.into_iter()
        .map(|(label, mut segments)| {
            segments.sort_by(|a, b| a.0.cmp(&b.0));
            Bar { label, segments }
        })
        .collect()
}

pub async fn overview(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
) -> Result<Response, WebError> {
    let p = project.clone();
    let (indicators, head) = state.blocking(move |data| Ok(data.indicators_for_page(&p)?)).await?;
    let i = indicators.as_ref();
    let by_topic = stacked(
        i.attendance
            .iter()
            .map(|a| (words(&a.topic), a.sex.clone(), a.count as f64))
            .collect(),
    );
    let by_side_month = stacked(
        i.attendance
            .iter()
            .map(|a| {
                (
                    format!("{} · {}", a.month, words(&a.side)),
                    a.sex.clone(),
                    a.count as f64,
                )
            })
            .collect(),
    );
    let mut days: Vec<_> = i.surveys_per_enumerator_day.iter().collect();
    days.sort_by(|a, b| b.day.cmp(&a.day).then(a.enumerator.cmp(&b.enumerator)));
    let surveys: Vec<Bar> = days
        .iter()
        .take(20)
        .map(|d| Bar {
            label: format!("{} · {}", d.day, d.enumerator),
            segments: vec![("interviews".into(), d.count as f64)],
        })
        .collect();
    let harassment: Vec<Bar> = i
        .harassment
        .iter()
        .map(|h| Bar {
            label: format!("{} (n={})", words(&h.border_post), h.answered),
            segments: vec![("reported harassment".into(), h.share)],
        })
        .collect();
    let attendance_total: u64 = i.attendance.iter().map(|a| a.count).sum();
    let interviews: u64 = i.surveys_per_enumerator_day.iter().map(|d| d.count).sum();
    let body = html! {
        @if head > i.head {
            p class="hint" id="freshness" role="status" {
                "Updating: these figures leave out the " (head - i.head) " latest change(s); reload in a moment."
            }
        }
        section class="cards" {
            div class="card" id="women-reached" {
                span class="number" { (i.women_traders_reached) } " registered women traders reached by a session"
            }
            div class="card" { span class="number" { (i.women_trader_walk_ins) } " women walk-ins who trade" }
            div class="card" id="attendance-total" { span class="number" { (attendance_total) } " attendances" }
            div class="card" id="interviews-total" { span class="number" { (interviews) } " complete interviews" }
        }
        section class="charts" {
            (charts::bars("attendance-topic", "Attendance by topic and sex", &by_topic, None, charts::count))
            (charts::bars(
                "attendance-side",
                "Attendance by month, side of the border and sex",
                &by_side_month,
                None,
                charts::count
            ))
            (charts::bars(
                "harassment",
                "Share of traders reporting harassment, by border post",
                &harassment,
                Some(1.0),
                charts::percent
            ))
            (charts::bars(
                "surveys",
                "Interviews per enumerator per day (latest 20)",
                &surveys,
                None,
                charts::count
            ))
        }
        p { a href={ "/p/" (project.slug) "/exports/indicators.csv" } { "Download the indicators (CSV)" } }
    };
    Ok(project_page("Indicators", Tab::Overview, &project, &session, body))
}
