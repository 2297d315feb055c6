//! The OpenAPI 3.1 document of the REST API, generated from the code: the `#[utoipa::path]`
//! attribute of every handler registered in [`crate::routes::table`] (paths, parameters,
//! bodies, success answers, and the problem names the handler can answer in its
//! `x-problem-types` extension), the `ToSchema` view types, and the [`ProblemKind`] catalogue.
//! [`finish`] turns each operation's problem names into `application/problem+json` responses
//! grouped by status, and adds the shared components (problem schemas, `Retry-After`, the
//! bearer scheme).
//!
//! The committed `gateway/openapi.json` is [`committed_text`]; regenerate it with
//! `cargo run -p gateway --bin gateway-openapi > gateway/openapi.json`.

use platform::problem::ProblemKind;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vaxbook REST API",
        version = "1.0.0",
        description = "The public REST API of vaxbook for web and mobile frontends. Bodies are JSON; times are RFC 3339 with the KST offset; every error is application/problem+json (RFC 9457). Every request carries X-Device-Id; requests after verification carry `Authorization: Bearer <access token>`. When the gateway is at capacity any request may be answered 503 `overloaded` with Retry-After."
    ),
    components(schemas(crate::routes::ops::ProblemName, crate::routes::dev::DevProvider)),
    tags(
        (name = "auth", description = "Identity verification and sessions."),
        (name = "eligibility", description = "May the verified person book now."),
        (name = "booking", description = "Centers, slots and the caller's bookings."),
        (name = "queue", description = "The waiting room: a place per verified person, the admission grant booking calls carry as X-Admission."),
        (name = "operations", description = "Probes, metrics, this document, problem explanations."),
        (name = "dev", description = "Only in `vaxbook dev`; 404 everywhere else.")
    )
)]
struct ApiDoc;

/// The document before any route is added: info and tags.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The whole document; the `/dev` routes only `with_dev_routes`.
pub fn document(with_dev_routes: bool) -> Value {
    finish(routes::table(with_dev_routes).into_openapi())
}

/// The committed `gateway/openapi.json`: every route, the dev ones included (marked
/// `x-dev-only`), pretty-printed with a final newline.
pub fn committed_text() -> String {
    let mut text = serde_json::to_string_pretty(&document(true)).unwrap_or_default();
    text.push('\n');
    text
}

/// The served `/openapi.json`: the routes this gateway serves, with `servers` set to the
/// public base URL.
pub fn served_document(public_base_url: &str, with_dev_routes: bool) -> String {
    let mut document = document(with_dev_routes);
    if let Some(object) = document.as_object_mut() {
        object.insert("servers".to_owned(), json!([{ "url": public_base_url }]));
    }
    document.to_string()
}

const PROBLEM_JSON: &str = "application/problem+json";

/// A problem name with a schema more precise than `Problem`.
fn kind_schema(kind: ProblemKind) -> &'static str {
    match kind.name() {
        "device-locked" => "DeviceLockedProblem",
        "not-eligible" => "NotEligibleProblem",
        "cancellation-closed" => "CancellationClosedProblem",
        "modification-not-allowed" => "ModificationNotAllowedProblem",
        _ => "Problem",
    }
}

/// Problem groups that are described once under `components/responses`.
const SHARED_RESPONSES: &[(&str, u16, &[&str], &str)] = &[
    (
        "InvalidRequest",
        400,
        &["invalid-request"],
        "A field, header or the body is missing or malformed.",
    ),
    (
        "Unauthenticated",
        401,
        &["unauthenticated", "session-expired"],
        "No valid access token for this device, or the session has ended.",
    ),
    (
        "Forbidden",
        403,
        &["forbidden", "citizen-token-required"],
        "The caller may not do this, or presented an agent's or operator's token to the citizens' API.",
    ),
    ("NotFound", 404, &["not-found"], "No such resource."),
    (
        "Internal",
        500,
        &["internal"],
        "Something unexpected happened; it has been logged.",
    ),
    (
        "Unavailable",
        503,
        &["overloaded", "unavailable"],
        "The gateway is at capacity, or a service behind it does not answer.",
    ),
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn problem_types_sentence(names: &[&str]) -> String {
    format!("Problem types: {}.", names.join(", "))
}

fn retry_after_header() -> Value {
    json!({ "Retry-After": { "$ref": "#/components/headers/RetryAfter" } })
}

fn promises_retry(status: u16, kinds: &[ProblemKind]) -> bool {
    status == 429 || status == 503 || kinds.iter().any(|kind| kind.name() == "device-locked")
}

/// The problem+json response for `kinds`, all of HTTP `status`.
fn problem_response(status: u16, kinds: &[ProblemKind], existing: Option<Value>) -> Value {
    let names: Vec<&str> = kinds.iter().map(|kind| kind.name()).collect();
    if existing.is_none()
        && let Some((name, ..)) = SHARED_RESPONSES
            .iter()
            .find(|(_, shared_status, shared, _)| *shared_status == status && *shared == names)
    {
        return json!({ "$ref": format!("#/components/responses/{name}") });
    }
    let mut response = match existing {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let description = match response.get("description").and_then(Value::as_str) {
        Some(text) if !text.is_empty() => format!("{text} {}", problem_types_sentence(&names)),
        _ => {
            let titles: Vec<&str> = kinds.iter().map(|kind| kind.title()).collect();
            format!("{}. {}", titles.join("; "), problem_types_sentence(&names))
        }
    };
    response.insert("description".to_owned(), Value::String(description));
    if !response.contains_key("content") {
        let mut schemas: Vec<&str> = Vec::new();
        for kind in kinds {
            let schema = kind_schema(*kind);
            if !schemas.contains(&schema) {
                schemas.push(schema);
            }
        }
        let schema = match schemas.as_slice() {
            [one] => schema_ref(one),
            many => {
                json!({ "anyOf": many.iter().map(|name| schema_ref(name)).collect::<Vec<_>>() })
            }
        };
        response.insert(
            "content".to_owned(),
            json!({ PROBLEM_JSON: { "schema": schema } }),
        );
    }
    if promises_retry(status, kinds) {
        response.insert("headers".to_owned(), retry_after_header());
    }
    response.insert("x-problem-types".to_owned(), json!(names));
    Value::Object(response)
}

/// Replaces each operation's `x-problem-types` (a list of problem names) by problem responses,
/// adds the 405 every path answers for other methods, and adds the shared components.
pub fn finish(openapi: utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(&openapi).unwrap_or_else(|_| json!({}));
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                if let Some(operation) = operation.as_object_mut() {
                    finish_operation(operation);
                }
            }
        }
    }
    if let Some(object) = document.as_object_mut() {
        object.insert("openapi".to_owned(), Value::String("3.1.0".to_owned()));
        let components = object
            .entry("components")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(components) = components {
            add_components(components);
        }
    }
    document
}

fn finish_operation(operation: &mut Map<String, Value>) {
    let names: Vec<String> = match operation.remove("x-problem-types") {
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(|name| name.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let kinds: Vec<ProblemKind> = names
        .iter()
        .filter_map(|name| ProblemKind::from_name(name))
        .collect();
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    let mut statuses: Vec<u16> = kinds.iter().map(|kind| kind.http_status()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    for status in statuses {
        let of_status: Vec<ProblemKind> = kinds
            .iter()
            .copied()
            .filter(|kind| kind.http_status() == status)
            .collect();
        let key = status.to_string();
        let existing = responses.remove(&key);
        responses.insert(key, problem_response(status, &of_status, existing));
    }
    responses.insert(
        "405".to_owned(),
        json!({ "$ref": "#/components/responses/MethodNotAllowed" }),
    );
}

/// Rules of the request bodies that a single struct schema cannot say: which fields each
/// built-in provider needs, and that a verification is answered with exactly one answer. The
/// variants of `StartVerificationRequest` have disjoint `provider` values and those of
/// `CompleteVerificationRequest` forbid each other's fields, so exactly one variant matches any
/// valid body. Providers added to auth-svc later are listed by `GET /v1/auth/providers`.
fn refine_request_schemas(schemas: &mut Map<String, Value>) {
    if let Some(start) = schemas.get("StartVerificationRequest").cloned() {
        let phone_pattern = start["properties"]["phone"]["pattern"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let variant = |title: &str, providers: &[&str], needs_phone: bool| {
            let mut variant = start.clone();
            variant["title"] = json!(title);
            variant["properties"]["provider"] = json!({ "type": "string", "enum": providers });
            if needs_phone {
                variant["properties"]["phone"]["type"] = json!("string");
                variant["properties"]["carrier"] =
                    json!({ "$ref": "#/components/schemas/Carrier" });
                if let Some(required) = variant["required"].as_array_mut() {
                    required.push(json!("phone"));
                    required.push(json!("carrier"));
                }
            } else {
                variant["properties"]["phone"]["pattern"] =
                    json!(format!("^\\s*$|{phone_pattern}"));
            }
            variant
        };
        schemas.insert(
            "StartVerificationRequest".to_owned(),
            json!({
                "description": "Who to verify, and with which provider: the phone provider needs `phone` and `carrier` (the carriers' agency checks them before any code is sent); the simple certificates (kakao, naver, pass) and financial certificates need only `name` and `rrn`.",
                "oneOf": [
                    variant("Phone verification", &["phone"], true),
                    variant("App verification", &["kakao", "naver", "pass"], false),
                    variant("Financial certificate", &["financial_cert"], false),
                ]
            }),
        );
    }
    // Exactly one answer: an `otp`, an `assertion`, or a `signature` with its `certificate`;
    // the other answer members are absent or `null`.
    if let Some(complete) = schemas.get_mut("CompleteVerificationRequest") {
        let absent = json!({ "type": "null" });
        complete["oneOf"] = json!([
            {
                "title": "One-time code (phone)",
                "required": ["otp"],
                "properties": {
                    "otp": { "type": "string" },
                    "assertion": absent, "signature": absent, "certificate": absent
                }
            },
            {
                "title": "Signed assertion (kakao, naver, pass)",
                "required": ["assertion"],
                "properties": {
                    "assertion": { "type": "string" },
                    "otp": absent, "signature": absent, "certificate": absent
                }
            },
            {
                "title": "Certificate and signature (financial_cert)",
                "required": ["signature", "certificate"],
                "properties": {
                    "signature": { "type": "string" },
                    "certificate": { "type": "string" },
                    "otp": absent, "assertion": absent
                }
            }
        ]);
    }
}

fn time_member(description: &str) -> Value {
    json!({
        "type": "string",
        "format": "date-time",
        "description": description,
        "examples": ["2021-08-09T20:00:00+09:00"]
    })
}

fn add_components(components: &mut Map<String, Value>) {
    components.insert(
        "securitySchemes".to_owned(),
        json!({ "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }),
    );
    components.insert(
        "headers".to_owned(),
        json!({ "RetryAfter": {
            "description": "Seconds to wait before retrying.",
            "schema": { "type": "integer", "minimum": 1 }
        }}),
    );
    let mut responses = Map::new();
    for (name, _, kinds, description) in SHARED_RESPONSES {
        let mut response = json!({
            "description": format!("{description} {}", problem_types_sentence(kinds)),
            "content": { PROBLEM_JSON: { "schema": schema_ref("Problem") } },
            "x-problem-types": kinds,
        });
        if *name == "Unavailable" {
            response["headers"] = retry_after_header();
        }
        responses.insert((*name).to_owned(), response);
    }
    responses.insert(
        "MethodNotAllowed".to_owned(),
        json!({
            "description": format!(
                "The path does not accept this method; see the Allow header. {}",
                problem_types_sentence(&["invalid-request"])
            ),
            "headers": { "Allow": { "schema": { "type": "string" } } },
            "content": { PROBLEM_JSON: { "schema": schema_ref("Problem") } },
            "x-problem-types": ["invalid-request"],
        }),
    );
    components.insert("responses".to_owned(), Value::Object(responses));

    let schemas = components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(schemas) = schemas else {
        return;
    };
    refine_request_schemas(schemas);
    let catalogue: Map<String, Value> = ProblemKind::ALL
        .iter()
        .map(|kind| (kind.name().to_owned(), Value::from(kind.http_status())))
        .collect();
    schemas.insert(
        "Problem".to_owned(),
        json!({
            "type": "object",
            "description": "RFC 9457 problem details. `type` is `<public base URL>/problems/<name>`; GET it for an explanation. Extra members depend on the type.",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {
                    "type": "string",
                    "format": "uri",
                    "examples": ["https://vaxbook.example/problems/slot-full"]
                },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
                "retry_after": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Seconds to wait before retrying; equals the Retry-After header."
                },
                "reason": {
                    "type": "string",
                    "description": "not-eligible: not-in-age-group, window-not-open, window-closed, excluded-priority-target, channel-not-allowed, proxy-not-allowed, campaign-closed, no-campaign."
                },
                "allowed_from": time_member("RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00."),
                "cancellable_until": {
                    "type": "string",
                    "format": "date",
                    "description": "YYYY-MM-DD (KST)."
                }
            },
            "additionalProperties": true,
            "x-problem-types": catalogue,
        }),
    );
    let extend = |extra: Value| json!({ "allOf": [schema_ref("Problem"), extra] });
    schemas.insert(
        "DeviceLockedProblem".to_owned(),
        extend(json!({ "required": ["retry_after"] })),
    );
    schemas.insert(
        "NotEligibleProblem".to_owned(),
        extend(json!({ "properties": { "reason": { "type": "string" } } })),
    );
    schemas.insert(
        "CancellationClosedProblem".to_owned(),
        extend(json!({ "properties": { "cancellable_until": {
            "type": "string", "format": "date", "description": "YYYY-MM-DD (KST)."
        }}})),
    );
    schemas.insert(
        "ModificationNotAllowedProblem".to_owned(),
        extend(json!({ "properties": {
            "allowed_from": time_member("RFC 3339 with the KST offset, e.g. 2021-08-09T20:00:00+09:00.")
        }})),
    );
    schemas.insert(
        "NotReadyProblem".to_owned(),
        extend(json!({
            "required": ["not_ready"],
            "properties": { "not_ready": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": ["auth-svc", "session-svc", "scheduling-svc", "booking-svc"]
                }
            }}
        })),
    );
}
