//! The review queue: conflicts to decide, interviews flagged against their
//! form's rules, and possible duplicate traders to merge or tell apart.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{number, project_page, see_other, words};
use crate::http::AppState;
use crate::http::data::{ConflictView, open_conflicts, trader_id};
use crate::http::web::WebError;
use crate::http::web::layout::{Tab, when};
use crate::http::web::session::{CsrfForm, DashboardProject};
use crate::review::{self, Keep};

/// Conflicts listed on the review page at most (the export has them all).
const CONFLICTS_SHOWN: usize = 200;

/// A stored JSON value as a page shows it.
fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "(empty)".into(),
        other => other.to_string(),
    }
}

/// A flag's problems in one line: `question: message; ...`.
fn problems(errors: &serde_json::Value) -> String {
    let problems: Vec<String> = errors
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}: {}",
                e.get("question").and_then(|q| q.as_str()).unwrap_or("?"),
                e.get("message").and_then(|m| m.as_str()).unwrap_or("")
            )
        })
        .collect();
    problems.join("; ")
}

pub async fn review(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
) -> Result<Response, WebError> {
    let p = project.clone();
    let (conflicts, flags, duplicates) = state
        .blocking(move |data| {
            let log = data.store(&p)?;
            Ok((
                open_conflicts(log.as_ref())?,
                data.accounts.review_flags(&p)?,
                data.duplicates(&p)?,
            ))
        })
        .await?;
    let csrf = session.csrf();
    let slug = &project.slug;
    let groups = conflict_groups(&conflicts);
    let body = html! {
        h2 id="conflicts" { "Conflicts " span class="count" { (groups.len()) } }
        p class="hint" {
            "Phones changed the same field without seeing each other's change. The value written \
             last stands until you choose one; your choice syncs to every phone."
        }
        @if groups.is_empty() {
            p class="empty" id="no-conflicts" { "No open conflicts." }
        } @else {
            table class="conflicts" {
                thead { tr { th { "Record" } th { "Field" } th { "Values written" } } }
                tbody {
                    @for group in groups.iter().take(CONFLICTS_SHOWN) {
                        @let first = group.pairs[0];
                        tr id={ "conflict-" (first.id) } {
                            td { (first.collection) " " code { (first.entity.get(..8).unwrap_or(&first.entity)) } }
                            td { (first.field) }
                            td {
                                ul class="values" {
                                    @for (n, v) in group.values.iter().enumerate() {
                                        li {
                                            span class="value" { (shown(v.value)) }
                                            " "
                                            small { (when(Some(v.at_ms as i64))) }
                                            @if n + 1 == group.values.len() {
                                                " " em { "(stands)" }
                                            }
                                            form method="post" action={ "/p/" (slug) "/conflicts/" (v.conflict) "/resolve" } {
                                                input type="hidden" name="csrf" value=(csrf);
                                                input type="hidden" name="keep" value=(match v.keep {
                                                    Keep::Older => "older",
                                                    Keep::Newer => "newer",
                                                });
                                                button type="submit" { "Keep this" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if groups.len() > CONFLICTS_SHOWN {
                p class="hint" {
                    "Showing " (CONFLICTS_SHOWN) " of " (groups.len()) "; the conflicts table of the export lists all."
                }
            }
        }

        h2 id="flags" { "Interviews flagged for review " span class="count" { (flags.len()) } }
        @if flags.is_empty() {
            p class="empty" { "No interview breaks its form's rules." }
        } @else {
            table {
                thead { tr { th { "Interview" } th { "Form" } th { "Problems" } th { "Flagged" } } }
                tbody {
                    @for f in &flags {
                        tr {
                            td { code { (f.submission) } }
                            td { (f.form_id) " v" (f.version) }
                            td { (problems(&f.errors)) }
                            td { (when(Some(f.flagged_at))) }
                        }
                    }
                }
            }
        }

        h2 id="duplicates" { "Possible duplicate traders " span class="count" { (duplicates.len()) } }
        p class="hint" {
            "Merging keeps both histories: the first record stays, takes the fields it lacks, and every \
             interview and attendance of the other counts for it."
        }
        @if duplicates.is_empty() {
            p class="empty" { "No possible duplicates." }
        }
        @for g in &duplicates {
            @let survivor = &g.traders[0];
            div class="duplicate" {
                p {
                    strong {
                        (match g.reason {
                            review::DuplicateReason::SamePhone => "same phone number",
                            review::DuplicateReason::SameNameYearPost => "same name, year of birth and border post",
                        })
                    }
                }
                form method="post" action={ "/p/" (slug) "/duplicates/distinct" } class="distinct" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="key" value=(g.key);
                    button type="submit" class="secondary" { "Not the same person" }
                }
                ul {
                    @for (n, t) in g.traders.iter().enumerate() {
                        li {
                            (t.full_name) " · " (t.sex) " · born "
                            (t.year_of_birth.map_or_else(|| "?".into(), |y| y.to_string())) " · "
                            (t.phone.as_deref().unwrap_or("no phone")) " · " (words(&t.border_post)) " "
                            code { (&t.id.to_string()[..8]) }
                            " "
                            @if n == 0 {
                                em { "keeps" }
                            } @else {
                                form method="post" action={ "/p/" (slug) "/traders/merge" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="duplicate" value=(t.id.to_string());
                                    input type="hidden" name="survivor" value=(survivor.id.to_string());
                                    button type="submit" { "Merge into the first" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(project_page("Review", Tab::Review, &project, &session, body))
}

/// The open conflicts of one field of one record: every pair, and each
/// distinct value written, oldest first (the last one stands).
struct ConflictGroup<'a> {
    pairs: Vec<&'a ConflictView>,
    values: Vec<WrittenValue<'a>>,
}

/// A value of a conflict group, and which pair and side keeps it.
struct WrittenValue<'a> {
    value: &'a serde_json::Value,
    at_ms: u64,
    conflict: i64,
    keep: Keep,
}

/// Three phones writing one field make up to three pairs, but one
/// decision: pairs are shown grouped by record and field.
fn conflict_groups(conflicts: &[ConflictView]) -> Vec<ConflictGroup<'_>> {
    let mut groups: Vec<ConflictGroup<'_>> = Vec::new();
    for c in conflicts {
        let at = groups
            .iter()
            .position(|g| g.pairs[0].entity == c.entity && g.pairs[0].field == c.field);
        let group = match at {
            Some(i) => &mut groups[i],
            None => {
                groups.push(ConflictGroup {
                    pairs: Vec::new(),
                    values: Vec::new(),
                });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        group.pairs.push(c);
        for (value, at_ms, keep) in [
            (&c.older_value, c.older_at_ms, Keep::Older),
            (&c.newer_value, c.newer_at_ms, Keep::Newer),
        ] {
            match group.values.iter_mut().find(|v| v.value == value) {
                Some(v) if v.at_ms >= at_ms => {}
                Some(v) => {
                    *v = WrittenValue {
                        value,
                        at_ms,
                        conflict: c.id,
                        keep,
                    }
                }
                None => group.values.push(WrittenValue {
                    value,
                    at_ms,
                    conflict: c.id,
                    keep,
                }),
            }
        }
    }
    for g in &mut groups {
        g.values.sort_by_key(|v| v.at_ms);
    }
    groups
}

#[derive(Deserialize)]
pub struct ResolveForm {
    keep: Keep,
}

pub async fn resolve(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
    Path((_, id)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<ResolveForm>,
) -> Result<Response, WebError> {
    let id = number(&id, "conflict")?;
    let p = project.clone();
    state
        .blocking(move |data| Ok(data.resolve_conflict(&p, id, f.keep)?))
        .await?;
    tracing::info!(
        user = session.principal.user_id,
        conflict = id,
        "conflict resolved from the dashboard"
    );
    Ok(see_other(&format!("/p/{}/review#conflicts", project.slug)))
}

#[derive(Deserialize)]
pub struct DistinctForm {
    key: String,
}

pub async fn distinct(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
    CsrfForm(f): CsrfForm<DistinctForm>,
) -> Result<Response, WebError> {
    let p = project.clone();
    let by = session.principal.user_id;
    state
        .blocking(move |data| Ok(data.set_distinct(&p, &f.key, by)?))
        .await?;
    tracing::info!(
        user = session.principal.user_id,
        "duplicate group judged distinct from the dashboard"
    );
    Ok(see_other(&format!("/p/{}/review#duplicates", project.slug)))
}

#[derive(Deserialize)]
pub struct MergeForm {
    duplicate: String,
    survivor: String,
}

pub async fn merge(
    State(state): State<AppState>,
    DashboardProject { session, project }: DashboardProject,
    CsrfForm(f): CsrfForm<MergeForm>,
) -> Result<Response, WebError> {
    let duplicate = trader_id("duplicate", &f.duplicate)?;
    let survivor = trader_id("survivor", &f.survivor)?;
    let p = project.clone();
    state
        .blocking(move |data| Ok(data.merge_traders(&p, duplicate, survivor)?))
        .await?;
    tracing::info!(user = session.principal.user_id, "traders merged from the dashboard");
    Ok(see_other(&format!("/p/{}/review#duplicates", project.slug)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pair(id: i64, field: &str, older: (&str, u64), newer: (&str, u64)) -> ConflictView {
        ConflictView {
            id,
            collection: "traders",
            entity: "e1".into(),
            field: field.into(),
            older_value: json!(older.0),
            older_at_ms: older.1,
            newer_value: json!(newer.0),
            newer_at_ms: newer.1,
        }
    }

    #[test]
    fn three_writes_to_one_field_are_one_decision_with_three_values() {
        let conflicts = vec![
            pair(1, "phone", ("a", 10), ("b", 20)),
            pair(2, "phone", ("a", 10), ("c", 30)),
            pair(3, "phone", ("b", 20), ("c", 30)),
            pair(4, "border_post", ("x", 5), ("y", 6)),
        ];
        let groups = conflict_groups(&conflicts);
        assert_eq!(groups.len(), 2);
        let phone = &groups[0];
        assert_eq!(phone.pairs.len(), 3);
        let values: Vec<_> = phone.values.iter().map(|v| v.value.clone()).collect();
        assert_eq!(
            values,
            [json!("a"), json!("b"), json!("c")],
            "oldest first: the last stands"
        );
        // Each value is kept through a pair that holds it, on the right side.
        for v in &phone.values {
            let c = conflicts.iter().find(|c| c.id == v.conflict).unwrap();
            let side = match v.keep {
                Keep::Older => &c.older_value,
                Keep::Newer => &c.newer_value,
            };
            assert_eq!(side, v.value);
        }
    }
}
