//! A query-string extractor whose rejection is a 400 problem naming the parameter.

use axum::extract::FromRequestParts;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;

use crate::http::problem::Problem;

/// `axum::extract::Query`, answering a bad query string with a 400 problem.
///
/// ```
/// use platform::http::query::Query;
/// #[derive(serde::Deserialize)]
/// struct Page { limit: Option<u32> }
/// async fn handler(Query(page): Query<Page>) -> String {
///     format!("{:?}", page.limit)
/// }
/// let _router: axum::Router = axum::Router::new().route("/", axum::routing::get(handler));
/// ```
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            "Invalid query string",
        )
        .with_detail(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::FromRequestParts;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Filter {
        order: Option<String>,
    }

    #[tokio::test]
    async fn a_repeated_parameter_is_a_400_that_names_it() {
        let request = axum::http::Request::get("/notes?order=a&order=b")
            .body(())
            .unwrap();
        let (mut parts, ()) = request.into_parts();
        let problem = Query::<Filter>::from_request_parts(&mut parts, &())
            .await
            .expect_err("a repeated parameter is refused");
        let body = serde_json::to_value(&problem).unwrap();
        assert_eq!(body["status"], 400);
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("`order`")),
            "{body}"
        );
    }
}
