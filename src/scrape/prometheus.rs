//! Prometheus text exposition (0.0.4) and OpenMetrics text (1.0), hand-parsed line by
//! line for speed (a 34,000-sample page parses in a few milliseconds).
//!
//! Strict where a partial page would mislead: every line must parse, the page must end
//! with a line feed (a page cut off mid-line does not), and an OpenMetrics page must end
//! with `# EOF`. Exemplars and sample timestamps are read and ignored: a courier shot
//! stamps every sample with the scrape time.

use std::borrow::Cow;

use super::{Family, Kind, Page, ParseError, Sample};

const FORMAT: &str = "prometheus text";

fn err(line: usize, problem: impl std::fmt::Display) -> ParseError {
    ParseError { format: FORMAT, problem: format!("line {line}: {problem}") }
}

/// What reading a page hands over, in page order.
enum Item<'a> {
    /// `# TYPE name kind`.
    Type(&'a str, Kind),
    /// A sample, and where its series is written.
    Sample(Sample<'a>, Written<'a>),
}

/// Where a sample's series (its name and label set, as written) is in the page.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    start: usize,
    text: &'a str,
}

/// A series kept to recognise it again without keeping its sample: where it is written in the
/// page when that is compact (reading it again costs about what reading the sample did), else
/// its name and labels (a label set padded with blanks would make every later comparison
/// read the padding again).
#[derive(Debug)]
pub enum Kept<'a> {
    /// At `start` in the page, `len` bytes.
    Written { start: u32, len: u32 },
    /// The name and labels.
    Parsed(Box<(Cow<'a, str>, Labels<'a>)>),
}

impl<'a> Written<'a> {
    /// Keep `sample`'s series, written here.
    pub fn keep(self, sample: &Sample<'a>) -> Kept<'a> {
        let content = sample.name.len() + sample.labels.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>();
        match (u32::try_from(self.start), u32::try_from(self.text.len())) {
            (Ok(start), Ok(len)) if self.text.len() <= 2 * content + 64 => Kept::Written { start, len },
            _ => Kept::Parsed(Box::new((sample.name.clone(), sample.labels.clone()))),
        }
    }
}

impl Kept<'_> {
    /// Whether `sample` is this series (the same name and labels, in the same order); `page`
    /// is the page the series was kept from.
    pub fn is(&self, page: &[u8], sample: &Sample<'_>) -> bool {
        match self {
            Self::Written { start, len } => {
                let (start, len) = (*start as usize, *len as usize);
                page.get(start..start + len)
                    .and_then(|written| std::str::from_utf8(written).ok())
                    .and_then(|written| parse_series(written).ok())
                    .is_some_and(|(name, labels, _)| name == sample.name && labels == sample.labels)
            }
            Self::Parsed(series) => series.0 == sample.name && series.1 == sample.labels,
        }
    }
}

/// How many lines of `body` can be samples (neither blank nor comments): room to reserve.
pub fn sample_lines(body: &[u8]) -> usize {
    let mut start = 0;
    let mut count = 0;
    for end in memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len())) {
        let first = body[start..end].iter().find(|b| !b.is_ascii_whitespace());
        count += usize::from(first.is_some_and(|&b| b != b'#'));
        start = end + 1;
    }
    count
}

/// Read a page line by line. `openmetrics` (from the content type) requires the `# EOF`
/// marker. Every line must parse: on an error, what was handed over is not the page.
fn read<'a>(body: &'a [u8], openmetrics: bool, mut each: impl FnMut(Item<'a>)) -> Result<(), ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| ParseError {
        format: FORMAT,
        problem: format!("the body is not valid UTF-8 (at byte {})", e.valid_up_to()),
    })?;
    if !text.is_empty() && !text.ends_with('\n') {
        let lines = text.lines().count();
        return Err(err(lines, "the page is truncated (its last line has no line feed)"));
    }
    let mut saw_eof = false;
    let mut offset = 0;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line_start = offset;
        offset += raw.len() + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if saw_eof {
            if line.is_empty() {
                continue;
            }
            return Err(err(n, "content after # EOF"));
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let comment = comment.trim_start();
            if comment == "EOF" {
                saw_eof = true;
                continue;
            }
            let mut words = comment.splitn(3, [' ', '\t']);
            let (keyword, name) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
            match keyword {
                "TYPE" => {
                    let kind = match words.next().unwrap_or_default().trim() {
                        "counter" => Kind::Counter,
                        "gauge" => Kind::Gauge,
                        "histogram" => Kind::Histogram,
                        "summary" => Kind::Summary,
                        "untyped" | "unknown" => Kind::Untyped,
                        "info" | "stateset" | "gaugehistogram" => Kind::Other,
                        other => return Err(err(n, format!("unknown metric type {other:?}"))),
                    };
                    if !valid_name(name) {
                        return Err(err(n, format!("invalid metric name {name:?} in TYPE")));
                    }
                    each(Item::Type(name, kind));
                }
                "HELP" | "UNIT" if !valid_name(name) => {
                    return Err(err(n, format!("invalid metric name {name:?} in {keyword}")));
                }
                _ => {}
            }
            continue;
        }
        let (sample, series) = parse_sample(trimmed).map_err(|p| err(n, p))?;
        let written = Written { start: line_start + (line.len() - trimmed.len()), text: &trimmed[..series] };
        each(Item::Sample(sample, written));
    }
    if openmetrics && !saw_eof {
        return Err(ParseError { format: FORMAT, problem: "the OpenMetrics page is truncated (no # EOF)".into() });
    }
    Ok(())
}

/// Hand each sample of a page to `each` with where its series is written, in page order,
/// keeping none (a courier shot writes each once; a parsed page of 340,000 samples took four
/// times the page's memory). `openmetrics` as for [`parse_with`].
pub fn for_each_sample<'a>(
    body: &'a [u8],
    openmetrics: bool,
    mut each: impl FnMut(Sample<'a>, Written<'a>),
) -> Result<(), ParseError> {
    read(body, openmetrics, |item| {
        if let Item::Sample(sample, written) = item {
            each(sample, written);
        }
    })
}

/// Parse a page: its samples and families. `openmetrics` (from the content type) requires
/// the `# EOF` marker.
pub fn parse_with(body: &[u8], openmetrics: bool) -> Result<Page<'_>, ParseError> {
    let mut page = Page::default();
    let mut current: Option<usize> = None;
    read(body, openmetrics, |item| match item {
        Item::Type(name, kind) => current = Some(family_index(&mut page, name, kind)),
        Item::Sample(sample, _) => {
            let family = match current {
                Some(f) if belongs(&page.families[f].name, &sample.name) => f,
                _ => {
                    let f = family_index(&mut page, &sample.name, Kind::Untyped);
                    current = Some(f);
                    f
                }
            };
            let fam = &mut page.families[family];
            fam.samples += 1;
            for (k, _) in &sample.labels {
                if k != "le" && k != "quantile" && !fam.label_keys.iter().any(|x| x == k) {
                    fam.label_keys.push(k.to_string());
                }
            }
            page.samples.push(sample);
        }
    })?;
    Ok(page)
}

/// Parse a page (no `# EOF` required).
pub fn parse(body: &[u8]) -> Result<Page<'_>, ParseError> {
    parse_with(body, false)
}

fn family_index(page: &mut Page<'_>, name: &str, kind: Kind) -> usize {
    if let Some(i) = page.families.iter().rposition(|f| f.name == name) {
        if kind != Kind::Untyped {
            page.families[i].kind = kind;
        }
        return i;
    }
    page.families.push(Family { name: name.to_string(), kind, label_keys: Vec::new(), samples: 0 });
    page.families.len() - 1
}

/// Whether a sample name belongs to a family (`x`, `x_total`, `x_bucket`, …).
fn belongs(family: &str, sample: &str) -> bool {
    match sample.strip_prefix(family) {
        Some("") => true,
        Some(suffix) => {
            matches!(suffix, "_total" | "_created" | "_bucket" | "_sum" | "_count" | "_gsum" | "_gcount" | "_info")
        }
        None => false,
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A sample line's name and labels, and what follows them.
fn parse_series(line: &str) -> Result<(&str, Labels<'_>, &str), String> {
    let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(line.len());
    let name = &line[..end];
    if !valid_name(name) {
        return Err(format!("invalid metric name at {:?}", preview(line)));
    }
    match line[end..].strip_prefix('{') {
        Some(after) => parse_labels(after).map(|(labels, rest)| (name, labels, rest)),
        None => Ok((name, Vec::new(), &line[end..])),
    }
}

/// A sample line: the sample, and the length of its series (name and label set) as written.
fn parse_sample(line: &str) -> Result<(Sample<'_>, usize), String> {
    let (name, labels, mut rest) = parse_series(line)?;
    let series = line.len() - rest.len();
    // Drop an exemplar (` # {…} value ts`).
    if let Some(pos) = rest.find(" #") {
        rest = &rest[..pos];
    }
    let mut parts = rest.split_ascii_whitespace();
    let value = parts.next().ok_or_else(|| format!("no value for {name}"))?;
    let value = parse_value(value).ok_or_else(|| format!("invalid value {value:?} for {name}"))?;
    if let Some(ts) = parts.next()
        && ts.parse::<f64>().is_err()
    {
        return Err(format!("invalid timestamp {ts:?} for {name}"));
    }
    if let Some(extra) = parts.next() {
        return Err(format!("unexpected {extra:?} after the value of {name}"));
    }
    Ok((Sample { name: Cow::Borrowed(name), labels, value }, series))
}

fn preview(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Labels of one sample, in order.
type Labels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// `le="0.1",method="GET"}` → labels and what follows the `}`.
fn parse_labels(mut s: &str) -> Result<(Labels<'_>, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
        let key = &s[..end];
        if key.is_empty() {
            return Err(if s.is_empty() {
                "unterminated label set".into()
            } else {
                format!("invalid label name at {:?}", preview(s))
            });
        }
        s = s[end..].trim_start();
        s = s.strip_prefix('=').ok_or_else(|| format!("expected = after label {key}"))?.trim_start();
        s = s.strip_prefix('"').ok_or_else(|| format!("expected a quoted value for label {key}"))?;
        let bytes = s.as_bytes();
        let close = bytes
            .iter()
            .enumerate()
            .scan(false, |escaped, (i, b)| {
                let at = if *escaped {
                    *escaped = false;
                    None
                } else if *b == b'\\' {
                    *escaped = true;
                    None
                } else if *b == b'"' {
                    Some(i)
                } else {
                    None
                };
                Some(at)
            })
            .flatten()
            .next()
            .ok_or_else(|| format!("unterminated value of label {key}"))?;
        let raw = &s[..close];
        let value = if raw.contains('\\') { Cow::Owned(unescape(raw)) } else { Cow::Borrowed(raw) };
        labels.push((Cow::Borrowed(key), value));
        s = s[close + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err(if s.is_empty() {
                "unterminated label set".into()
            } else {
                format!("expected , or }} after label {key}")
            });
        }
    }
}

/// `\\` → `\`, `\"` → `"`, `\n` → line feed; other escapes kept as written.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn parse_value(v: &str) -> Option<f64> {
    match v {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => v.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# HELP http_requests_total The total number of HTTP requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
\n\
# Escaping in label values:\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
# Minimalistic line:\n\
metric_without_timestamp_and_labels 12.47\n\
# A weird metric from before the epoch:\n\
something_weird{problem=\"division by zero\"} +Inf -3982045\n\
# TYPE http_request_duration_seconds histogram\n\
http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n\
http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n\
http_request_duration_seconds_sum 53423\n\
http_request_duration_seconds_count 144320\n\
# TYPE rpc_duration_seconds summary\n\
rpc_duration_seconds{quantile=\"0.5\"} 4773\n\
rpc_duration_seconds{quantile=\"0.99\"} NaN\n\
rpc_duration_seconds_sum 1.7560473e+07\n\
rpc_duration_seconds_count 2693\n";

    // The example page of the Prometheus exposition format documentation.
    #[test]
    fn the_documented_example_page() {
        let page = parse(PAGE.as_bytes()).unwrap();
        assert_eq!(page.samples.len(), 13);
        assert_eq!(page.samples[0].labels, vec![("method".into(), "post".into()), ("code".into(), "200".into())]);
        assert!(matches!(page.samples[0].name, Cow::Borrowed(_)), "no copy of plain names");
        assert_eq!(page.samples[2].labels[0].1, "C:\\DIR\\FILE.TXT");
        assert_eq!(page.samples[2].labels[1].1, "Cannot find file:\n\"FILE.TXT\"");
        assert_eq!(page.samples[2].value, 1.458255915e9);
        assert_eq!(page.samples[4].value, f64::INFINITY);
        assert!(page.samples[10].value.is_nan());
        let kinds: Vec<(&str, &str, usize)> =
            page.families.iter().map(|f| (f.name.as_str(), f.kind.label(), f.samples)).collect();
        assert_eq!(
            kinds,
            [
                ("http_requests_total", "counter", 2),
                ("msdos_file_access_time_seconds", "untyped", 1),
                ("metric_without_timestamp_and_labels", "untyped", 1),
                ("something_weird", "untyped", 1),
                ("http_request_duration_seconds", "histogram", 4),
                ("rpc_duration_seconds", "summary", 4),
            ]
        );
        assert_eq!(page.families[0].label_keys, ["method", "code"]);
    }

    #[test]
    fn each_sample_with_where_its_series_is_written() {
        let padded = format!("x{{ a = \"1\" ,{} b=\"2\" }} 5\n", " ".repeat(200));
        let page = format!(
            "# HELP x An x.\nx{{a=\"1\",b=\"2\"}} 1\n  x{{ a = \"1\" , b=\"2\" }} 2 # {{trace=\"t\"}} 1\r\n\
             x{{b=\"2\",a=\"1\"}} 3\ne{{p=\"C:\\\\DIR\"}} 1\ne{{p=\"C:\\\\dir\"}} 2\n\nx 4\n{padded}"
        );
        let body = page.as_bytes();
        assert_eq!(sample_lines(body), 7);
        let mut read = Vec::new();
        for_each_sample(body, false, |sample, written| read.push((sample, written))).unwrap();
        assert_eq!(read.len(), 7);
        let texts: Vec<&str> = read.iter().map(|(_, w)| w.text).collect();
        assert_eq!(texts[1], "x{ a = \"1\" , b=\"2\" }", "the name and label set, as written");
        assert_eq!(texts[5], "x");
        for (_, written) in &read {
            assert_eq!(&page[written.start..written.start + written.text.len()], written.text);
        }
        let kept: Vec<Kept<'_>> = read.iter().map(|(sample, written)| written.keep(sample)).collect();
        assert!(matches!(kept[1], Kept::Written { .. }));
        assert!(matches!(kept[6], Kept::Parsed(_)), "a padded label set is kept parsed");
        let same: Vec<Vec<usize>> =
            kept.iter().map(|k| (0..read.len()).filter(|&j| k.is(body, &read[j].0)).collect()).collect();
        let x = vec![0, 1, 6];
        assert_eq!(same, [x.clone(), x.clone(), vec![2], vec![3], vec![4], vec![5], x]);
        assert_eq!(parse(body).unwrap().samples, read.into_iter().map(|(s, _)| s).collect::<Vec<_>>());
        assert!(for_each_sample(b"ok 1\nbad{ 2\n", false, |_, _| ()).unwrap_err().problem.starts_with("line 2: "));
    }

    #[test]
    fn openmetrics_with_eof_exemplars_and_total_suffix() {
        let om = "# TYPE foo counter\n# UNIT foo seconds\nfoo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\nfoo_created 1520872607.123\n# EOF\n";
        let page = parse_with(om.as_bytes(), true).unwrap();
        assert_eq!(page.samples.len(), 2);
        assert_eq!(page.families.len(), 1);
        assert_eq!(page.families[0].kind, Kind::Counter);
        assert!(parse_with(b"# TYPE foo counter\nfoo_total 1\n", true).unwrap_err().problem.contains("no # EOF"));
        assert!(parse_with(b"foo 1\n# EOF\nbar 2\n", true).is_err());
    }

    #[test]
    fn errors_name_the_line() {
        let cases: [(&[u8], &str); 8] = [
            (b"ok 1\nbroken{a=\"x\" 1\n", "line 2: expected , or } after label a"),
            (b"ok 1\ncut{a=\"x", "line 2: the page is truncated"),
            (b"x{a=\"unterminated} 1\n", "line 1: unterminated value of label a"),
            (b"x one\n", "line 1: invalid value \"one\" for x"),
            (b"x\n", "line 1: no value for x"),
            (b"9x 1\n", "line 1: invalid metric name"),
            (b"x 1 2 3\n", "line 1: unexpected \"3\""),
            (b"ok 1\n\xff\xfe 2\n", "not valid UTF-8 (at byte 5)"),
        ];
        for (input, message) in cases {
            let e = parse(input).unwrap_err();
            assert!(e.problem.contains(message), "{:?}: {e}", String::from_utf8_lossy(input));
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse(&body);
        }

        #[test]
        fn mutated_pages_never_panic(cut in 0usize..700, byte in proptest::prelude::any::<u8>(), at in 0usize..700) {
            let mut body = PAGE.as_bytes().to_vec();
            let at = at % body.len();
            body[at] = byte;
            body.truncate(cut.min(body.len()));
            let _ = parse(&body);
        }

        #[test]
        fn label_values_round_trip(value in "[ -~\\n]{0,30}") {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let line = format!("m{{l=\"{escaped}\"}} 1\n");
            let page = parse(line.as_bytes()).unwrap();
            proptest::prop_assert_eq!(&page.samples[0].labels[0].1, &value);
        }
    }
}
