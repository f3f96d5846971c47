//! The figures the benchmark collects, printed as a table and written as JSON.

use crate::BoxError;
use serde_json::{Value, json};
use std::path::Path;

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Stable machine name (JSON key), e.g. `ingest_batch_5000`.
    pub key: String,
    /// What the table shows, e.g. `ingest, 5000 measures per request`.
    pub label: String,
    pub value: f64,
    /// `measures/s`, `points/s`, `ops/s`, `bytes`, `MB`...
    pub unit: &'static str,
    /// DESIGN §4's aim for this figure, if it has one.
    pub aim: Option<&'static str>,
    /// Context: counts, durations, errors.
    pub note: String,
}

impl Figure {
    pub fn new(
        key: impl Into<String>,
        label: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Figure {
            key: key.into(),
            label: label.into(),
            value,
            unit,
            aim: None,
            note: String::new(),
        }
    }

    pub fn aim(mut self, aim: &'static str) -> Self {
        self.aim = Some(aim);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// Everything one run measured, plus how it was run.
#[derive(Debug, Default)]
pub struct Report {
    pub figures: Vec<Figure>,
    /// `key = value` lines describing the run (machine, settings, server).
    pub context: Vec<(String, String)>,
}

impl Report {
    pub fn push(&mut self, f: Figure) {
        // Print each figure as soon as it is known: a long run shows progress.
        eprintln!("  {:<44} {}", f.label, render(f.value, f.unit));
        self.figures.push(f);
    }

    pub fn context(&mut self, key: &str, value: impl ToString) {
        self.context.push((key.to_string(), value.to_string()));
    }

    /// The final table, on stdout.
    pub fn print(&self) {
        println!();
        println!("gnocchi-bench");
        for (k, v) in &self.context {
            println!("  {k}: {v}");
        }
        println!();
        let label_w = self
            .figures
            .iter()
            .map(|f| f.label.chars().count())
            .max()
            .unwrap_or(8)
            .max(8);
        let values: Vec<String> = self
            .figures
            .iter()
            .map(|f| render(f.value, f.unit))
            .collect();
        let value_w = values
            .iter()
            .map(|v| v.chars().count())
            .max()
            .unwrap_or(6)
            .max(6);
        let aim_w = self
            .figures
            .iter()
            .filter_map(|f| f.aim.map(|a| a.chars().count()))
            .max()
            .unwrap_or(3)
            .max(3);
        println!(
            "{:<label_w$}  {:>value_w$}  {:<aim_w$}  notes",
            "workload", "figure", "aim"
        );
        println!("{}", "-".repeat(label_w + value_w + aim_w + 13));
        for (f, v) in self.figures.iter().zip(&values) {
            println!(
                "{:<label_w$}  {:>value_w$}  {:<aim_w$}  {}",
                f.label,
                v,
                f.aim.unwrap_or(""),
                f.note
            );
        }
    }

    pub fn write_json(&self, path: &Path) -> Result<(), BoxError> {
        let context: serde_json::Map<String, Value> = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let figures: serde_json::Map<String, Value> = self
            .figures
            .iter()
            .map(|f| {
                (
                    f.key.clone(),
                    json!({
                        "label": f.label,
                        "value": f.value,
                        "unit": f.unit,
                        "aim": f.aim,
                        "note": f.note,
                    }),
                )
            })
            .collect();
        let doc = json!({"context": context, "figures": figures});
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(())
    }
}

/// `1234567.8, "measures/s"` → `1.23M measures/s`; small values keep decimals.
pub fn render(value: f64, unit: &str) -> String {
    let v = if !value.is_finite() {
        format!("{value}")
    } else if value.abs() >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value.abs() >= 1e4 {
        format!("{:.1}K", value / 1e3)
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    };
    format!("{v} {unit}")
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn renders_magnitudes() {
        assert_eq!(render(4_123_456.0, "measures/s"), "4.12M measures/s");
        assert_eq!(render(52_345.0, "req/s"), "52.3K req/s");
        assert_eq!(render(657.4, "ops/s"), "657 ops/s");
        assert_eq!(render(1.234, "bytes"), "1.23 bytes");
    }
}
