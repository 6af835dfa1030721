//! A fixed-capacity ring buffer of past reservoir states, sized once so recording a state on
//! the step path never allocates.

use alloc::vec;
use alloc::vec::Vec;

use crate::scalar::Scalar;

/// The last `capacity` states of dimension `dim`; the oldest is overwritten when full.
#[derive(Clone, Debug)]
pub struct StateRing<T> {
    dim: usize,
    capacity: usize,
    data: Vec<T>,
    /// Slot the next push writes.
    head: usize,
    len: usize,
}

/// A ring buffer request that cannot be met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Capacity or dimension is zero, or their product overflows.
    BadSize { capacity: usize, dim: usize },
    /// A pushed state has the wrong length.
    DimensionMismatch { expected: usize, got: usize },
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadSize { capacity, dim } => write!(
                f,
                "state ring needs capacity >= 1 and dimension >= 1 that fit in memory, got {capacity} x {dim}"
            ),
            Self::DimensionMismatch { expected, got } => {
                write!(f, "state of {got} values pushed to a ring of dimension {expected}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RingError {}

impl<T: Scalar> StateRing<T> {
    pub fn new(capacity: usize, dim: usize) -> Result<Self, RingError> {
        let size = capacity
            .checked_mul(dim)
            .filter(|&s| s > 0 && s <= isize::MAX as usize / 8)
            .ok_or(RingError::BadSize { capacity, dim })?;
        Ok(Self {
            dim,
            capacity,
            data: vec![T::zero(); size],
            head: 0,
            len: 0,
        })
    }

    /// Copies `state` in, overwriting the oldest when full. No allocation.
    pub fn push(&mut self, state: &[T]) -> Result<(), RingError> {
        if state.len() != self.dim {
            return Err(RingError::DimensionMismatch {
                expected: self.dim,
                got: state.len(),
            });
        }
        let start = self.head * self.dim;
        self.data[start..start + self.dim].copy_from_slice(state);
        self.head = (self.head + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
        Ok(())
    }

    /// The state pushed `age` pushes ago (0 = the latest), if still held.
    pub fn get(&self, age: usize) -> Option<&[T]> {
        if age >= self.len {
            return None;
        }
        let slot = (self.head + self.capacity - 1 - age) % self.capacity;
        Some(&self.data[slot * self.dim..(slot + 1) * self.dim])
    }

    /// Held states, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &[T]> + '_ {
        (0..self.len).rev().filter_map(move |age| self.get(age))
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around_keeping_the_latest() {
        let mut ring = StateRing::<f32>::new(3, 2).unwrap();
        assert!(ring.is_empty());
        assert_eq!(ring.get(0), None);
        for t in 0..5 {
            ring.push(&[t as f32, -(t as f32)]).unwrap();
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.get(0), Some(&[4.0, -4.0][..]));
        assert_eq!(ring.get(1), Some(&[3.0, -3.0][..]));
        assert_eq!(ring.get(2), Some(&[2.0, -2.0][..]));
        assert_eq!(ring.get(3), None);
        let firsts: Vec<f32> = ring.iter().map(|s| s[0]).collect();
        assert_eq!(firsts, vec![2.0, 3.0, 4.0]);
        ring.clear();
        assert_eq!(ring.len(), 0);
    }

    #[test]
    fn rejects_bad_sizes_and_lengths() {
        assert_eq!(
            StateRing::<f64>::new(0, 4).unwrap_err(),
            RingError::BadSize {
                capacity: 0,
                dim: 4
            }
        );
        assert!(StateRing::<f64>::new(usize::MAX, 2).is_err());
        let mut ring = StateRing::<f64>::new(2, 3).unwrap();
        assert_eq!(
            ring.push(&[1.0]),
            Err(RingError::DimensionMismatch {
                expected: 3,
                got: 1
            })
        );
    }
}
