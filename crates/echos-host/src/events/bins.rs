//! A recording as reservoir input: consecutive time bins of `bin_us` from the first event to
//! the bin holding the last one (empty bins included, so rows are evenly spaced in time), each
//! bin through one of the engine's encoders (counts, time surface, voxel grid) into one row.
//! The CLI's `echos events encode` and Python's `echos.events.counts/timesurface/voxel` share
//! this, so both give the same matrix.

use echos_core::events::{
    DvsEvent, EncodeError, EventCounts, EventEncoder, Grid, TimeBin, TimeSurface, VoxelGrid,
};

/// Which encoder makes each row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Representation {
    /// Events per cell and polarity (`[p][cy][cx]`, OFF plane first; tonic `ToFrame`).
    Counts,
    /// `exp(-(bin end - last event) / tau)` per cell and polarity (tonic `ToTimesurface`).
    TimeSurface { tau_us: f32 },
    /// `bins` sub-bins per bin, bilinear in time, polarity ±1 (tonic `ToVoxelGrid`).
    Voxel { bins: usize },
}

/// How events become rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinSpec {
    pub representation: Representation,
    /// Bin length in µs (≥ 1).
    pub bin_us: u64,
    /// Sensor size (events outside it are ignored and counted).
    pub width: u16,
    pub height: u16,
    /// Pooled grid `gx × gy` (the sensor size for no pooling).
    pub grid: (u16, u16),
    /// One plane for both polarities (counts and time surfaces).
    pub merge_polarity: bool,
}

/// Refuse outputs beyond this many values (2 GiB of float64): a tiny bin over a long
/// recording, or no pooling on a large sensor, would otherwise exhaust memory.
pub const MAX_VALUES: usize = 1 << 28;

/// Why a recording cannot be binned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinError {
    #[error("{0}")]
    Encoder(String),
    #[error("the bin length must be at least 1 µs")]
    BinLength,
    #[error("{rows} bins × {cols} values is more than {MAX_VALUES} values; use a longer bin or a coarser grid")]
    TooLarge { rows: u64, cols: usize },
}

impl From<EncodeError> for BinError {
    fn from(e: EncodeError) -> Self {
        Self::Encoder(e.to_string())
    }
}

/// The binned encoding: `rows` × `cols` values, row-major, and the first bin's start.
#[derive(Clone, Debug, PartialEq)]
pub struct Binned {
    pub rows: usize,
    pub cols: usize,
    pub start_us: u64,
    pub values: Vec<f64>,
    /// Events the encoder ignored (outside the sensor).
    pub ignored: u64,
}

/// The engine encoder `spec` names (the one `encode` runs per bin; the hosted runtime's
/// event source runs it per period).
pub fn encoder(spec: &BinSpec) -> Result<Box<dyn EventEncoder + Send>, BinError> {
    let grid = Grid::new(spec.width, spec.height, spec.grid.0, spec.grid.1)?;
    Ok(match spec.representation {
        Representation::Counts => Box::new(EventCounts::new(grid, spec.merge_polarity)),
        Representation::TimeSurface { tau_us } => {
            Box::new(TimeSurface::new(grid, spec.merge_polarity, tau_us)?)
        }
        Representation::Voxel { bins } => Box::new(VoxelGrid::new(grid, bins)?),
    })
}

/// Encode time-sorted `events` into one row per bin (no events: no rows).
pub fn encode(events: &[DvsEvent], spec: &BinSpec) -> Result<Binned, BinError> {
    if spec.bin_us == 0 {
        return Err(BinError::BinLength);
    }
    let mut enc = encoder(spec)?;
    let cols = enc.output_len();
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(Binned {
            rows: 0,
            cols,
            start_us: 0,
            values: Vec::new(),
            ignored: 0,
        });
    };
    let start = first.t;
    let span = last.t.saturating_sub(start);
    let rows = span / spec.bin_us + 1;
    if rows.saturating_mul(cols as u64) > MAX_VALUES as u64 {
        return Err(BinError::TooLarge { rows, cols });
    }
    let rows = rows as usize;
    let mut values = Vec::with_capacity(rows * cols);
    let mut row = vec![0f32; cols];
    let mut from = 0;
    for r in 0..rows {
        let bin = TimeBin {
            start: start.saturating_add(r as u64 * spec.bin_us),
            end: start.saturating_add((r as u64 + 1) * spec.bin_us),
        };
        let n = events[from..].partition_point(|e| e.t < bin.end);
        enc.encode(&events[from..from + n], bin, &mut row)?;
        from += n;
        values.extend(row.iter().map(|&v| v as f64));
    }
    Ok(Binned {
        rows,
        cols,
        start_us: start,
        values,
        ignored: enc.ignored(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(representation: Representation) -> BinSpec {
        BinSpec {
            representation,
            bin_us: 10,
            width: 4,
            height: 2,
            grid: (2, 1),
            merge_polarity: false,
        }
    }

    #[test]
    fn counts_per_bin_with_empty_bins_between() {
        let ev = [
            DvsEvent::new(100, 0, 0, 1),
            DvsEvent::new(105, 3, 1, 0),
            DvsEvent::new(131, 2, 0, 1),
            DvsEvent::new(131, 9, 0, 1),
        ];
        let b = encode(&ev, &spec(Representation::Counts)).unwrap();
        assert_eq!((b.rows, b.cols, b.start_us, b.ignored), (4, 4, 100, 1));
        // columns: OFF left, OFF right, ON left, ON right
        assert_eq!(
            b.values,
            vec![
                0., 1., 1., 0., // [100, 110)
                0., 0., 0., 0., // [110, 120)
                0., 0., 0., 0., // [120, 130)
                0., 0., 0., 1., // [130, 140)
            ]
        );
    }

    #[test]
    fn time_surface_decays_across_empty_bins_and_voxels_split_in_time() {
        let ev = [DvsEvent::new(0, 0, 0, 1), DvsEvent::new(25, 0, 0, 1)];
        let b = encode(&ev, &spec(Representation::TimeSurface { tau_us: 10.0 })).unwrap();
        assert_eq!(b.rows, 3);
        let on_left = |r: usize| b.values[r * 4 + 2];
        assert!((on_left(0) - (-1.0f64).exp()).abs() < 1e-6);
        assert!((on_left(1) - (-2.0f64).exp()).abs() < 1e-6);
        assert!((on_left(2) - (-0.5f64).exp()).abs() < 1e-6);
        let v = encode(&ev, &spec(Representation::Voxel { bins: 2 })).unwrap();
        assert_eq!((v.rows, v.cols), (3, 4));
    }

    #[test]
    fn refuses_what_would_not_fit() {
        let ev = [
            DvsEvent::new(0, 0, 0, 1),
            DvsEvent::new(u64::MAX / 2, 0, 0, 1),
        ];
        let mut s = spec(Representation::Counts);
        s.bin_us = 1;
        assert!(matches!(encode(&ev, &s), Err(BinError::TooLarge { .. })));
        s.bin_us = 0;
        assert_eq!(encode(&ev, &s), Err(BinError::BinLength));
        s.bin_us = 5;
        s.grid = (9, 1);
        assert!(matches!(encode(&ev, &s), Err(BinError::Encoder(_))));
        assert_eq!(encode(&[], &spec(Representation::Counts)).unwrap().rows, 0);
    }
}
