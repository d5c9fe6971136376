//! One photograph's scene: the subject (skin, body shape, lesions, hairs) in body millimetres,
//! the camera that frames it (view, lighting, blur, colour cast, sensor noise), and the
//! per-pixel shading that turns both into 8-bit RGB rows.
//!
//! Per-pixel work is kept cheap: lattice value noise instead of gradient noise, lesions and hairs
//! looked up through a coarse tile index, lighting from analytic slopes, and a tone curve in a
//! lookup table. Every pixel is a pure function of its coordinates, so rows can be rendered in
//! any order, on any number of threads, with identical results.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::lesion::{subject_lesions, Lesion, LesionContext, Surface};
use super::noise::{
    bump, clamp01, distance_to_whole, hash, jittered_dot, mix, rotation, smoothstep, Lattice, NoiseFrame,
    Vec2,
};
use super::{BodyRegion, PhotoDefect, PhotoSpec};
use dermdesk_protocol::{PhotoSource, PhotoView};

/// Skin colours for Fitzpatrick types I to VI, as sRGB bytes.
const SKIN_TONES: [[u8; 3]; 6] =
    [[240, 212, 200], [228, 190, 170], [204, 160, 134], [170, 124, 96], [124, 86, 66], [82, 58, 47]];

/// Linear reflectance from an sRGB byte, with gamma 2.25 (x^2 times the fourth root of x):
/// close to sRGB, and exact arithmetic on every platform.
fn linear(byte: u8) -> f32 {
    let x = byte as f32 / 255.0;
    x * x * x.sqrt().sqrt()
}

fn linear_rgb(bytes: [u8; 3]) -> [f32; 3] {
    [linear(bytes[0]), linear(bytes[1]), linear(bytes[2])]
}

/// Items (lesions or hairs) binned into square tiles of the body, so a pixel only looks at the
/// few that can touch it.
struct TileIndex {
    origin: Vec2,
    tile_mm: f32,
    columns: i32,
    rows: i32,
    starts: Vec<u32>,
    items: Vec<u32>,
}

impl TileIndex {
    /// `bounds` gives each item's axis-aligned box (minimum and maximum corners).
    fn new(bounds: &[(Vec2, Vec2)], half_extent_mm: f32, tile_mm: f32) -> TileIndex {
        let columns = (2.0 * half_extent_mm / tile_mm) as i32;
        let rows = columns;
        let origin = Vec2::new(-half_extent_mm, -half_extent_mm);
        let tile_range = |low: f32, high: f32, origin: f32, count: i32| {
            let first = (((low - origin) / tile_mm) as i32).max(0);
            let last = (((high - origin) / tile_mm) as i32).min(count - 1);
            first..=last
        };
        let mut per_tile: Vec<Vec<u32>> = vec![Vec::new(); (columns * rows) as usize];
        for (item, (minimum, maximum)) in bounds.iter().enumerate() {
            if maximum.x < origin.x || maximum.y < origin.y || minimum.x > -origin.x || minimum.y > -origin.y
            {
                continue;
            }
            for row in tile_range(minimum.y, maximum.y, origin.y, rows) {
                for column in tile_range(minimum.x, maximum.x, origin.x, columns) {
                    per_tile[(row * columns + column) as usize].push(item as u32);
                }
            }
        }
        let mut starts = Vec::with_capacity(per_tile.len() + 1);
        let mut items = Vec::new();
        for tile in per_tile {
            starts.push(items.len() as u32);
            items.extend(tile);
        }
        starts.push(items.len() as u32);
        TileIndex { origin, tile_mm, columns, rows, starts, items }
    }

    #[inline]
    fn items_at(&self, point: Vec2) -> &[u32] {
        let column = ((point.x - self.origin.x) / self.tile_mm) as i32;
        let row = ((point.y - self.origin.y) / self.tile_mm) as i32;
        if point.x < self.origin.x || point.y < self.origin.y || column >= self.columns || row >= self.rows {
            return &[];
        }
        let tile = (row * self.columns + column) as usize;
        &self.items[self.starts[tile] as usize..self.starts[tile + 1] as usize]
    }
}

/// A hair lying on the skin: three straight pieces following a gentle curve, thickest at the
/// root.
struct Hair {
    points: [Vec2; 4],
    half_width: f32,
    colour: [f32; 3],
    opacity: f32,
}

/// The body part as a cylinder along body x: a limb, or a very wide one for the back.
struct BodyShape {
    axis_offset: f32,
    half_width: f32,
    /// Change of half width per millimetre along the axis (a forearm narrows to the wrist).
    taper: f32,
    /// A dermatoscope presses the skin flat against its glass.
    flattened: bool,
    /// For the head: the surface also curves away along the axis (an ellipsoid, not a
    /// cylinder), with this half-length.
    half_length: Option<f32>,
}

/// A paper measuring scale stuck to the skin near the bottom of a close-up, as clinics do.
struct Ruler {
    origin: Vec2,
    along: Vec2,
    across: Vec2,
    width: f32,
    length: f32,
}

/// Lighting and camera response, in display axes (x right, y down, z towards the camera).
struct Camera {
    /// Rotation from body axes to display axes, for slopes.
    to_display: (f32, f32),
    light: [f32; 3],
    /// 1 / light z: diffuse light is scaled so that flat skin facing the camera gets 1.
    inverse_light_height: f32,
    ambient: f32,
    specular: f32,
    /// Brightness change across the frame, per unit of view coordinate.
    gradient: Vec2,
    vignette: f32,
    /// Squared distance from the centre to a corner, in view units.
    corner_squared: f32,
    /// Channel gains: exposure, white balance, colour cast.
    gains: [f32; 3],
    saturation: f32,
    noise_luma: f32,
    noise_chroma: f32,
    noise_seed: u32,
    /// Dermatoscope field radius in view units, if this is a dermoscopic image.
    dermoscope_radius: Option<f32>,
}

pub(crate) struct Scene {
    width: u32,
    /// Maps a stored pixel's centre to body millimetres and to view coordinates
    /// (display-centred, half the display's shorter side = 1).
    body_origin: Vec2,
    body_step_x: Vec2,
    body_step_y: Vec2,
    view_origin: Vec2,
    view_step_x: Vec2,
    view_step_y: Vec2,
    soft_mm: f32,
    lattice: Lattice,
    skin: [f32; 3],
    inflamed: [f32; 3],
    darkness: f32,
    redness: f32,
    skin_gloss: f32,
    shape: BodyShape,
    background: [f32; 3],
    lesions: Vec<Lesion>,
    lesion_tiles: TileIndex,
    hairs: Vec<Hair>,
    hair_tiles: TileIndex,
    ruler: Option<Ruler>,
    camera: Camera,
    mottle_large: NoiseFrame,
    mottle_small: NoiseFrame,
    pigment: NoiseFrame,
    grain_medium: NoiseFrame,
    grain_fine: NoiseFrame,
    /// Skin furrows: three families of wavy parallel lines (direction, spacing in mm) whose
    /// crossings make the rhomboid pattern of skin surface.
    furrows: [(Vec2, f32); 3],
    furrow_warp_a: NoiseFrame,
    furrow_warp_b: NoiseFrame,
    furrow_strength: NoiseFrame,
    /// Large, gentle undulations of the body surface (muscle, bone), for shading.
    contour_a: NoiseFrame,
    contour_b: NoiseFrame,
    /// Wobble of the limb's outline, so silhouettes are not ruled lines.
    outline_wobble: NoiseFrame,
    background_frame: NoiseFrame,
    background_folds: NoiseFrame,
    pore_cell_mm: f32,
    detail_fine: f32,
    detail_furrows: f32,
    detail_pores: f32,
    pore_seed: u32,
    /// Columns between samples of the coarse and medium noise fields (see `Interpolated`).
    coarse_step: usize,
    medium_step: usize,
    tone: Box<[u8; TONE_ENTRIES]>,
}

const COARSE_FIELDS: usize = 9;
const MEDIUM_FIELDS: usize = 4;

/// The slowly varying noise at one pixel, interpolated from sparse samples.
struct Fields {
    coarse: [f32; COARSE_FIELDS],
    medium: [f32; MEDIUM_FIELDS],
}

/// Noise that changes little over a few pixels is sampled every `step` columns and blended
/// linearly in between: the same picture for a fraction of the work. The samples depend only
/// on the column, so the result does not depend on how rows are split between threads.
struct Interpolated<F, const N: usize> {
    step: usize,
    sample: F,
    start: [f32; N],
    end: [f32; N],
}

impl<F: Fn(usize) -> [f32; N], const N: usize> Interpolated<F, N> {
    fn new(step: usize, sample: F) -> Self {
        let start = sample(0);
        let end = if step > 1 { sample(step) } else { start };
        Interpolated { step, sample, start, end }
    }

    #[inline]
    fn at(&mut self, column: usize) -> [f32; N] {
        if self.step <= 1 {
            return (self.sample)(column);
        }
        let offset = column % self.step;
        if offset == 0 && column > 0 {
            self.start = self.end;
            self.end = (self.sample)(column + self.step);
        }
        if offset == 0 {
            return self.start;
        }
        let amount = offset as f32 / self.step as f32;
        let mut blended = self.start;
        for (value, end) in blended.iter_mut().zip(self.end) {
            *value += (end - *value) * amount;
        }
        blended
    }
}

/// The tone table covers linear light from 0 to `TONE_RANGE` in equal steps: fine enough that
/// even the darkest step is under three code values (and sensor noise dithers it), and a
/// lookup needs no square root.
const TONE_ENTRIES: usize = 65_536;
const TONE_RANGE: f32 = 2.25;

/// Linear light to sRGB-like bytes with a soft shoulder, indexed by sqrt(light).
fn tone_table() -> Box<[u8; TONE_ENTRIES]> {
    // The byte each threshold starts: the inverse of `linear`, found by counting, so no
    // fractional power is needed.
    let thresholds: Vec<f32> = (0..255).map(|code| linear_fraction((code as f32 + 0.5) / 255.0)).collect();
    let mut table: Box<[u8; TONE_ENTRIES]> =
        vec![0u8; TONE_ENTRIES].into_boxed_slice().try_into().expect("the table has TONE_ENTRIES entries");
    for (index, entry) in table.iter_mut().enumerate() {
        let light = index as f32 / (TONE_ENTRIES - 1) as f32 * TONE_RANGE;
        // Highlights roll off instead of clipping hard, as phone cameras do.
        let knee = 0.78;
        let toned =
            if light < knee { light } else { knee + (light - knee) / (1.0 + (light - knee) / (1.05 - knee)) };
        *entry = thresholds.partition_point(|&threshold| threshold < toned) as u8;
    }
    table
}

fn linear_fraction(x: f32) -> f32 {
    x * x * x.sqrt().sqrt()
}

impl Scene {
    /// The scene for `spec`, shaded onto a raster of `raster` pixels (the stored size, or
    /// smaller when the photo is upsampled afterwards), stored the same way up as the photo.
    pub fn new(spec: &PhotoSpec, raster: (u32, u32)) -> Scene {
        let mut subject = ChaCha8Rng::seed_from_u64(spec.subject_seed);
        let mut shot = ChaCha8Rng::seed_from_u64(spec.seed);
        let lattice = Lattice::new(subject.gen());

        // --- The subject: skin, body shape, lesions, hairs (the same in every photo of them).
        let tone_index = (spec.skin_type.clamp(1, 6) - 1) as usize;
        let darkness = tone_index as f32 / 5.0;
        let variation = subject.gen_range(0.94..1.06);
        let skin = linear_rgb(SKIN_TONES[tone_index]).map(|channel| channel * variation);
        let red = [0.56, 0.13, 0.11];
        let violaceous = [skin[0] * 0.62, skin[1] * 0.48, skin[2] * 0.58];
        let inflamed = mix(red, violaceous, (darkness * 1.3).min(1.0));
        let redness = subject.gen_range(0.1..0.4) * (1.0 - darkness * 0.7);
        let (half_width, taper, gloss, pore_cell) = match spec.region {
            BodyRegion::Forearm => (subject.gen_range(32.0..40.0), -0.06, 0.1, 0.5),
            BodyRegion::UpperArm => (subject.gen_range(44.0..54.0), -0.04, 0.08, 0.5),
            BodyRegion::Hand => (subject.gen_range(40.0..46.0), 0.0, 0.12, 0.45),
            BodyRegion::Leg => (subject.gen_range(45.0..60.0), -0.08, 0.12, 0.55),
            BodyRegion::Back => (subject.gen_range(160.0..190.0), 0.0, 0.12, 0.6),
            BodyRegion::Chest => (subject.gen_range(145.0..170.0), 0.0, 0.12, 0.55),
            BodyRegion::Face => (subject.gen_range(60.0..70.0), 0.0, 0.28, 0.35),
            BodyRegion::Scalp => (subject.gen_range(70.0..80.0), 0.0, 0.4, 0.45),
        };
        let offset_limit = if spec.region == BodyRegion::Face { 0.05 } else { 0.45 };
        let axis_offset = subject.gen_range(-offset_limit..offset_limit) * half_width;
        let lesions = subject_lesions(spec.finding, spec.stage, spec.region, spec.skin_type, &mut subject);
        let hairs = subject_hairs(spec, &mut subject);
        // Couch paper, a magnolia wall, a navy top, a grey drape.
        let background_choices =
            [[0.62, 0.72, 0.74], [0.8, 0.77, 0.7], [0.24, 0.28, 0.38], [0.55, 0.55, 0.56]];
        let background = linear_rgb(
            background_choices[subject.gen_range(0..background_choices.len())].map(|c| (c * 255.0) as u8),
        );

        // --- The camera: framing, lighting and response for this one photo.
        let stored = (raster.0 as f32, raster.1 as f32);
        let portrait = (5..=8).contains(&spec.exif_orientation);
        let display = if portrait { (stored.1, stored.0) } else { stored };
        let short_side = display.0.min(display.1);
        let lesion_radius = lesions.last().map_or(4.0, |lesion| lesion.radius);
        let (field_mm, centre, angle) =
            frame(spec, &mut shot, half_width, axis_offset, lesion_radius, display);
        let pixel_mm = field_mm / short_side;
        let blur_pixels = match spec.source {
            PhotoSource::GpPractice => shot.gen_range(0.1..0.4),
            PhotoSource::PatientLink => shot.gen_range(1.2..2.0),
        };
        let soft_mm = pixel_mm * (0.7 + blur_pixels);
        let to_body = rotation(angle);
        let to_display = rotation(-angle);

        // Stored pixel centre -> display pixel centre -> view units and body millimetres.
        // Orientation 6 means a viewer turns the stored image 90 degrees clockwise: stored
        // (x, y) is shown at display (height - 1 - y, x).
        let (display_origin, display_step_x, display_step_y) = if portrait {
            (Vec2::new(stored.1 - 0.5, 0.5), Vec2::new(0.0, 1.0), Vec2::new(-1.0, 0.0))
        } else {
            (Vec2::new(0.5, 0.5), Vec2::new(1.0, 0.0), Vec2::new(0.0, 1.0))
        };
        let display_centre = Vec2::new(display.0 / 2.0, display.1 / 2.0);
        let view_scale = 2.0 / short_side;
        let view_origin = (display_origin - display_centre) * view_scale;
        let view_step_x = display_step_x * view_scale;
        let view_step_y = display_step_y * view_scale;
        let body_origin = centre + ((display_origin - display_centre) * pixel_mm).rotate(to_body);
        let body_step_x = (display_step_x * pixel_mm).rotate(to_body);
        let body_step_y = (display_step_y * pixel_mm).rotate(to_body);

        let mut camera = camera(spec, &mut shot, skin, display, to_display);
        // A deliberate exposure fault, defined by what it does to the skin rather than by a
        // number of stops (two stops more light on type VI skin is often a better photo):
        // too dark puts the skin near black (~45 of 255), too bright at the tone curve's
        // shoulder (~250), whatever the skin type.
        let skin_light = (0.2126 * skin[0] + 0.7152 * skin[1] + 0.0722 * skin[2]) * camera.gains[1];
        let target = match spec.defect {
            PhotoDefect::Underexposed => Some(0.02),
            PhotoDefect::Overexposed => Some(1.5),
            PhotoDefect::None | PhotoDefect::OutOfFocus => None,
        };
        if let Some(target) = target {
            let factor = target / skin_light;
            camera.gains = camera.gains.map(|gain| gain * factor);
        }
        let ruler =
            (spec.view == PhotoView::CloseUp && spec.source == PhotoSource::GpPractice && shot.gen_bool(0.8))
                .then(|| {
                    let tilt = shot.gen_range(-0.06..0.06);
                    let direction = Vec2::new(1.0, tilt).rotate(to_body);
                    let along = direction * (1.0 / direction.length());
                    let half_height = display.1 / 2.0 * pixel_mm;
                    let half_width_mm = display.0 / 2.0 * pixel_mm;
                    let width = (field_mm * 0.12).clamp(8.0, 16.0);
                    let top = half_height - width - field_mm * 0.04;
                    let start = Vec2::new(-half_width_mm * 0.85, top).rotate(to_body);
                    Ruler {
                        origin: centre + start,
                        along,
                        across: along.perpendicular(),
                        width,
                        length: half_width_mm * 1.7,
                    }
                });

        let lesion_bounds: Vec<(Vec2, Vec2)> = lesions
            .iter()
            .map(|lesion| {
                let reach = Vec2::new(lesion.reach, lesion.reach);
                (lesion.centre - reach, lesion.centre + reach)
            })
            .collect();
        let hair_bounds: Vec<(Vec2, Vec2)> = hairs
            .iter()
            .map(|hair| {
                let pad = hair.half_width + 0.2;
                let xs = hair.points.map(|point| point.x);
                let ys = hair.points.map(|point| point.y);
                let minimum = Vec2::new(
                    xs.iter().copied().fold(f32::MAX, f32::min) - pad,
                    ys.iter().copied().fold(f32::MAX, f32::min) - pad,
                );
                let maximum = Vec2::new(
                    xs.iter().copied().fold(f32::MIN, f32::max) + pad,
                    ys.iter().copied().fold(f32::MIN, f32::max) + pad,
                );
                (minimum, maximum)
            })
            .collect();
        let detail = |feature_mm: f32| smoothstep(1.0, 3.0, feature_mm / soft_mm);
        let furrow_angle = subject.gen_range(0.2..0.8);
        Scene {
            width: raster.0,
            body_origin,
            body_step_x,
            body_step_y,
            view_origin,
            view_step_x,
            view_step_y,
            soft_mm,
            lattice,
            skin,
            inflamed,
            darkness,
            redness,
            skin_gloss: gloss,
            shape: BodyShape {
                axis_offset,
                half_width,
                taper,
                flattened: spec.view == PhotoView::Dermoscopic,
                half_length: match spec.region {
                    BodyRegion::Face => Some(half_width * 2.0),
                    BodyRegion::Scalp => Some(half_width * 1.35),
                    _ => None,
                },
            },
            background,
            lesion_tiles: TileIndex::new(&lesion_bounds, 300.0, 4.0),
            lesions,
            hair_tiles: TileIndex::new(&hair_bounds, 300.0, 4.0),
            hairs,
            ruler,
            camera,
            mottle_large: NoiseFrame::new(28.0, 1.0, 0.3, 1),
            mottle_small: NoiseFrame::new(7.0, 1.0, 1.1, 2),
            pigment: NoiseFrame::new(4.0, 1.0, 2.3, 3),
            grain_medium: NoiseFrame::new(1.1, 1.0, 0.7, 4),
            grain_fine: NoiseFrame::new(0.16, 1.0, 1.9, 5),
            furrows: [0.0, 1.05, 2.15].map(|turn| {
                let (cosine, sine) = rotation(furrow_angle + turn);
                (Vec2::new(cosine, sine), subject.gen_range(0.4..0.75))
            }),
            furrow_warp_a: NoiseFrame::new(1.3, 1.0, 0.4, 6),
            furrow_warp_b: NoiseFrame::new(1.1, 1.0, 1.3, 7),
            furrow_strength: NoiseFrame::new(2.5, 1.0, 2.0, 10),
            contour_a: NoiseFrame::new(55.0, 1.0, 0.2, 11),
            contour_b: NoiseFrame::new(55.0, 1.0, 1.2, 12),
            outline_wobble: NoiseFrame::new(70.0, 1.0, 0.0, 13),
            background_frame: NoiseFrame::new(45.0, 1.0, 0.0, 8),
            background_folds: NoiseFrame::new(30.0, 6.0, subject.gen_range(0.0..3.0), 14),
            pore_cell_mm: pore_cell,
            detail_fine: detail(0.2),
            detail_furrows: detail(0.06),
            detail_pores: detail(0.08),
            pore_seed: subject.gen(),
            // A sample every sixth of the smallest feature keeps the blend invisible.
            coarse_step: ((4.0 / pixel_mm / 6.0) as usize).clamp(1, 32),
            medium_step: ((1.1 / pixel_mm / 6.0) as usize).clamp(1, 32),
            tone: tone_table(),
        }
    }

    /// Renders stored row `row` into `out` (3 bytes per pixel).
    pub fn render_row(&self, row: u32, out: &mut [u8]) {
        let body_row = self.body_origin + self.body_step_y * row as f32;
        let view_row = self.view_origin + self.view_step_y * row as f32;
        let body_at = |column: usize| body_row + self.body_step_x * column as f32;
        let mut coarse = Interpolated::new(self.coarse_step, |column| self.coarse_fields(body_at(column)));
        let mut medium = Interpolated::new(self.medium_step, |column| self.medium_fields(body_at(column)));
        for (column, pixel) in out.chunks_exact_mut(3).take(self.width as usize).enumerate() {
            let body = body_at(column);
            let view = view_row + self.view_step_x * column as f32;
            let fields = Fields { coarse: coarse.at(column), medium: medium.at(column) };
            let light = self.shade(body, view, &fields);
            self.develop(light, pixel);
        }
    }

    /// Noise fields with features of 4 mm or more, sampled sparsely along a row.
    fn coarse_fields(&self, body: Vec2) -> [f32; COARSE_FIELDS] {
        let lattice = &self.lattice;
        [
            lattice.value(self.outline_wobble.apply(Vec2::new(body.x, 0.0))),
            lattice.value(self.outline_wobble.apply(Vec2::new(body.x, 40.0))),
            lattice.value(self.contour_a.apply(body)),
            lattice.value(self.contour_b.apply(body)),
            lattice.value(self.mottle_large.apply(body)),
            lattice.value(self.mottle_small.apply(body)),
            lattice.value(self.pigment.apply(body)),
            lattice.value(self.background_frame.apply(body)),
            lattice.value(self.background_folds.apply(body)),
        ]
    }

    /// Noise fields with features of about a millimetre, sampled sparsely along a row.
    fn medium_fields(&self, body: Vec2) -> [f32; MEDIUM_FIELDS] {
        let lattice = &self.lattice;
        [
            lattice.value(self.grain_medium.apply(body)),
            lattice.value(self.furrow_warp_a.apply(body)),
            lattice.value(self.furrow_warp_b.apply(body)),
            lattice.value(self.furrow_strength.apply(body)),
        ]
    }

    /// Linear RGB light reaching the camera from one point.
    fn shade(&self, body: Vec2, view: Vec2, fields: &Fields) -> [f32; 3] {
        let camera = &self.camera;
        let radius_squared = view.length_squared();
        let mut field = 1.0;
        if let Some(scope_radius) = camera.dermoscope_radius {
            let radius = radius_squared.sqrt() / scope_radius;
            // Outside the dermatoscope's glass: the black of the tube.
            field = smoothstep(1.0 + 0.004, 1.0 - 0.004, radius);
            if field <= 0.0 {
                return [0.0035, 0.0033, 0.0036];
            }
            let falloff = smoothstep(0.45, 1.0, radius);
            field *= 1.0 - 0.5 * falloff * falloff;
        }

        // Where on the body shape this point lies, and how the surface tilts there.
        let shape = &self.shape;
        let [wobble, swell, contour_a, contour_b, ..] = fields.coarse.map(|value| value - 0.5);
        let half_width = ((shape.half_width + shape.taper * body.x) * (1.0 + 0.12 * swell)).max(5.0);
        let across_only = (body.y - shape.axis_offset - wobble * 0.15 * shape.half_width) / half_width;
        let along = shape.half_length.map_or(0.0, |half_length| body.x / half_length);
        let across = (across_only * across_only + along * along).sqrt().max(1e-6) * across_only.signum();
        let edge = 1.0 - (self.soft_mm + 0.5) / half_width;
        let coverage = if shape.flattened { 1.0 } else { smoothstep(1.0, edge, across.abs()) };
        let mut surface_slope = Vec2::default();
        if !shape.flattened {
            let clamped = across.clamp(-0.985, 0.985);
            // Height of a cylinder (or ellipsoid): sqrt(1 - t^2); its slope grows towards the
            // silhouette, along each axis in proportion to that axis's share of t.
            let steepness = 1.0 / (1.0 - clamped * clamped).sqrt();
            surface_slope = Vec2::new(-along * steepness * 0.75, -across_only * steepness);
            surface_slope = surface_slope + Vec2::new(contour_a, contour_b) * 0.7;
        }

        let mut colour = [0.0; 3];
        if coverage > 0.0 {
            let mut surface = self.skin_surface(fields);
            surface.slope = surface_slope;
            let context = LesionContext {
                lattice: &self.lattice,
                soft_mm: self.soft_mm,
                inflamed: self.inflamed,
                darkness: self.darkness,
                dermoscopic: self.shape.flattened,
            };
            for &index in self.lesion_tiles.items_at(body) {
                self.lesions[index as usize].apply(body, &mut surface, &context);
            }
            let texture = self.skin_texture(body, fields);
            surface.shade *= 1.0 + (texture - 1.0) * surface.texture.max(0.0);
            surface.gloss = (surface.gloss * (0.6 + 0.4 * texture)).max(0.0);
            self.draw_hairs(body, &mut surface);
            self.draw_ruler(body, &mut surface);
            colour = self.light(&surface, view, radius_squared);
        }
        if coverage < 1.0 {
            let outside = ((across.abs() - 1.0) * half_width).max(0.0);
            let contact_shadow = 1.0 - 0.45 * bump(outside / (0.45 * half_width));
            let [.., background, folds] = fields.coarse;
            let pattern = 0.8 + 0.3 * background + 0.12 * folds;
            let gain = self.illumination(view, radius_squared) * pattern * contact_shadow * 0.9;
            let background = self.background.map(|channel| channel * gain);
            colour = mix(background, colour, coverage);
        }
        colour.map(|channel| channel * field)
    }

    /// Skin colour before lesions: the subject's tone with blotchy redness and pigment.
    fn skin_surface(&self, fields: &Fields) -> Surface {
        let [_, _, _, _, large, small, pigment, _, _] = fields.coarse;
        let redness = clamp01(self.redness + (large - 0.5) * 0.5 + (small - 0.5) * 0.3);
        let melanin = 1.0 - (pigment - 0.5) * 0.16 - (large - 0.5) * 0.06;
        let albedo = [
            self.skin[0] * melanin,
            self.skin[1] * melanin * (1.0 - 0.24 * redness),
            self.skin[2] * melanin * (1.0 - 0.08 * redness),
        ];
        Surface { albedo, shade: 1.0, slope: Vec2::default(), gloss: self.skin_gloss, texture: 1.0 }
    }

    /// Brightness factor from the skin's fine relief: grain, furrows and pores (1 = none).
    fn skin_texture(&self, body: Vec2, fields: &Fields) -> f32 {
        let lattice = &self.lattice;
        let soft = self.soft_mm;
        let [medium, warp_a, warp_b, strength] = fields.medium;
        let (warp_a, warp_b) = (warp_a - 0.5, warp_b - 0.5);
        let mut texture = 1.0 + (medium - 0.5) * 0.08;
        if self.detail_fine > 0.0 {
            let fine = lattice.value(self.grain_fine.apply(body));
            texture += (fine - 0.5) * 0.08 * self.detail_fine;
        }
        if self.detail_furrows > 0.0 {
            let warps = [warp_a, warp_b, warp_a - warp_b];
            let weights = [1.0, 0.75, 0.5];
            let half_width = 0.022;
            let mut furrow: f32 = 0.0;
            for ((&(direction, spacing), warp), weight) in self.furrows.iter().zip(warps).zip(weights) {
                let distance = distance_to_whole(body.dot(direction) / spacing + warp * 2.2) * spacing;
                furrow = furrow.max(smoothstep(half_width + soft, half_width - soft, distance) * weight);
            }
            let visibility = (half_width / soft).min(1.0) * self.detail_furrows;
            // Furrows come and go: deep in places, nearly invisible in others.
            texture -= furrow * (0.02 + 0.2 * strength * strength) * visibility;
        } else {
            // Unresolved furrows still darken the skin a little on average.
            texture -= 0.015;
        }
        if self.detail_pores > 0.0 {
            let (pore, _) = jittered_dot(body, self.pore_cell_mm, 0.09, 0.45, soft, self.pore_seed);
            texture -= pore * 0.16 * self.detail_pores;
        }
        texture
    }

    fn draw_hairs(&self, body: Vec2, surface: &mut Surface) {
        let soft = self.soft_mm;
        for &index in self.hair_tiles.items_at(body) {
            let hair = &self.hairs[index as usize];
            let mut coverage: f32 = 0.0;
            for piece in 0..3 {
                let (distance, along) =
                    distance_along_segment(body, hair.points[piece], hair.points[piece + 1]);
                // Tapers from the root to a fine tip.
                let position = (piece as f32 + along) / 3.0;
                let half_width = hair.half_width * (1.0 - 0.65 * position);
                let piece_coverage =
                    smoothstep(half_width + soft, half_width - soft, distance) * (half_width / soft).min(1.0);
                coverage = coverage.max(piece_coverage);
            }
            if coverage > 0.0 {
                let coverage = coverage * hair.opacity;
                surface.albedo = mix(surface.albedo, hair.colour, coverage);
                surface.texture *= 1.0 - coverage;
                surface.gloss = surface.gloss * (1.0 - coverage) + 0.25 * coverage;
            }
        }
    }

    fn draw_ruler(&self, body: Vec2, surface: &mut Surface) {
        let Some(ruler) = &self.ruler else { return };
        let offset = body - ruler.origin;
        let along = offset.dot(ruler.along);
        let across = offset.dot(ruler.across);
        if along < -1.0 || along > ruler.length + 1.0 || across < -1.0 || across > ruler.width + 1.0 {
            return;
        }
        let soft = self.soft_mm;
        // The sticker's own shadow along its lower edge (light comes from above).
        if across > ruler.width {
            let shadow = smoothstep(ruler.width + 0.7, ruler.width, across);
            surface.shade *= 1.0 - 0.3 * shadow;
            return;
        }
        let inside = smoothstep(-soft, soft, across)
            * smoothstep(ruler.width + soft, ruler.width - soft, across)
            * smoothstep(-soft, soft, along)
            * smoothstep(ruler.length + soft, ruler.length - soft, along);
        if inside <= 0.0 {
            return;
        }
        let paper = 0.66 + 0.04 * self.lattice.value(NoiseFrame::new(0.6, 1.0, 0.0, 9).apply(body));
        let mut colour = [paper, paper, paper * 0.93];
        // Millimetre ticks, longer every 5 and 10 mm.
        let millimetre = along.max(0.0);
        let nearest = (millimetre + 0.5) as i32;
        let tick_distance = (millimetre - nearest as f32).abs();
        let tick_length = if nearest % 10 == 0 {
            ruler.width * 0.45
        } else if nearest % 5 == 0 {
            ruler.width * 0.3
        } else {
            ruler.width * 0.18
        };
        let half_thickness = 0.07;
        let tick = smoothstep(half_thickness + soft, half_thickness - soft, tick_distance)
            * smoothstep(tick_length + soft, tick_length - soft, across)
            * (half_thickness / soft).min(1.0);
        let baseline = smoothstep(0.08 + soft, 0.08 - soft, (across - 0.3).abs()) * (0.08 / soft).min(1.0);
        colour = mix(colour, [0.01, 0.01, 0.012], tick.max(baseline));
        // Colour reference patches along the bottom edge of the scale.
        let patch_band = ruler.width * 0.62..ruler.width * 0.92;
        if patch_band.contains(&across) {
            let patch = (along / 6.0) as i32;
            let within = along - patch as f32 * 6.0;
            if (0.5..5.5).contains(&within) {
                // Grey, white and black references, then muted printed primaries.
                let swatches = [
                    [0.18, 0.18, 0.18],
                    [0.02, 0.02, 0.022],
                    [0.36, 0.07, 0.06],
                    [0.1, 0.22, 0.09],
                    [0.07, 0.1, 0.28],
                ];
                if let Some(swatch) = usize::try_from(patch).ok().and_then(|patch| swatches.get(patch)) {
                    colour = *swatch;
                }
            }
        }
        surface.albedo = mix(surface.albedo, colour, inside);
        surface.shade = surface.shade * (1.0 - inside) + inside;
        surface.texture *= 1.0 - inside;
        surface.gloss = surface.gloss * (1.0 - inside) + 0.15 * inside;
    }

    /// Exposure, lighting gradient and vignetting at a view position.
    fn illumination(&self, view: Vec2, radius_squared: f32) -> f32 {
        let camera = &self.camera;
        let corner = radius_squared / camera.corner_squared;
        (1.0 + camera.gradient.dot(view)) * (1.0 - camera.vignette * corner * (0.6 + 0.4 * corner))
    }

    fn light(&self, surface: &Surface, view: Vec2, radius_squared: f32) -> [f32; 3] {
        let camera = &self.camera;
        let slope = surface.slope.rotate(camera.to_display);
        let inverse_length = 1.0 / (slope.length_squared() + 1.0).sqrt();
        let normal = [-slope.x * inverse_length, -slope.y * inverse_length, inverse_length];
        let light = camera.light;
        let facing = normal[0] * light[0] + normal[1] * light[1] + normal[2] * light[2];
        let diffuse = (facing * camera.inverse_light_height).max(0.0);
        let lighting = camera.ambient + (1.0 - camera.ambient) * diffuse;
        let gain = self.illumination(view, radius_squared);
        let base = surface.shade * lighting * gain;
        let mut colour = surface.albedo.map(|channel| channel * base);
        if camera.specular > 0.0 && surface.gloss > 0.0 {
            // Blinn-Phong with the eye direction varying across the frame (perspective), so a
            // flash makes a hotspot rather than an even sheen.
            let eye = [-view.x * 0.35, -view.y * 0.35, 1.0];
            let inverse_eye = 1.0 / (eye[0] * eye[0] + eye[1] * eye[1] + 1.0).sqrt();
            let half =
                [light[0] + eye[0] * inverse_eye, light[1] + eye[1] * inverse_eye, light[2] + inverse_eye];
            let half_length = (half[0] * half[0] + half[1] * half[1] + half[2] * half[2]).sqrt();
            let alignment = ((normal[0] * half[0] + normal[1] * half[1] + normal[2] * half[2])
                * (1.0 / half_length))
                .max(0.0);
            let mut power = alignment * alignment; // ^2
            power *= power; // ^4
            power *= power; // ^8
            power *= power; // ^16
            let sharp = power * power; // ^32
            let highlight = (0.35 * power + sharp) * surface.gloss * camera.specular * gain;
            colour = colour.map(|channel| channel + highlight * 0.5);
        }
        colour
    }

    /// Camera response: white balance, saturation, tone curve and sensor noise, into bytes.
    /// Camera response without noise: white balance, saturation and tone curve, into bytes.
    fn develop(&self, light: [f32; 3], pixel: &mut [u8]) {
        let camera = &self.camera;
        let red = light[0] * camera.gains[0];
        let green = light[1] * camera.gains[1];
        let blue = light[2] * camera.gains[2];
        let luma = 0.2126 * red + 0.7152 * green + 0.0722 * blue;
        let saturation = camera.saturation;
        let channels = [
            luma + (red - luma) * saturation,
            luma + (green - luma) * saturation,
            luma + (blue - luma) * saturation,
        ];
        let index_scale = (TONE_ENTRIES - 1) as f32 / TONE_RANGE;
        for (out, channel) in pixel.iter_mut().zip(channels) {
            let index = (channel.max(0.0) * index_scale) as usize;
            *out = self.tone[index.min(TONE_ENTRIES - 1)];
        }
    }

    /// The sensor's noise, added at full resolution after any upsampling.
    pub fn sensor_noise(&self) -> SensorNoise {
        SensorNoise {
            luma: self.camera.noise_luma,
            chroma: self.camera.noise_chroma,
            seed: self.camera.noise_seed,
        }
    }
}

/// Fine grain in code values, different in every pixel (and in every photo).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SensorNoise {
    pub luma: f32,
    pub chroma: f32,
    pub seed: u32,
}

impl SensorNoise {
    /// Adds noise to one row of bytes, in integer arithmetic.
    pub fn apply_to_row(&self, row: u32, pixels: &mut [u8]) {
        // Amplitudes in 1/256 code value; triangular noise from pairs of hash bytes, -255..255.
        let luma_scale = (self.luma * 256.0 / 255.0) as i32;
        let chroma_scale = (self.chroma * 256.0 / 255.0) as i32;
        for (column, pixel) in pixels.chunks_exact_mut(3).enumerate() {
            let hashed = hash(column as i32, row as i32, self.seed);
            let triangle = |shift: u32| {
                ((hashed >> shift) & 0xff) as i32 + ((hashed >> (shift + 8)) & 0xff) as i32 - 255
            };
            let luma = triangle(0) * luma_scale;
            let chroma = triangle(16) * chroma_scale;
            // Chroma noise pushes red and blue one way and green the other.
            let offsets = [luma + chroma, luma - chroma * 3 / 5, luma + chroma * 3 / 10];
            for (value, offset) in pixel.iter_mut().zip(offsets) {
                *value = (i32::from(*value) + ((offset + 128) >> 8)).clamp(0, 255) as u8;
            }
        }
    }
}

/// Field of view (shorter side, mm), body point at the centre, and rotation from display axes to
/// body axes for this photo.
fn frame(
    spec: &PhotoSpec,
    shot: &mut ChaCha8Rng,
    half_width: f32,
    axis_offset: f32,
    lesion_radius: f32,
    display: (f32, f32),
) -> (f32, Vec2, f32) {
    use std::f32::consts::{FRAC_PI_2, PI};
    let landscape = display.0 >= display.1;
    let jitter = shot.gen_range(-0.2..0.2);
    match spec.view {
        PhotoView::Overview => {
            let (field, along_long_side) = match spec.region {
                BodyRegion::Forearm | BodyRegion::UpperArm | BodyRegion::Hand => {
                    (half_width * 2.0 * shot.gen_range(1.3..1.7), true)
                }
                BodyRegion::Leg => (half_width * 2.0 * shot.gen_range(1.4..1.8), true),
                BodyRegion::Back | BodyRegion::Chest => (shot.gen_range(200.0..280.0), false),
                BodyRegion::Face => (shot.gen_range(70.0..85.0), false),
                BodyRegion::Scalp => (shot.gen_range(120.0..150.0), false),
            };
            // Limbs lie along the frame's long side; the trunk and head stand upright.
            let base = match (along_long_side, landscape) {
                (true, true) => 0.0,
                (true, false) => -FRAC_PI_2,
                (false, _) => -FRAC_PI_2,
            };
            let flip = if along_long_side && shot.gen_bool(0.5) { PI } else { 0.0 };
            let centre_y = if along_long_side {
                axis_offset + shot.gen_range(-0.1..0.1) * field
            } else {
                shot.gen_range(-0.15..0.15) * field
            };
            let centre_x_limit = if spec.region == BodyRegion::Face { 0.08 } else { 0.18 };
            let centre = Vec2::new(shot.gen_range(-centre_x_limit..centre_x_limit) * field, centre_y);
            (field, centre, base + flip + jitter * 0.6)
        }
        PhotoView::CloseUp => {
            let field = (lesion_radius * shot.gen_range(7.0..10.0)).clamp(22.0, 70.0);
            let centre = Vec2::new(shot.gen_range(-0.08..0.08) * field, shot.gen_range(-0.06..0.06) * field);
            (field, centre, shot.gen_range(-PI..PI))
        }
        PhotoView::Dermoscopic => {
            let field = (lesion_radius * 2.0 * shot.gen_range(1.7..2.1)).clamp(9.0, 24.0);
            let centre = Vec2::new(shot.gen_range(-0.04..0.04) * field, shot.gen_range(-0.04..0.04) * field);
            (field / 0.97, centre, shot.gen_range(-PI..PI))
        }
    }
}

fn camera(
    spec: &PhotoSpec,
    shot: &mut ChaCha8Rng,
    skin: [f32; 3],
    display: (f32, f32),
    to_display: (f32, f32),
) -> Camera {
    let aspect = display.0.max(display.1) / display.0.min(display.1);
    let corner_squared = aspect * aspect + 1.0;
    let skin_luma = 0.2126 * skin[0] + 0.7152 * skin[1] + 0.0722 * skin[2];
    // Auto-exposure lifts dark skin part of the way towards a mid-tone.
    let ratio = 0.45 / skin_luma;
    let exposure = (ratio * ratio * ratio).sqrt().sqrt().sqrt() * shot.gen_range(0.95..1.05);
    let normalise = |x: f32, y: f32, z: f32| {
        let length = (x * x + y * y + z * z).sqrt();
        [x / length, y / length, z / length]
    };
    let noise_seed = shot.gen();
    let mut camera = match (spec.view, spec.source) {
        (PhotoView::Dermoscopic, _) => Camera {
            to_display,
            light: [0.0, 0.0, 1.0],
            inverse_light_height: 0.0,
            ambient: 0.55,
            // Cross-polarised light removes surface glare.
            specular: 0.0,
            gradient: Vec2::default(),
            vignette: 0.0,
            corner_squared,
            gains: [exposure * 1.04, exposure, exposure * 0.97],
            saturation: 1.05,
            noise_luma: 1.3,
            noise_chroma: 0.6,
            noise_seed,
            dermoscope_radius: Some(0.97),
        },
        (_, PhotoSource::GpPractice) => Camera {
            to_display,
            light: normalise(shot.gen_range(-0.35..0.35), shot.gen_range(-0.6..-0.3), 1.0),
            inverse_light_height: 0.0,
            ambient: 0.25,
            specular: 0.5,
            gradient: Vec2::new(shot.gen_range(-0.04..0.04), -shot.gen_range(0.03..0.08)),
            vignette: shot.gen_range(0.12..0.22),
            corner_squared,
            gains: [exposure * shot.gen_range(0.98..1.03), exposure, exposure * shot.gen_range(0.97..1.02)],
            saturation: 1.0,
            noise_luma: 1.3,
            noise_chroma: 0.5,
            noise_seed,
            dermoscope_radius: None,
        },
        (_, PhotoSource::PatientLink) => {
            // Lit from a window to one side, in a room whose light tints the whole picture.
            let side = if shot.gen_bool(0.5) { 1.0 } else { -1.0 };
            let casts = [[1.12, 1.0, 0.78], [0.9, 1.0, 1.12], [0.96, 1.05, 0.92]];
            let cast = casts[shot.gen_range(0..casts.len())];
            let exposure = exposure * shot.gen_range(0.8..1.0);
            Camera {
                to_display,
                light: normalise(0.7 * side, shot.gen_range(-0.5..-0.1), 0.7),
                inverse_light_height: 0.0,
                ambient: 0.42,
                specular: 0.35,
                gradient: Vec2::new(-0.16 * side, -0.06),
                vignette: shot.gen_range(0.25..0.4),
                corner_squared,
                gains: cast.map(|gain| gain * exposure),
                saturation: 0.9,
                noise_luma: 3.2,
                noise_chroma: 1.8,
                noise_seed,
                dermoscope_radius: None,
            }
        }
    };
    camera.inverse_light_height = 1.0 / camera.light[2];
    camera
}

/// Hairs lying on the skin over the whole reachable body window, mostly along body x.
fn subject_hairs(spec: &PhotoSpec, subject: &mut ChaCha8Rng) -> Vec<Hair> {
    // Facial vellus hair is too fine to show.
    let density = if spec.region == BodyRegion::Face { 0 } else { spec.body_hair.min(3) };
    let per_square_centimetre = [0.0, 0.25, 0.9, 2.2][density as usize];
    let half_extent = 220.0_f32;
    let area_square_centimetres = (2.0 * half_extent / 10.0) * (2.0 * half_extent / 10.0);
    let count = (per_square_centimetre * area_square_centimetres) as usize;
    let colour = match (spec.skin_type, subject.gen_range(0..4)) {
        (1..=2, 0) => linear_rgb([120, 82, 50]),
        (1..=2, 1) => linear_rgb([92, 62, 40]),
        _ => linear_rgb([34, 26, 22]),
    };
    let along_axis = matches!(
        spec.region,
        BodyRegion::Forearm | BodyRegion::UpperArm | BodyRegion::Leg | BodyRegion::Hand
    );
    let mut hairs = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Vec2::new(
            subject.gen_range(-half_extent..half_extent),
            subject.gen_range(-half_extent..half_extent),
        );
        let base_angle = if along_axis { 0.0 } else { subject.gen_range(0.0..std::f32::consts::TAU) };
        let angle = base_angle + subject.gen_range(-0.5..0.5);
        let length = subject.gen_range(3.0..11.0);
        let curl = subject.gen_range(-0.3..0.3);
        let mut points = [start; 4];
        for piece in 1..4 {
            let (cosine, sine) = rotation(angle + curl * piece as f32);
            points[piece] = points[piece - 1] + Vec2::new(cosine, sine) * (length / 3.0);
        }
        let shade = subject.gen_range(0.6..1.4);
        hairs.push(Hair {
            points,
            half_width: subject.gen_range(0.03..0.05),
            colour: colour.map(|channel| channel * shade),
            opacity: subject.gen_range(0.6..0.9),
        });
    }
    hairs
}

/// Distance from `point` to a segment, and how far along it (0 to 1) the nearest point lies.
fn distance_along_segment(point: Vec2, start: Vec2, end: Vec2) -> (f32, f32) {
    let along = end - start;
    let t = clamp01((point - start).dot(along) / along.length_squared().max(1e-12));
    ((point - (start + along * t)).length(), t)
}

#[cfg(test)]
mod tests {
    use super::super::noise::unit;
    use super::*;

    #[test]
    fn tone_table_is_monotonic_and_spans_black_to_white() {
        let table = tone_table();
        assert_eq!(table[0], 0);
        assert_eq!(table[TONE_ENTRIES - 1], 255);
        assert!(table.windows(2).all(|pair| pair[0] <= pair[1]));
        // Mid-grey reflectance lands near the middle of the byte range.
        let index = (0.18 * (TONE_ENTRIES - 1) as f32 / TONE_RANGE) as usize;
        assert!((100..=130).contains(&table[index]), "18% grey -> {}", table[index]);
    }

    #[test]
    fn tile_index_finds_items_only_near_them() {
        let bounds =
            [(Vec2::new(-1.0, -1.0), Vec2::new(1.0, 1.0)), (Vec2::new(50.0, 50.0), Vec2::new(60.0, 52.0))];
        let index = TileIndex::new(&bounds, 100.0, 4.0);
        assert_eq!(index.items_at(Vec2::new(0.5, 0.5)), &[0]);
        assert_eq!(index.items_at(Vec2::new(55.0, 51.0)), &[1]);
        assert!(index.items_at(Vec2::new(30.0, 30.0)).is_empty());
        assert!(index.items_at(Vec2::new(-500.0, 0.0)).is_empty());
    }

    #[test]
    fn hash_noise_is_centred() {
        let mean: f32 = (0..10_000).map(|index| unit(hash(index, 3, 9))).sum::<f32>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02);
    }
}
