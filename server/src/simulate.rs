//! A field day, simulated (filled in below).
