//! Walks every route of `arflow_web::routes::table()` as an anonymous
//! visitor, a viewer, a collector and an admin, and checks each gets
//! exactly the access the table declares: anonymous callers are sent to
//! the login form (pages) or get 401 (API); a role below the route's gets
//! 403; a role at or above it is let through (whatever the handler then
//! answers, never 401/403 and never a server error).

mod support;

use arflow_store::Role;
use arflow_web::access::{Access, Kind};
use arflow_web::routes::table;
use support::{Reply, TestApp, concrete, fixture, spawn_app};

fn call(app: &TestApp, method: &str, path: &str, kind: Kind, role: Option<Role>) -> Reply {
    match (kind, role) {
        (_, None) => app.request(method, path, None, None, None),
        (Kind::Page, Some(role)) => {
            let email = format!("{}@example.com", role.as_str());
            let b = app.browser_for(&email);
            let cookie = b.cookie.clone().unwrap_or_default();
            let csrf = b.csrf.clone().unwrap_or_default();
            if method == "GET" {
                app.request(method, path, Some(&cookie), None, None)
            } else {
                app.request(
                    method,
                    path,
                    Some(&cookie),
                    None,
                    Some(&[("_csrf", csrf.as_str())]),
                )
            }
        }
        (Kind::Api, Some(role)) => {
            let token = app.token(role.as_str(), "write").to_string();
            app.request(method, path, None, Some(&token), None)
        }
    }
}

#[test]
fn every_route_gives_each_role_exactly_its_access() {
    let Some(app) = spawn_app() else { return };
    let fx = fixture(app.store.as_ref(), app.org, "acme");
    let routes = table();
    assert!(routes.len() > 20, "the route table looks incomplete");
    let mut failures = Vec::new();
    for route in &routes {
        let method = route.method.as_str();
        let path = concrete(route.path, &fx);
        let what = format!("{method} {} ({path})", route.path);
        let anon = call(&app, method, &path, route.kind, None);
        match route.access {
            Access::Public => {
                if matches!(anon.status, 401 | 403) || anon.status >= 500 {
                    failures.push(format!("{what}: public, but anonymous got {}", anon.status));
                }
                continue;
            }
            Access::Role(needed) => {
                let sent_to_login = anon.status == 303
                    && anon
                        .location
                        .as_deref()
                        .is_some_and(|l| l.starts_with("/login"));
                let ok = match (route.kind, method) {
                    (Kind::Page, "GET") => sent_to_login,
                    _ => anon.status == 401,
                };
                if !ok {
                    failures.push(format!(
                        "{what}: anonymous got {} (location {:?})",
                        anon.status, anon.location
                    ));
                }
                for role in [Role::Viewer, Role::Collector, Role::Admin] {
                    let r = call(&app, method, &path, route.kind, Some(role));
                    let allowed = role >= needed;
                    // Being sent to the login form *with a `next`* means the
                    // session was not accepted; logging out also ends on
                    // `/login`, but plainly.
                    let refused = matches!(r.status, 401 | 403)
                        || (r.status == 303
                            && r.location
                                .as_deref()
                                .is_some_and(|l| l.starts_with("/login?")));
                    if allowed && (refused || r.status >= 500) {
                        failures.push(format!(
                            "{what}: {} should be let through, got {}: {}",
                            role.as_str(),
                            r.status,
                            r.body.chars().take(200).collect::<String>()
                        ));
                    }
                    if !allowed && r.status != 403 {
                        failures.push(format!(
                            "{what}: {} should get 403, got {}",
                            role.as_str(),
                            r.status
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} access failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn state_changing_requests_need_the_csrf_token_and_the_same_origin() {
    let Some(app) = spawn_app() else { return };
    let fx = fixture(app.store.as_ref(), app.org, "acme");
    let b = app.browser_for(support::ADMIN);
    let cookie = b.cookie.clone().unwrap_or_default();
    for route in table()
        .iter()
        .filter(|r| r.kind == Kind::Page && r.method != "GET")
    {
        if route.access == Access::Public {
            continue;
        }
        let path = concrete(route.path, &fx);
        let none = app.request(route.method.as_str(), &path, Some(&cookie), None, Some(&[]));
        assert_eq!(
            none.status, 403,
            "{} {path} without a CSRF token",
            route.method
        );
        let wrong = app.request(
            route.method.as_str(),
            &path,
            Some(&cookie),
            None,
            Some(&[("_csrf", "0000")]),
        );
        assert_eq!(
            wrong.status, 403,
            "{} {path} with a wrong CSRF token",
            route.method
        );
    }
    // The admin's session still works: nothing above logged it out.
    assert_eq!(
        app.request("GET", "/", Some(&cookie), None, None).status,
        200
    );
}

#[test]
fn read_only_api_tokens_cannot_write() {
    let Some(app) = spawn_app() else { return };
    let fx = fixture(app.store.as_ref(), app.org, "acme");
    for route in table()
        .iter()
        .filter(|r| r.kind == Kind::Api && r.method != "GET")
    {
        if route.access == Access::Public {
            continue;
        }
        let path = concrete(route.path, &fx);
        let token = app.token("admin", "read").to_string();
        let r = app.request(route.method.as_str(), &path, None, Some(&token), None);
        assert_eq!(
            r.status, 403,
            "{} {path} with a read-only token: {}",
            route.method, r.body
        );
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/problem+json"),
            "{} {path}",
            route.method
        );
    }
}
