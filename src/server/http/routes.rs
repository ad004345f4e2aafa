//! The JSON routes, each declared once with who may reach it, so the router and the tests
//! that walk every route read the same table.

use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;

use crate::server::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the login form, the health check, the webhook (its own secret).
    Public,
    /// A session or a bearer token (`auth::api_gate`).
    Identified,
}

#[derive(Clone, Debug)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

#[derive(Default)]
pub struct JsonRoutes {
    public: Router<AppState>,
    identified: Router<AppState>,
    table: Vec<RouteInfo>,
}

impl JsonRoutes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn route(
        mut self,
        access: Access,
        method: Method,
        path: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.table.push(RouteInfo {
            method,
            path,
            access,
        });
        match access {
            Access::Public => self.public = self.public.route(path, handler),
            Access::Identified => self.identified = self.identified.route(path, handler),
        }
        self
    }

    pub fn table(&self) -> &[RouteInfo] {
        &self.table
    }

    pub fn into_routers(self) -> (Router<AppState>, Router<AppState>) {
        (self.public, self.identified)
    }
}
