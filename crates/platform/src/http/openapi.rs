//! What services' OpenAPI documents share beyond [`ProblemDocument`](super::problem::ProblemDocument).

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
