//! Seeded randomness helpers. Every draw comes from a `ChaCha8Rng` derived
//! from the seed, so a seed always yields the same ledger.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Independent streams: 0 for customers, then two per customer (invoice dates,
/// then everything else), so a customer's history does not depend on how
/// many draws the others used.
pub(crate) fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

pub(crate) fn dates_stream(seed: u64, customer: usize) -> ChaCha8Rng {
    stream(seed, 1 + 2 * customer as u64)
}

pub(crate) fn life_stream(seed: u64, customer: usize) -> ChaCha8Rng {
    stream(seed, 2 + 2 * customer as u64)
}

/// One element of a non-empty constant list.
pub(crate) fn pick<'a, T, R: Rng>(rng: &mut R, items: &'a [T]) -> &'a T {
    // Only called with non-empty constant lists, so the range is never empty.
    &items[rng.random_range(0..items.len())]
}

/// One element of a non-empty list of (item, relative weight).
pub(crate) fn pick_weighted<T: Copy, R: Rng>(rng: &mut R, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut u = rng.random::<f64>() * total;
    for &(item, w) in items {
        if u < w {
            return item;
        }
        u -= w;
    }
    // Float rounding can leave `u` a hair above the last weight: take the last item
    // (lists are non-empty constants).
    items[items.len() - 1].0
}

pub(crate) fn normal<R: Rng>(rng: &mut R, mean: f64, sd: f64) -> f64 {
    let z: f64 = rng.sample(StandardNormal);
    mean + sd * z
}

/// Log-normal with median `median` and log-space spread `sigma`.
pub(crate) fn lognormal<R: Rng>(rng: &mut R, median: f64, sigma: f64) -> f64 {
    median * normal(rng, 0.0, sigma).exp()
}

/// Whole days from a float sample (saturating, as `as` does).
pub(crate) fn days(x: f64) -> i32 {
    x.round() as i32
}
