//! The route table. Every route is registered through [`RouteTable`], built on
//! `utoipa_axum`'s router: a handler is added together with its `#[utoipa::path]` description,
//! so the served router and the OpenAPI document (see [`crate::openapi`]) come from one list.

pub mod auth;
pub mod bookings;
pub mod dev;
pub mod eligibility;
pub mod ops;
pub mod providers;
pub mod queue;
pub mod views;

use axum::Router;
use http::Method;
use platform::problem::ProblemKind;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::AppState;
use crate::problem::HttpProblem;

/// A router under construction plus the OpenAPI description of what it serves.
pub struct RouteTable {
    router: OpenApiRouter<AppState>,
}

impl RouteTable {
    fn new() -> Self {
        Self {
            router: OpenApiRouter::with_openapi(crate::openapi::base()),
        }
    }

    /// Every (method, path template) registered, in document order.
    pub fn entries(&self) -> Vec<(Method, String)> {
        let mut entries = Vec::new();
        for (path, item) in &self.router.get_openapi().paths.paths {
            let operations = [
                (Method::GET, item.get.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::DELETE, item.delete.is_some()),
                (Method::PATCH, item.patch.is_some()),
            ];
            for (method, present) in operations {
                if present {
                    entries.push((method, path.clone()));
                }
            }
        }
        entries
    }

    /// The router, answering unknown paths with a `not-found` problem.
    pub fn into_router(self) -> Router<AppState> {
        self.router.split_for_parts().0.fallback(unknown_route)
    }

    /// The OpenAPI description of the registered routes, before [`crate::openapi::finish`].
    pub fn into_openapi(self) -> OpenApi {
        self.router.into_openapi()
    }

    fn add(mut self, route: UtoipaMethodRouter<AppState>) -> Self {
        self.router = self.router.routes(route);
        self
    }
}

/// Every route of the gateway; the `/dev` routes only when `with_dev_routes`.
pub fn table(with_dev_routes: bool) -> RouteTable {
    let table = RouteTable::new()
        .add(routes!(ops::healthz))
        .add(routes!(ops::readyz))
        .add(routes!(ops::metrics))
        .add(routes!(ops::openapi))
        .add(routes!(ops::docs))
        .add(routes!(ops::docs_script))
        .add(routes!(ops::problem_explanation))
        .add(routes!(providers::list_providers))
        .add(routes!(providers::jwks))
        .add(routes!(auth::start_verification))
        .add(routes!(auth::complete_verification))
        .add(routes!(auth::logout))
        .add(routes!(eligibility::my_eligibility))
        .add(routes!(eligibility::my_windows))
        .add(routes!(bookings::list_centers))
        .add(routes!(bookings::create_booking, bookings::list_bookings))
        .add(routes!(bookings::list_slots))
        .add(routes!(queue::take_ticket))
        .add(routes!(queue::poll_ticket))
        .add(routes!(
            bookings::get_booking,
            bookings::cancel_booking,
            bookings::change_booking
        ));
    if !with_dev_routes {
        return table;
    }
    table
        .add(routes!(dev::sent_sms))
        .add(routes!(dev::get_clock, dev::set_clock, dev::reset_clock))
        .add(routes!(dev::issue_assertion))
        .add(routes!(dev::add_carrier_subscriber))
        .add(routes!(dev::issue_certificate_signature))
        .add(routes!(dev::set_admission))
}

async fn unknown_route() -> HttpProblem {
    HttpProblem::new(ProblemKind::NotFound, "no resource at this path")
}
