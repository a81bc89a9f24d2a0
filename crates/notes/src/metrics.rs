//! notes' own metrics: their names, their descriptions, and the one helper that records each, so
//! no other module spells a metric name or a label.

/// Sign-in attempts by outcome: `success`, `wrong_password`, `unknown_user`, `rate_limited`,
/// `invalid` (a field missing). Never labelled with the email.
pub const SIGNINS_TOTAL: &str = "notes_signins_total";

/// Every `outcome` of [`SIGNINS_TOTAL`].
pub const SIGNIN_OUTCOMES: [&str; 5] = [
    "success",
    "wrong_password",
    "unknown_user",
    "rate_limited",
    "invalid",
];

/// Password hashes refused because the hashing budget stayed full for `signin.hash_wait`.
pub const PASSWORD_HASHES_SHED_TOTAL: &str = "notes_password_hashes_shed_total";

/// Describes notes' metrics to the recorder and sets every series to zero, so dashboards and
/// alerts see each one (and each outcome) from start-up, before the first event.
pub fn describe() {
    ::metrics::describe_counter!(
        SIGNINS_TOTAL,
        "Sign-in attempts (form and API tokens) by outcome."
    );
    ::metrics::describe_counter!(
        PASSWORD_HASHES_SHED_TOTAL,
        "Password hashes refused with 503 because signin.hash_memory_budget stayed full."
    );
    ::metrics::counter!(PASSWORD_HASHES_SHED_TOTAL).increment(0);
    for outcome in SIGNIN_OUTCOMES {
        ::metrics::counter!(SIGNINS_TOTAL, "outcome" => outcome).increment(0);
    }
}

/// Counts one sign-in attempt (web or API token request) by outcome, one of
/// [`SIGNIN_OUTCOMES`].
pub fn count_signin(outcome: &'static str) {
    ::metrics::counter!(SIGNINS_TOTAL, "outcome" => outcome).increment(1);
}

/// Counts one password hash refused for want of a turn.
pub fn count_password_hash_shed() {
    ::metrics::counter!(PASSWORD_HASHES_SHED_TOTAL).increment(1);
}
