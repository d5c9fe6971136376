//! Skin findings drawn into a photo: what each kind of lesion looks like (shape, colour,
//! relief, surface texture) and which lesions a subject has for a given diagnosis.
//!
//! Everything here is in body millimetres, so the overview, the close-up and the dermoscopic
//! view of one subject show the same lesion at different magnifications.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::noise::{
    bump, cellular, clamp01, distance_to_segment, hash, jittered_dot, mix, rehash, ridge, rotation, scale,
    smoothstep, unit, Lattice, NoiseFrame, Vec2,
};
use super::{BodyRegion, Finding};

/// The look of a patch of skin before lighting: what a lesion may change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Surface {
    /// Linear RGB reflectance.
    pub albedo: [f32; 3],
    /// Multiplier for darkening that is not colour (crusts, fissures).
    pub shade: f32,
    /// Height gradient (dimensionless rise per run) in body axes: relief for the lighting.
    pub slope: Vec2,
    /// Strength of specular sheen (0 matte .. 1 wet or pearly).
    pub gloss: f32,
    /// How much of the normal skin texture (furrows, pores) shows: 0 hidden, 1 normal, above 1
    /// exaggerated (lichenified skin).
    pub texture: f32,
}

/// What a lesion needs to know about the photo and the subject's skin.
pub(crate) struct LesionContext<'a> {
    pub lattice: &'a Lattice,
    /// Edge softness in millimetres: a pixel's size, or more for a blurred photo.
    pub soft_mm: f32,
    /// The subject's inflamed-skin colour (red on pale skin, violaceous brown on dark skin).
    pub inflamed: [f32; 3],
    /// 0 for Fitzpatrick I .. 1 for Fitzpatrick VI.
    pub darkness: f32,
    /// Dermoscopy shows structures below the surface glare (pigment network) that an ordinary
    /// photo barely shows, however sharp.
    pub dermoscopic: bool,
}

impl LesionContext<'_> {
    /// 1 when features `feature_mm` across are well resolved, fading to 0 as they shrink to a
    /// pixel: fine detail must not alias into sparkle in small or blurred photos.
    fn detail(&self, feature_mm: f32) -> f32 {
        smoothstep(1.0, 3.0, feature_mm / self.soft_mm)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LesionKind {
    /// Naevus or melanoma. `variety` 0 gives a tidy uniform mole, 1 a chaotic multi-coloured one.
    Pigmented { variety: f32 },
    /// Basal cell carcinoma: pearly, rolled edge, fine vessels, maybe a crusted centre.
    PearlyNodule { ulcerated: bool },
    /// Squamous cell carcinoma: a red dome with a keratin crust.
    KeratoticNodule,
    /// Seborrhoeic keratosis: stuck-on, sharply defined, fissured and waxy.
    StuckOn { darkness: f32 },
    /// Actinic keratosis: ill-defined pink patch with gritty scale.
    RoughPatch,
    /// Psoriasis: well-demarcated red plaque with silvery scale.
    Plaque,
    /// Eczema: ill-defined inflamed patch, lichenified, scratched.
    EczemaPatch,
    /// Acne or rosacea papule, perhaps with a pustule.
    Papule { pustule: bool },
    /// Open (black) or closed (white) comedone.
    Comedone { open: bool },
    /// Flat post-inflammatory mark.
    Macule,
    /// Diffuse redness with fine vessels (rosacea).
    Erythema,
    /// Tinea: annular scaly red edge with central clearing.
    Ring,
    /// Freckle or solar lentigo.
    Freckle,
}

/// Where a pixel sits relative to one lesion.
#[derive(Debug, Clone, Copy)]
struct Sample {
    point: Vec2,
    /// 0 at the centre, 1 on the (wandering) edge.
    distance: f32,
    /// Unit vector from the centre towards the point.
    outward: Vec2,
    /// Edge softness in units of the radius.
    soft: f32,
    /// The lesion's own coarse noise at the point, in [0, 1].
    pattern: f32,
}

#[derive(Debug, Clone)]
pub(crate) struct Lesion {
    pub kind: LesionKind,
    pub centre: Vec2,
    pub radius: f32,
    /// Rotation into the lesion's own axes, and its elongation (1 round).
    orientation: (f32, f32),
    elongation: f32,
    /// How far the outline wanders from an ellipse, as a fraction of the radius.
    irregularity: f32,
    /// Beyond this distance from the centre the lesion changes nothing.
    pub reach: f32,
    seed: u32,
    outline: NoiseFrame,
    notches: NoiseFrame,
    pattern: NoiseFrame,
    fine: NoiseFrame,
}

impl Lesion {
    fn new(kind: LesionKind, centre: Vec2, radius: f32, irregularity: f32, rng: &mut ChaCha8Rng) -> Lesion {
        let seed: u32 = rng.gen();
        let angle = rng.gen_range(0.0..std::f32::consts::PI);
        let elongation = rng.gen_range(1.0..1.35);
        let halo = match kind {
            LesionKind::Papule { .. } => 2.2,
            LesionKind::KeratoticNodule => 1.6,
            LesionKind::PearlyNodule { .. } => 1.5,
            LesionKind::EczemaPatch | LesionKind::Erythema => 1.9,
            _ => 1.3,
        };
        Lesion {
            kind,
            centre,
            radius,
            orientation: rotation(-angle),
            elongation,
            irregularity,
            reach: radius * elongation * (1.0 + 1.6 * irregularity) * halo + 0.5,
            seed,
            outline: NoiseFrame::new(radius * 0.8, 1.0, angle, seed),
            notches: NoiseFrame::new(radius * 0.3, 1.0, angle + 1.0, seed ^ 0x55),
            pattern: NoiseFrame::new(radius * 0.45, 1.0, angle + 2.0, seed ^ 0xaa),
            fine: NoiseFrame::new(0.35, 1.0, angle + 3.0, seed ^ 0x3c),
        }
    }

    /// Normalised distance from the centre through the wandering outline: 0 at the centre,
    /// 1 on the edge. Also returns the outward direction, for relief.
    fn shape(&self, point: Vec2, lattice: &Lattice) -> (f32, Vec2) {
        let offset = point - self.centre;
        let local = offset.rotate(self.orientation);
        let local = Vec2::new(local.x / self.elongation, local.y);
        let wander = if self.irregularity > 0.0 {
            let coarse = Vec2::new(
                lattice.value(self.outline.apply(point)) - 0.5,
                lattice.value(self.outline.apply(point + Vec2::new(91.7, 13.3))) - 0.5,
            );
            let fine = lattice.value(self.notches.apply(point)) - 0.5;
            coarse * (2.0 * self.irregularity * self.radius)
                + Vec2::new(fine, -fine) * (0.35 * self.irregularity * self.radius)
        } else {
            Vec2::default()
        };
        let distance = (local + wander).length() / self.radius;
        let length = offset.length().max(1e-6);
        (distance, offset * (1.0 / length))
    }

    pub fn apply(&self, point: Vec2, surface: &mut Surface, context: &LesionContext) {
        if (point - self.centre).length_squared() > self.reach * self.reach {
            return;
        }
        let lattice = context.lattice;
        let (distance, outward) = self.shape(point, lattice);
        // Edge softness in units of the radius: a blurred photo softens every outline.
        let soft = context.soft_mm / self.radius;
        let pattern = lattice.value(self.pattern.apply(point));
        let at = Sample { point, distance, outward, soft, pattern };
        match self.kind {
            LesionKind::Pigmented { variety } => self.pigmented(&at, variety, surface, context),
            LesionKind::PearlyNodule { ulcerated } => self.pearly_nodule(&at, ulcerated, surface, context),
            LesionKind::KeratoticNodule => self.keratotic_nodule(&at, surface, context),
            LesionKind::StuckOn { darkness } => self.stuck_on(&at, darkness, surface, context),
            LesionKind::RoughPatch => self.rough_patch(&at, surface, context),
            LesionKind::Plaque => self.plaque(&at, surface, context),
            LesionKind::EczemaPatch => self.eczema_patch(&at, surface, context),
            LesionKind::Papule { pustule } => self.papule(&at, pustule, surface, context),
            LesionKind::Comedone { open } => self.comedone(&at, open, surface),
            LesionKind::Macule => {
                let mask = smoothstep(1.0 + 0.4 + soft, 0.6 - soft, distance);
                let mark = [surface.albedo[0] * 0.72, surface.albedo[1] * 0.6, surface.albedo[2] * 0.58];
                surface.albedo = mix(surface.albedo, mark, mask * (0.5 + 0.3 * pattern));
            }
            LesionKind::Erythema => self.erythema(&at, surface, context),
            LesionKind::Ring => self.ring(&at, surface, context),
            LesionKind::Freckle => {
                let mask = smoothstep(1.0 + 0.35 + soft, 0.55 - soft, distance);
                let tan = [surface.albedo[0] * 0.68, surface.albedo[1] * 0.55, surface.albedo[2] * 0.45];
                let strength = 0.35 + 0.5 * unit(self.seed);
                surface.albedo = mix(surface.albedo, tan, mask * strength * (0.7 + 0.6 * pattern));
            }
        }
    }

    fn pigmented(&self, at: &Sample, variety: f32, surface: &mut Surface, context: &LesionContext) {
        let &Sample { point, distance, outward, soft, pattern } = at;
        let lattice = context.lattice;
        // A melanoma's edge is abrupt in places and smudged in others; a naevus fades evenly.
        let edge_noise = lattice.value(self.notches.apply(point + Vec2::new(7.0, 3.0)));
        let edge = 0.1 * (1.0 - variety) + variety * (0.02 + 0.16 * edge_noise) + soft;
        let mask = smoothstep(1.0 + edge, 1.0 - edge, distance);
        if mask <= 0.0 {
            return;
        }
        let fine = lattice.value(self.fine.apply(point));
        let zones = lattice.value(self.outline.apply(point * 1.7 + Vec2::new(33.0, 71.0)));
        // Darker towards the centre for a naevus; patchy for a melanoma.
        let tone = clamp01(
            0.3 + (pattern - 0.5) * (0.3 + 0.5 * variety)
                + (fine - 0.5) * 0.25
                + 0.35 * (1.0 - distance) * (1.0 - 0.5 * variety)
                + variety * 0.45 * (zones - 0.45),
        );
        let lighten = 1.0 - 0.45 * context.darkness;
        let stops = [
            [0.3 * lighten, 0.16 * lighten, 0.085 * lighten],
            [0.15 * lighten, 0.072 * lighten, 0.036 * lighten],
            [0.055 * lighten, 0.027 * lighten, 0.016 * lighten],
            [0.016, 0.011, 0.01],
        ];
        let position = tone * (2.0 + variety);
        let index = (position as usize).min(stops.len() - 2);
        let mut colour = mix(stops[index], stops[index + 1], (position - index as f32).min(1.0));
        // Blue-grey veil, pink-white regression and red areas only in the disordered lesion.
        let veil = smoothstep(0.66, 0.8, zones) * variety * smoothstep(0.95, 0.5, distance);
        colour = mix(colour, [0.07, 0.08, 0.105], veil * 0.7);
        let regression = smoothstep(0.16, 0.06, zones) * variety;
        colour = mix(colour, [0.45, 0.3, 0.28], regression * 0.4);
        // Fine granularity: pigment is never perfectly even.
        colour = scale(colour, 0.85 + 0.3 * fine);
        let red = smoothstep(0.55, 0.75, fine) * variety * smoothstep(0.5, 0.95, distance);
        colour = mix(colour, context.inflamed, red * 0.3);

        // Pigment network: a polygonal net of brown lines around paler holes, fading at the
        // edge of a naevus, broken up and thickened in a melanoma. Only when resolved.
        let network_detail = context.detail(0.06) * if context.dermoscopic { 1.0 } else { 0.2 };
        if network_detail > 0.0 {
            let cell = 0.24 + 0.1 * variety * pattern;
            let (nearest, second, _) = cellular(point * (1.0 / cell), self.seed ^ 0x77);
            let wall = (second - nearest) * 0.5 * cell;
            let half_width = 0.022 + 0.03 * variety * edge_noise;
            let line = smoothstep(half_width + context.soft_mm, half_width - context.soft_mm, wall);
            let broken = if variety > 0.5 {
                smoothstep(0.3, 0.5, lattice.value(self.notches.apply(point * 3.0)))
            } else {
                1.0
            };
            let fade = smoothstep(1.02, 0.45, distance) * broken;
            let strength = network_detail * fade;
            colour = scale(colour, 1.0 + strength * (0.22 - 0.72 * line));
            // Dots and globules: central in a naevus, scattered at the periphery in a melanoma.
            let placement =
                if variety > 0.5 { smoothstep(0.5, 0.9, distance) } else { smoothstep(0.6, 0.2, distance) };
            let (dot, _) = jittered_dot(point, 0.4, 0.2, 0.4 * placement, context.soft_mm, self.seed);
            colour = mix(colour, [0.02, 0.012, 0.01], dot * network_detail * 0.8);
        }
        surface.albedo = mix(surface.albedo, colour, mask * 0.95);
        surface.texture *= 1.0 - 0.4 * mask;
        // A slightly raised compound naevus: enough relief to catch the light at its rim.
        let rise = 0.12 * mask * distance.min(1.0);
        surface.slope = surface.slope - outward * rise;
        surface.gloss += 0.06 * mask;
    }

    fn pearly_nodule(&self, at: &Sample, ulcerated: bool, surface: &mut Surface, context: &LesionContext) {
        let &Sample { point, distance, outward, soft, pattern } = at;
        let lattice = context.lattice;
        // A faint red halo around the nodule.
        let halo = smoothstep(1.45, 1.0, distance);
        surface.albedo = mix(surface.albedo, context.inflamed, halo * 0.2);
        let mask = smoothstep(1.0 + 0.1 + soft, 1.0 - 0.1 - soft, distance);
        if mask <= 0.0 {
            return;
        }
        // Relief: a low dome with a rolled, raised border.
        let inside = distance.min(0.97);
        let dome_slope = -0.35 * inside / (1.0 - inside * inside).sqrt();
        let border = (distance - 0.8) / 0.2;
        let border_slope =
            if border.abs() < 1.0 { -4.0 * border * (1.0 - border * border) / 0.2 * 0.02 } else { 0.0 };
        surface.slope = surface.slope + outward * ((dome_slope + border_slope) * mask);
        // Pearly and translucent: pink centre, paler rolled edge.
        let pearly = [0.7, 0.36, 0.35];
        let mut colour = mix(surface.albedo, pearly, 0.5 + 0.2 * pattern);
        colour = mix(colour, [0.76, 0.55, 0.52], bump(border) * 0.25);
        // Arborising vessels: a few fine branching red lines across the surface.
        let vessel_detail = context.detail(0.03);
        if vessel_detail > 0.0 {
            let trunk = NoiseFrame::new(self.radius * 0.5, 2.0, 0.4, self.seed ^ 0x21);
            let branch = NoiseFrame::new(self.radius * 0.18, 1.5, 1.9, self.seed ^ 0x43);
            let trunk_value = lattice.value(trunk.apply(point));
            let vessels = ridge(trunk_value, 0.03).max(
                0.55 * ridge(lattice.value(branch.apply(point)), 0.03)
                    * smoothstep(0.2, 0.05, (trunk_value - 0.5).abs()),
            );
            let visible = vessel_detail * smoothstep(1.0, 0.55, distance) * 0.9;
            colour = mix(colour, [0.28, 0.02, 0.03], vessels * visible);
        }
        // Blue-grey ovoid nests, more on darker skin where BCCs are often pigmented.
        let (nest, _) =
            jittered_dot(point, 1.0, 0.16, 0.02 + 0.4 * context.darkness, context.soft_mm, self.seed);
        colour = mix(colour, [0.07, 0.075, 0.095], nest * 0.6 * smoothstep(0.95, 0.6, distance));
        let mut gloss = 0.6;
        if ulcerated {
            let wander = lattice.value(self.notches.apply(point * 1.3)) - 0.5;
            let crust = smoothstep(0.36, 0.26, distance + wander * 0.25);
            let serous = lattice.value(self.fine.apply(point));
            let crust_colour = mix([0.09, 0.02, 0.012], [0.3, 0.15, 0.05], smoothstep(0.55, 0.8, serous));
            colour = mix(colour, crust_colour, crust);
            gloss = lerp_f(gloss, 0.2, crust);
            surface.slope = surface.slope + Vec2::new(serous - 0.5, 0.5 - pattern) * (0.8 * crust);
        }
        surface.albedo = mix(surface.albedo, colour, mask);
        surface.texture *= 1.0 - 0.75 * mask;
        surface.gloss += gloss * mask;
    }

    fn keratotic_nodule(&self, at: &Sample, surface: &mut Surface, context: &LesionContext) {
        let &Sample { point, distance, outward, soft, pattern } = at;
        let lattice = context.lattice;
        let base = smoothstep(1.55, 0.9, distance);
        surface.albedo = mix(surface.albedo, context.inflamed, base * 0.75);
        // Dotted and glomerular vessels in the red rim, visible under magnification.
        if context.dermoscopic {
            let density = 0.6 * smoothstep(1.3, 1.0, distance);
            let (vessel, _) = jittered_dot(point, 0.35, 0.18, density, context.soft_mm, self.seed ^ 0x33);
            surface.albedo = mix(surface.albedo, [0.3, 0.02, 0.03], vessel * 0.7);
        }
        let mask = smoothstep(1.0 + 0.1 + soft, 0.9 - soft, distance);
        if mask <= 0.0 {
            return;
        }
        let inside = distance.min(0.98);
        let dome_slope = -0.45 * inside / (1.0 - inside * inside).sqrt();
        surface.slope = surface.slope + outward * (dome_slope * mask);
        surface.albedo = mix(surface.albedo, scale(context.inflamed, 0.8), mask * 0.7);
        surface.gloss += 0.45 * mask;
        // The keratin horn: yellow-white to brown, rough and cracked.
        let wander = lattice.value(self.notches.apply(point)) - 0.5;
        let horn = smoothstep(0.66 + soft, 0.5 - soft, distance + wander * 0.4);
        if horn <= 0.0 {
            return;
        }
        let grain = lattice.value(self.fine.apply(point));
        let keratin = mix([0.7, 0.53, 0.37], [0.24, 0.12, 0.06], clamp01(pattern * 0.8 + grain * 0.4 - 0.3));
        let crack_frame = NoiseFrame::new(0.8, 1.0, 0.0, self.seed ^ 0x19);
        let cracks = ridge(lattice.value(crack_frame.apply(point)), 0.025) * context.detail(0.1);
        surface.albedo = mix(surface.albedo, keratin, horn);
        surface.shade *= 1.0 - 0.55 * cracks * horn;
        let lumps = lattice.value(self.fine.apply(point * 2.3 + Vec2::new(5.0, 1.0)));
        surface.slope = surface.slope + Vec2::new(grain - 0.5, lumps - 0.5) * (2.5 * horn);
        surface.gloss -= 0.4 * horn;
        surface.texture *= 1.0 - horn;
    }

    fn stuck_on(&self, at: &Sample, darkness: f32, surface: &mut Surface, context: &LesionContext) {
        let &Sample { point, distance, outward, soft, pattern } = at;
        let lattice = context.lattice;
        let mask = smoothstep(1.0 + 0.015 + soft, 1.0 - 0.015 - soft, distance);
        if mask <= 0.0 {
            return;
        }
        // A flat-topped plateau: relief only at the rim, where it catches the light.
        let rim = clamp01((1.0 - distance) / 0.15);
        let rim_slope = -6.0 * rim * (1.0 - rim) / 0.15 * 0.1;
        surface.slope = surface.slope + outward * rim_slope;
        let lighten = 1.0 - 0.35 * context.darkness;
        let fine = lattice.value(self.fine.apply(point));
        let colour_tone = clamp01(darkness + (pattern - 0.5) * 0.6 + (fine - 0.5) * 0.3);
        let mut colour =
            mix([0.26 * lighten, 0.155 * lighten, 0.085 * lighten], [0.05, 0.03, 0.018], colour_tone);
        // Cerebriform surface: close-packed rounded ridges separated by dark fissures (the
        // middle contours of two noise layers, which wander like the sulci of a brain).
        let gyri_frame = NoiseFrame::new(0.55, 1.6, 0.8, self.seed ^ 0x91);
        let sulci_frame = NoiseFrame::new(1.0, 1.3, 2.0, self.seed ^ 0x92);
        let gyri = lattice.value(gyri_frame.apply(point));
        let sulci = lattice.value(sulci_frame.apply(point));
        let detail = context.detail(0.08);
        let fissures = ridge(gyri, 0.07).max(0.8 * ridge(sulci, 0.05)) * detail;
        let crest = smoothstep(0.1, 0.4, (gyri - 0.5).abs());
        colour = scale(colour, (0.85 + 0.3 * crest * detail) * (1.0 - 0.55 * fissures));
        let across = lattice.value(gyri_frame.apply(point + Vec2::new(0.1, 0.0)));
        let down = lattice.value(gyri_frame.apply(point + Vec2::new(0.0, 0.1)));
        surface.slope = surface.slope + Vec2::new(across - gyri, down - gyri) * (8.0 * detail * mask);
        // Milia-like cysts (whitish) and comedo-like openings (dark, irregular).
        let (cyst, _) = jittered_dot(point, 1.6, 0.07, 0.25, context.soft_mm, self.seed);
        colour = mix(colour, [0.42, 0.36, 0.24], cyst * 0.7);
        let (opening, _) = jittered_dot(point, 1.1, 0.14, 0.35, context.soft_mm, self.seed ^ 0x1);
        colour = mix(colour, [0.025, 0.015, 0.01], opening * 0.8 * (0.6 + 0.4 * fine));
        surface.albedo = mix(surface.albedo, colour, mask);
        surface.texture *= 1.0 - mask;
        surface.gloss += 0.12 * mask;
    }

    fn rough_patch(&self, at: &Sample, surface: &mut Surface, context: &LesionContext) {
        let &Sample { point, distance, soft, pattern, .. } = at;
        let lattice = context.lattice;
        let mask = smoothstep(1.0 + 0.4 + soft, 0.6 - soft, distance);
        if mask <= 0.0 {
            return;
        }
        surface.albedo = mix(surface.albedo, context.inflamed, mask * (0.35 + 0.35 * pattern));
        let grit = lattice.value(self.fine.apply(point));
        let flakes = smoothstep(0.62, 0.8, grit * 0.7 + pattern * 0.3) * smoothstep(1.1, 0.5, distance);
        let scale_colour = [0.62, 0.55, 0.45];
        surface.albedo = mix(surface.albedo, scale_colour, flakes * 0.8 * context.detail(0.25).max(0.4));
        surface.slope = surface.slope + Vec2::new(grit - 0.5, pattern - 0.5) * (0.6 * mask);
        surface.gloss *= 1.0 - 0.8 * mask;
        surface.texture *= 1.0 + 0.5 * mask;
    }

    fn plaque(&self, at: &Sample, surface: &mut Surface, context: &LesionContext) {
        let &Sample { point, distance, outward, soft, pattern } = at;
        let lattice = context.lattice;
        let mask = smoothstep(1.0 + 0.08 + soft, 1.0 - 0.08 - soft, distance);
        if mask <= 0.0 {
            return;
        }
        let rim = clamp01((1.0 - distance) / 0.1);
        surface.slope = surface.slope + outward * (-6.0 * rim * (1.0 - rim) * 0.2);
        let red = scale(context.inflamed, 0.9 + 0.25 * pattern);
        surface.albedo = mix(surface.albedo, red, mask * 0.9);
        // Silvery scale, thickest in the middle: psoriasis keeps a clear red rim.
        let flake_frame = NoiseFrame::new(2.2, 1.0, 0.0, self.seed ^ 0x66);
        let flakes = lattice.value(flake_frame.apply(point));
        let grain = lattice.value(self.fine.apply(point));
        let thickness = (1.0 - distance) * 0.9 + (flakes - 0.5) * 0.45 + (grain - 0.5) * 0.3;
        let coverage = smoothstep(0.12, 0.55, thickness) * smoothstep(1.0, 0.82, distance);
        let silver = scale([0.52, 0.5, 0.48], 0.7 + 0.3 * flakes + 0.25 * grain);
        let cracks = ridge(flakes, 0.03) * context.detail(0.08);
        surface.albedo = mix(surface.albedo, silver, coverage * (0.6 + 0.3 * grain));
        surface.shade *= 1.0 - 0.3 * cracks * coverage;
        surface.slope = surface.slope + Vec2::new(grain - 0.5, flakes - 0.5) * (0.6 * coverage);
        surface.gloss *= 1.0 - 0.7 * mask;
        surface.texture *= 1.0 - 0.5 * mask;
    }

    fn eczema_patch(&self, at: &Sample, surface: &mut Surface, context: &LesionContext) {
        let &Sample { point, distance, pattern, .. } = at;
        let lattice = context.lattice;
        let mask = smoothstep(1.6, 0.45, distance);
        if mask <= 0.0 {
            return;
        }
        let intensity = mask * (0.4 + 0.6 * pattern);
        // Red on pale skin; on dark skin eczema is greyer, darker and violaceous.
        surface.albedo = mix(surface.albedo, context.inflamed, intensity * 0.6);
        // Lichenification: scratching thickens the skin and deepens its furrows.
        surface.texture *= 1.0 + 1.6 * intensity;
        let (papule, _) = jittered_dot(point, 1.4, 0.16, 0.45 * intensity, context.soft_mm, self.seed);
        surface.albedo = mix(surface.albedo, scale(context.inflamed, 0.8), papule * 0.5);
        // Excoriations: a few short scratches, crusted dark red.
        let cell = 6.0;
        let cell_x = super::noise::floor_to_int(point.x / cell);
        let cell_y = super::noise::floor_to_int(point.y / cell);
        let hashed = hash(cell_x, cell_y, self.seed ^ 0xe0);
        if unit(hashed) < 0.3 * intensity {
            let second_hash = rehash(hashed);
            let start = Vec2::new(
                (cell_x as f32 + 0.2 + 0.6 * unit(second_hash)) * cell,
                (cell_y as f32 + 0.2 + 0.6 * unit(rehash(second_hash))) * cell,
            );
            let direction = rotation(unit(hashed ^ 0x51) * 6.3);
            let length = 1.5 + 3.0 * unit(hashed ^ 0x9e37);
            let end = start + Vec2::new(direction.0, direction.1) * length;
            let half_width = 0.1;
            let soft = context.soft_mm;
            let scratch =
                smoothstep(half_width + soft, half_width - soft, distance_to_segment(point, start, end))
                    * (half_width / soft).min(1.0);
            let crust = mix([0.22, 0.045, 0.03], [0.3, 0.12, 0.07], unit(second_hash));
            surface.albedo = mix(surface.albedo, crust, scratch * 0.75);
        }
        // Fine dry scale catching the light.
        let grain = lattice.value(self.fine.apply(point));
        let flakes = smoothstep(0.72, 0.92, grain) * intensity;
        surface.albedo = mix(surface.albedo, scale(surface.albedo, 1.3), flakes * 0.6);
        surface.gloss *= 1.0 - 0.6 * mask;
    }

    fn papule(&self, at: &Sample, pustule: bool, surface: &mut Surface, context: &LesionContext) {
        let &Sample { distance, outward, soft, .. } = at;
        let halo = bump(distance / 2.1);
        surface.albedo = mix(surface.albedo, context.inflamed, halo * 0.4);
        let mask = smoothstep(1.15 + soft, 0.55 - soft, distance);
        if mask <= 0.0 {
            return;
        }
        let inside = distance.min(1.0);
        let dome_slope = -0.45 * inside * (1.0 - inside * inside);
        surface.slope = surface.slope + outward * dome_slope;
        surface.albedo = mix(surface.albedo, scale(context.inflamed, 0.9), mask * 0.7);
        if pustule {
            let head = smoothstep(0.38 + soft, 0.2 - soft, distance);
            let pus = mix([0.55, 0.47, 0.27], surface.albedo, 0.25);
            surface.albedo = mix(surface.albedo, pus, head * 0.85);
        }
        surface.gloss += 0.1 * mask;
        surface.texture *= 1.0 - 0.6 * mask;
    }

    fn comedone(&self, at: &Sample, open: bool, surface: &mut Surface) {
        let &Sample { distance, outward, soft, .. } = at;
        let mask = smoothstep(1.0 + soft, 0.6 - soft, distance);
        if mask <= 0.0 {
            return;
        }
        if open {
            surface.albedo = mix(surface.albedo, [0.03, 0.022, 0.015], mask * 0.9);
        } else {
            let inside = distance.min(1.0);
            surface.slope = surface.slope + outward * (-1.2 * inside * (1.0 - inside * inside));
            surface.albedo = mix(surface.albedo, scale(surface.albedo, 1.12), mask * 0.6);
            surface.gloss += 0.4 * mask;
        }
    }

    fn erythema(&self, at: &Sample, surface: &mut Surface, context: &LesionContext) {
        let &Sample { point, distance, pattern, .. } = at;
        let lattice = context.lattice;
        let mask = smoothstep(1.7, 0.3, distance);
        if mask <= 0.0 {
            return;
        }
        surface.albedo = mix(surface.albedo, context.inflamed, mask * (0.4 + 0.35 * pattern));
        let detail = context.detail(0.05);
        if detail > 0.0 {
            let vessel_frame = NoiseFrame::new(1.4, 3.0, 0.6, self.seed ^ 0x5a);
            let vessels = ridge(lattice.value(vessel_frame.apply(point)), 0.025);
            surface.albedo = mix(surface.albedo, [0.36, 0.03, 0.035], vessels * mask * detail * 0.6);
        }
    }

    fn ring(&self, at: &Sample, surface: &mut Surface, context: &LesionContext) {
        let &Sample { point, distance, outward, soft, pattern } = at;
        let lattice = context.lattice;
        // The active edge is broad (a few millimetres) and uneven in width.
        let width = 0.2 + 0.12 * pattern + soft;
        let band = (distance - 0.84) / width;
        let ring = bump(band);
        let inner = smoothstep(0.95, 0.6, distance);
        if ring <= 0.0 && inner <= 0.0 {
            return;
        }
        surface.albedo =
            mix(surface.albedo, context.inflamed, (ring * (0.7 + 0.3 * pattern) + inner * 0.15).min(1.0));
        // Faint brown in the cleared centre, common on darker skin.
        surface.albedo = mix(surface.albedo, scale(surface.albedo, 0.8), inner * context.darkness * 0.5);
        if band.abs() < 1.0 {
            surface.slope = surface.slope + outward * (-4.0 * band * (1.0 - band * band) / width * 0.02);
        }
        let grain = lattice.value(self.fine.apply(point));
        let flakes = smoothstep(0.6, 0.85, grain) * smoothstep(-0.6, 0.4, -band.abs()) * ring;
        surface.albedo = mix(surface.albedo, scale(surface.albedo, 1.4), flakes * 0.6);
        let (papule, _) = jittered_dot(point, 1.6, 0.18, 0.5 * ring, context.soft_mm, self.seed);
        surface.albedo = mix(surface.albedo, scale(context.inflamed, 0.85), papule * 0.5);
        surface.gloss *= 1.0 - 0.5 * ring;
        surface.texture *= 1.0 + 0.5 * ring;
    }
}

fn lerp_f(from: f32, to: f32, amount: f32) -> f32 {
    from + (to - from) * amount
}

/// A point within `spread` mm of `around`, uniformly in a disc.
fn scatter(rng: &mut ChaCha8Rng, around: Vec2, spread: f32) -> Vec2 {
    loop {
        let offset = Vec2::new(rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0));
        if offset.length_squared() <= 1.0 {
            return around + offset * spread;
        }
    }
}

/// Every lesion the subject has, in body millimetres with the lesion of interest at the origin.
/// `stage` 0 is an earlier, smaller, tidier state of the same lesion (same seed, same outline).
pub(crate) fn subject_lesions(
    finding: Finding,
    stage: u8,
    region: BodyRegion,
    skin_type: u8,
    rng: &mut ChaCha8Rng,
) -> Vec<Lesion> {
    let earlier = stage == 0;
    let growth = if earlier { 0.72 } else { 1.0 };
    let extent = if earlier { 0.6 } else { 1.0 };
    let origin = Vec2::default();
    let mut lesions = Vec::new();
    let count = |rng: &mut ChaCha8Rng, low: f32, high: f32| (rng.gen_range(low..high) * extent) as usize;

    // Background marks first, so the lesion of interest is drawn over them.
    let sun_damaged = matches!(
        finding,
        Finding::BasalCellCarcinoma
            | Finding::SquamousCellCarcinoma
            | Finding::ActinicKeratosis
            | Finding::SeborrhoeicKeratosis
    );
    let freckles = match (skin_type, sun_damaged) {
        (1..=2, true) => rng.gen_range(40..90),
        (1..=3, _) => rng.gen_range(10..35),
        _ => rng.gen_range(0..6),
    };
    for _ in 0..freckles {
        let centre = scatter(rng, origin, 220.0);
        let radius = rng.gen_range(0.6..if sun_damaged { 3.2 } else { 1.6 });
        lesions.push(Lesion::new(LesionKind::Freckle, centre, radius, 0.35, rng));
    }
    if !matches!(region, BodyRegion::Face | BodyRegion::Scalp) {
        for _ in 0..rng.gen_range(3..12) {
            let centre = scatter(rng, origin, 220.0);
            if centre.length() < 25.0 {
                continue;
            }
            let radius = rng.gen_range(0.7..2.0);
            lesions.push(Lesion::new(LesionKind::Pigmented { variety: 0.0 }, centre, radius, 0.05, rng));
        }
    }

    match finding {
        Finding::BenignNaevus => {
            let radius = rng.gen_range(2.2..3.5);
            lesions.push(Lesion::new(LesionKind::Pigmented { variety: 0.05 }, origin, radius, 0.06, rng));
        }
        Finding::Melanoma => {
            // Drawn in the same order for every stage, so the outline noise is the same lesion.
            let radius = rng.gen_range(4.0..5.5) * growth;
            let variety = if earlier { 0.3 } else { 0.95 };
            let irregularity = if earlier { 0.1 } else { 0.3 };
            lesions.push(Lesion::new(LesionKind::Pigmented { variety }, origin, radius, irregularity, rng));
        }
        Finding::BasalCellCarcinoma => {
            let radius = rng.gen_range(3.0..5.5) * growth;
            let ulcerated = rng.gen_bool(0.5);
            lesions.push(Lesion::new(LesionKind::PearlyNodule { ulcerated }, origin, radius, 0.14, rng));
        }
        Finding::SquamousCellCarcinoma => {
            let radius = rng.gen_range(5.0..8.0) * growth;
            lesions.push(Lesion::new(LesionKind::KeratoticNodule, origin, radius, 0.12, rng));
        }
        Finding::SeborrhoeicKeratosis => {
            for _ in 0..count(rng, 4.0, 12.0) {
                let centre = scatter(rng, origin, 150.0);
                if centre.length() < 20.0 {
                    continue;
                }
                let kind = LesionKind::StuckOn { darkness: rng.gen_range(0.0..0.8) };
                lesions.push(Lesion::new(kind, centre, rng.gen_range(1.5..4.5), 0.12, rng));
            }
            let radius = rng.gen_range(5.0..8.0) * growth;
            let kind = LesionKind::StuckOn { darkness: rng.gen_range(0.35..0.75) };
            lesions.push(Lesion::new(kind, origin, radius, 0.12, rng));
        }
        Finding::ActinicKeratosis => {
            for _ in 0..count(rng, 3.0, 9.0) {
                let centre = scatter(rng, origin, 60.0);
                lesions.push(Lesion::new(LesionKind::RoughPatch, centre, rng.gen_range(2.0..5.0), 0.3, rng));
            }
            let radius = rng.gen_range(4.5..7.0) * growth;
            lesions.push(Lesion::new(LesionKind::RoughPatch, origin, radius, 0.3, rng));
        }
        Finding::Psoriasis => {
            for _ in 0..count(rng, 4.0, 12.0) {
                let centre = scatter(rng, origin, 130.0);
                let radius = rng.gen_range(3.0..22.0) * growth;
                lesions.push(Lesion::new(LesionKind::Plaque, centre, radius, 0.3, rng));
            }
            let radius = rng.gen_range(18.0..30.0) * growth;
            lesions.push(Lesion::new(LesionKind::Plaque, origin, radius, 0.28, rng));
        }
        Finding::Eczema => {
            for _ in 0..count(rng, 2.0, 5.0) {
                let centre = scatter(rng, origin, 90.0);
                let radius = rng.gen_range(10.0..30.0);
                lesions.push(Lesion::new(LesionKind::EczemaPatch, centre, radius, 0.45, rng));
            }
            let radius = rng.gen_range(25.0..40.0) * growth;
            lesions.push(Lesion::new(LesionKind::EczemaPatch, origin, radius, 0.45, rng));
        }
        Finding::Acne => {
            for _ in 0..count(rng, 25.0, 50.0) {
                let centre = scatter(rng, origin, 75.0);
                lesions.push(Lesion::new(LesionKind::Macule, centre, rng.gen_range(1.0..2.5), 0.3, rng));
            }
            for _ in 0..count(rng, 50.0, 110.0) {
                let centre = scatter(rng, origin, 75.0);
                let kind = LesionKind::Comedone { open: rng.gen_bool(0.5) };
                lesions.push(Lesion::new(kind, centre, rng.gen_range(0.25..0.45), 0.1, rng));
            }
            for _ in 0..count(rng, 30.0, 60.0) {
                let centre = scatter(rng, origin, 70.0);
                let kind = LesionKind::Papule { pustule: rng.gen_bool(0.3) };
                lesions.push(Lesion::new(kind, centre, rng.gen_range(0.9..2.4), 0.15, rng));
            }
            lesions.push(Lesion::new(LesionKind::Papule { pustule: true }, origin, 2.4, 0.15, rng));
        }
        Finding::Rosacea => {
            lesions.push(Lesion::new(LesionKind::Erythema, origin, rng.gen_range(30.0..42.0), 0.4, rng));
            for _ in 0..count(rng, 12.0, 28.0) {
                let centre = scatter(rng, origin, 32.0);
                let kind = LesionKind::Papule { pustule: rng.gen_bool(0.2) };
                lesions.push(Lesion::new(kind, centre, rng.gen_range(0.9..2.0), 0.15, rng));
            }
        }
        Finding::Tinea => {
            for _ in 0..rng.gen_range(0..3) {
                let centre = scatter(rng, origin, 45.0);
                lesions.push(Lesion::new(LesionKind::Ring, centre, rng.gen_range(7.0..16.0), 0.2, rng));
            }
            let radius = rng.gen_range(16.0..26.0) * growth;
            lesions.push(Lesion::new(LesionKind::Ring, origin, radius, 0.22, rng));
        }
    }
    lesions
}
