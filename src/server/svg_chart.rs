//! What every server-drawn plotters chart shares: drawing into a string, logging (not
//! failing the page) when it cannot be drawn, and a viewBox so CSS can scale it.

/// A drawing's result; the error borrows the string being drawn into.
pub type Drawn<'a> = Result<(), Box<dyn std::error::Error + 'a>>;

/// The SVG `draw` makes at `width` × `height` pixels, scalable; empty (and logged as
/// `what`) when it fails.
pub fn render(
    what: &str,
    (width, height): (u32, u32),
    draw: impl for<'a> FnOnce(&'a mut String) -> Drawn<'a>,
) -> String {
    let mut svg = String::new();
    if let Err(error) = draw(&mut svg) {
        tracing::error!(%error, chart = what, "a chart could not be drawn");
        return String::new();
    }
    // plotters writes fixed pixel sizes; a viewBox lets CSS scale the chart to its box.
    svg.replacen(
        &format!(r#"<svg width="{width}" height="{height}" "#),
        &format!(r#"<svg viewBox="0 0 {width} {height}" role="img" "#),
        1,
    )
}
