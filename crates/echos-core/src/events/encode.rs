//! Encoders: the events of one time bin to a fixed-size reservoir input vector (counts per
//! polarity on a pooled grid, exponentially decaying time surfaces, voxel grids), and in-place
//! filters (background-activity denoise, crop, downsample, polarity merge). Everything is sized
//! at creation; `encode` and `filter` allocate nothing and do bounded work per event (plus one
//! pass over the output vector).
//!
//! Where tonic 1.7.0 defines the same representation the definitions match it (tests pin its
//! output on the shared recordings): `ToFrame` (counts, P×H×W), `ToTimesurface` (the surface
//! at the bin's end, `exp(-(end - last)/tau)`, 0 where a cell never fired), `ToVoxelGrid` (times
//! normalised by the first and last event given, bilinear in time, polarity ±1, B×H×W) and
//! `Denoise` (keep an event when a 4-neighbour fired less than `filter_time` before it; every
//! pixel counts as having fired at t = 0).

use super::DvsEvent;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// A time bin `[start, end)` in µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeBin {
    pub start: u64,
    pub end: u64,
}

/// Why an encoder cannot be made or run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output vector has the wrong length.
    OutputLength { expected: usize, got: usize },
    /// A parameter is out of range (named).
    BadParameter { name: &'static str },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutputLength { expected, got } => write!(
                f,
                "the reservoir input vector has {got} entries; this encoder writes {expected}"
            ),
            Self::BadParameter { name } => write!(f, "encoder parameter `{name}` is out of range"),
        }
    }
}

/// Turns the events of one bin into a reservoir input vector.
pub trait EventEncoder {
    /// Length of the vector [`encode`](Self::encode) writes.
    fn output_len(&self) -> usize;
    /// Overwrite `out` with the encoding of `events` (those of `bin`, in time order). Events
    /// outside the encoder's sensor are ignored and counted ([`ignored`](Self::ignored)).
    fn encode(
        &mut self,
        events: &[DvsEvent],
        bin: TimeBin,
        out: &mut [f32],
    ) -> Result<(), EncodeError>;
    /// Forget state carried across bins (time surfaces keep the last time per cell).
    fn reset(&mut self) {}
    /// Events ignored so far because they lay outside the sensor.
    fn ignored(&self) -> u64;
}

/// `dvs_process_events(events, count, reservoir_input)` of the vision: the first `count`
/// events, as one bin from the first event's time to just after the last one's, through
/// `encoder` (e.g. [`EventCounts`], the default encoding).
pub fn dvs_process_events(
    encoder: &mut dyn EventEncoder,
    events: &[DvsEvent],
    count: usize,
    reservoir_input: &mut [f32],
) -> Result<(), EncodeError> {
    let events = &events[..count.min(events.len())];
    let bin = match (events.first(), events.last()) {
        (Some(a), Some(b)) => TimeBin {
            start: a.t,
            end: b.t.saturating_add(1),
        },
        _ => TimeBin { start: 0, end: 0 },
    };
    encoder.encode(events, bin, reservoir_input)
}

/// Spatial pooling: a `width` × `height` sensor onto a `gx` × `gy` grid; pixel x goes to cell
/// `x · gx / width` (with `width` a multiple of `gx` that is tonic's `Downsample` by
/// `1 / (width / gx)`). Lookup tables make it two loads per event.
#[derive(Clone, Debug)]
pub struct Grid {
    width: u16,
    height: u16,
    gx: u16,
    gy: u16,
    cx: Vec<u32>,
    cy: Vec<u32>,
}

impl Grid {
    pub fn new(width: u16, height: u16, gx: u16, gy: u16) -> Result<Self, EncodeError> {
        if width == 0 || height == 0 {
            return Err(EncodeError::BadParameter {
                name: "sensor size",
            });
        }
        if gx == 0 || gy == 0 || gx > width || gy > height {
            return Err(EncodeError::BadParameter { name: "grid size" });
        }
        let cx = (0..width as u32)
            .map(|x| x * gx as u32 / width as u32)
            .collect();
        let cy = (0..height as u32)
            .map(|y| (y * gy as u32 / height as u32) * gx as u32)
            .collect();
        Ok(Self {
            width,
            height,
            gx,
            gy,
            cx,
            cy,
        })
    }

    /// No pooling: one cell per pixel.
    pub fn full(width: u16, height: u16) -> Result<Self, EncodeError> {
        Self::new(width, height, width, height)
    }

    pub fn cells(&self) -> usize {
        self.gx as usize * self.gy as usize
    }

    pub fn size(&self) -> (u16, u16) {
        (self.gx, self.gy)
    }

    pub fn sensor(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// The cell of a pixel, or `None` outside the sensor.
    #[inline(always)]
    pub fn cell(&self, x: u16, y: u16) -> Option<usize> {
        let cx = self.cx.get(x as usize)?;
        let cy = self.cy.get(y as usize)?;
        Some((cx + cy) as usize)
    }
}

fn check_len(expected: usize, out: &[f32]) -> Result<(), EncodeError> {
    if out.len() != expected {
        return Err(EncodeError::OutputLength {
            expected,
            got: out.len(),
        });
    }
    Ok(())
}

/// Event counts per cell and polarity: `[p][cy][cx]` (tonic `ToFrame`), or one plane with
/// polarities merged.
#[derive(Clone, Debug)]
pub struct EventCounts {
    grid: Grid,
    planes: usize,
    ignored: u64,
}

impl EventCounts {
    /// `merge_polarity`: one plane counting both polarities; else OFF plane then ON plane.
    pub fn new(grid: Grid, merge_polarity: bool) -> Self {
        Self {
            grid,
            planes: if merge_polarity { 1 } else { 2 },
            ignored: 0,
        }
    }
}

impl EventEncoder for EventCounts {
    fn output_len(&self) -> usize {
        self.planes * self.grid.cells()
    }

    fn encode(
        &mut self,
        events: &[DvsEvent],
        _bin: TimeBin,
        out: &mut [f32],
    ) -> Result<(), EncodeError> {
        check_len(self.output_len(), out)?;
        out.fill(0.0);
        let plane = self.grid.cells();
        let split = self.planes == 2;
        for e in events {
            match self.grid.cell(e.x, e.y) {
                Some(c) => {
                    let i = if split && e.p != 0 { c + plane } else { c };
                    out[i] += 1.0;
                }
                None => self.ignored += 1,
            }
        }
        Ok(())
    }

    fn ignored(&self) -> u64 {
        self.ignored
    }
}

/// Exponentially decaying time surface per cell and polarity, `[p][cy][cx]`: at the bin's end,
/// `exp(-(end - last) / tau)` with `last` the time of the latest event in the cell (kept across
/// bins), 0 where none ever fired.
#[derive(Clone, Debug)]
pub struct TimeSurface {
    grid: Grid,
    planes: usize,
    tau: f32,
    last: Vec<u64>,
    ignored: u64,
}

const NEVER: u64 = u64::MAX;

impl TimeSurface {
    /// `tau` in µs (positive, finite).
    pub fn new(grid: Grid, merge_polarity: bool, tau: f32) -> Result<Self, EncodeError> {
        if !(tau.is_finite() && tau > 0.0) {
            return Err(EncodeError::BadParameter { name: "tau" });
        }
        let planes = if merge_polarity { 1 } else { 2 };
        let last = vec![NEVER; planes * grid.cells()];
        Ok(Self {
            grid,
            planes,
            tau,
            last,
            ignored: 0,
        })
    }
}

impl EventEncoder for TimeSurface {
    fn output_len(&self) -> usize {
        self.last.len()
    }

    fn encode(
        &mut self,
        events: &[DvsEvent],
        bin: TimeBin,
        out: &mut [f32],
    ) -> Result<(), EncodeError> {
        check_len(self.output_len(), out)?;
        let plane = self.grid.cells();
        let split = self.planes == 2;
        for e in events {
            match self.grid.cell(e.x, e.y) {
                Some(c) => {
                    let i = if split && e.p != 0 { c + plane } else { c };
                    self.last[i] = e.t;
                }
                None => self.ignored += 1,
            }
        }
        let inv_tau = 1.0 / self.tau as f64;
        for (o, &l) in out.iter_mut().zip(&self.last) {
            *o = if l == NEVER {
                0.0
            } else {
                let age = bin.end as f64 - l as f64;
                libm::exp(-age * inv_tau) as f32
            };
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.last.fill(NEVER);
    }

    fn ignored(&self) -> u64 {
        self.ignored
    }
}

/// Voxel grid `[b][cy][cx]` with `bins` time bins: each event adds its polarity (±1) to the two
/// bins around its normalised time `bins · (t - t_first) / (t_last - t_first)`, weighted
/// bilinearly (tonic `ToVoxelGrid`; as there, the last event lands on the edge and adds nothing;
/// a bin whose events all share one time puts them in bin 0).
#[derive(Clone, Debug)]
pub struct VoxelGrid {
    grid: Grid,
    bins: usize,
    ignored: u64,
}

impl VoxelGrid {
    pub fn new(grid: Grid, bins: usize) -> Result<Self, EncodeError> {
        if bins == 0 {
            return Err(EncodeError::BadParameter { name: "bins" });
        }
        Ok(Self {
            grid,
            bins,
            ignored: 0,
        })
    }
}

impl EventEncoder for VoxelGrid {
    fn output_len(&self) -> usize {
        self.bins * self.grid.cells()
    }

    fn encode(
        &mut self,
        events: &[DvsEvent],
        _bin: TimeBin,
        out: &mut [f32],
    ) -> Result<(), EncodeError> {
        check_len(self.output_len(), out)?;
        out.fill(0.0);
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let t0 = first.t;
        let span = last.t.saturating_sub(t0) as f64;
        let b = self.bins as f64;
        let plane = self.grid.cells();
        for e in events {
            let Some(c) = self.grid.cell(e.x, e.y) else {
                self.ignored += 1;
                continue;
            };
            let ts = if span > 0.0 {
                b * (e.t.saturating_sub(t0) as f64) / span
            } else {
                0.0
            };
            let ti = ts as usize;
            let dt = ts - ti as f64;
            let pol = if e.p != 0 { 1.0 } else { -1.0 };
            if ti < self.bins {
                out[ti * plane + c] += (pol * (1.0 - dt)) as f32;
            }
            if ti + 1 < self.bins {
                out[(ti + 1) * plane + c] += (pol * dt) as f32;
            }
        }
        Ok(())
    }

    fn ignored(&self) -> u64 {
        self.ignored
    }
}

/// An in-place event filter: keeps some events (possibly changed) at the front of the slice and
/// returns how many.
pub trait EventFilter {
    fn filter(&mut self, events: &mut [DvsEvent]) -> usize;
}

/// Background-activity denoise (tonic `Denoise`): keep an event when one of its 4 neighbours
/// fired less than `filter_time` µs before it (strictly: `last + filter_time > t`). Every pixel
/// starts as if it fired at t = 0; events outside the sensor are dropped.
#[derive(Clone, Debug)]
pub struct Denoise {
    width: u16,
    height: u16,
    filter_time: u64,
    last: Vec<u64>,
}

impl Denoise {
    pub fn new(width: u16, height: u16, filter_time: u64) -> Result<Self, EncodeError> {
        if width == 0 || height == 0 {
            return Err(EncodeError::BadParameter {
                name: "sensor size",
            });
        }
        Ok(Self {
            width,
            height,
            filter_time,
            last: vec![0; width as usize * height as usize],
        })
    }

    pub fn reset(&mut self) {
        self.last.fill(0);
    }
}

impl EventFilter for Denoise {
    fn filter(&mut self, events: &mut [DvsEvent]) -> usize {
        let (w, h) = (self.width as usize, self.height as usize);
        let ft = self.filter_time;
        let mut kept = 0;
        for i in 0..events.len() {
            let e = events[i];
            let (x, y) = (e.x as usize, e.y as usize);
            if x >= w || y >= h {
                continue;
            }
            let at = y * w + x;
            self.last[at] = e.t;
            let recent = |j: usize| self.last[j].saturating_add(ft) > e.t;
            let keep = (x > 0 && recent(at - 1))
                || (x + 1 < w && recent(at + 1))
                || (y > 0 && recent(at - w))
                || (y + 1 < h && recent(at + w));
            if keep {
                events[kept] = e;
                kept += 1;
            }
        }
        kept
    }
}

/// Keep events inside a `width` × `height` region at (`x0`, `y0`) and move them to the region's
/// origin (tonic's crop: x' = x − x0).
#[derive(Clone, Copy, Debug)]
pub struct Crop {
    pub x0: u16,
    pub y0: u16,
    pub width: u16,
    pub height: u16,
}

impl EventFilter for Crop {
    fn filter(&mut self, events: &mut [DvsEvent]) -> usize {
        let mut kept = 0;
        for i in 0..events.len() {
            let e = events[i];
            let dx = e.x.wrapping_sub(self.x0);
            let dy = e.y.wrapping_sub(self.y0);
            if e.x >= self.x0 && e.y >= self.y0 && dx < self.width && dy < self.height {
                events[kept] = DvsEvent { x: dx, y: dy, ..e };
                kept += 1;
            }
        }
        kept
    }
}

/// Integer spatial downsampling, x' = x / fx, y' = y / fy (tonic `Downsample` with
/// `spatial_factor = 1/f`); keeps every event.
#[derive(Clone, Copy, Debug)]
pub struct Downsample {
    fx: u16,
    fy: u16,
}

impl Downsample {
    pub fn new(fx: u16, fy: u16) -> Result<Self, EncodeError> {
        if fx == 0 || fy == 0 {
            return Err(EncodeError::BadParameter { name: "factor" });
        }
        Ok(Self { fx, fy })
    }
}

impl EventFilter for Downsample {
    fn filter(&mut self, events: &mut [DvsEvent]) -> usize {
        for e in events.iter_mut() {
            e.x /= self.fx;
            e.y /= self.fy;
        }
        events.len()
    }
}

/// Every event becomes polarity 0 (tonic `MergePolarities`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MergePolarity;

impl EventFilter for MergePolarity {
    fn filter(&mut self, events: &mut [DvsEvent]) -> usize {
        for e in events.iter_mut() {
            e.p = 0;
        }
        events.len()
    }
}

/// Consecutive fixed windows `[start + i·window, start + (i+1)·window)` over time-sorted
/// events, `count` of them: each item is the window and its events (found by binary search, as
/// tonic's slicers do with `searchsorted`).
#[derive(Clone, Debug)]
pub struct TimeWindows<'a> {
    events: &'a [DvsEvent],
    start: u64,
    window: u64,
    next: u64,
    count: u64,
}

impl<'a> TimeWindows<'a> {
    pub fn new(events: &'a [DvsEvent], start: u64, window: u64, count: u64) -> Self {
        Self {
            events,
            start,
            window: window.max(1),
            next: 0,
            count,
        }
    }

    /// tonic's `slice_events_by_time` without incomplete windows: from the first event, as
    /// many whole windows as fit before the last event (at least one).
    pub fn like_tonic(events: &'a [DvsEvent], window: u64) -> Self {
        let (start, count) = match (events.first(), events.last()) {
            (Some(a), Some(b)) => {
                let duration = b.t - a.t;
                let n = if duration >= window {
                    (duration - window) / window.max(1) + 1
                } else {
                    1
                };
                (a.t, n)
            }
            _ => (0, 0),
        };
        Self::new(events, start, window, count)
    }
}

impl<'a> Iterator for TimeWindows<'a> {
    type Item = (TimeBin, &'a [DvsEvent]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let s = self
            .start
            .saturating_add(self.next.saturating_mul(self.window));
        let e = s.saturating_add(self.window);
        self.next += 1;
        let a = self.events.partition_point(|ev| ev.t < s);
        let b = self.events.partition_point(|ev| ev.t < e);
        Some((TimeBin { start: s, end: e }, &self.events[a..b.max(a)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pool_and_split_polarity() {
        let grid = Grid::new(8, 4, 4, 2).unwrap();
        let mut enc = EventCounts::new(grid, false);
        let evs = [
            DvsEvent::new(0, 0, 0, 0),
            DvsEvent::new(1, 1, 1, 0),
            DvsEvent::new(2, 7, 3, 1),
            DvsEvent::new(3, 9, 0, 1),
        ];
        let mut out = [0f32; 16];
        dvs_process_events(&mut enc, &evs, 4, &mut out).unwrap();
        assert_eq!(out[0], 2.0);
        assert_eq!(out[8 + 7], 1.0);
        assert_eq!(out.iter().sum::<f32>(), 3.0);
        assert_eq!(enc.ignored(), 1);
        assert_eq!(
            enc.encode(&evs, TimeBin { start: 0, end: 1 }, &mut [0.0; 3]),
            Err(EncodeError::OutputLength {
                expected: 16,
                got: 3
            })
        );
    }

    #[test]
    fn time_surface_decays_and_persists() {
        let mut ts = TimeSurface::new(Grid::full(2, 1).unwrap(), true, 100.0).unwrap();
        let mut out = [0f32; 2];
        ts.encode(
            &[DvsEvent::new(50, 0, 0, 1)],
            TimeBin { start: 0, end: 150 },
            &mut out,
        )
        .unwrap();
        assert!((out[0] - (-1.0f32).exp()).abs() < 1e-6);
        assert_eq!(out[1], 0.0);
        ts.encode(
            &[],
            TimeBin {
                start: 150,
                end: 250,
            },
            &mut out,
        )
        .unwrap();
        assert!((out[0] - (-2.0f32).exp()).abs() < 1e-6);
        assert!(TimeSurface::new(Grid::full(2, 1).unwrap(), true, 0.0).is_err());
    }

    #[test]
    fn voxel_grid_bilinear() {
        let mut vg = VoxelGrid::new(Grid::full(1, 1).unwrap(), 2).unwrap();
        let evs = [
            DvsEvent::new(0, 0, 0, 1),
            DvsEvent::new(25, 0, 0, 0),
            DvsEvent::new(100, 0, 0, 1),
        ];
        let mut out = [0f32; 2];
        vg.encode(&evs, TimeBin { start: 0, end: 101 }, &mut out)
            .unwrap();
        // t=0 -> bin 0 weight 1; t=25 -> ts 0.5: -0.5 to bins 0 and 1; t=100 -> ts 2: nothing
        assert_eq!(out, [0.5, -0.5]);
    }

    #[test]
    fn filters() {
        let mut evs = [
            DvsEvent::new(20_000, 5, 5, 1),
            DvsEvent::new(20_001, 6, 5, 1), // neighbour fired 1 µs ago: kept
            DvsEvent::new(50_000, 0, 0, 0), // isolated
            DvsEvent::new(50_002, 9, 9, 0),
        ];
        let mut d = Denoise::new(10, 10, 1000).unwrap();
        let k = d.filter(&mut evs);
        assert_eq!(k, 1);
        assert_eq!(evs[0].x, 6);

        let mut evs = [DvsEvent::new(0, 5, 5, 1), DvsEvent::new(1, 2, 9, 0)];
        let k = Crop {
            x0: 4,
            y0: 4,
            width: 2,
            height: 2,
        }
        .filter(&mut evs);
        assert_eq!((k, evs[0].x, evs[0].y), (1, 1, 1));
        let mut evs = [DvsEvent::new(0, 7, 9, 1)];
        Downsample::new(2, 4).unwrap().filter(&mut evs);
        MergePolarity.filter(&mut evs);
        assert_eq!(evs[0], DvsEvent::new(0, 3, 2, 0));
    }

    #[test]
    fn windows_like_tonic() {
        let evs: Vec<DvsEvent> = [0u64, 150, 299, 300, 450]
            .iter()
            .map(|&t| DvsEvent::new(t, 0, 0, 0))
            .collect();
        let w: Vec<(TimeBin, usize)> = TimeWindows::like_tonic(&evs, 100)
            .map(|(b, e)| (b, e.len()))
            .collect();
        assert_eq!(w.len(), 4);
        assert_eq!(
            w[1],
            (
                TimeBin {
                    start: 100,
                    end: 200
                },
                1
            )
        );
        assert_eq!(w[2].1, 1);
        assert_eq!(w[3].1, 1);
    }
}
