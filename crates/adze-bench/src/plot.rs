//! PNG plots of a scenario's event→start latencies: over time, and as a histogram.

use std::path::Path;

use anyhow::Context;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Where plotters' text rendering finds a font (it ships none; DejaVu is on most Linux
/// systems). Without one the plots are drawn without labels.
const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Writes `<scenario>-latency.png` and `<scenario>-histogram.png` into `dir` from
/// (ms since start, latency µs) samples.
pub fn write(dir: &Path, scenario: &str, samples: &[(u32, u32)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let labelled = register_font();
    let over_time = dir.join(format!("{scenario}-latency.png"));
    latency_over_time(&over_time, scenario, samples, labelled)
        .map_err(|error| anyhow::anyhow!("plotting {}: {error}", over_time.display()))?;
    let histogram_path = dir.join(format!("{scenario}-histogram.png"));
    histogram(&histogram_path, scenario, samples, labelled)
        .map_err(|error| anyhow::anyhow!("plotting {}: {error}", histogram_path.display()))?;
    eprintln!(
        "plots: {} {}",
        over_time.display(),
        histogram_path.display()
    );
    Ok(())
}

fn register_font() -> bool {
    for candidate in FONT_CANDIDATES {
        if let Ok(bytes) = std::fs::read(candidate) {
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    eprintln!("plots: no DejaVuSans.ttf found; drawing without labels");
    false
}

type Plot = Result<(), Box<dyn std::error::Error>>;
type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The frame both plots share: a caption and labelled axes when a font is available.
fn chart<'a, 'b>(
    root: &'a Area<'b>,
    caption: String,
    labelled: bool,
    (x, y): (std::ops::Range<f64>, std::ops::Range<f64>),
    (x_desc, y_desc): (&str, &str),
) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(60);
    if labelled {
        builder.caption(caption, ("sans-serif", 24));
    }
    let mut chart = builder.build_cartesian_2d(x, y)?;
    let mut mesh = chart.configure_mesh();
    if labelled {
        mesh.x_desc(x_desc).y_desc(y_desc);
    } else {
        mesh.disable_x_mesh()
            .disable_y_mesh()
            .x_labels(0)
            .y_labels(0);
    }
    mesh.draw()?;
    Ok(chart)
}

fn latency_over_time(path: &Path, scenario: &str, samples: &[(u32, u32)], labelled: bool) -> Plot {
    let root = BitMapBackend::new(path, (1200, 600)).into_drawing_area();
    let x_max = samples.iter().map(|&(at, _)| at).max().unwrap_or(1).max(1) as f64 / 1000.0;
    let y_max = samples.iter().map(|&(_, l)| l).max().unwrap_or(1).max(1) as f64 / 1000.0;
    let mut chart = chart(
        &root,
        format!("{scenario}: event→start latency over time"),
        labelled,
        (0.0..x_max * 1.02, 0.0..y_max * 1.05),
        ("seconds since start", "latency (ms)"),
    )?;
    // Thin very long runs out so the plot stays readable and quick to draw.
    let step = (samples.len() / 200_000).max(1);
    chart.draw_series(samples.iter().step_by(step).map(|&(at, latency)| {
        Circle::new(
            (at as f64 / 1000.0, latency as f64 / 1000.0),
            1,
            BLUE.filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}

fn histogram(path: &Path, scenario: &str, samples: &[(u32, u32)], labelled: bool) -> Plot {
    const BUCKETS: usize = 100;
    let root = BitMapBackend::new(path, (1200, 600)).into_drawing_area();
    let mut latencies: Vec<u32> = samples.iter().map(|&(_, latency)| latency).collect();
    latencies.sort_unstable();
    // Up to the 99.9th percentile, so one outlier does not squash every bucket into one.
    let top = latencies
        .get(latencies.len().saturating_sub(1) * 999 / 1000)
        .copied()
        .unwrap_or(1)
        .max(1) as f64
        / 1000.0;
    let width = top / BUCKETS as f64;
    let mut counts = [0u64; BUCKETS];
    for &latency in &latencies {
        let bucket = ((latency as f64 / 1000.0) / width) as usize;
        counts[bucket.min(BUCKETS - 1)] += 1;
    }
    let highest = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let mut chart = chart(
        &root,
        format!("{scenario}: event→start latency histogram (to p99.9)"),
        labelled,
        (0.0..top, 0.0..highest * 1.05 + 1.0),
        ("latency (ms)", "tasks"),
    )?;
    chart.draw_series(counts.iter().enumerate().map(|(bucket, &count)| {
        let left = bucket as f64 * width;
        Rectangle::new(
            [(left, 0.0), (left + width, count as f64)],
            BLUE.mix(0.7).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}
