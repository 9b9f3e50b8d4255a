//! The output contract: a table for people, then one JSON line for tools.

use std::collections::BTreeMap;

/// Figures keyed `<system>.<transport>.<scenario>.<metric>`.
#[derive(Default, Debug)]
pub(crate) struct Report {
    figures: BTreeMap<String, f64>,
    rows: Vec<Row>,
}

/// System, transport, scenario, metric, value.
type Row = (String, String, String, String, f64);

impl Report {
    pub(crate) fn add(
        &mut self,
        system: &str,
        transport: &str,
        scenario: &str,
        metric: &str,
        v: f64,
    ) {
        self.figures
            .insert(format!("{system}.{transport}.{scenario}.{metric}"), v);
        self.rows.push((
            system.into(),
            transport.into(),
            scenario.into(),
            metric.into(),
            v,
        ));
    }

    pub(crate) fn get(&self, key: &str) -> Option<f64> {
        self.figures.get(key).copied()
    }

    /// Prints the table, the ratios given, then the JSON line (last).
    pub(crate) fn print(&self, title: &str, ratios: &[(&str, &str, &str)]) {
        println!(
            "\n== {title} (cores: {}) ==",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        // Columns as wide as their longest entry, and no narrower than
        // they always were.
        let width = |least: usize, f: fn(&Row) -> &str| {
            self.rows.iter().map(|r| f(r).len()).fold(least, usize::max)
        };
        let (sw, tw) = (width(12, |r| &r.0), width(6, |r| &r.1));
        let (cw, mw) = (width(14, |r| &r.2), width(14, |r| &r.3));
        println!(
            "{:<sw$} {:<tw$} {:<cw$} {:<mw$} {:>14}",
            "system", "trans", "scenario", "metric", "value"
        );
        for (s, t, sc, m, v) in &self.rows {
            println!("{s:<sw$} {t:<tw$} {sc:<cw$} {m:<mw$} {:>14}", fmt(*v));
        }
        if !ratios.is_empty() {
            println!("\nratios:");
            for (label, a, b) in ratios {
                if let (Some(x), Some(y)) = (self.get(a), self.get(b)) {
                    println!("  {label:<48} {:.2}x", x / y);
                }
            }
        }
        let body: Vec<String> = self
            .figures
            .iter()
            .map(|(k, v)| format!("\"{k}\":{}", json_num(*v)))
            .collect();
        println!("{{{}}}", body.join(","));
    }
}

fn fmt(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        let r = (v * 100.0).round() / 100.0;
        format!("{r}")
    } else {
        "null".into()
    }
}
