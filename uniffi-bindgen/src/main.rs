//! uniffi's binding generator, at the version this workspace builds with.
//! `scripts/bindings` runs it in library mode.

fn main() {
    uniffi::uniffi_bindgen_main()
}
