//! Bar charts as inline SVG: drawn on the server, readable without
//! scripts, each with a text alternative and each bar with its value.
//! Built with maud like the pages, so labels and series names (which come
//! from forms and answers) are escaped like any other value.

use maud::{Markup, html};

/// One bar: a label and its segments (series name, value).
pub struct Bar {
    /// Row label.
    pub label: String,
    /// Stacked segments, in series order.
    pub segments: Vec<(String, f64)>,
}

/// Colours of series, in order (colour-blind safe, Okabe–Ito).
const COLOURS: [&str; 6] = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"];

/// Label column, bar area, row and value column sizes.
const LABEL_W: f64 = 230.0;
const BAR_W: f64 = 190.0;
const ROW_H: f64 = 24.0;
const VALUE_W: f64 = 50.0;

/// A row laid out: where its label, segments and total go.
struct Row<'a> {
    bar: &'a Bar,
    /// Top of the row.
    y: f64,
    /// Baseline of its texts.
    text_y: f64,
    /// Each segment: left edge, width, colour, series, value.
    segments: Vec<(f64, f64, &'static str, &'a str, f64)>,
    /// Right end of the last segment.
    end: f64,
}

/// A horizontal stacked bar chart. `format` writes a value for people
/// (counts, or a share as a percentage); `max` fixes the scale (e.g. 1.0
/// for shares), else the longest bar fills the width.
pub fn bars(id: &str, title: &str, bars: &[Bar], max: Option<f64>, format: fn(f64) -> String) -> Markup {
    if bars.is_empty() {
        return html! {
            figure class="chart" id=(id) {
                figcaption { (title) }
                p class="empty" { "No data yet." }
            }
        };
    }
    let mut series: Vec<&str> = Vec::new();
    for b in bars {
        for (name, _) in &b.segments {
            if !series.contains(&name.as_str()) {
                series.push(name);
            }
        }
    }
    let total = |b: &Bar| b.segments.iter().map(|(_, v)| *v).sum::<f64>();
    let scale_max = max
        .unwrap_or_else(|| bars.iter().map(total).fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    let rows: Vec<Row<'_>> = bars
        .iter()
        .enumerate()
        .map(|(i, bar)| {
            let y = i as f64 * ROW_H + 2.0;
            let mut x = LABEL_W;
            let segments = bar
                .segments
                .iter()
                .map(|(name, value)| {
                    let w = (value / scale_max * BAR_W).max(0.0);
                    let colour = COLOURS[series.iter().position(|s| s == name).unwrap_or(0) % COLOURS.len()];
                    let segment = (x, w, colour, name.as_str(), *value);
                    x += w;
                    segment
                })
                .collect();
            Row {
                bar,
                y,
                text_y: y + ROW_H * 0.65,
                segments,
                end: x,
            }
        })
        .collect();
    let width = LABEL_W + BAR_W + VALUE_W;
    let height = ROW_H * bars.len() as f64 + 4.0;
    let title_id = format!("{id}-title");
    let legend = series.len() > 1 || series.first().is_some_and(|s| !s.is_empty());
    html! {
        figure class="chart" id=(id) {
            figcaption { (title) }
            @if legend {
                ul class="legend" {
                    @for (i, s) in series.iter().enumerate() {
                        // A class, not a style attribute: the CSP allows no inline style.
                        li { span class={ "s" (i % COLOURS.len()) } {} (s) }
                    }
                }
            }
            svg viewBox={ "0 0 " (width) " " (height) } role="img" aria-labelledby=(title_id) class="bars" {
                title id=(title_id) { (title) }
                @for row in &rows {
                    text x=(LABEL_W - 6.0) y=(row.text_y) text-anchor="end" class="label" { (short(&row.bar.label)) }
                    @for &(x, w, colour, name, value) in &row.segments {
                        rect class="bar" x=(format!("{x:.1}")) y=(format!("{:.1}", row.y)) width=(format!("{w:.1}"))
                            height=(format!("{:.1}", ROW_H - 6.0)) fill=(colour) data-series=(name) data-value=(value) {
                            title { (row.bar.label) ": " (name) " " (format(value)) }
                        }
                    }
                    text x=(format!("{:.1}", row.end + 4.0)) y=(row.text_y) class="value" { (format(total(row.bar))) }
                }
            }
        }
    }
}

/// A label cut to what the label column holds (the bar's tooltip keeps
/// it whole).
fn short(label: &str) -> String {
    const MAX: usize = 32;
    if label.chars().count() <= MAX {
        label.to_owned()
    } else {
        format!("{}…", label.chars().take(MAX - 1).collect::<String>())
    }
}

/// A count, as a whole number.
pub fn count(v: f64) -> String {
    format!("{}", v.round() as i64)
}

/// A share, as a percentage.
pub fn percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_longest_and_carry_their_values() {
        let svg = bars(
            "t",
            "Attendance <by topic>",
            &[
                Bar {
                    label: "HIV".into(),
                    segments: vec![("female".into(), 30.0), ("male".into(), 10.0)],
                },
                Bar {
                    label: "Ebola".into(),
                    segments: vec![("female".into(), 20.0)],
                },
            ],
            None,
            count,
        )
        .into_string();
        assert!(svg.contains("Attendance &lt;by topic&gt;"));
        assert_eq!(svg.matches("class=\"bar\"").count(), 3);
        assert!(svg.contains("width=\"142.5\""), "30 of 40 fills three quarters of 190");
        assert!(svg.contains(">40</text>") && svg.contains(">20</text>"));
        assert!(
            bars("e", "Empty", &[], None, count)
                .into_string()
                .contains("No data yet")
        );
    }

    #[test]
    fn labels_and_series_from_the_data_are_escaped() {
        let svg = bars(
            "t",
            "t",
            &[Bar {
                label: "<script>\"x\"".into(),
                segments: vec![("<b>\"s\"".into(), 1.0)],
            }],
            None,
            count,
        )
        .into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("data-series=\"&lt;b&gt;&quot;s&quot;\""));
        assert!(svg.contains("<title>&lt;script&gt;&quot;x&quot;: &lt;b&gt;&quot;s&quot; 1</title>"));
    }
}
