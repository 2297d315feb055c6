//! The route table. Routes are added through [`RouteTable`], which records every
//! (method, path) it registers, so a test can hold the table against the OpenAPI document.

pub mod auth;
pub mod bookings;
pub mod dev;
pub mod eligibility;
pub mod ops;
pub mod views;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use http::Method;
use platform::problem::ProblemKind;

use crate::AppState;
use crate::problem::HttpProblem;

/// A router under construction plus the list of what it serves.
pub struct RouteTable {
    router: Router<AppState>,
    entries: Vec<(Method, &'static str)>,
}

impl RouteTable {
    fn new() -> Self {
        Self {
            router: Router::new(),
            entries: Vec::new(),
        }
    }

    /// Every (method, path template) registered, in registration order.
    pub fn entries(&self) -> &[(Method, &'static str)] {
        &self.entries
    }

    /// The router, answering unknown paths with a `not-found` problem.
    pub fn into_router(self) -> Router<AppState> {
        self.router.fallback(unknown_route)
    }

    fn add(mut self, method: Method, path: &'static str, route: MethodRouter<AppState>) -> Self {
        self.entries.push((method, path));
        self.router = self.router.route(path, route);
        self
    }

    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, path, get(handler))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, path, post(handler))
    }

    fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PUT, path, put(handler))
    }

    fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PATCH, path, patch(handler))
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::DELETE, path, delete(handler))
    }
}

/// Every route of the gateway; the `/dev` routes only when `with_dev_routes`.
pub fn table(with_dev_routes: bool) -> RouteTable {
    let table = RouteTable::new()
        .get("/healthz", ops::healthz)
        .get("/readyz", ops::readyz)
        .get("/metrics", ops::metrics)
        .get("/openapi.json", ops::openapi)
        .get("/problems/{name}", ops::problem_explanation)
        .post("/v1/auth/verifications", auth::start_verification)
        .post(
            "/v1/auth/verifications/{id}/complete",
            auth::complete_verification,
        )
        .post("/v1/session/logout", auth::logout)
        .get("/v1/me/eligibility", eligibility::my_eligibility)
        .get("/v1/centers", bookings::list_centers)
        .get("/v1/slots", bookings::list_slots)
        .post("/v1/bookings", bookings::create_booking)
        .get("/v1/bookings", bookings::list_bookings)
        .get("/v1/bookings/{id}", bookings::get_booking)
        .delete("/v1/bookings/{id}", bookings::cancel_booking)
        .patch("/v1/bookings/{id}", bookings::change_booking);
    if !with_dev_routes {
        return table;
    }
    table
        .get("/dev/sms", dev::sent_sms)
        .put("/dev/clock", dev::set_clock)
        .delete("/dev/clock", dev::reset_clock)
        .post("/dev/idp/{provider}/assertions", dev::issue_assertion)
}

async fn unknown_route() -> HttpProblem {
    HttpProblem::new(ProblemKind::NotFound, "no resource at this path")
}
