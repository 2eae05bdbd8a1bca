//! Colour maps: matplotlib's tables, so a figure reads the same as the Python one it replaces.

#[allow(clippy::all)]
#[rustfmt::skip]
mod data {
    include!("colormap_data.rs");
}

/// A continuous colour map (matplotlib's 256-entry tables).
///
/// ```
/// use neuroscope::plot::Colormap;
/// assert_eq!(Colormap::Viridis.rgb(0.0), [68, 1, 84]);     // matplotlib's viridis(0)
/// assert_eq!(Colormap::Gray.rgb(1.0), [255, 255, 255]);
/// assert_eq!(Colormap::parse("rdbu_r").unwrap(), Colormap::RdBuR);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Colormap {
    /// Perceptually uniform, matplotlib's default (sequential).
    #[default]
    Viridis,
    /// Perceptually uniform, dark to light (sequential).
    Magma,
    /// Blue - white - red (diverging): correlation matrices centred on 0.
    RdBuR,
    /// Blue - grey - red (diverging).
    Coolwarm,
    /// Black to white: images and feature maps.
    Gray,
}

impl Colormap {
    /// Every colour map, for listings and errors.
    pub const ALL: [Colormap; 5] = [
        Colormap::Viridis,
        Colormap::Magma,
        Colormap::RdBuR,
        Colormap::Coolwarm,
        Colormap::Gray,
    ];

    /// matplotlib's name.
    pub fn name(self) -> &'static str {
        match self {
            Colormap::Viridis => "viridis",
            Colormap::Magma => "magma",
            Colormap::RdBuR => "RdBu_r",
            Colormap::Coolwarm => "coolwarm",
            Colormap::Gray => "gray",
        }
    }

    /// Parses matplotlib's name (case-insensitive); the error lists the valid ones.
    pub fn parse(name: &str) -> crate::Result<Colormap> {
        Colormap::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                crate::Error::unknown("colour map", name, Colormap::ALL.map(|c| c.name()))
            })
    }

    /// True for maps meant to be centred on a value (0 for correlations).
    pub fn is_diverging(self) -> bool {
        matches!(self, Colormap::RdBuR | Colormap::Coolwarm)
    }

    fn table(self) -> &'static [[u8; 3]; 256] {
        match self {
            Colormap::Viridis => &data::VIRIDIS,
            Colormap::Magma => &data::MAGMA,
            Colormap::RdBuR => &data::RDBU_R,
            Colormap::Coolwarm => &data::COOLWARM,
            Colormap::Gray => &data::GRAY,
        }
    }

    /// The colour at `t` in `[0, 1]` (clamped; NaN gives the lowest colour), as matplotlib's
    /// `cmap(t)` picks the table entry.
    pub fn rgb(self, t: f64) -> [u8; 3] {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        self.table()[((t * 256.0) as usize).min(255)]
    }
}

from_str_by_parse!(Colormap);

/// The colour of category `i`: matplotlib's `tab10` for up to 10 categories, `tab20` beyond
/// (cycling after 20).
///
/// ```
/// assert_eq!(neuroscope::plot::category_color(0, 10), [31, 119, 180]); // matplotlib's C0
/// ```
pub fn category_color(i: usize, n_categories: usize) -> [u8; 3] {
    if n_categories <= 10 {
        data::TAB10[i % 10]
    } else {
        data::TAB20[i % 20]
    }
}

/// `#rrggbb` for a colour.
pub(crate) fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}
