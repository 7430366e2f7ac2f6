//! The name of every declared field, as constants: the declarations in
//! this module's parent use them, and code that reads or writes a field
//! names it through them, so a field is spelt once and a misspelt one
//! does not compile. (The SQL of `store/migrations` and the JSON of
//! docs/protocol.md spell a few of them too; tests check those.)

/// Fields of `traders`.
pub mod trader {
    /// Full name as the trader gives it.
    pub const FULL_NAME: &str = "full_name";
    /// Sex.
    pub const SEX: &str = "sex";
    /// Year of birth.
    pub const YEAR_OF_BIRTH: &str = "year_of_birth";
    /// Age band.
    pub const AGE_BAND: &str = "age_band";
    /// Nationality.
    pub const NATIONALITY: &str = "nationality";
    /// Phone number.
    pub const PHONE: &str = "phone";
    /// Goods usually carried.
    pub const MAIN_GOODS: &str = "main_goods";
    /// Border post where registered.
    pub const BORDER_POST: &str = "border_post";
    /// Consent to be registered and surveyed.
    pub const CONSENT_GIVEN: &str = "consent_given";
    /// When consent was given.
    pub const CONSENT_AT: &str = "consent_at";
    /// The survivor a merged duplicate stands for (see `registry`).
    pub const MERGED_INTO: &str = "merged_into";
}

/// Fields of `submissions`.
pub mod submission {
    /// XLSForm `form_id`.
    pub const FORM_ID: &str = "form_id";
    /// XLSForm version.
    pub const FORM_VERSION: &str = "form_version";
    /// Draft or complete.
    pub const STATUS: &str = "status";
    /// The enumerator's user name.
    pub const ENUMERATOR: &str = "enumerator";
    /// Device id of the last save.
    pub const DEVICE: &str = "device";
    /// The trader interviewed.
    pub const TRADER_ID: &str = "trader_id";
    /// Start, device clock.
    pub const STARTED_AT: &str = "started_at";
    /// End, device clock.
    pub const ENDED_AT: &str = "ended_at";
    /// Start, server-corrected.
    pub const STARTED_AT_SERVER: &str = "started_at_server";
    /// End, server-corrected.
    pub const ENDED_AT_SERVER: &str = "ended_at_server";
    /// Time spent filling the form.
    pub const DURATION_MS: &str = "duration_ms";
    /// Server minus device time used for the corrections.
    pub const CLOCK_OFFSET_MS: &str = "clock_offset_ms";
    /// Where the interview took place.
    pub const LOCATION: &str = "location";
    /// The answers (a map: `answers/<question>`).
    pub const ANSWERS: &str = "answers";
    /// What the form computes (a map, keyed as answers).
    pub const DERIVED: &str = "derived";
}

/// Fields of `awareness_sessions`.
pub mod session {
    /// Topic.
    pub const TOPIC: &str = "topic";
    /// Topic, when `other`.
    pub const TOPIC_OTHER: &str = "topic_other";
    /// Date held.
    pub const DATE: &str = "date";
    /// Border post.
    pub const BORDER_POST: &str = "border_post";
    /// Side of the border.
    pub const SIDE: &str = "side";
    /// Facilitator's user name.
    pub const FACILITATOR: &str = "facilitator";
    /// Language spoken.
    pub const LANGUAGE: &str = "language";
}

/// Fields of `attendance`.
pub mod attendance {
    /// The session.
    pub const SESSION_ID: &str = "session_id";
    /// The attendee, if registered.
    pub const TRADER_ID: &str = "trader_id";
    /// A walk-in's name or code.
    pub const WALK_IN_NAME: &str = "walk_in_name";
    /// Sex.
    pub const SEX: &str = "sex";
    /// Age band.
    pub const AGE_BAND: &str = "age_band";
    /// Nationality.
    pub const NATIONALITY: &str = "nationality";
    /// A cross-border trader.
    pub const IS_TRADER: &str = "is_trader";
    /// Facilitator who registered the attendee.
    pub const REGISTERED_BY: &str = "registered_by";
}
