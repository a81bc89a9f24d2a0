//! What services' OpenAPI documents share beyond [`ProblemDocument`]: the bearer scheme, and
//! [`document`], which adds to a service's document the answers the platform itself gives.

use serde_json::{Map, Value, json};
use utoipa::{PartialSchema, ToSchema};

use crate::http::problem::{CONTENT_TYPE, ProblemDocument};

/// Declares the `bearer` HTTP security scheme (`Authorization: Bearer <token>`) in a document.
///
/// ```
/// use platform::http::openapi::BearerScheme;
/// use utoipa::OpenApi;
/// #[derive(OpenApi)]
/// #[openapi(modifiers(&BearerScheme))]
/// struct ApiDoc;
/// let document = ApiDoc::openapi();
/// assert!(document.components.unwrap().security_schemes.contains_key("bearer"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The HTTP methods an OpenAPI path item can hold operations for.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A service's document as the platform serves it at `GET /openapi.json`, so that it tells the
/// whole truth about every operation:
///
/// - every operation can answer `503` (`server.request_timeout`, `server.max_concurrency`);
/// - one with a request body `400` (malformed JSON), `413` (`server.body_limit`), `415` (not
///   `application/json`) and `422` (JSON of the wrong shape), as the platform's JSON extractor
///   does;
/// - one with path or query parameters `400` (the path and query extractors);
/// - one with a security requirement `401`, with `WWW-Authenticate`.
///
/// These are added as `application/problem+json` problems where the service documented no
/// answer for that status. Every response gets the `x-request-id` header, every `429` and `503`
/// `Retry-After`, every `401` `WWW-Authenticate`; and every documented response header is
/// marked `required`, because the services send each header they document.
///
/// ```
/// use utoipa::OpenApi;
/// #[utoipa::path(get, path = "/demo", responses((status = 200, description = "Hi")))]
/// #[allow(dead_code)]
/// async fn demo() {}
/// #[derive(OpenApi)]
/// #[openapi(paths(demo))]
/// struct ApiDoc;
/// let document = platform::http::openapi::document(ApiDoc::openapi());
/// let responses = &document["paths"]["/demo"]["get"]["responses"];
/// assert!(responses["503"]["content"]["application/problem+json"].is_object());
/// assert_eq!(responses["200"]["headers"]["x-request-id"]["required"], true);
/// ```
pub fn document(openapi: utoipa::openapi::OpenApi) -> Value {
    // Serialising the document's own types cannot fail.
    let mut document = serde_json::to_value(openapi).unwrap_or_default();
    add_problem_schema(&mut document);
    let paths = document
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut());
    for item in paths {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        let shared_parameters = item.get("parameters").cloned();
        for (method, operation) in item.iter_mut() {
            if METHODS.contains(&method.as_str()) {
                add_platform_answers(operation, shared_parameters.as_ref());
            }
        }
    }
    document
}

/// `components.schemas.ProblemDocument`, which the added answers refer to.
fn add_problem_schema(document: &mut Value) {
    let Some(root) = document.as_object_mut() else {
        return;
    };
    let schemas = root
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .map(|components| components.entry("schemas").or_insert_with(|| json!({})));
    if let Some(Value::Object(schemas)) = schemas {
        schemas
            .entry(ProblemDocument::name().into_owned())
            .or_insert_with(|| serde_json::to_value(ProblemDocument::schema()).unwrap_or_default());
    }
}

fn add_platform_answers(operation: &mut Value, shared_parameters: Option<&Value>) {
    let Some(operation) = operation.as_object_mut() else {
        return;
    };
    let has_body = operation.contains_key("requestBody");
    let has_parameters = [operation.get("parameters"), shared_parameters]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .any(|parameter| matches!(parameter["in"].as_str(), Some("path" | "query")));
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|requirements| {
            requirements
                .iter()
                .any(|requirement| requirement.as_object().is_some_and(|r| !r.is_empty()))
        });
    let mut added: Vec<(&str, &str)> = vec![(
        "503",
        "The request timed out, the server is overloaded, or a dependency is unavailable",
    )];
    if has_body {
        added.extend([
            ("400", "The body is not valid JSON"),
            ("413", "The body is larger than `server.body_limit`"),
            ("415", "The body is not sent as `application/json`"),
            ("422", "The body is JSON of the wrong shape"),
        ]);
    }
    if has_parameters {
        added.push(("400", "A path or query parameter cannot be read"));
    }
    if secured {
        added.push(("401", "The credentials are missing or wrong"));
    }
    let Some(responses) = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    else {
        return;
    };
    for (status, description) in added {
        responses
            .entry(status)
            .or_insert_with(|| problem_response(description));
    }
    for (status, response) in responses.iter_mut() {
        add_headers(status, response);
    }
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            CONTENT_TYPE: {
                "schema": { "$ref": format!("#/components/schemas/{}", ProblemDocument::name()) }
            }
        }
    })
}

fn add_headers(status: &str, response: &mut Value) {
    let Some(response) = response.as_object_mut() else {
        return;
    };
    let Some(headers) = response
        .entry("headers")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    else {
        return;
    };
    let mut platform_headers: Map<String, Value> = Map::new();
    platform_headers.insert(
        crate::http::REQUEST_ID.to_owned(),
        json!({
            "description": "The request's `x-request-id`, echoed, or generated when it sent none",
            "schema": { "type": "string", "minLength": 1 }
        }),
    );
    match status {
        "429" | "503" => {
            platform_headers.insert(
                "retry-after".to_owned(),
                json!({
                    "description": "Seconds to wait before retrying",
                    "schema": { "type": "integer", "minimum": 0 }
                }),
            );
        }
        "401" => {
            platform_headers.insert(
                "www-authenticate".to_owned(),
                json!({
                    "description": "The scheme and realm to authenticate with",
                    "schema": { "type": "string", "minLength": 1 }
                }),
            );
        }
        _ => {}
    }
    for (name, header) in platform_headers {
        let known = headers
            .keys()
            .any(|known| known.eq_ignore_ascii_case(&name));
        if !known {
            headers.insert(name, header);
        }
    }
    for header in headers.values_mut() {
        if let Some(header) = header.as_object_mut() {
            header.insert("required".to_owned(), Value::Bool(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::OpenApi;

    use super::*;

    #[derive(serde::Deserialize, utoipa::ToSchema)]
    #[allow(dead_code)]
    struct Body {
        name: String,
    }

    #[utoipa::path(put, path = "/things/{id}",
        params(("id" = u32, Path, description = "The thing")),
        request_body(content = Body, content_type = "application/json"),
        responses(
            (status = 204, description = "Saved"),
            (status = 400, description = "The service's own 400"),
            (status = 429, description = "Rate limited", headers(("Retry-After" = u32, description = "Seconds"))),
        ),
        security(("bearer" = [])))]
    #[allow(dead_code)]
    async fn put_thing() {}

    #[utoipa::path(get, path = "/things", responses((status = 200, description = "Things")),
        security((), ("bearer" = [])))]
    #[allow(dead_code)]
    async fn list_things() {}

    #[derive(OpenApi)]
    #[openapi(paths(put_thing, list_things), modifiers(&BearerScheme))]
    struct ApiDoc;

    fn statuses(operation: &Value) -> Vec<&str> {
        let mut statuses: Vec<&str> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        statuses.sort_unstable();
        statuses
    }

    #[test]
    fn every_answer_the_platform_gives_is_documented_beside_the_services_own() {
        let document = document(ApiDoc::openapi());
        let put = &document["paths"]["/things/{id}"]["put"];
        assert_eq!(
            statuses(put),
            ["204", "400", "401", "413", "415", "422", "429", "503"]
        );
        assert_eq!(
            put["responses"]["400"]["description"], "The service's own 400",
            "what the service documented is kept"
        );
        assert_eq!(
            put["responses"]["415"]["content"][CONTENT_TYPE]["schema"]["$ref"],
            "#/components/schemas/ProblemDocument"
        );
        assert!(
            document["components"]["schemas"]["ProblemDocument"]["properties"]["request_id"]
                .is_object()
        );
        // No body, no parameters: the stack's 503, and a 401 for a wrong token even though
        // authentication is optional.
        let list = &document["paths"]["/things"]["get"];
        assert_eq!(statuses(list), ["200", "401", "503"]);
    }

    #[test]
    fn documented_headers_are_required_and_the_platforms_are_added() {
        let document = document(ApiDoc::openapi());
        let responses = &document["paths"]["/things/{id}"]["put"]["responses"];
        for status in ["204", "400", "401", "413", "415", "422", "429", "503"] {
            assert_eq!(
                responses[status]["headers"]["x-request-id"]["required"], true,
                "{status}"
            );
        }
        assert_eq!(
            responses["401"]["headers"]["www-authenticate"]["required"],
            true
        );
        assert_eq!(responses["503"]["headers"]["retry-after"]["required"], true);
        // The service's own spelling of a header is kept, not doubled.
        let headers = responses["429"]["headers"].as_object().unwrap();
        assert_eq!(headers["Retry-After"]["required"], true);
        assert!(!headers.contains_key("retry-after"));
        assert_eq!(
            responses["204"]["headers"]["x-request-id"]["schema"],
            json!({"type": "string", "minLength": 1})
        );
    }
}
