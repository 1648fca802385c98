//! Scraped metric formats: parse an application's metrics page into one flat list of
//! samples, and write samples out as Graphite, InfluxDB line protocol or OpenTSDB.
//!
//! * [`prometheus`]: Prometheus text exposition 0.0.4 and OpenMetrics text 1.0;
//! * [`dropwizard`]: Dropwizard/Codahale `MetricsServlet` JSON;
//! * [`json`]: any JSON document, flattened to dotted paths;
//! * [`output`]: the three output formats, all samples with one timestamp.
//!
//! Parsers never panic on input: malformed text gives a [`ParseError`] naming the line.

pub mod dropwizard;
pub mod json;
pub mod output;
pub mod prometheus;

use std::borrow::Cow;

use serde::Deserialize;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
    /// Summary (quantiles, `_sum`, `_count`).
    Summary,
    /// Untyped / unknown.
    Untyped,
    /// OpenMetrics info, stateset, gaugehistogram.
    Other,
}

impl Kind {
    /// Lower-case name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
            Self::Other => "other",
        }
    }
}

/// One sample: a metric name, its labels in order, and a value. Text formats borrow
/// from the page (no allocation per name or label unless it has escapes).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Sample name (for histograms e.g. `x_bucket`).
    pub name: Cow<'a, str>,
    /// Labels, in exposition order.
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The value (may be NaN or infinite; writers skip those).
    pub value: f64,
}

/// A family as discovery reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Family name.
    pub name: String,
    /// Type.
    pub kind: Kind,
    /// Label keys seen, in first-seen order.
    pub label_keys: Vec<String>,
    /// Number of samples.
    pub samples: usize,
}

/// A parsed page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page<'a> {
    /// Every sample, in page order.
    pub samples: Vec<Sample<'a>>,
    /// Families, in page order.
    pub families: Vec<Family>,
}

/// The series (name and labels) of a page seen so far, for dropping repeats without
/// keeping the samples: the first sample of each series is kept as a short key it can be
/// read back from (where it is written in the page: `prometheus::Kept`; its place in one
/// string of names: [`Names`]), under a seeded hash of the series; a sample whose hash was
/// seen is compared in full through its key.
pub struct Series<K, S = foldhash::fast::RandomState> {
    table: hashbrown::HashTable<(u64, K)>,
    hasher: S,
}

impl<K> Series<K> {
    /// Room for `n` series without growing.
    pub fn with_capacity(n: usize) -> Self {
        Self::with_capacity_and_hasher(n, foldhash::fast::RandomState::default())
    }
}

impl<K, S: std::hash::BuildHasher> Series<K, S> {
    fn with_capacity_and_hasher(n: usize, hasher: S) -> Self {
        Self { table: hashbrown::HashTable::with_capacity(n), hasher }
    }

    /// Where to keep `sample`'s series if it is the first of it (`None`: seen before); `is`
    /// tells whether a kept key is `sample`'s series.
    pub fn first(&mut self, sample: &Sample<'_>, is: impl Fn(&K, &Sample<'_>) -> bool) -> Option<NewSeries<'_, K>> {
        let hash = self.hasher.hash_one((&*sample.name, &sample.labels));
        match self.table.entry(hash, |(h, k)| *h == hash && is(k, sample), |(h, _)| *h) {
            hashbrown::hash_table::Entry::Occupied(_) => None,
            hashbrown::hash_table::Entry::Vacant(slot) => Some(NewSeries { slot, hash }),
        }
    }
}

/// A series seen for the first time, to be kept.
pub struct NewSeries<'t, K> {
    slot: hashbrown::hash_table::VacantEntry<'t, (u64, K)>,
    hash: u64,
}

impl<K> NewSeries<'_, K> {
    /// Keep the series as `key`.
    pub fn keep(self, key: K) {
        self.slot.insert((self.hash, key));
    }
}

/// The names of samples without labels seen so far (JSON pages, whose names are made from
/// paths, not read whole from the page): each kept once in one string, under [`Series`].
pub struct Names {
    seen: Series<(usize, usize)>,
    names: String,
}

impl Names {
    /// Room for `n` names without growing the set.
    pub fn with_capacity(n: usize) -> Self {
        Self { seen: Series::with_capacity(n), names: String::new() }
    }

    /// Whether `sample` (without labels) is the first of its name.
    pub fn first(&mut self, sample: &Sample<'_>) -> bool {
        let names = &self.names;
        let is = |&(at, len): &(usize, usize), s: &Sample<'_>| names[at..at + len] == *s.name && s.labels.is_empty();
        match self.seen.first(sample, is) {
            Some(new) => {
                new.keep((self.names.len(), sample.name.len()));
                self.names.push_str(&sample.name);
                true
            }
            None => false,
        }
    }
}

/// Why a page could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{format}: {problem}")]
pub struct ParseError {
    /// Which format was being parsed.
    pub format: &'static str,
    /// What is wrong, with the line number where there is one.
    pub problem: String,
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Prometheus text or OpenMetrics text.
    Prometheus,
    /// Dropwizard `MetricsServlet` JSON.
    Dropwizard,
    /// Any JSON, flattened.
    Json,
}

/// Pick the format from the content type, then from the body.
pub fn detect(content_type: Option<&str>, body: &[u8]) -> Format {
    let ct = content_type.unwrap_or_default().to_ascii_lowercase();
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    if ct.contains("openmetrics") || ct.starts_with("text/plain") && first != Some(b'{') {
        return Format::Prometheus;
    }
    if ct.contains("json") || first == Some(b'{') || first == Some(b'[') {
        return if dropwizard::looks_like(body) { Format::Dropwizard } else { Format::Json };
    }
    Format::Prometheus
}

/// Parse `body` in `format`.
pub fn parse(format: Format, body: &[u8]) -> Result<Page<'_>, ParseError> {
    match format {
        Format::Prometheus => prometheus::parse(body),
        Format::Dropwizard => dropwizard::parse(body),
        Format::Json => json::parse(body),
    }
}

/// Build the family list of a page from its samples (for formats without declarations).
pub fn families_from_samples(samples: &[Sample<'_>], kind: impl Fn(&str) -> Kind) -> Vec<Family> {
    let mut families: Vec<Family> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for s in samples {
        let i = *index.entry(s.name.to_string()).or_insert_with(|| {
            families.push(Family { name: s.name.to_string(), kind: kind(&s.name), label_keys: Vec::new(), samples: 0 });
            families.len() - 1
        });
        let f = &mut families[i];
        f.samples += 1;
        for (k, _) in &s.labels {
            if !f.label_keys.iter().any(|x| x == k) {
                f.label_keys.push(k.to_string());
            }
        }
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(detect(Some("text/plain; version=0.0.4"), b"# HELP x\nx 1"), Format::Prometheus);
        assert_eq!(detect(Some("application/openmetrics-text; version=1.0.0"), b"x 1"), Format::Prometheus);
        assert_eq!(detect(Some("application/json"), br#"{"version":"4.0.0","gauges":{}}"#), Format::Dropwizard);
        assert_eq!(detect(Some("application/json"), br#"{"a":{"b":1}}"#), Format::Json);
        assert_eq!(detect(None, b"  {\"x\": 1}"), Format::Json);
        assert_eq!(detect(None, b"up 1\n"), Format::Prometheus);
    }

    #[test]
    fn series_are_told_apart_by_name_and_labels_in_order() {
        let sample = |name: &'static str, labels: &[(&'static str, &'static str)]| Sample {
            name: name.into(),
            labels: labels.iter().map(|&(k, v)| (k.into(), v.into())).collect(),
            value: 1.0,
        };
        let samples = [
            sample("a", &[]),
            sample("a", &[("x", "1")]),
            sample("a", &[("x", "1"), ("y", "2")]),
            sample("a", &[("y", "2"), ("x", "1")]),
            sample("ax", &[("", "1")]),
            sample("b", &[("x", "1")]),
        ];
        let same = |&i: &usize, s: &Sample<'_>| samples[i].name == s.name && samples[i].labels == s.labels;
        let mut seen: Series<usize> = Series::with_capacity(1);
        let mut colliding = Series::with_capacity_and_hasher(1, std::hash::BuildHasherDefault::<Zero>::default());
        for (i, s) in samples.iter().enumerate() {
            seen.first(s, same).expect("new").keep(i);
            colliding.first(s, same).expect("new, though every hash is the same").keep(i);
        }
        for s in &samples {
            assert!(seen.first(&s.clone(), same).is_none(), "{s:?} was seen");
            assert!(colliding.first(&s.clone(), same).is_none(), "{s:?} was seen");
        }
    }

    /// A hasher under which every series collides.
    #[derive(Default)]
    struct Zero;

    impl std::hash::Hasher for Zero {
        fn finish(&self) -> u64 {
            0
        }

        fn write(&mut self, _: &[u8]) {}
    }
}
