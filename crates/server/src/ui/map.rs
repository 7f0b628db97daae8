//! A small world map as inline SVG: coarse land outlines (drawn for this dashboard, a backdrop
//! rather than cartography) in an equirectangular projection, with a dot per place.

use maud::{Markup, html};

/// Land outlines as (longitude, latitude) rings.
const LAND: &[&[(i16, i16)]] = &[
    // North America
    &[
        (-165, 68),
        (-140, 70),
        (-120, 72),
        (-95, 73),
        (-80, 72),
        (-65, 62),
        (-60, 52),
        (-66, 45),
        (-70, 42),
        (-76, 35),
        (-81, 30),
        (-80, 25),
        (-82, 28),
        (-90, 30),
        (-97, 27),
        (-97, 21),
        (-92, 18),
        (-87, 21),
        (-84, 15),
        (-83, 9),
        (-79, 8),
        (-85, 12),
        (-92, 15),
        (-105, 20),
        (-110, 24),
        (-115, 30),
        (-118, 34),
        (-124, 40),
        (-124, 48),
        (-130, 55),
        (-140, 60),
        (-150, 60),
        (-158, 57),
        (-165, 60),
    ],
    // Greenland
    &[
        (-55, 60),
        (-45, 60),
        (-20, 70),
        (-20, 80),
        (-40, 83),
        (-65, 80),
        (-70, 76),
        (-55, 70),
    ],
    // South America
    &[
        (-80, 8),
        (-72, 12),
        (-62, 10),
        (-50, 2),
        (-35, -5),
        (-38, -13),
        (-40, -22),
        (-48, -26),
        (-53, -34),
        (-58, -38),
        (-65, -42),
        (-68, -52),
        (-72, -50),
        (-74, -42),
        (-72, -30),
        (-70, -18),
        (-76, -14),
        (-81, -5),
        (-80, 1),
    ],
    // Europe
    &[
        (-10, 36),
        (-9, 43),
        (-2, 44),
        (-5, 48),
        (2, 51),
        (5, 53),
        (8, 57),
        (5, 62),
        (15, 69),
        (25, 71),
        (40, 68),
        (45, 67),
        (60, 70),
        (60, 55),
        (50, 45),
        (40, 41),
        (28, 41),
        (26, 38),
        (23, 36),
        (20, 40),
        (16, 38),
        (12, 44),
        (8, 44),
        (3, 43),
        (0, 38),
        (-5, 36),
    ],
    // Great Britain and Ireland
    &[
        (-5, 50),
        (1, 51),
        (0, 53),
        (-3, 56),
        (-5, 58),
        (-6, 55),
        (-3, 54),
    ],
    &[(-10, 52), (-6, 52), (-6, 55), (-10, 54)],
    // Asia
    &[
        (60, 70),
        (80, 73),
        (100, 78),
        (120, 73),
        (140, 72),
        (160, 70),
        (180, 68),
        (180, 65),
        (170, 60),
        (160, 58),
        (163, 52),
        (155, 50),
        (140, 48),
        (135, 43),
        (130, 42),
        (126, 37),
        (121, 31),
        (122, 25),
        (110, 20),
        (108, 12),
        (105, 9),
        (100, 13),
        (98, 8),
        (103, 1),
        (98, 16),
        (92, 22),
        (88, 22),
        (80, 15),
        (77, 8),
        (72, 20),
        (67, 25),
        (57, 25),
        (50, 30),
        (44, 38),
        (40, 41),
        (50, 45),
        (60, 55),
    ],
    // Arabia
    &[
        (35, 30),
        (43, 13),
        (52, 15),
        (59, 22),
        (56, 26),
        (50, 30),
        (48, 30),
        (40, 32),
    ],
    // Africa
    &[
        (-17, 21),
        (-17, 15),
        (-8, 5),
        (5, 5),
        (9, 4),
        (12, -5),
        (14, -17),
        (18, -34),
        (25, -34),
        (33, -26),
        (40, -15),
        (40, -5),
        (51, 12),
        (43, 12),
        (38, 18),
        (33, 28),
        (32, 31),
        (20, 32),
        (10, 37),
        (-1, 36),
        (-6, 36),
        (-10, 30),
    ],
    &[(44, -25), (47, -25), (50, -15), (49, -12), (44, -17)],
    // Japan
    &[
        (130, 31),
        (135, 34),
        (140, 35),
        (142, 40),
        (141, 45),
        (139, 40),
        (133, 35),
    ],
    // Sumatra, Java, Borneo
    &[(95, 5), (100, 2), (106, -6), (114, -8), (105, -7), (98, -1)],
    &[(109, 1), (117, 7), (119, 1), (116, -4), (110, -3)],
    // Australia, New Zealand
    &[
        (114, -22),
        (122, -18),
        (130, -12),
        (137, -12),
        (142, -11),
        (146, -19),
        (153, -25),
        (151, -34),
        (146, -39),
        (138, -35),
        (132, -32),
        (124, -34),
        (115, -34),
    ],
    &[
        (172, -35),
        (178, -38),
        (174, -41),
        (169, -46),
        (167, -45),
        (172, -40),
    ],
];

fn xy(lat: f64, lon: f64) -> (f64, f64) {
    ((lon + 180.0) * 2.0, (85.0 - lat) * 2.0)
}

/// One place on the map.
pub struct Dot {
    pub lat: f64,
    pub lon: f64,
    pub count: u64,
    /// Shown on hover (plain text; escaped here).
    pub label: String,
}

/// The map with `dots`, sized by count.
pub fn world(dots: &[Dot]) -> Markup {
    let max = dots.iter().map(|d| d.count).max().unwrap_or(1).max(1) as f64;
    html! {
        svg.map viewBox="0 0 720 290" role="img" aria-label="World map of alert sources" {
            @for lat in [-30, 0, 30, 60] {
                @let y = xy(lat as f64, 0.0).1;
                line.grat x1="0" y1=(y) x2="720" y2=(y) {}
            }
            @for ring in LAND {
                polygon.land points=(points(ring)) {}
            }
            @for d in dots {
                @let (x, y) = xy(d.lat, d.lon);
                @let r = 3.0 + 9.0 * (d.count as f64 / max).sqrt();
                circle.dot cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r=(format!("{r:.1}")) {
                    title { (d.label) }
                }
            }
        }
    }
}

/// An outline's corners as SVG points.
fn points(ring: &[(i16, i16)]) -> String {
    ring.iter()
        .map(|(lon, lat)| {
            let (x, y) = xy(*lat as f64, *lon as f64);
            format!("{x:.0},{y:.0}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_land_where_their_coordinates_say() {
        let svg = world(&[Dot {
            lat: 52.0,
            lon: 5.0,
            count: 4,
            label: "NL <4 alerts>".into(),
        }])
        .into_string();
        // 5°E, 52°N → x = 370, y = 66.
        assert!(svg.contains("cx=\"370.0\" cy=\"66.0\""), "{svg}");
        assert!(svg.contains("NL &lt;4 alerts&gt;"));
        assert_eq!(svg.matches("<polygon").count(), LAND.len());
    }
}
