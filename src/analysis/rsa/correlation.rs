//! Correlations of two vectors with SciPy's definitions: the primitives the RSA comparisons are
//! built from. A leaf module: it imports nothing from the rest of `rsa`.

use crate::{Error, Result};

/// Ranks with ties averaged, 1-based (`scipy.stats.rankdata(method="average")`).
///
/// ```
/// assert_eq!(neuroscope::analysis::rsa::rank(&[10.0, 30.0, 20.0, 20.0]), vec![1.0, 4.0, 2.5, 2.5]);
/// ```
pub fn rank(v: &[f64]) -> Vec<f64> {
    let order = sorted_order(v);
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let x = v[order[i]];
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == x {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Positions of `v` in ascending `total_cmp` order. Long vectors (a 1,000-condition RDM has
/// 499,500 entries, and ranking them is the cost of a Spearman comparison) go through an LSD
/// radix sort on the order-preserving bit pattern: four 16-bit passes instead of a comparison
/// sort's ~19 cache-missing rounds. Both give the same order (ties keep their positions).
fn sorted_order(v: &[f64]) -> Vec<usize> {
    // IEEE bits -> unsigned keys in total_cmp order
    let key = |x: f64| {
        let b = x.to_bits();
        if b >> 63 == 1 {
            !b
        } else {
            b | (1 << 63)
        }
    };
    if v.len() < 4096 || u32::try_from(v.len()).is_err() {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by_key(|&i| key(v[i]));
        return order;
    }
    let mut cur: Vec<(u64, u32)> = v.iter().zip(0u32..).map(|(&x, i)| (key(x), i)).collect();
    let mut next = vec![(0u64, 0u32); v.len()];
    for pass in 0..4 {
        let shift = 16 * pass;
        let mut count = vec![0usize; 1 << 16];
        for &(k, _) in &cur {
            count[((k >> shift) & 0xffff) as usize] += 1;
        }
        if count.contains(&cur.len()) {
            continue; // every key shares this digit: nothing to reorder
        }
        let mut start = 0;
        for c in count.iter_mut() {
            let n = *c;
            *c = start;
            start += n;
        }
        for &e in &cur {
            let d = ((e.0 >> shift) & 0xffff) as usize;
            next[count[d]] = e;
            count[d] += 1;
        }
        std::mem::swap(&mut cur, &mut next);
    }
    cur.into_iter().map(|(_, i)| i as usize).collect()
}

/// Pearson correlation of two vectors.
///
/// ```
/// let r = neuroscope::analysis::rsa::pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0])?;
/// assert!(r > 0.98);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn pearson(a: &[f64], b: &[f64]) -> Result<f64> {
    check_pair(a, b)?;
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        return Err(Error::InvalidArgument(
            "correlation with a constant vector is undefined".into(),
        ));
    }
    Ok((sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman's rank correlation of two vectors.
///
/// ```
/// let r = neuroscope::analysis::rsa::spearman(&[1.0, 2.0, 3.0], &[1.0, 10.0, 100.0])?;
/// assert!((r - 1.0).abs() < 1e-12);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn spearman(a: &[f64], b: &[f64]) -> Result<f64> {
    check_pair(a, b)?;
    pearson(&rank(a), &rank(b))
}

fn check_pair(a: &[f64], b: &[f64]) -> Result<()> {
    if a.len() != b.len() || a.len() < 2 {
        return Err(Error::Shape {
            what: "correlated vectors".into(),
            expected: "two vectors of equal length >= 2".into(),
            got: format!("{} and {}", a.len(), b.len()),
        });
    }
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(
            "correlated vectors hold NaN or infinite values".into(),
        ));
    }
    Ok(())
}

/// Kendall's tau-b with tie correction (`scipy.stats.kendalltau`, default variant), by Knight's
/// O(m log m) algorithm.
///
/// ```
/// let t = neuroscope::analysis::rsa::kendall_tau_b(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0])?;
/// assert!((t - 4.0 / 6.0).abs() < 1e-12);
/// # Ok::<(), neuroscope::Error>(())
/// ```
pub fn kendall_tau_b(a: &[f64], b: &[f64]) -> Result<f64> {
    check_pair(a, b)?;
    let c = kendall_counts(a, b);
    if c.x_ties == c.total || c.y_ties == c.total {
        return Err(Error::InvalidArgument(
            "Kendall's tau of a constant vector is undefined".into(),
        ));
    }
    let con_minus_dis = c.total as f64 - c.x_ties as f64 - c.y_ties as f64 + c.joint_ties as f64
        - 2.0 * c.discordant as f64;
    Ok((con_minus_dis
        / ((c.total - c.x_ties) as f64).sqrt()
        / ((c.total - c.y_ties) as f64).sqrt())
    .clamp(-1.0, 1.0))
}

/// The pair counts Kendall's taus are made of (SciPy's `_kendall_dis` and tie counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KendallCounts {
    /// All pairs, `n (n - 1) / 2`.
    pub total: u64,
    /// Pairs tied in the first vector.
    pub x_ties: u64,
    /// Pairs tied in the second vector.
    pub y_ties: u64,
    /// Pairs tied in both.
    pub joint_ties: u64,
    /// Discordant pairs.
    pub discordant: u64,
}

/// Count concordance in O(m log m) (Knight's algorithm with a Fenwick tree); the vectors must
/// have the same length and hold no NaN.
pub(crate) fn kendall_counts(a: &[f64], b: &[f64]) -> KendallCounts {
    let n = a.len().min(b.len());
    let dense = |v: &[f64]| -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0usize; n];
        let mut cur = 0;
        for k in 0..n {
            if k > 0 && v[idx[k]] != v[idx[k - 1]] {
                cur += 1;
            }
            r[idx[k]] = cur;
        }
        r
    };
    let (x, y) = (dense(a), dense(b));
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| x[i].cmp(&x[j]).then(y[i].cmp(&y[j])));
    // discordant pairs = inversions of y in this order (strictly greater earlier)
    let m = y.iter().max().copied().unwrap_or(0) + 1;
    let mut bit = vec![0u64; m + 1];
    let mut dis: u64 = 0;
    for (seen, &i) in order.iter().enumerate() {
        // count earlier elements with y > y[i] = seen - (earlier with y <= y[i])
        let mut k = y[i] + 1;
        let mut le = 0u64;
        while k > 0 {
            le += bit[k];
            k -= k & k.wrapping_neg();
        }
        dis += seen as u64 - le;
        let mut k = y[i] + 1;
        while k <= m {
            bit[k] += 1;
            k += k & k.wrapping_neg();
        }
    }
    let ties = |keyf: &dyn Fn(usize) -> (usize, usize)| -> u64 {
        let mut keys: Vec<(usize, usize)> = (0..n).map(keyf).collect();
        keys.sort_unstable();
        let mut t = 0u64;
        let mut run = 1u64;
        for k in 1..=n {
            if k < n && keys[k] == keys[k - 1] {
                run += 1;
            } else {
                t += run * (run - 1) / 2;
                run = 1;
            }
        }
        t
    };
    KendallCounts {
        total: (n as u64) * (n as u64).saturating_sub(1) / 2,
        x_ties: ties(&|i| (x[i], 0)),
        y_ties: ties(&|i| (y[i], 0)),
        joint_ties: ties(&|i| (x[i], y[i])),
        discordant: dis,
    }
}
