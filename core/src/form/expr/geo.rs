//! Lengths and areas on the Earth for `distance()` and `area()`, as
//! JavaRosa computes them: a sphere of the WGS 84 equatorial radius;
//! distances by the haversine formula, areas by the spherical polygon
//! formula of Chamberlain and Duquette (NASA JPL, 2007), which JavaRosa's
//! GeoUtils uses too.

const EARTH_RADIUS_M: f64 = 6_378_137.0;

/// The length in metres of the line through `points` (latitude,
/// longitude in degrees), in order.
pub(super) fn distance(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|pair| {
            let ((lat1, lon1), (lat2, lon2)) = (pair[0], pair[1]);
            let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
            let (dp, dl) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
            let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
            2.0 * EARTH_RADIUS_M * h.sqrt().asin()
        })
        .sum()
}

/// The area in square metres of the polygon through `points` (closed or
/// not); fewer than three points enclose nothing.
pub(super) fn area(points: &[(f64, f64)]) -> f64 {
    if points.len() < 3 {
        return 0.0;
    }
    let sum: f64 = (0..points.len())
        .map(|i| {
            let (lat1, lon1) = points[i];
            let (lat2, lon2) = points[(i + 1) % points.len()];
            (lon2 - lon1).to_radians() * (2.0 + lat1.to_radians().sin() + lat2.to_radians().sin())
        })
        .sum();
    (sum * EARTH_RADIUS_M * EARTH_RADIUS_M / 2.0).abs()
}
