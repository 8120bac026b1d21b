//! The expiry timeline: one bar per row (a certificate, or per-node copies folded) from its
//! NotBefore to its NotAfter on one time axis, a line at the instant checked, the warning
//! window shaded; CAs and leaves in their own colours, expired and expiring bars outlined.

use std::fmt::Write;

use time::{Duration, OffsetDateTime};

use super::{date_time, esc, Row};
use crate::audit::check::CheckStatus;

const WIDTH: f64 = 1200.0;
/// The column of names, left of the chart.
const LABEL_W: f64 = 470.0;
const ROW_H: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 12.0;
const RIGHT: f64 = 20.0;
/// Characters of a name shown; longer ones are cut in the middle (the whole in the tooltip).
const NAME_CHARS: usize = 68;

/// The chart, as an inline SVG element.
pub(super) fn svg(rows: &[Row], at: OffsetDateTime, warn: Duration) -> String {
    let dated: Vec<&Row> = rows.iter().filter(|r| r.not_after.is_some()).collect();
    let height = TOP + dated.len().max(1) as f64 * ROW_H + BOTTOM;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {WIDTH:.0} {height:.0}\" \
         font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"11\" data-bars=\"{}\">",
        dated.len()
    );
    let start = dated.iter().filter_map(|r| r.not_before).chain([at]).min().unwrap_or(at);
    let end = dated.iter().filter_map(|r| r.not_after.map(|t| t.1)).chain([at + warn]).max().unwrap_or(at);
    // A little room either side; never a zero span.
    let span = (end - start).max(Duration::days(1));
    let (start, end): (OffsetDateTime, OffsetDateTime) = (start - span / 50, end + span / 50);
    let chart_w = WIDTH - LABEL_W - RIGHT;
    let total = (end - start).as_seconds_f64();
    let x = |t: OffsetDateTime| -> f64 {
        let d: Duration = t - start;
        LABEL_W + chart_w * (d.as_seconds_f64() / total)
    };
    let bottom = height - BOTTOM;
    // The axis: a tick each year (each month when under two years).
    let _ = writeln!(o, "<g class=\"axis\" fill=\"#52606d\">");
    for t in ticks(start, end) {
        let _ = writeln!(
            o,
            "<path d=\"M{x:.1},{TOP:.1} V{bottom:.1}\" stroke=\"#e4e7eb\"/><text x=\"{x:.1}\" y=\"{:.1}\" \
             text-anchor=\"middle\">{}</text>",
            TOP - 8.0,
            tick_label(t, end - start),
            x = x(t)
        );
    }
    let _ = writeln!(o, "</g>");
    let _ = writeln!(
        o,
        "<rect class=\"warn-window\" x=\"{:.1}\" y=\"{TOP:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#fff3e0\"/>",
        x(at),
        (x(at + warn) - x(at)).max(1.0),
        bottom - TOP
    );
    for (i, r) in dated.iter().enumerate() {
        bar(&mut o, r, TOP + i as f64 * ROW_H, &x);
    }
    let _ = writeln!(
        o,
        "<g class=\"now\"><path d=\"M{ax:.1},{:.1} V{bottom:.1}\" stroke=\"#1f2933\" stroke-width=\"1.5\" \
         stroke-dasharray=\"4 3\"/><text x=\"{ax:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\" \
         fill=\"#1f2933\">now: {}</text></g>",
        TOP - 4.0,
        TOP - 20.0,
        esc(&date_time(at)),
        ax = x(at)
    );
    let _ = writeln!(o, "</svg>");
    o
}

fn bar(o: &mut String, r: &Row, y: f64, x: &impl Fn(OffsetDateTime) -> f64) {
    let Some((first_end, last_end)) = r.not_after else { return };
    let begin = r.not_before.unwrap_or(first_end);
    let ca = r.first.is_ca;
    let fill = if ca { "#1d4e89" } else { "#2a9d8f" };
    let (stroke, sw) = match r.status {
        CheckStatus::Expired | CheckStatus::NotYetValid => ("#c62828", 2.0),
        CheckStatus::Expiring => ("#e67700", 2.0),
        _ => ("none", 0.0),
    };
    let folded = r.count > 1;
    let what = if ca { "CA" } else { "certificate" };
    let mut title =
        format!("{} ({what}, {})\nfrom {}\nto   {}", r.name, r.status.word(), date_time(begin), date_time(last_end));
    if let Some(c) = r.first.certificate.as_ref() {
        let _ = write!(title, "\nCN={}", c.subject_cn);
    }
    if folded {
        let _ = write!(title, "\nearliest expiry {}", date_time(first_end));
    }
    let _ = writeln!(
        o,
        "<g class=\"cert\" data-ca=\"{ca}\" data-status=\"{}\" data-count=\"{}\"><title>{}</title>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#1f2933\">{}</text>\
         <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{fill}\"{} stroke=\"{stroke}\" \
         stroke-width=\"{sw}\"/>",
        r.status.word().replace(' ', "-"),
        r.count,
        esc(&title),
        LABEL_W - 8.0,
        y + ROW_H - 4.5,
        esc(&cut(&r.name)),
        x(begin),
        y + 3.0,
        (x(last_end) - x(begin)).max(2.0),
        ROW_H - 6.0,
        if folded { " fill-opacity=\"0.55\"" } else { "" },
    );
    if folded {
        let _ = write!(
            o,
            "<path d=\"M{:.1},{:.1} v{:.1}\" stroke=\"#1f2933\" stroke-width=\"2\"/>",
            x(first_end),
            y + 1.0,
            ROW_H - 2.0
        );
    }
    let _ = writeln!(o, "</g>");
}

/// A long name cut in the middle: `nodes/<node>/etc/…/kubelet.conf × 5000`.
fn cut(name: &str) -> String {
    let n = name.chars().count();
    if n <= NAME_CHARS {
        return name.to_string();
    }
    let head: String = name.chars().take(NAME_CHARS / 2 - 1).collect();
    let tail: String = name.chars().skip(n - (NAME_CHARS / 2 - 1)).collect();
    format!("{head}…{tail}")
}

/// The first instant of each year in the span (each month, when it is under two years).
pub(super) fn ticks(start: OffsetDateTime, end: OffsetDateTime) -> Vec<OffsetDateTime> {
    let monthly = end - start < Duration::days(730);
    let first = if monthly { start.month() } else { time::Month::January };
    let mut day = time::Date::from_calendar_date(start.year(), first, 1).ok();
    let mut out = Vec::new();
    while let Some(d) = day {
        let t = d.midnight().assume_utc();
        if t > end {
            break;
        }
        if t >= start {
            out.push(t);
        }
        day = if monthly {
            let (y, m) =
                if d.month() == time::Month::December { (d.year() + 1, d.month()) } else { (d.year(), d.month()) };
            time::Date::from_calendar_date(y, m.next(), 1).ok()
        } else {
            time::Date::from_calendar_date(d.year() + 1, time::Month::January, 1).ok()
        };
    }
    out
}

fn tick_label(t: OffsetDateTime, span: Duration) -> String {
    if span < Duration::days(730) {
        format!("{}-{:02}", t.year(), t.month() as u8)
    } else {
        t.year().to_string()
    }
}
