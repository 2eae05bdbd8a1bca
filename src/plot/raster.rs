//! The PNG backend: plotters' bitmap backend with our own text rasteriser.
//!
//! plotters' `ab_glyph` text path ignores each glyph's left bearing, so letters drift
//! ("P ullover"); this wrapper delegates every shape to `BitMapBackend` and draws text itself
//! with ab_glyph from the bundled DejaVu Sans: positioned by the font's advances and kerning,
//! anchored like the SVG output, rotated by quarter turns.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters::backend::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontTransform,
};
use std::sync::OnceLock;

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The bundled font (parsed once). `None` only if the bundled file were corrupt, which a unit
/// test rules out; text is then left undrawn rather than panicking in a notebook.
pub(crate) fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

pub(crate) struct PngBackend<'a> {
    pub inner: BitMapBackend<'a>,
}

type Err = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

impl<'a> DrawingBackend for PngBackend<'a> {
    type ErrorType = Err;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Err>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Err>> {
        self.inner.present()
    }
    fn draw_pixel(
        &mut self,
        p: BackendCoord,
        c: BackendColor,
    ) -> Result<(), DrawingErrorKind<Err>> {
        self.inner.draw_pixel(p, c)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Err>> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Err>> {
        self.inner.draw_rect(a, b, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Err>> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        c: BackendCoord,
        r: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Err>> {
        self.inner.draw_circle(c, r, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Err>> {
        self.inner.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Err>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<T: BackendTextStyle>(
        &self,
        text: &str,
        style: &T,
    ) -> Result<(u32, u32), DrawingErrorKind<Err>> {
        let (w, h, _) = measure(text, style.size());
        Ok((w.ceil() as u32, h.ceil() as u32))
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Err>> {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let Some(font) = font() else { return Ok(()) };
        let size = style.size() as f32;
        let scaled = font.as_scaled(PxScale::from(size));
        let (width, height, ascent) = measure(text, style.size());
        // Offsets of the text's own frame (x along the text, y down from the top) to the anchor.
        let ax = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Center => width / 2.0,
            HPos::Right => width,
        };
        let ay = match style.anchor().v_pos {
            VPos::Top => 0.0,
            VPos::Center => height / 2.0,
            VPos::Bottom => height,
        };
        let trans = style.transform();
        let mut caret = 0.0f32;
        let mut prev = None;
        let mut px: Vec<(i32, i32, f32)> = Vec::new();
        for ch in text.chars() {
            let id = scaled.glyph_id(ch);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(size, point(caret, ascent as f32));
            caret += scaled.h_advance(id);
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|x, y, cov| {
                    if cov > 0.0 {
                        px.push((b.min.x as i32 + x as i32, b.min.y as i32 + y as i32, cov));
                    }
                });
            }
        }
        let (ax, ay) = (ax.round() as i32, ay.round() as i32);
        for (x, y, cov) in px {
            let (dx, dy) = (x - ax, y - ay);
            let (tx, ty) = match trans {
                FontTransform::Rotate90 => (-dy, dx),
                FontTransform::Rotate180 => (-dx, -dy),
                FontTransform::Rotate270 => (dy, -dx),
                _ => (dx, dy),
            };
            self.inner.draw_pixel(
                (pos.0 + tx, pos.1 + ty),
                BackendColor {
                    alpha: color.alpha * cov.min(1.0) as f64,
                    rgb: color.rgb,
                },
            )?;
        }
        Ok(())
    }
}

/// Width, height (ascent + descent) and ascent of `text` at `size` px.
pub(crate) fn measure(text: &str, size: f64) -> (f64, f64, f64) {
    let Some(font) = font() else {
        return (text.chars().count() as f64 * size * 0.6, size, size * 0.8);
    };
    let scaled = font.as_scaled(PxScale::from(size as f32));
    let mut w = 0.0f32;
    let mut prev = None;
    for ch in text.chars() {
        let id = scaled.glyph_id(ch);
        if let Some(p) = prev {
            w += scaled.kern(p, id);
        }
        prev = Some(id);
        w += scaled.h_advance(id);
    }
    let asc = scaled.ascent() as f64;
    let desc = -(scaled.descent() as f64);
    (w as f64, asc + desc, asc)
}
