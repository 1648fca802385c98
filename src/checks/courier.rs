//! The courier (`"extension": "courier"`): scrape an application's metrics endpoint
//! once, convert everything, and deliver it in one shot with one timestamp as one Sensu
//! metric result; then report, as an ordinary status result named `<check>.delivery`,
//! how many metrics and bytes went out and how long the scrape, the conversion and the
//! delivery (until the broker confirmed it) took.
//!
//! The delivery report is built once the metric result is confirmed: [`DeliveryPlan`] is
//! the outcome's [`FollowUp`], which the client's request pipeline drives; when the
//! scrape or the conversion fails, nothing is sent to the metric handlers and only the
//! failed report is published.

use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::failure::{CheckFailure, Reason};
use super::http::{self, HttpParams};
use super::net::{CheckTls, IpPreference};
use super::plugin::{self, Perf, Status, Thresholds};
use super::{Builtin, BuiltinContext, BuiltinFuture, BuiltinOutcome, FollowUp};
use crate::proto::{Additions, Field, Object, ResultPayload, round6};
use crate::scrape::output::{OutputFormat, Writer};
use crate::scrape::{self, Format, Page, Sample};

/// A rename rule: regex replacement on metric names, applied in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// Regex to find.
    pub pattern: String,
    /// Replacement (`$1` for groups).
    pub replacement: String,
}

/// Parameters of `"courier": {…}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourierParams {
    /// The metrics endpoint. Required.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: serde_json::Map<String, Value>,
    /// Basic auth user.
    #[serde(default)]
    pub user: Option<String>,
    /// Basic auth password.
    #[serde(default)]
    pub password: Option<String>,
    /// Bearer token.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// TLS options, as the HTTP check.
    #[serde(default)]
    pub tls: CheckTls,
    /// Address family preference.
    #[serde(default)]
    pub ip: IpPreference,
    /// Seconds for the scrape. Default 10.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Largest body accepted. Default 32 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// `prometheus`, `dropwizard` or `json`. Default: detected from the content type and body.
    #[serde(default)]
    pub format: Option<Format>,
    /// `graphite` (default), `influx` or `opentsdb`.
    #[serde(default)]
    pub output: OutputFormat,
    /// Graphite path prefix. Default `<client>.<check name>`.
    #[serde(default)]
    pub scheme: Option<String>,
    /// Prefix added to every metric name (all formats).
    #[serde(default)]
    pub prefix: String,
    /// Only metrics whose name matches this regex.
    #[serde(default)]
    pub include: Option<String>,
    /// Drop metrics whose name matches this regex.
    #[serde(default)]
    pub exclude: Option<String>,
    /// Rename rules, applied in order after filtering.
    #[serde(default)]
    pub rename: Vec<Rename>,
    /// Split the output over several results of at most this many bytes each (for servers
    /// with `max_message_size`). Default: one result.
    #[serde(default)]
    pub max_message_size: Option<usize>,
    /// Largest converted output; a page that would make more fails (`output_size`). Without
    /// it, the metric names written (labels included) may add up to 8 times the page plus
    /// 1 MiB: names made from long keys repeated in every path of a JSON page grow without
    /// bound, while the rest of a line (scheme, value, timestamp) is the same for every page.
    #[serde(default)]
    pub max_output_bytes: Option<usize>,
    /// Warning when scrape + convert + delivery take longer (seconds).
    #[serde(default)]
    pub warning: Option<f64>,
    /// Critical when scrape + convert + delivery take longer (seconds).
    #[serde(default)]
    pub critical: Option<f64>,
    /// Handlers of the delivery report (default: none, i.e. the server's default handler).
    #[serde(default)]
    pub delivery_handlers: Option<Vec<String>>,
}

fn default_timeout() -> f64 {
    10.0
}
fn default_max_body() -> usize {
    32 * 1024 * 1024
}

/// What the client does after publishing the metric result: publish the delivery
/// report (and the extra parts of a split shot).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPlan {
    /// `<check>.delivery`.
    pub name: String,
    /// Further parts of the output (when split), published as the same check.
    pub extra_parts: Vec<String>,
    /// Metrics delivered.
    pub metrics: usize,
    /// Bytes of output.
    pub bytes: usize,
    /// Seconds to scrape.
    pub scrape: f64,
    /// Seconds to convert.
    pub convert: f64,
    /// Non-finite values skipped.
    pub skipped: usize,
    /// Duplicate series dropped.
    pub duplicates: usize,
    /// Detected or given input format.
    pub format: &'static str,
    /// The URL scraped.
    pub url: String,
    /// Thresholds on the total seconds.
    pub thresholds: Thresholds,
    /// Handlers for the report.
    pub handlers: Option<Vec<String>>,
    /// Set when the shot failed before delivery: nothing but the report is published.
    pub failure: Option<CheckFailure>,
    /// What the report needs of the metric result (name, issued, executed, source), its
    /// client and signature: kept when the result is handed over.
    pub context: Option<ResultPayload>,
}

impl FollowUp for DeliveryPlan {
    /// `result` is the check as it finished (verbatim: each part is made a result
    /// payload here, which drops an empty `source` after `part` is added, as for any result).
    fn results(&mut self, result: ResultPayload) -> Vec<ResultPayload> {
        let ResultPayload { client, mut check, added, signature } = result;
        added.fold_into(&mut check);
        let mut context = Object::new();
        for key in ["name", "issued", "executed", "source"] {
            if let Some(v) = check.get(key) {
                context.insert(key.into(), v.clone());
            }
        }
        self.context = Some(ResultPayload::verbatim(&client, context, signature.as_deref()));
        if self.failure.is_some() {
            return Vec::new();
        }
        let parts = self.extra_parts.len() + 1;
        let mut out = Vec::with_capacity(parts);
        for (i, output) in self.extra_parts.iter().enumerate() {
            let mut part = check.clone();
            part.insert("output".into(), output.clone().into());
            part.insert("part".into(), format!("{}/{parts}", i + 2).into());
            out.push(ResultPayload::new(&client, part, signature.as_deref()));
        }
        let mut first = check;
        if parts > 1 {
            first.insert("part".into(), format!("1/{parts}").into());
        }
        out.insert(0, ResultPayload::new(&client, first, signature.as_deref()));
        out
    }

    fn finish(self: Box<Self>, seconds: f64, delivered: bool) -> Option<ResultPayload> {
        let context = self.context.clone().unwrap_or_else(|| ResultPayload::verbatim("", Object::new(), None));
        let report = self.report(&context.check, seconds, delivered, crate::proto::now_epoch());
        Some(ResultPayload::new(&context.client, report, context.signature.as_deref()))
    }
}

/// Human bytes, decimal units (`1.6 MB`).
fn human_bytes(n: usize) -> String {
    let n = n as f64;
    if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

fn ms(s: f64) -> String {
    format!("{:.0} ms", s * 1000.0)
}

impl DeliveryPlan {
    /// The delivery report, given how the delivery went.
    pub fn report(&self, check: &Object, delivery: f64, delivered: bool, now: i64) -> Object {
        let total = self.scrape + self.convert + delivery;
        let mut status = Status::Ok;
        let mut reason = None;
        let message = if let Some(failure) = &self.failure {
            status = Status::Critical;
            reason = Some(failure.reason);
            failure.message.clone()
        } else if !delivered {
            status = Status::Critical;
            reason = Some(Reason::Delivery);
            format!("{} metrics ({}) were not confirmed by the broker", self.metrics, human_bytes(self.bytes))
        } else {
            let mut text = format!(
                "{} metrics, {}, scrape {}, convert {}, delivery {}",
                self.metrics,
                human_bytes(self.bytes),
                ms(self.scrape),
                ms(self.convert),
                ms(delivery)
            );
            if !self.extra_parts.is_empty() {
                text.push_str(&format!(" in {} parts", self.extra_parts.len() + 1));
            }
            if self.skipped > 0 {
                text.push_str(&format!(", {} non-finite values skipped", self.skipped));
            }
            if self.duplicates > 0 {
                text.push_str(&format!(", {} duplicate series dropped", self.duplicates));
                status = Status::Warning;
                reason = Some(Reason::DuplicateSeries);
            }
            let latency = self.thresholds.status(total);
            if latency > status {
                status = latency;
                reason = Some(Reason::Latency);
            }
            text
        };
        let perf = [
            Perf::number("metrics", self.metrics as f64),
            Perf::bytes("bytes", self.bytes as f64),
            Perf::seconds("scrape", self.scrape),
            Perf::seconds("convert", self.convert),
            Perf::seconds("delivery", delivery),
            Perf::seconds("total", total).thresholds(self.thresholds.warning, self.thresholds.critical),
        ];
        let mut report = Object::new();
        report.insert("name".into(), self.name.clone().into());
        report.insert("type".into(), "standard".into());
        if let Some(handlers) = &self.handlers {
            report.insert("handlers".into(), json!(handlers));
        }
        for key in ["source", "issued"] {
            if let Some(v) = check.get(key) {
                report.insert(key.into(), v.clone());
            }
        }
        report.insert("executed".into(), check.get("executed").cloned().unwrap_or(now.into()));
        report.insert("duration".into(), crate::proto::round3(total).into());
        report.insert(
            "output".into(),
            format!("COURIER {}: {message} | {}\n", status.label(), plugin::perfdata(&perf)).into(),
        );
        report.insert("status".into(), (status as i32).into());
        if let Some(reason) = reason {
            report.insert("reason".into(), reason.as_str().into());
        }
        report.insert(
            "timings".into(),
            json!({"scrape": round6(self.scrape), "convert": round6(self.convert), "delivery": round6(delivery), "total": round6(total)}),
        );
        report.insert(
            "probe".into(),
            json!({"metrics": self.metrics, "bytes": self.bytes, "parts": self.extra_parts.len() + 1,
                   "skipped": self.skipped, "duplicates": self.duplicates, "format": self.format, "url": self.url}),
        );
        report
    }
}

/// The courier built-in.
#[derive(Debug, Default)]
pub struct Courier;

impl Builtin for Courier {
    fn name(&self) -> &'static str {
        "courier"
    }

    fn run(&self, check: std::sync::Arc<Object>, ctx: BuiltinContext) -> BuiltinFuture {
        Box::pin(async move { shot(&check, ctx).await })
    }
}

fn failed(plan: DeliveryPlan, failure: CheckFailure) -> BuiltinOutcome {
    let text = format!("COURIER CRITICAL: {}\n", failure.message);
    BuiltinOutcome {
        output: text,
        status: 2,
        attributes: Additions::default(),
        follow_up: Some(Box::new(DeliveryPlan { failure: Some(failure), ..plan })),
    }
}

/// The parameters of the courier's scrape, as HTTP check parameters.
fn http_params(p: &CourierParams) -> Result<HttpParams, CheckFailure> {
    let mut v = json!({"url": p.url, "headers": p.headers, "tls": p.tls, "ip": p.ip, "timeout": p.timeout,
        "max_body_bytes": p.max_body_bytes, "user_agent": format!("concierge-courier/{}", crate::CONCIERGE_VERSION)});
    for (key, value) in [("user", &p.user), ("password", &p.password), ("bearer_token", &p.bearer_token)] {
        if let Some(value) = value {
            v[key] = value.clone().into();
        }
    }
    HttpParams::deserialize(v).map_err(|e| CheckFailure::parameters(e.to_string()))
}

/// A fetched metrics page, not parsed yet (the samples borrow from its body).
#[derive(Debug)]
pub struct Scraped {
    /// The body.
    pub body: bytes::Bytes,
    /// The format to parse it as.
    pub format: Format,
    /// The content type says OpenMetrics (which must end with `# EOF`).
    pub openmetrics: bool,
    /// Seconds the fetch took.
    pub seconds: f64,
    url: String,
}

impl Scraped {
    /// Parse the page; fails with reason `parse`.
    pub fn parse(&self) -> Result<Page<'_>, CheckFailure> {
        match self.format {
            Format::Prometheus => scrape::prometheus::parse_with(&self.body, self.openmetrics),
            other => scrape::parse(other, &self.body),
        }
        .map_err(|e| self.unparseable(&e))
    }

    fn unparseable(&self, error: &scrape::ParseError) -> CheckFailure {
        CheckFailure::new(Reason::Parse, format!("unparseable body from {}: {error}", self.url))
    }

    /// The format's name.
    pub fn format_label(&self) -> &'static str {
        match self.format {
            Format::Prometheus => "prometheus",
            Format::Dropwizard => "dropwizard",
            Format::Json => "json",
        }
    }
}

/// Fetch the page (shared with `concierge courier discover`); fails as the HTTP check
/// would, or with reason `status` for an answer other than 2xx.
pub async fn scrape(p: &CourierParams) -> Result<Scraped, CheckFailure> {
    let fetched = http::fetch(http_params(p)?).await.map_err(|failure| CheckFailure {
        message: format!("scrape of {} failed: {}", p.url, failure.message),
        ..failure
    })?;
    if !(200..300).contains(&fetched.status) {
        return Err(CheckFailure::new(Reason::Status, format!("scrape of {} answered HTTP {}", p.url, fetched.status)));
    }
    let content_type = fetched.headers.get("content-type");
    let format = p.format.unwrap_or_else(|| scrape::detect(content_type, &fetched.body));
    let openmetrics = content_type.is_some_and(|c| c.contains("openmetrics"));
    Ok(Scraped { body: fetched.body, format, openmetrics, seconds: fetched.seconds, url: p.url.clone() })
}

async fn shot(check: &Object, ctx: BuiltinContext) -> BuiltinOutcome {
    let name = check.get("name").and_then(Value::as_str).unwrap_or("courier").to_string();
    let params = match plugin::parameters::<CourierParams>(check, "courier") {
        Ok(p) => p,
        Err(problem) => return plugin::invalid_parameters("COURIER", problem),
    };
    let plan = DeliveryPlan {
        name: format!("{name}.delivery"),
        extra_parts: Vec::new(),
        metrics: 0,
        bytes: 0,
        scrape: 0.0,
        convert: 0.0,
        skipped: 0,
        duplicates: 0,
        format: "unknown",
        url: params.url.clone(),
        thresholds: Thresholds { warning: params.warning, critical: params.critical },
        handlers: params.delivery_handlers.clone(),
        failure: None,
        context: None,
    };
    let re = |what: &str, p: &Option<String>| {
        p.as_ref().map(|p| Regex::new(p).map_err(|e| format!("{what} is not a valid regex: {e}"))).transpose()
    };
    let (include, exclude) = match (re("include", &params.include), re("exclude", &params.exclude)) {
        (Ok(i), Ok(e)) => (i, e),
        (Err(e), _) | (_, Err(e)) => return failed(plan, CheckFailure::parameters(format!("invalid parameters: {e}"))),
    };
    let mut renames = Vec::new();
    for r in &params.rename {
        match Regex::new(&r.pattern) {
            Ok(re) => renames.push((re, r.replacement.clone())),
            Err(e) => {
                return failed(
                    plan,
                    CheckFailure::parameters(format!("invalid parameters: rename pattern is not a valid regex: {e}")),
                );
            }
        }
    }
    let scraped = match scrape(&params).await {
        Ok(x) => x,
        Err(failure) => return failed(plan, failure),
    };
    let (format, scrape_secs) = (scraped.format_label(), scraped.seconds);
    let convert_started = Instant::now();
    let writer = Writer {
        format: params.output,
        scheme: params
            .scheme
            .clone()
            .unwrap_or_else(|| format!("{}.{}", plugin::graphite_safe(&ctx.client_name), plugin::graphite_safe(&name))),
        prefix: params.prefix.clone(),
        timestamp: 0,
        host: ctx.client_name.to_string(),
    };
    let selection = Selection { include, exclude, renames };
    let max_message_size = params.max_message_size;
    let max_output = params.max_output_bytes;
    // Parsing and converting a large page is CPU work (tens of ms for 34,000 metrics): it
    // runs on the blocking pool so the runtime thread keeps serving the transport, the
    // sockets and the other checks meanwhile.
    let job =
        tokio::task::spawn_blocking(move || convert(&scraped, &selection, writer, max_message_size, max_output)).await;
    let converted =
        job.unwrap_or_else(|error| Err(CheckFailure::new(Reason::Parse, format!("conversion failed: {error}"))));
    let convert_secs = convert_started.elapsed().as_secs_f64();
    let converted = match converted {
        Ok(converted) => converted,
        Err(failure) => {
            return failed(DeliveryPlan { format, scrape: scrape_secs, convert: convert_secs, ..plan }, failure);
        }
    };
    let Converted { mut parts, metrics, bytes, skipped, duplicates, exposed } = converted;
    let first = if parts.is_empty() { String::new() } else { parts.remove(0) };
    if metrics == 0 {
        let why = if exposed == 0 { "the endpoint exposes no metrics" } else { "no metric left after filtering" };
        return failed(
            DeliveryPlan { format, scrape: scrape_secs, convert: convert_secs, ..plan },
            CheckFailure::new(Reason::Empty, format!("{why} ({})", params.url)),
        );
    }
    // Metric lines are a metric result: without `"type": "metric"` sensu-server runs no
    // metric handler on an OK result, so a definition that forgot it gets it here.
    let mut attributes = Additions::default();
    if !check.contains_key("type") {
        attributes.set("type", Field::Str("metric"));
    }
    BuiltinOutcome {
        output: first,
        status: 0,
        attributes,
        follow_up: Some(Box::new(DeliveryPlan {
            extra_parts: parts,
            metrics,
            bytes,
            scrape: scrape_secs,
            convert: convert_secs,
            skipped,
            duplicates,
            format,
            ..plan
        })),
    }
}

/// Which samples go out, and under which names.
struct Selection {
    include: Option<Regex>,
    exclude: Option<Regex>,
    renames: Vec<(Regex, String)>,
}

/// The converted shot: the output in parts, and what went into it.
struct Converted {
    parts: Vec<String>,
    metrics: usize,
    bytes: usize,
    skipped: usize,
    duplicates: usize,
    /// Samples the page exposed before filtering.
    exposed: usize,
}

/// Parse the page and write every selected sample with one timestamp, taken now, as the page
/// is read: no sample is kept.
fn convert(
    scraped: &Scraped,
    selection: &Selection,
    mut writer: Writer,
    max_message_size: Option<usize>,
    max_output: Option<usize>,
) -> Result<Converted, CheckFailure> {
    writer.timestamp = crate::proto::now_epoch();
    let body = &scraped.body[..];
    let limit = match max_output {
        Some(bytes) => Limit::Output(bytes),
        None => Limit::Names(body.len().saturating_mul(8).saturating_add(1 << 20)),
    };
    let mut shot = Shot {
        selection,
        writer,
        limit,
        named: 0,
        overflowed: false,
        // Most lines grow when written (the scheme, the timestamp).
        out: String::with_capacity(body.len()),
        metrics: 0,
        skipped: 0,
        duplicates: 0,
        exposed: 0,
    };
    match scraped.format {
        Format::Prometheus => {
            let mut seen = scrape::Series::with_capacity(scrape::prometheus::sample_lines(body));
            scrape::prometheus::for_each_sample(body, scraped.openmetrics, |sample, written| {
                shot.take(&sample, |_| {
                    match seen.first(&sample, |kept: &scrape::prometheus::Kept<'_>, s| kept.is(body, s)) {
                        Some(new) => {
                            new.keep(written.keep(&sample));
                            true
                        }
                        None => false,
                    }
                });
            })
            .map_err(|e| scraped.unparseable(&e))?;
        }
        Format::Json => {
            let mut names = scrape::Names::with_capacity(body.len() / 32);
            scrape::json::for_each_sample(body, |path, value| {
                shot.take(&Sample { name: path.into(), labels: Vec::new(), value }, |s| names.first(s));
            })
            .map_err(|e| scraped.unparseable(&e))?;
        }
        Format::Dropwizard => {
            let mut names = scrape::Names::with_capacity(body.len() / 64);
            scrape::dropwizard::for_each_sample(body, |_, _, _, name, value| {
                shot.take(&Sample { name: name.into(), labels: Vec::new(), value }, |s| names.first(s));
            })
            .map_err(|e| scraped.unparseable(&e))?;
        }
    }
    if shot.overflowed {
        let url = &scraped.url;
        return Err(CheckFailure::new(
            Reason::OutputSize,
            match limit {
                Limit::Output(bytes) => {
                    format!("the converted output from {url} passed {bytes} bytes (max_output_bytes)")
                }
                Limit::Names(bytes) => format!(
                    "the metric names made from {url} passed {bytes} bytes, 8 times the page (max_output_bytes sets a limit)"
                ),
            },
        ));
    }
    let Shot { out, metrics, skipped, duplicates, exposed, .. } = shot;
    let bytes = out.len();
    let parts = split(out, max_message_size);
    Ok(Converted { parts, metrics, bytes, skipped, duplicates, exposed })
}

/// How much a shot may write: its output as a whole (`max_output_bytes`), or else its metric
/// names.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Output(usize),
    Names(usize),
}

/// A shot being written: the output so far and its counts.
struct Shot<'s> {
    selection: &'s Selection,
    writer: Writer,
    /// How much may be written (the output, or the names in it); past it the output is
    /// dropped and the shot fails.
    limit: Limit,
    /// Bytes of metric names (labels included) written.
    named: usize,
    overflowed: bool,
    out: String,
    metrics: usize,
    skipped: usize,
    duplicates: usize,
    exposed: usize,
}

impl Shot<'_> {
    /// Write `sample` if selected and the first of its series (`first` says whether it is).
    fn take(&mut self, sample: &Sample<'_>, first: impl FnOnce(&Sample<'_>) -> bool) {
        self.exposed += 1;
        if self.overflowed {
            return;
        }
        let selection = self.selection;
        if selection.include.as_ref().is_some_and(|re| !re.is_match(&sample.name))
            || selection.exclude.as_ref().is_some_and(|re| re.is_match(&sample.name))
        {
            return;
        }
        if !first(sample) {
            self.duplicates += 1;
            return;
        }
        let mut final_name = std::borrow::Cow::Borrowed(&*sample.name);
        for (re, replacement) in &selection.renames {
            if let std::borrow::Cow::Owned(renamed) = re.replace_all(&final_name, replacement.as_str()) {
                final_name = std::borrow::Cow::Owned(renamed);
            }
        }
        if self.writer.write(&final_name, sample, &mut self.out) {
            self.metrics += 1;
        } else {
            self.skipped += 1;
        }
        self.named += final_name.len() + sample.labels.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if match self.limit {
            Limit::Output(bytes) => self.out.len() > bytes,
            Limit::Names(bytes) => self.named > bytes,
        } {
            self.overflowed = true;
            self.out = String::new();
        }
    }
}

/// Split lines into parts of at most `max` bytes once JSON-escaped (each line feed
/// becomes two bytes; 4 KiB is kept for the rest of the result).
fn split(mut out: String, max: Option<usize>) -> Vec<String> {
    let Some(max) = max else { return vec![out] };
    let budget = max.saturating_sub(4096).max(1024);
    // Where each part after the first starts.
    let mut starts = Vec::new();
    let (mut start, mut at) = (0, 0);
    // Line feeds in the current part, counted as lines go in (rescanning made this quadratic).
    let mut line_feeds = 0;
    for line in out.split_inclusive('\n') {
        if at > start && at - start + line.len() + line_feeds + 1 > budget {
            starts.push(at);
            start = at;
            line_feeds = 0;
        }
        at += line.len();
        line_feeds += usize::from(line.ends_with('\n'));
    }
    // Cut from the end, giving each tail's room back as it goes: the output is not held twice.
    let mut parts = Vec::with_capacity(starts.len() + 1);
    for &at in starts.iter().rev() {
        parts.push(out.split_off(at));
        out.shrink_to_fit();
    }
    if !out.is_empty() {
        parts.push(out);
    }
    parts.reverse();
    parts
}

/// Wait at most this long for a discovery scrape.
pub const DISCOVER_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_keeps_whole_lines() {
        let out: String = (0..1000).map(|i| format!("a.b.metric{i} {i} 1700000000\n")).collect();
        let parts = split(out.clone(), Some(8192));
        assert!(parts.len() > 1);
        assert_eq!(parts.concat(), out);
        // JSON-escaped (a line feed is two bytes), every part fits the budget, and is full:
        // the next part's first line would not have fitted.
        let escaped = |p: &str| p.len() + p.matches('\n').count();
        assert!(parts.iter().all(|p| escaped(p) <= 8192 - 4096));
        for pair in parts.windows(2) {
            let next_line = pair[1].split_inclusive('\n').next().unwrap();
            assert!(escaped(&pair[0]) + escaped(next_line) > 8192 - 4096);
        }
        assert_eq!(split(out.clone(), None), vec![out]);
    }

    // Parts are made result payloads after `part` is added, so an empty `source` is dropped
    // from each exactly as from any result (key order included).
    #[test]
    fn split_parts_are_results_like_any_other() {
        let mut plan = DeliveryPlan {
            name: "app.delivery".into(),
            extra_parts: vec!["b\n".into()],
            metrics: 2,
            bytes: 4,
            scrape: 0.0,
            convert: 0.0,
            skipped: 0,
            duplicates: 0,
            format: "prometheus",
            url: "http://x".into(),
            thresholds: Thresholds::default(),
            handlers: None,
            failure: None,
            context: None,
        };
        let check = json!({"name": "app", "source": "", "issued": 1, "output": "a\n", "status": 0});
        let result = ResultPayload::verbatim("probe-1", check.as_object().cloned().unwrap(), Some("sig"));
        let parts: Vec<String> =
            plan.results(result).iter().map(|p| String::from_utf8(p.to_bytes()).unwrap()).collect();
        assert_eq!(
            parts,
            [
                r#"{"client":"probe-1","check":{"name":"app","issued":1,"output":"a\n","status":0,"part":"1/2"},"signature":"sig"}"#,
                r#"{"client":"probe-1","check":{"name":"app","issued":1,"output":"b\n","status":0,"part":"2/2"},"signature":"sig"}"#,
            ]
        );
        let report = Box::new(plan).finish(0.001, true).unwrap();
        assert_eq!((report.client.as_str(), report.signature.as_deref()), ("probe-1", Some("sig")));
        assert_eq!(report.check["name"], "app.delivery");
        assert!(!report.check.contains_key("source"));
    }

    #[test]
    fn report_wording() {
        let plan = DeliveryPlan {
            name: "app.delivery".into(),
            extra_parts: vec![],
            metrics: 34000,
            bytes: 1_600_000,
            scrape: 0.041,
            convert: 0.018,
            skipped: 0,
            duplicates: 0,
            format: "prometheus",
            url: "http://x".into(),
            thresholds: Thresholds { warning: Some(1.0), critical: Some(2.0) },
            handlers: Some(vec!["pager".into()]),
            failure: None,
            context: None,
        };
        let check: Object = json!({"name": "app", "issued": 1, "executed": 2}).as_object().cloned().unwrap();
        let r = plan.report(&check, 0.009, true, 3);
        assert_eq!(
            r["output"],
            "COURIER OK: 34000 metrics, 1.6 MB, scrape 41 ms, convert 18 ms, delivery 9 ms | metrics=34000;;;0 bytes=1600000B;;;0 scrape=0.041s;;;0 convert=0.018s;;;0 delivery=0.009s;;;0 total=0.068s;1;2;0\n"
        );
        assert_eq!(r["name"], "app.delivery");
        assert_eq!(r["handlers"], json!(["pager"]));
        assert_eq!(r["status"], 0);
        let r = plan.report(&check, 3.0, true, 3);
        assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("latency")));
        let r = plan.report(&check, 0.1, false, 3);
        assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("delivery")));
        assert!(
            r["output"]
                .as_str()
                .unwrap()
                .starts_with("COURIER CRITICAL: 34000 metrics (1.6 MB) were not confirmed by the broker")
        );
    }
}
