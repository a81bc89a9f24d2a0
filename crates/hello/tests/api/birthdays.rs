//! The birthday API, run against every storage backend.

use platform::testing::assert_problem;
use serde_json::json;
use time::Date;
use time::macros::date;

use crate::helpers::{HelloApp, unique_username};

/// Generates, for each backend, one test per scenario `async fn(&HelloApp)`; "today" is [`TODAY`].
macro_rules! on_every_backend {
    ($($backend:ident => $variant:ident),* ; $scenarios:tt) => {
        $( on_every_backend!(@backend $backend $variant $scenarios); )*
    };
    (@backend $backend:ident $variant:ident [$($scenario:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let Some(app) = crate::helpers::spawn_on(platform::testing::Backend::$variant, super::TODAY).await else { return };
                    super::$scenario(&app).await;
                    assert!(app.app.shutdown().await, "drains");
                }
            )*
        }
    };
}

const TODAY: Date = date!(2024 - 06 - 15);

on_every_backend!(
    memory => Memory, sqlite => Sqlite, postgres => Postgres, mysql => Mysql, redis => Redis,
    dynamodb => DynamoDb;
    [
        saved_birthday_is_greeted_with_days_left,
        saving_again_replaces_the_date,
        birthday_today_is_celebrated,
        unknown_user_is_a_404_problem,
        invalid_dates_are_422_problems_and_store_nothing,
        usernames_are_case_sensitive,
    ]
);

async fn saved_birthday_is_greeted_with_days_left(app: &HelloApp) {
    let user = unique_username();
    let response = app.put_date(&user, "1990-06-16").await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.content_length(), Some(0));
    assert_eq!(
        app.greeting(&user).await,
        format!("Hello, {user}! Your birthday is in 1 day")
    );
}

async fn saving_again_replaces_the_date(app: &HelloApp) {
    let user = unique_username();
    assert_eq!(app.put_date(&user, "1990-06-16").await.status(), 204);
    assert_eq!(app.put_date(&user, "1990-06-25").await.status(), 204);
    assert_eq!(
        app.greeting(&user).await,
        format!("Hello, {user}! Your birthday is in 10 days")
    );
}

async fn birthday_today_is_celebrated(app: &HelloApp) {
    let user = unique_username();
    assert_eq!(app.put_date(&user, "2000-06-15").await.status(), 204);
    assert_eq!(
        app.greeting(&user).await,
        format!("Hello, {user}! Happy birthday!")
    );
}

async fn unknown_user_is_a_404_problem(app: &HelloApp) {
    let user = unique_username();
    let problem = assert_problem(app.get_birthday(&user).await, 404).await;
    assert!(
        problem["detail"].as_str().unwrap().contains(&user),
        "{problem}"
    );
}

async fn invalid_dates_are_422_problems_and_store_nothing(app: &HelloApp) {
    let user = unique_username();
    for (date, says) in [
        ("2024-06-15", "before today"),
        ("2024-06-16", "before today"),
        ("2999-01-01", "before today"),
        ("2021-02-30", "calendar date"),
        ("2023-02-29", "calendar date"),
        ("1990-13-01", "calendar date"),
        ("1990-1-1", "calendar date"),
        ("15/06/1990", "calendar date"),
    ] {
        let problem = assert_problem(app.put_date(&user, date).await, 422).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{date}: {problem}"
        );
    }
    assert_problem(app.get_birthday(&user).await, 404).await;
}

async fn usernames_are_case_sensitive(app: &HelloApp) {
    let lower = unique_username();
    let upper = lower.to_ascii_uppercase();
    assert_eq!(app.put_date(&lower, "1990-06-16").await.status(), 204);
    assert_problem(app.get_birthday(&upper).await, 404).await;
}

/// Greeting for a date of birth at a pinned today, on the default (memory) backend.
async fn greeting_at(today: Date, date_of_birth: &str) -> (String, String) {
    let app = crate::helpers::spawn_with("memory:", today, &[]).await;
    let user = unique_username();
    assert_eq!(
        app.put_date(&user, date_of_birth).await.status(),
        204,
        "{date_of_birth} at {today}"
    );
    let greeting = app.greeting(&user).await;
    (user, greeting)
}

#[tokio::test]
async fn days_left_count_leap_days() {
    for (today, born, days) in [
        (date!(2023 - 06 - 15), "1990-06-14", 365), // next birthday 2024-06-14, across 2024-02-29
        (date!(2024 - 06 - 15), "1990-06-14", 364),
        (date!(2024 - 01 - 02), "1990-01-01", 365),
        (date!(2023 - 01 - 02), "1990-01-01", 364),
    ] {
        let (user, greeting) = greeting_at(today, born).await;
        assert_eq!(
            greeting,
            format!("Hello, {user}! Your birthday is in {days} days"),
            "born {born}, today {today}"
        );
    }
}

#[tokio::test]
async fn leap_day_birthdays_are_on_the_28th_in_common_years() {
    let (user, greeting) = greeting_at(date!(2024 - 02 - 29), "2000-02-29").await;
    assert_eq!(greeting, format!("Hello, {user}! Happy birthday!"));
    let (user, greeting) = greeting_at(date!(2023 - 02 - 28), "2000-02-29").await;
    assert_eq!(greeting, format!("Hello, {user}! Happy birthday!"));
    let (user, greeting) = greeting_at(date!(2024 - 02 - 28), "2000-02-29").await;
    assert_eq!(
        greeting,
        format!("Hello, {user}! Your birthday is in 1 day")
    );
    let (user, greeting) = greeting_at(date!(2023 - 03 - 01), "2000-02-29").await;
    assert_eq!(
        greeting,
        format!("Hello, {user}! Your birthday is in 365 days")
    );
}

#[tokio::test]
async fn invalid_usernames_are_400_problems() {
    let app = crate::helpers::spawn_with("memory:", TODAY, &[]).await;
    let too_long = "a".repeat(65);
    for (username, why) in [
        ("bob1", "digits"),
        ("bob%20smith", "a space"),
        ("j%C3%B6hn", "non-ASCII"),
        ("al-ice", "punctuation"),
        (too_long.as_str(), "over 64 letters"),
        ("", "empty"),
    ] {
        let put = app.put_date(username, "1990-01-01").await;
        let problem = assert_problem(put, 400).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("username"),
            "{why}: {problem}"
        );
        assert_problem(app.get_birthday(username).await, 400).await;
    }
    let longest = "a".repeat(64);
    assert_eq!(app.put_date(&longest, "1990-01-01").await.status(), 204);
}

#[tokio::test]
async fn bad_bodies_are_4xx_problems_that_say_what_is_wrong() {
    let app = crate::helpers::spawn_with("memory:", TODAY, &[("server.body_limit", "1KiB")]).await;
    let user = unique_username();
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (
            Some("application/json"),
            "{\"dateOfBirth\": ".to_owned(),
            400,
            "not valid JSON",
        ),
        (
            Some("application/json"),
            "not json".to_owned(),
            400,
            "not valid JSON",
        ),
        (
            Some("text/plain"),
            "{\"dateOfBirth\":\"1990-01-01\"}".to_owned(),
            415,
            "application/json",
        ),
        (
            None,
            "{\"dateOfBirth\":\"1990-01-01\"}".to_owned(),
            415,
            "application/json",
        ),
        (
            Some("application/json"),
            "{}".to_owned(),
            422,
            "dateOfBirth",
        ),
        (
            Some("application/json"),
            "{\"dateOfBirth\": 19900101}".to_owned(),
            422,
            "dateOfBirth",
        ),
        (
            Some("application/json"),
            "{\"dateOfBirth\": null}".to_owned(),
            422,
            "dateOfBirth",
        ),
        (Some("application/json"), "[]".to_owned(), 422, ""),
        (
            Some("application/json"),
            format!(
                "{{\"dateOfBirth\":\"1990-01-01\",\"pad\":\"{}\"}}",
                "x".repeat(2048)
            ),
            413,
            "larger",
        ),
    ];
    for (content_type, body, status, says) in cases {
        let problem =
            assert_problem(app.put_raw(&user, content_type, body.clone()).await, status).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{content_type:?} {body:.40}: {problem}"
        );
    }
    assert_problem(app.get_birthday(&user).await, 404).await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_too() {
    let app = crate::helpers::spawn_with("memory:", TODAY, &[("server.body_limit", "1KiB")]).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"dateOfBirth\":\"1990-01-01\",\"pad\":\"".to_vec()),
        Ok(vec![b'x'; 4096]),
        Ok(b"\"}".to_vec()),
    ];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = app
        .put_raw(&unique_username(), Some("application/json"), body)
        .await;
    assert_problem(response, 413).await;
}

#[tokio::test]
async fn extra_json_members_are_ignored() {
    let app = crate::helpers::spawn_with("memory:", TODAY, &[]).await;
    let user = unique_username();
    let response = app
        .put_birthday(&user, json!({"dateOfBirth": "1990-06-20", "nickname": "x"}))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.greeting(&user).await,
        format!("Hello, {user}! Your birthday is in 5 days")
    );
}
