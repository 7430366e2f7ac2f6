//! Bar charts as inline SVG: drawn on the server, readable without
//! scripts, each with a text alternative and each bar with its value.

use std::fmt::Write;

use super::html::esc;

/// One bar: a label and its segments (series name, value).
pub struct Bar {
    /// Row label.
    pub label: String,
    /// Stacked segments, in series order.
    pub segments: Vec<(String, f64)>,
}

/// Colours of series, in order (colour-blind safe, Okabe–Ito).
const COLOURS: [&str; 6] = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"];

/// A horizontal stacked bar chart. `format` writes a value for people
/// (counts, or a share as a percentage); `max` fixes the scale (e.g. 1.0
/// for shares), else the longest bar fills the width.
pub fn bars(id: &str, title: &str, bars: &[Bar], max: Option<f64>, format: fn(f64) -> String) -> String {
    if bars.is_empty() {
        return format!(
            "<figure class=\"chart\" id=\"{id}\"><figcaption>{}</figcaption><p class=\"empty\">No data yet.</p></figure>",
            esc(title)
        );
    }
    let series: Vec<String> = {
        let mut s: Vec<String> = Vec::new();
        for b in bars {
            for (name, _) in &b.segments {
                if !s.contains(name) {
                    s.push(name.clone());
                }
            }
        }
        s
    };
    let total = |b: &Bar| b.segments.iter().map(|(_, v)| *v).sum::<f64>();
    let scale_max = max
        .unwrap_or_else(|| bars.iter().map(total).fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    let (label_w, bar_w, row_h, value_w) = (230.0, 190.0, 24.0, 50.0);
    let width = label_w + bar_w + value_w;
    let height = row_h * bars.len() as f64 + 4.0;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"{id}-title\" class=\"bars\">\
         <title id=\"{id}-title\">{}</title>",
        esc(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"label\">{}</text>",
            label_w - 6.0,
            y + row_h * 0.65,
            esc(&short(&b.label))
        );
        let mut x = label_w;
        for (name, value) in &b.segments {
            let w = (value / scale_max * bar_w).max(0.0);
            let colour = COLOURS[series.iter().position(|s| s == name).unwrap_or(0) % COLOURS.len()];
            let _ = write!(
                svg,
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{colour}\" \
                 data-series=\"{}\" data-value=\"{value}\"><title>{}: {} {}</title></rect>",
                row_h - 6.0,
                esc(name),
                esc(&b.label),
                esc(name),
                format(*value)
            );
            x += w;
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" class=\"value\">{}</text>",
            x + 4.0,
            y + row_h * 0.65,
            format(total(b))
        );
    }
    svg.push_str("</svg>");
    let mut legend = String::new();
    if series.len() > 1 || series.first().is_some_and(|s| !s.is_empty()) {
        legend.push_str("<ul class=\"legend\">");
        for (i, s) in series.iter().enumerate() {
            // A class, not a style attribute: the CSP allows no inline style.
            let _ = write!(
                legend,
                "<li><span class=\"s{}\"></span>{}</li>",
                i % COLOURS.len(),
                esc(s)
            );
        }
        legend.push_str("</ul>");
    }
    format!(
        "<figure class=\"chart\" id=\"{id}\"><figcaption>{}</figcaption>{legend}{svg}</figure>",
        esc(title)
    )
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
        );
        assert!(svg.contains("Attendance &lt;by topic&gt;"));
        assert_eq!(svg.matches("class=\"bar\"").count(), 3);
        assert!(svg.contains("width=\"142.5\""), "30 of 40 fills three quarters of 190");
        assert!(svg.contains(">40</text>") && svg.contains(">20</text>"));
        assert!(bars("e", "Empty", &[], None, count).contains("No data yet"));
    }
}
