//! The form engine: XLSForm definitions, their expression language, and
//! (coming) validation and the form-filling session. One engine, used by
//! every device and the server, so that all enforce the same rules.

pub mod expr;
