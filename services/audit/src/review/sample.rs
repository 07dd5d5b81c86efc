//! The random part of a review: a sample drawn reproducibly from a seed.
//!
//! Algorithm `chacha20-fisher-yates/1`, documented so that anyone can redraw a sample:
//! 1. The ChaCha20 key is SHA-256 of `tryggdel.review.sample/1`, 0x00, the 32 seed bytes,
//!    0x00, the organisation code, 0x00, the period's first day (YYYY-MM-DD), 0x00, its last day
//!    (rand_chacha's `ChaCha20Rng::from_seed`, stream 0, word position 0).
//! 2. The population is the period's access entries of the organisation in index order,
//!    positions 0..n.
//! 3. For i in 0..k (k = min(sample size, n)): draw j uniformly from i..n (a 64-bit output x
//!    of the generator, `next_u64`, rejected while x < 2^64 mod (n - i), else
//!    j = i + x mod (n - i)), and swap positions i and j (a partial Fisher-Yates shuffle).
//! 4. The sample is the entries at the first k positions, reported in index order.
//!
//! The same seed, organisation and period therefore draw the same entries from the same log.

use std::collections::HashMap;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

/// The name of the algorithm above, stored with each run.
pub const SAMPLE_ALGORITHM: &str = "chacha20-fisher-yates/1";

const DOMAIN: &[u8] = b"tryggdel.review.sample/1";

/// A run's seed: 32 bytes, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed([u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Seed({})", self.to_hex())
    }
}

impl Seed {
    /// 64 hex digits (either case).
    pub fn parse(text: &str) -> Result<Seed, String> {
        let bytes = hex::decode(text.trim()).map_err(|_| "must be 64 hex digits".to_owned())?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 64 hex digits (32 bytes)".to_owned())?;
        Ok(Seed(bytes))
    }

    /// A fresh seed from the operating system's generator.
    pub fn random() -> Seed {
        let mut bytes = [0; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Seed(bytes)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// The generator of a run's sample (step 1).
fn generator(seed: &Seed, organisation: &str, from: &str, until: &str) -> ChaCha20Rng {
    let mut key = Sha256::new();
    key.update(DOMAIN);
    key.update([0]);
    key.update(seed.0);
    key.update([0]);
    key.update(organisation.as_bytes());
    key.update([0]);
    key.update(from.as_bytes());
    key.update([0]);
    key.update(until.as_bytes());
    ChaCha20Rng::from_seed(key.finalize().into())
}

/// A uniform draw from `0..bound` (`bound` > 0), without modulo bias (step 3).
fn below(rng: &mut ChaCha20Rng, bound: u64) -> u64 {
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let x = rng.next_u64();
        if x >= threshold {
            return x % bound;
        }
    }
}

/// The positions, in ascending order, of the `size` entries drawn from a population of
/// `population` (steps 3 and 4).
pub fn sample_positions(
    seed: &Seed,
    organisation: &str,
    from: &str,
    until: &str,
    population: usize,
    size: usize,
) -> Vec<usize> {
    let mut rng = generator(seed, organisation, from, until);
    let take = size.min(population);
    // The shuffled prefix, held sparsely: position -> what is there now, if moved.
    let mut moved: HashMap<usize, usize> = HashMap::with_capacity(take * 2);
    let mut drawn = Vec::with_capacity(take);
    for i in 0..take {
        let remaining = (population - i) as u64;
        // `below` answers less than `remaining`, which fits a usize.
        let j = i + below(&mut rng, remaining) as usize;
        let at_j = moved.get(&j).copied().unwrap_or(j);
        let at_i = moved.get(&i).copied().unwrap_or(i);
        moved.insert(j, at_i);
        drawn.push(at_j);
    }
    drawn.sort_unstable();
    drawn
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn seed(byte: u8) -> Seed {
        Seed([byte; 32])
    }

    #[test]
    fn the_same_seed_draws_the_same_sample_and_another_seed_another() {
        let a = sample_positions(
            &seed(1),
            "bollnas-kommun",
            "2026-05-01",
            "2026-05-31",
            10_000,
            50,
        );
        let again = sample_positions(
            &seed(1),
            "bollnas-kommun",
            "2026-05-01",
            "2026-05-31",
            10_000,
            50,
        );
        assert_eq!(a, again);
        assert_eq!(a.len(), 50);
        assert!(
            a.windows(2).all(|pair| pair[0] < pair[1]),
            "distinct, ascending"
        );
        assert!(a.iter().all(|position| *position < 10_000));
        let other = sample_positions(
            &seed(2),
            "bollnas-kommun",
            "2026-05-01",
            "2026-05-31",
            10_000,
            50,
        );
        assert_ne!(a, other);
        let other_period = sample_positions(
            &seed(1),
            "bollnas-kommun",
            "2026-06-01",
            "2026-06-30",
            10_000,
            50,
        );
        assert_ne!(a, other_period);
        let other_organisation = sample_positions(
            &seed(1),
            "ljusdals-kommun",
            "2026-05-01",
            "2026-05-31",
            10_000,
            50,
        );
        assert_ne!(a, other_organisation);
    }

    #[test]
    fn a_small_population_is_taken_whole_and_an_empty_one_gives_nothing() {
        assert_eq!(
            sample_positions(&seed(3), "o", "a", "b", 5, 50),
            vec![0, 1, 2, 3, 4]
        );
        assert!(sample_positions(&seed(3), "o", "a", "b", 0, 50).is_empty());
    }

    #[test]
    fn every_position_is_drawn_about_equally_often() {
        // 20,000 draws of 1 from 10: each position about 2,000 times.
        let mut counts = [0u32; 10];
        for round in 0..20_000u32 {
            let mut bytes = [0; 32];
            bytes[..4].copy_from_slice(&round.to_le_bytes());
            let drawn = sample_positions(&Seed(bytes), "o", "a", "b", 10, 1);
            counts[drawn[0]] += 1;
        }
        assert!(
            counts.iter().all(|count| (1700..2300).contains(count)),
            "{counts:?}"
        );
    }

    #[test]
    fn seeds_are_64_hex_digits() {
        let seed = Seed::random();
        assert_eq!(Seed::parse(&seed.to_hex()).unwrap(), seed);
        assert_eq!(Seed::parse(&seed.to_hex().to_uppercase()).unwrap(), seed);
        assert!(Seed::parse("abc").is_err());
        assert!(Seed::parse(&"g".repeat(64)).is_err());
        assert_ne!(Seed::random(), Seed::random());
    }
}
