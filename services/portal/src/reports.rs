//! The owner's reports (`GET /reports?weeks=N`, permission `view reports`): jobs by status week by
//! week, revenue per week, average turnaround and the parts used most, each as an inline SVG chart
//! drawn here on the server ([`chart`]) with a plain table of the same figures beneath it.
//!
//! The figures come from the services that own them, asked as the signed-in owner: jobs'
//! `GetJobsReport` and billing's `GetRevenueReport`, both for the same weeks (ISO weeks, Monday
//! 00:00 UTC, the current one last: `omneuro_platform::weeks`). When one of them is down, the
//! other half still shows, with a notice where the missing half would be (200); only when both
//! are down is the page a 503. A `weeks` that is not a whole number from 1 to 52 gives the page
//! with the reason (400) and asks neither service.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDate;
use omneuro_platform::auth;
use omneuro_platform::grpc;
use omneuro_platform::http::failure;
use omneuro_platform::weeks::{DEFAULT_WEEKS, MAX_WEEKS};
use omneuro_proto::billing::v1 as bpb;
use omneuro_proto::jobs::v1 as jpb;
use serde::Deserialize;

use crate::Portal;
use crate::bench::money;
use crate::board::WORKFLOW;
use crate::pages::page;
use crate::staff::{Nav, Staff};

const JOBS_DOWN: &str = "The jobs service isn't answering right now, so the jobs figures (jobs by status, turnaround, parts used) can't be shown. Reload in a minute.";
const BILLING_DOWN: &str = "The billing service isn't answering right now, so the revenue figures can't be shown. Reload in a minute.";

/// A colour per status, in workflow order (open statuses cool to warm, then delivered and
/// canceled).
const STATUS_COLORS: [&str; 9] = [
    "#64748b", "#0ea5e9", "#f59e0b", "#f97316", "#8b5cf6", "#eab308", "#22c55e", "#15803d",
    "#ef4444",
];

/// The number of weeks typed into `?weeks=` (empty: the default), or the sentence saying why not.
pub fn parse_weeks(typed: &str) -> Result<u32, String> {
    let t = typed.trim();
    if t.is_empty() {
        return Ok(DEFAULT_WEEKS);
    }
    match t.parse::<u32>() {
        Ok(n) if (1..=MAX_WEEKS).contains(&n) => Ok(n),
        _ => Err(format!(
            "Weeks should be a whole number from 1 to {MAX_WEEKS}, like {DEFAULT_WEEKS}; “{t}” isn't."
        )),
    }
}

/// "Jun 9" for a week's Monday (as jobs and billing send it, YYYY-MM-DD).
fn week_label(monday: &str) -> String {
    NaiveDate::parse_from_str(monday, "%Y-%m-%d")
        .map(|d| d.format("%b %-d").to_string())
        .unwrap_or_else(|_| monday.to_owned())
}

/// A turnaround for people: minutes under an hour, hours under two days, then days.
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    if s == 0 {
        "—".to_owned()
    } else if s < 3600 {
        format!("{} min", (s + 59) / 60)
    } else if s < 48 * 3600 {
        format!("{:.1} h", s as f64 / 3600.0)
    } else {
        format!("{:.1} days", s as f64 / 86_400.0)
    }
}

pub struct StatusCell {
    pub code: &'static str,
    pub count: u32,
}

pub struct JobsWeek {
    pub week: String,
    pub label: String,
    pub opened: u32,
    pub statuses: Vec<StatusCell>,
    pub finished: u32,
    pub turnaround_seconds: i64,
    pub turnaround: String,
}

pub struct StatusKey {
    pub code: &'static str,
    pub label: &'static str,
    pub color: &'static str,
}

pub struct PartRow {
    pub product_id: String,
    pub name: String,
    pub quantity: i64,
}

/// The jobs half of the page.
pub struct JobsView {
    pub weeks: Vec<JobsWeek>,
    pub keys: Vec<StatusKey>,
    pub finished: u32,
    pub turnaround_seconds: i64,
    pub turnaround: String,
    pub parts: Vec<PartRow>,
    pub status_chart: String,
    pub turnaround_chart: String,
    pub parts_chart: String,
}

fn jobs_view(r: jpb::JobsReport) -> JobsView {
    let weeks: Vec<JobsWeek> = r
        .weeks
        .into_iter()
        .map(|w| JobsWeek {
            label: week_label(&w.week_start),
            statuses: WORKFLOW
                .iter()
                .map(|(code, _)| StatusCell {
                    code,
                    count: w
                        .statuses
                        .iter()
                        .filter(|s| s.status == *code)
                        .map(|s| s.count)
                        .sum(),
                })
                .collect(),
            week: w.week_start,
            opened: w.opened,
            finished: w.finished,
            turnaround_seconds: w.turnaround_avg_seconds,
            turnaround: if w.finished == 0 {
                "—".to_owned()
            } else {
                duration(w.turnaround_avg_seconds)
            },
        })
        .collect();
    let keys: Vec<StatusKey> = WORKFLOW
        .iter()
        .zip(STATUS_COLORS)
        .map(|((code, label), color)| StatusKey { code, label, color })
        .collect();
    let labels: Vec<String> = weeks.iter().map(|w| w.label.clone()).collect();
    let columns: Vec<Vec<i64>> = keys
        .iter()
        .enumerate()
        .map(|(i, _)| {
            weeks
                .iter()
                .map(|w| w.statuses.get(i).map_or(0, |c| i64::from(c.count)))
                .collect()
        })
        .collect();
    let series: Vec<chart::Series<'_>> = keys
        .iter()
        .zip(&columns)
        .map(|(k, values)| chart::Series {
            name: k.label,
            color: k.color,
            values,
        })
        .collect();
    let status_chart = chart::stacked_bars(
        "chart-status",
        "Jobs by status at the end of each week",
        &labels,
        &series,
        &|v| v.to_string(),
    );
    let turnaround: Vec<Option<i64>> = weeks
        .iter()
        .map(|w| (w.finished > 0).then_some(w.turnaround_seconds))
        .collect();
    let turnaround_chart = chart::line(
        "chart-turnaround",
        "Average turnaround, drop-off to ready, by the week jobs were ready",
        &labels,
        &turnaround,
        // The axis starts at zero, which `duration` shows as "no figure".
        &|s| if s == 0 { "0".to_owned() } else { duration(s) },
    );
    let parts: Vec<PartRow> = r
        .parts
        .into_iter()
        .map(|p| PartRow {
            product_id: p.product_id,
            name: p.name,
            quantity: p.quantity,
        })
        .collect();
    let items: Vec<(String, i64)> = parts.iter().map(|p| (p.name.clone(), p.quantity)).collect();
    let parts_chart = chart::hbars(
        "chart-parts",
        "Parts used most (by quantity)",
        &items,
        &|v| v.to_string(),
    );
    JobsView {
        weeks,
        keys,
        finished: r.finished,
        turnaround_seconds: r.turnaround_avg_seconds,
        turnaround: if r.finished == 0 {
            "—".to_owned()
        } else {
            duration(r.turnaround_avg_seconds)
        },
        parts,
        status_chart,
        turnaround_chart,
        parts_chart,
    }
}

pub struct MoneyWeek {
    pub week: String,
    pub label: String,
    pub paid_cents: i64,
    pub refunded_cents: i64,
    pub net_cents: i64,
    pub paid: String,
    pub refunded: String,
    pub net: String,
    pub invoices: u32,
}

/// The billing half of the page.
pub struct MoneyView {
    pub weeks: Vec<MoneyWeek>,
    pub total: MoneyWeek,
    pub chart: String,
}

fn cents(m: Option<&omneuro_proto::common::v1::Money>) -> i64 {
    m.map_or(0, |m| m.amount_cents)
}

fn money_week(
    week: String,
    paid: Option<&omneuro_proto::common::v1::Money>,
    refunded: Option<&omneuro_proto::common::v1::Money>,
    net: Option<&omneuro_proto::common::v1::Money>,
    invoices: u32,
) -> MoneyWeek {
    MoneyWeek {
        label: week_label(&week),
        week,
        paid_cents: cents(paid),
        refunded_cents: cents(refunded),
        net_cents: cents(net),
        paid: money(paid),
        refunded: money(refunded),
        net: money(net),
        invoices,
    }
}

fn money_view(r: bpb::RevenueReport) -> MoneyView {
    let weeks: Vec<MoneyWeek> = r
        .weeks
        .into_iter()
        .map(|w| {
            money_week(
                w.week_start,
                w.paid.as_ref(),
                w.refunded.as_ref(),
                w.net.as_ref(),
                w.invoices_paid,
            )
        })
        .collect();
    let labels: Vec<String> = weeks.iter().map(|w| w.label.clone()).collect();
    let net: Vec<i64> = weeks.iter().map(|w| w.net_cents).collect();
    let chart = chart::bars(
        "chart-revenue",
        "Net revenue per week (paid minus refunded)",
        &labels,
        &net,
        &|c| {
            money(Some(&omneuro_proto::common::v1::Money {
                amount_cents: c,
                currency: "USD".into(),
            }))
        },
    );
    MoneyView {
        weeks,
        total: money_week(
            "total".into(),
            r.paid.as_ref(),
            r.refunded.as_ref(),
            r.net.as_ref(),
            r.invoices_paid,
        ),
        chart,
    }
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    nav: Nav,
    /// What the weeks box shows: what was typed, or the weeks shown.
    typed: String,
    message: Option<String>,
    jobs: Option<JobsView>,
    jobs_notice: Option<&'static str>,
    money: Option<MoneyView>,
    money_notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct ReportsQuery {
    #[serde(default)]
    weeks: Option<String>,
}

/// GET `/reports` (`?weeks=N`, 1 to 52, 12 when not given).
pub async fn show(
    staff: Staff,
    state: Data<Portal>,
    req: HttpRequest,
    q: Query<ReportsQuery>,
) -> HttpResponse {
    let typed: String = q.weeks.as_deref().unwrap_or("").chars().take(20).collect();
    let mut t = ReportsPage {
        nav: staff.nav(&req, &state),
        typed: typed.clone(),
        message: None,
        jobs: None,
        jobs_notice: None,
        money: None,
        money_notice: None,
    };
    let weeks = match parse_weeks(&typed) {
        Ok(n) => n,
        Err(why) => {
            t.message = Some(why);
            return page(&t, StatusCode::BAD_REQUEST, &req, &[]);
        }
    };
    t.typed = weeks.to_string();
    let actor = staff.actor();
    let (mut j, mut b) = (state.jobs.clone(), state.billing.clone());
    let (jobs, revenue) = tokio::join!(
        grpc::call(
            "JobsService/GetJobsReport",
            j.get_jobs_report(auth::request(&actor, jpb::GetJobsReportRequest { weeks })),
        ),
        grpc::call(
            "BillingService/GetRevenueReport",
            b.get_revenue_report(auth::request(
                &actor,
                bpb::GetRevenueReportRequest { weeks },
            )),
        ),
    );
    let mut status = StatusCode::OK;
    match jobs {
        Ok(r) => t.jobs = Some(jobs_view(r.into_inner())),
        Err(st) => match failure(&st, JOBS_DOWN) {
            (StatusCode::SERVICE_UNAVAILABLE, _) => t.jobs_notice = Some(JOBS_DOWN),
            (s, why) => {
                status = s;
                t.message = Some(why);
            }
        },
    }
    match revenue {
        Ok(r) => t.money = Some(money_view(r.into_inner())),
        Err(st) => match failure(&st, BILLING_DOWN) {
            (StatusCode::SERVICE_UNAVAILABLE, _) => t.money_notice = Some(BILLING_DOWN),
            (s, why) => {
                status = s;
                t.message = Some(why);
            }
        },
    }
    if t.jobs_notice.is_some() && t.money_notice.is_some() {
        status = StatusCode::SERVICE_UNAVAILABLE;
    }
    page(&t, status, &req, &[])
}

/// Charts as inline SVG, drawn on the server: no script, no library, readable by anything that
/// reads SVG. Every chart is an `<svg role="img">` with a `<title>` (and `aria-labelledby`
/// pointing at it); every bar, segment and point carries its own `<title>` with the figure.
/// All text is XML-escaped here ([`esc`]); the page puts the result in as it is.
///
/// What a test can count: [`stacked_bars`] draws one `<rect>` per non-zero segment; [`bars`] one
/// `<rect>` per value (zero: no height); [`line`] one `<circle>` per value present; [`hbars`] one
/// `<rect>` per item. Nothing else in a chart is a `<rect>` or a `<circle>`.
pub mod chart {
    use std::fmt::Write;

    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 240.0;
    const LEFT: f64 = 72.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 14.0;
    const BOTTOM: f64 = 28.0;
    const AXIS: &str = "#94a3b8";
    const GRID: &str = "#334155";
    const BAR: &str = "#7c3aed";
    const NEGATIVE: &str = "#ef4444";

    /// One stacked series: a name, a colour and a value per column.
    pub struct Series<'a> {
        pub name: &'a str,
        pub color: &'a str,
        pub values: &'a [i64],
    }

    /// Text as XML character data or an attribute value.
    pub fn esc(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                // Not allowed in XML 1.0 at all.
                c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
                c => out.push(c),
            }
        }
        out
    }

    /// Where values go on the vertical axis: `lo..hi` (always holding 0, never empty) onto the
    /// plot's height.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Scale {
        pub lo: i64,
        pub hi: i64,
        top: f64,
        height: f64,
    }

    impl Scale {
        pub fn new(values: impl IntoIterator<Item = i64>, top: f64, height: f64) -> Scale {
            let (mut lo, mut hi) = (0_i64, 0_i64);
            for v in values {
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if hi == lo {
                hi = lo + 1;
            }
            Scale {
                lo,
                hi,
                top,
                height,
            }
        }

        /// The y coordinate of `v` (clamped into the plot).
        pub fn y(&self, v: i64) -> f64 {
            let v = v.clamp(self.lo, self.hi);
            self.top + (self.hi - v) as f64 / (self.hi - self.lo) as f64 * self.height
        }
    }

    fn open(out: &mut String, id: &str, title: &str, height: f64) {
        let (id, title) = (esc(id), esc(title));
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}\" class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-labelledby=\"{id}-title\"><title id=\"{id}-title\">{title}</title>"
        );
    }

    /// Gridlines and labels for the scale's top, zero and (when negative) bottom.
    fn y_axis(out: &mut String, s: &Scale, fmt: &dyn Fn(i64) -> String) {
        let mut marks = vec![s.hi, 0];
        if s.lo < 0 {
            marks.push(s.lo);
        }
        for v in marks {
            let y = s.y(v);
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-width=\"1\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{AXIS}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
                WIDTH - RIGHT,
                if v == 0 { AXIS } else { GRID },
                LEFT - 6.0,
                y + 4.0,
                esc(&fmt(v))
            );
        }
    }

    /// Column `i`'s left edge, width of a column slot.
    fn slot(n: usize) -> f64 {
        (WIDTH - LEFT - RIGHT) / n.max(1) as f64
    }

    /// The week labels under the columns (every k-th when there are many).
    fn x_labels(out: &mut String, labels: &[String]) {
        let n = labels.len();
        let every = n.div_ceil(13).max(1);
        let w = slot(n);
        for (i, l) in labels.iter().enumerate() {
            if i % every != 0 && i + 1 != n {
                continue;
            }
            let x = LEFT + w * (i as f64 + 0.5);
            let _ = write!(
                out,
                "<text x=\"{x:.1}\" y=\"{:.1}\" fill=\"{AXIS}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                HEIGHT - 8.0,
                esc(l)
            );
        }
    }

    fn rect(out: &mut String, x: f64, y: f64, w: f64, h: f64, fill: &str, tip: &str) {
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}</title></rect>",
            esc(fill),
            esc(tip)
        );
    }

    /// Stacked columns, one per label, a segment per series with a non-zero value (negative
    /// values count as zero).
    pub fn stacked_bars(
        id: &str,
        title: &str,
        labels: &[String],
        series: &[Series<'_>],
        fmt: &dyn Fn(i64) -> String,
    ) -> String {
        let at = |s: &Series<'_>, i: usize| s.values.get(i).copied().unwrap_or(0).max(0);
        let totals: Vec<i64> = (0..labels.len())
            .map(|i| series.iter().map(|s| at(s, i)).sum())
            .collect();
        let plot = HEIGHT - TOP - BOTTOM;
        let scale = Scale::new(totals.iter().copied(), TOP, plot);
        let mut out = String::new();
        open(&mut out, id, title, HEIGHT);
        y_axis(&mut out, &scale, fmt);
        let w = slot(labels.len());
        for (i, label) in labels.iter().enumerate() {
            let mut base = 0_i64;
            for s in series {
                let v = at(s, i);
                if v == 0 {
                    continue;
                }
                let (y0, y1) = (scale.y(base), scale.y(base + v));
                rect(
                    &mut out,
                    LEFT + w * (i as f64 + 0.15),
                    y1,
                    w * 0.7,
                    y0 - y1,
                    s.color,
                    &format!("{label}: {} {}", s.name, fmt(v)),
                );
                base += v;
            }
        }
        x_labels(&mut out, labels);
        out.push_str("</svg>");
        out
    }

    /// A column per value from the zero line: up for positive, down (red) for negative.
    pub fn bars(
        id: &str,
        title: &str,
        labels: &[String],
        values: &[i64],
        fmt: &dyn Fn(i64) -> String,
    ) -> String {
        let plot = HEIGHT - TOP - BOTTOM;
        let scale = Scale::new(values.iter().copied(), TOP, plot);
        let mut out = String::new();
        open(&mut out, id, title, HEIGHT);
        y_axis(&mut out, &scale, fmt);
        let w = slot(labels.len().max(values.len()));
        let zero = scale.y(0);
        for (i, v) in values.iter().enumerate() {
            let y = scale.y(*v);
            let label = labels.get(i).map_or("", String::as_str);
            rect(
                &mut out,
                LEFT + w * (i as f64 + 0.15),
                y.min(zero),
                w * 0.7,
                (y - zero).abs(),
                if *v < 0 { NEGATIVE } else { BAR },
                &format!("{label}: {}", fmt(*v)),
            );
        }
        x_labels(&mut out, labels);
        out.push_str("</svg>");
        out
    }

    /// A line through the values present (a gap where a value is missing), a dot on each.
    pub fn line(
        id: &str,
        title: &str,
        labels: &[String],
        values: &[Option<i64>],
        fmt: &dyn Fn(i64) -> String,
    ) -> String {
        let plot = HEIGHT - TOP - BOTTOM;
        let scale = Scale::new(values.iter().flatten().copied(), TOP, plot);
        let mut out = String::new();
        open(&mut out, id, title, HEIGHT);
        y_axis(&mut out, &scale, fmt);
        let w = slot(labels.len().max(values.len()));
        let point = |i: usize, v: i64| (LEFT + w * (i as f64 + 0.5), scale.y(v));
        // Runs of consecutive values, each one polyline.
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, out: &mut String| {
            if run.len() > 1 {
                let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(
                    out,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{BAR}\" stroke-width=\"2\"/>",
                    pts.join(" ")
                );
            }
            run.clear();
        };
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => run.push(point(i, *v)),
                None => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let (x, y) = point(i, *v);
                let label = labels.get(i).map_or("", String::as_str);
                let _ = write!(
                    out,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{BAR}\"><title>{}</title></circle>",
                    esc(&format!("{label}: {}", fmt(*v)))
                );
            }
        }
        x_labels(&mut out, labels);
        out.push_str("</svg>");
        out
    }

    /// Horizontal bars, one per item, longest first as given; the name on the left, the figure
    /// after the bar. No items: a line saying so.
    pub fn hbars(
        id: &str,
        title: &str,
        items: &[(String, i64)],
        fmt: &dyn Fn(i64) -> String,
    ) -> String {
        const ROW: f64 = 26.0;
        const NAMES: f64 = 220.0;
        const FIGURE: f64 = 60.0;
        let height = TOP + ROW * items.len().max(1) as f64 + 8.0;
        let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
        let span = WIDTH - NAMES - FIGURE;
        let mut out = String::new();
        open(&mut out, id, title, height);
        if items.is_empty() {
            let _ = write!(
                out,
                "<text x=\"{NAMES}\" y=\"{:.1}\" fill=\"{AXIS}\" font-size=\"12\">Nothing in this period.</text>",
                TOP + ROW * 0.6
            );
        }
        for (i, (name, v)) in items.iter().enumerate() {
            let y = TOP + ROW * i as f64;
            let w = span * (*v).max(0) as f64 / max as f64;
            let shown: String = if name.chars().count() > 32 {
                name.chars().take(31).chain(['…']).collect()
            } else {
                name.clone()
            };
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#e2e8f0\" font-size=\"12\" text-anchor=\"end\">{}</text>",
                NAMES - 8.0,
                y + ROW * 0.6,
                esc(&shown)
            );
            rect(
                &mut out,
                NAMES,
                y + 4.0,
                w,
                ROW - 8.0,
                BAR,
                &format!("{name}: {}", fmt(*v)),
            );
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{AXIS}\" font-size=\"12\">{}</text>",
                NAMES + w + 6.0,
                y + ROW * 0.6,
                esc(&fmt(*v))
            );
        }
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::chart::*;
    use super::*;

    /// Checks `svg` is well-formed XML (every tag closed in order, one root, entities known)
    /// and returns the element names in document order.
    fn elements(svg: &str) -> Vec<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut names = Vec::new();
        let mut roots = 0;
        for t in xmlparser::Tokenizer::from(svg) {
            match t.unwrap_or_else(|e| panic!("{e}: {svg}")) {
                xmlparser::Token::ElementStart { local, .. } => {
                    if stack.is_empty() {
                        roots += 1;
                    }
                    stack.push(local.to_string());
                    names.push(local.to_string());
                }
                xmlparser::Token::ElementEnd { end, .. } => match end {
                    xmlparser::ElementEnd::Open => {}
                    xmlparser::ElementEnd::Empty => {
                        stack.pop();
                    }
                    xmlparser::ElementEnd::Close(_, name) => {
                        assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "{svg}");
                    }
                },
                xmlparser::Token::Text { text } => {
                    let t = text.as_str();
                    let mut rest = t;
                    while let Some(i) = rest.find('&') {
                        let ent = &rest[i..rest[i..].find(';').map_or(rest.len(), |e| i + e + 1)];
                        assert!(
                            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].contains(&ent),
                            "unknown entity {ent} in {svg}"
                        );
                        rest = &rest[i + 1..];
                    }
                    assert!(!t.contains('<'), "{svg}");
                }
                _ => {}
            }
        }
        assert!(stack.is_empty(), "unclosed {stack:?}: {svg}");
        assert_eq!(roots, 1, "{svg}");
        names
    }

    fn count(names: &[String], el: &str) -> usize {
        names.iter().filter(|n| *n == el).count()
    }

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("W{i}")).collect()
    }

    /// The numbers in attribute `attr` of every `<rect`, in order.
    fn rect_attr(svg: &str, attr: &str) -> Vec<f64> {
        svg.match_indices("<rect ")
            .map(|(i, _)| {
                let from = svg[i..].find(&format!(" {attr}=\"")).unwrap() + i + attr.len() + 3;
                let to = svg[from..].find('"').unwrap() + from;
                svg[from..to].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn the_scale_holds_zero_and_is_never_empty() {
        let s = Scale::new([3, 10, 7], 0.0, 100.0);
        assert_eq!((s.lo, s.hi), (0, 10));
        assert_eq!(s.y(10), 0.0);
        assert_eq!(s.y(0), 100.0);
        assert_eq!(s.y(5), 50.0);
        let neg = Scale::new([-5, 15], 10.0, 200.0);
        assert_eq!((neg.lo, neg.hi), (-5, 15));
        assert_eq!(neg.y(0), 10.0 + 150.0);
        let zero = Scale::new([0, 0], 0.0, 100.0);
        assert_eq!((zero.lo, zero.hi), (0, 1));
        assert_eq!(zero.y(0), 100.0);
        assert_eq!(Scale::new([], 0.0, 50.0).y(0), 50.0);
        // Out of range is clamped into the plot.
        assert_eq!(s.y(99), 0.0);
    }

    #[test]
    fn stacked_bars_draw_a_segment_per_non_zero_value_scaled_to_the_tallest_column() {
        let a = [2, 0, 1];
        let b = [2, 0, 0];
        let series = [
            Series {
                name: "Intake",
                color: "#111111",
                values: &a,
            },
            Series {
                name: "Ready",
                color: "#222222",
                values: &b,
            },
        ];
        let svg = stacked_bars("s", "Jobs", &labels(3), &series, &|v| v.to_string());
        let names = elements(&svg);
        assert_eq!(count(&names, "rect"), 3);
        assert_eq!(names[0], "svg");
        assert_eq!(names[1], "title");
        // The tallest column (4) fills the plot; its two halves are equal.
        let plot = 240.0 - 14.0 - 28.0;
        let h = rect_attr(&svg, "height");
        assert!(
            (h[0] - plot / 2.0).abs() < 0.11 && (h[1] - plot / 2.0).abs() < 0.11,
            "{h:?}"
        );
        assert!((h[2] - plot / 4.0).abs() < 0.11, "{h:?}");
        assert!(svg.contains("<title>W0: Ready 2</title>"));
        assert!(svg.contains("role=\"img\"") && svg.contains("aria-labelledby=\"s-title\""));
    }

    #[test]
    fn zero_data_draws_an_empty_but_valid_chart() {
        let zeros = [0, 0];
        let series = [Series {
            name: "Intake",
            color: "#111",
            values: &zeros,
        }];
        let svg = stacked_bars("s", "Jobs", &labels(2), &series, &|v| v.to_string());
        assert_eq!(count(&elements(&svg), "rect"), 0);
        let svg = bars("b", "Net", &labels(2), &zeros, &|v| v.to_string());
        let names = elements(&svg);
        assert_eq!(count(&names, "rect"), 2);
        assert!(rect_attr(&svg, "height").iter().all(|h| *h == 0.0));
        let svg = line("l", "Turnaround", &labels(2), &[None, None], &duration);
        let names = elements(&svg);
        assert_eq!(count(&names, "circle") + count(&names, "polyline"), 0);
        let svg = hbars("h", "Parts", &[], &|v| v.to_string());
        let names = elements(&svg);
        assert_eq!(count(&names, "rect"), 0);
        assert!(svg.contains("Nothing in this period."));
        let svg = bars("b", "Net", &[], &[], &|v| v.to_string());
        elements(&svg);
    }

    #[test]
    fn negative_bars_hang_below_the_zero_line() {
        let svg = bars("b", "Net", &labels(2), &[300, -100], &|v| v.to_string());
        elements(&svg);
        let (y, h) = (rect_attr(&svg, "y"), rect_attr(&svg, "height"));
        let plot = 240.0 - 14.0 - 28.0;
        // 300 up from zero, 100 down: zero sits at 3/4 of the plot.
        let zero = 14.0 + plot * 0.75;
        assert!((y[0] + h[0] - zero).abs() < 0.2, "{y:?} {h:?}");
        assert!((y[1] - zero).abs() < 0.2, "{y:?}");
        assert!((h[0] / h[1] - 3.0).abs() < 0.01, "{h:?}");
        assert!(svg.contains(NEGATIVE_FILL));
    }

    const NEGATIVE_FILL: &str = "fill=\"#ef4444\"";

    #[test]
    fn the_line_breaks_where_a_week_has_no_figure() {
        let svg = line(
            "l",
            "Turnaround",
            &labels(5),
            &[Some(3600), Some(7200), None, Some(1800), None],
            &duration,
        );
        let names = elements(&svg);
        assert_eq!(count(&names, "circle"), 3);
        // Two points make a line; the lone third one is a dot only.
        assert_eq!(count(&names, "polyline"), 1);
        assert!(svg.contains("<title>W1: 2.0 h</title>"));
    }

    #[test]
    fn text_is_escaped() {
        let nasty = "Bolts <M5> & \"nuts\" 'n' </svg><script>";
        let svg = hbars(
            "h",
            "Parts & <more>",
            &[(nasty.to_owned(), 3), ("Tube".to_owned(), 1)],
            &|v| v.to_string(),
        );
        let names = elements(&svg);
        assert_eq!(count(&names, "rect"), 2);
        assert!(!names.iter().any(|n| n == "script"));
        assert!(svg.contains("Parts &amp; &lt;more&gt;"));
        assert!(svg.contains("Bolts &lt;M5&gt; &amp; &quot;nuts&quot; &#39;n&#39;"));
        let svg = stacked_bars(
            "x\"><script>",
            "t",
            &["<b>".to_owned()],
            &[Series {
                name: "a&b",
                color: "\"red\"",
                values: &[1],
            }],
            &|v| v.to_string(),
        );
        let names = elements(&svg);
        assert!(!names.iter().any(|n| n == "script" || n == "b"));
        assert_eq!(esc("a\u{1}b"), "a b");
    }

    #[test]
    fn long_names_are_shortened_and_many_weeks_thin_the_labels() {
        let long = "A".repeat(40);
        let svg = hbars("h", "Parts", &[(long.clone(), 1)], &|v| v.to_string());
        assert!(svg.contains(&format!("{}…</text>", "A".repeat(31))));
        // The full name stays in the bar's tooltip.
        assert!(svg.contains(&format!("<title>{long}: 1</title>")));
        let svg = bars("b", "Net", &labels(52), &[1; 52], &|v| v.to_string());
        let names = elements(&svg);
        assert_eq!(count(&names, "rect"), 52);
        // Every 4th label plus the last one.
        assert!(count(&names, "text") < 52 / 2);
        assert!(svg.contains(">W51</text>"));
    }

    #[test]
    fn weeks_must_be_a_whole_number_from_1_to_52() {
        assert_eq!(parse_weeks(""), Ok(12));
        assert_eq!(parse_weeks(" 8 "), Ok(8));
        assert_eq!(parse_weeks("52"), Ok(52));
        for bad in ["0", "53", "-1", "1.5", "ten", "99999999999"] {
            let e = parse_weeks(bad).unwrap_err();
            assert!(e.contains("from 1 to 52") && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn durations_read_as_minutes_hours_or_days() {
        assert_eq!(duration(0), "—");
        assert_eq!(duration(90), "2 min");
        assert_eq!(duration(3 * 3600), "3.0 h");
        assert_eq!(duration(47 * 3600 + 1800), "47.5 h");
        assert_eq!(duration(73 * 3600), "3.0 days");
        assert_eq!(week_label("2025-06-09"), "Jun 9");
        assert_eq!(week_label("garbage"), "garbage");
    }
}
