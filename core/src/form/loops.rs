//! pyxform's `begin loop over <list>` ... `end loop`: the rows between are
//! asked once for each choice of the list, in a group named by the choice
//! and labelled with it, `%(label)s` (or any other choice column) standing
//! for it in the rows' labels and hints.
//!
//! The survey sheet is rewritten before it is compiled, into the groups
//! pyxform makes (`/data/loop/pit_latrine/number`). Each copy keeps its
//! row's name, as in pyxform, so compiling names the copies by their
//! groups as it names any name used in several groups
//! (`loop.pit_latrine.number`), and a `${number}` that could be any copy
//! is refused, as pyxform refuses it.

use std::collections::{BTreeMap, HashSet};

use super::FormError;
use super::definition::{Choice, DEFAULT_LANGUAGE};
use super::sheets::{Sheet, SheetLimits};

/// The survey sheet with its loops expanded, or `None` if it has none.
pub(super) fn expand(
    survey: &Sheet,
    choices: &BTreeMap<String, Vec<Choice>>,
    or_other_lists: &HashSet<String>,
    errors: &mut Vec<FormError>,
) -> Option<Sheet> {
    let column = |name: &str| survey.header.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let (Some(type_at), Some(name_at)) = (column("type"), column("name")) else {
        return None;
    };
    let width = survey.header.len();
    let kind_of = |cells: &[String]| cells.get(type_at).map(|t| t.trim().to_lowercase()).unwrap_or_default();
    if !survey
        .rows
        .iter()
        .any(|(_, cells)| loop_list(&kind_of(cells)).is_some())
    {
        return None;
    }
    let mut rows = Vec::new();
    let mut at = 0;
    while at < survey.rows.len() {
        let (number, cells) = &survey.rows[at];
        let Some(list) = loop_list(&kind_of(cells)) else {
            rows.push(survey.rows[at].clone());
            at += 1;
            continue;
        };
        // The loop's body: up to its `end loop`, loops inside it included.
        let mut depth = 1;
        let mut end = at + 1;
        while end < survey.rows.len() {
            let kind = kind_of(&survey.rows[end].1);
            if loop_list(&kind).is_some() {
                depth += 1;
            } else if is_end_loop(&kind) {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            end += 1;
        }
        if depth > 0 {
            errors.push(FormError::at(
                &survey.name,
                *number,
                "type",
                "begin loop is never closed: add an `end loop` row",
            ));
            return None;
        }
        let Some(items) = choices.get(&list) else {
            errors.push(FormError::at(
                &survey.name,
                *number,
                "type",
                format!("no choice list named `{list}` to loop over"),
            ));
            return None;
        };
        let mut items = items.clone();
        if or_other_lists.contains(&list) && !items.iter().any(|c| c.name == "other") {
            items.push(Choice {
                name: "other".to_owned(),
                label: BTreeMap::from([(DEFAULT_LANGUAGE.to_owned(), "Other".to_owned())]),
                extra: BTreeMap::new(),
                media: BTreeMap::new(),
            });
        }
        let body = &survey.rows[at + 1..end];
        // A long list times a long body could make a small file into
        // millions of rows: the expansion stays within a sheet's rows.
        let max_rows = SheetLimits::default().max_rows;
        if rows.len().saturating_add(items.len().saturating_mul(body.len() + 2)) > max_rows {
            errors.push(FormError::at(
                &survey.name,
                *number,
                "type",
                format!(
                    "this loop asks {} rows once for each of the {} choices of `{list}`: more than the {max_rows} \
                     rows a form may have; use a repeat instead",
                    body.len(),
                    items.len()
                ),
            ));
            return None;
        }
        rows.push((*number, with(cells, width, type_at, "begin group")));
        for item in &items {
            let mut open = with(cells, width, type_at, "begin group");
            open[name_at] = item.name.clone();
            for (i, header) in survey.header.iter().enumerate() {
                if let Some(language) = label_language(header) {
                    open[i] = label_of(item, &language);
                }
            }
            rows.push((*number, open));
            for (row_number, row) in body {
                let mut copy: Vec<String> = row.iter().map(|cell| substitute(cell, item)).collect();
                copy.resize(copy.len().max(width), String::new());
                for (i, header) in survey.header.iter().enumerate() {
                    if let (Some(language), Some(cell)) = (label_language(header), copy.get_mut(i)) {
                        *cell = cell.replace("%(label)s", &label_of(item, &language));
                    }
                }
                rows.push((*row_number, copy));
            }
            rows.push((*number, with(&[], width, type_at, "end group")));
        }
        rows.push((survey.rows[end].0, with(&[], width, type_at, "end group")));
        at = end + 1;
    }
    Some(Sheet {
        name: survey.name.clone(),
        header: survey.header.clone(),
        rows,
        passed_over: Vec::new(),
    })
}

/// The list of a `begin loop over <list>` (or `begin_loop <list>`) type.
fn loop_list(kind: &str) -> Option<String> {
    let rest = kind.strip_prefix("begin")?.trim_start_matches([' ', '_']);
    let rest = rest.strip_prefix("loop")?.trim();
    let rest = rest.strip_prefix("over ").unwrap_or(rest).trim();
    (!rest.is_empty() && !rest.contains(char::is_whitespace)).then(|| rest.to_owned())
}

fn is_end_loop(kind: &str) -> bool {
    matches!(kind, "end loop" | "end_loop")
}

/// `cells`, as wide as the header (a row's trailing empty cells may be
/// missing), with `kind` in the type column.
fn with(cells: &[String], width: usize, type_at: usize, kind: &str) -> Vec<String> {
    let mut row = cells.to_vec();
    row.resize(row.len().max(width).max(type_at + 1), String::new());
    row[type_at] = kind.to_owned();
    row
}

/// The language of a label or hint column, if the header is one.
fn label_language(header: &str) -> Option<String> {
    let header = header.trim();
    let (base, language) = header
        .split_once("::")
        .or_else(|| header.split_once(':'))
        .map_or((header, DEFAULT_LANGUAGE), |(b, l)| (b, l.trim()));
    matches!(base.trim().to_lowercase().as_str(), "label" | "hint").then(|| language.to_owned())
}

/// A choice's label in `language`, or in any language it has.
fn label_of(item: &Choice, language: &str) -> String {
    item.label
        .get(language)
        .or_else(|| item.label.values().next())
        .cloned()
        .unwrap_or_else(|| item.name.clone())
}

/// A cell of the loop's body for one choice: `%(column)s` is that column
/// of the choice (`%(label)s` is handled per language by the caller).
fn substitute(cell: &str, item: &Choice) -> String {
    let mut out = cell.replace("%(name)s", &item.name);
    for (column, value) in &item.extra {
        out = out.replace(&format!("%({column})s"), value);
    }
    out
}
