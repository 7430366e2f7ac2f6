//! Logging in and out.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use crate::accounts::WEB_SESSION_TTL_MS;
use crate::http::AppState;
use crate::http::web::layout::page;
use crate::http::web::session::{CsrfForm, DashboardSession, Empty, LoginForm, random_secret};
use crate::http::web::{LOGIN_COOKIE, SESSION_COOKIE, WebError, csrf_token, set_cookie};
use crate::server::now_ms;

fn login_form(csrf: &str, message: Option<&str>) -> Markup {
    page(
        "Log in",
        None,
        None,
        html! {
            @if let Some(message) = message {
                p class="error" role="alert" { (message) }
            }
            form method="post" action="/login" class="login" {
                input type="hidden" name="csrf" value=(csrf);
                label { "User name " input name="username" autocomplete="username" required autofocus; }
                label { "Password " input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
            p class="hint" {
                "For admins and M&E officers. An admin sets passwords with "
                code { "mpaka admin set-password" }
                "."
            }
        },
    )
}

/// The login form, always with a fresh pre-login secret: reusing the
/// client's, even one of the form the server issues, would let someone who
/// planted the cookie (and so computed its CSRF token) fix it. A form
/// opened earlier in another tab then expires, and says so.
pub async fn login_page(headers: HeaderMap) -> Result<Response, WebError> {
    let secret = random_secret()?;
    let mut response = login_form(&csrf_token(&secret), None).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&headers, LOGIN_COOKIE, &secret, 3600));
    Ok(response)
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    f: LoginForm,
) -> Result<Response, WebError> {
    let pre = f.secret;
    let username = f.username.trim().to_owned();
    // Counted before any work, so a burst cannot outrun the limits: every
    // attempt per address; failures per user name and address; and per
    // user name, which only stops addresses that failed at it (guesses
    // spread over many addresses stay bounded; the user at another
    // address still gets in).
    // An address the user logged in from before gets only the per-address
    // bounds: its failures neither meet nor fill the per-user one, so
    // attackers who filled it do not lock her out there after one typo.
    // Behind a reverse proxy every client has the proxy's address (see
    // `KnownAddresses`).
    state.login_attempts.check(peer.ip())?;
    let user = username.to_lowercase();
    let here = (user.clone(), peer.ip());
    let known = state.login_addresses.known(&user, peer.ip());
    if !known && state.login_failures_per_user_address.seen(&here) {
        state.login_failures_per_user.exceeded(user.clone())?;
    }
    state.login_failures_per_user_address.check(here.clone())?;
    let counted_for_user = !known && state.login_failures_per_user.check(user.clone()).is_ok();
    let _slot = state
        .password_checks
        .acquire()
        .await
        .map_err(|_| WebError::Page(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping".into()))?;
    let token = state
        .blocking(move |data| Ok(data.accounts.login(&username, &f.password, now_ms() as i64)?))
        .await?;
    if token.is_some() {
        state.login_failures_per_user_address.refund(&here);
        if counted_for_user {
            state.login_failures_per_user.refund(&user);
        }
        state.login_addresses.remember(&user, peer.ip());
    }
    let Some(token) = token else {
        tracing::info!("dashboard login refused");
        let mut response = login_form(&csrf_token(&pre), Some("Wrong user name or password.")).into_response();
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(response);
    };
    tracing::info!("dashboard login");
    let mut response = Redirect::to("/").into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, token.expose(), WEB_SESSION_TTL_MS / 1000),
    );
    h.append(header::SET_COOKIE, set_cookie(&headers, LOGIN_COOKIE, "", 0));
    Ok(response)
}

pub async fn logout(
    State(state): State<AppState>,
    session: DashboardSession,
    headers: HeaderMap,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> Result<Response, WebError> {
    let secret = session.secret().to_owned();
    state.blocking(move |data| Ok(data.accounts.logout(&secret)?)).await?;
    let mut response = Redirect::to("/login").into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&headers, SESSION_COOKIE, "", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_pre_login_cookie_is_replaced() {
        async fn issued(headers: &HeaderMap) -> String {
            let response = login_page(headers.clone()).await.unwrap();
            let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
            let value = cookie.strip_prefix("mpaka_login=").unwrap().split(';').next().unwrap();
            value.to_owned()
        }
        let fresh = issued(&HeaderMap::new()).await;
        assert_eq!(fresh.len(), 43, "32 random bytes in base64: {fresh}");
        for planted in ["a", "AAAA", &format!("{fresh}x"), &fresh[1..], &"*".repeat(43)] {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, format!("mpaka_login={planted}").parse().unwrap());
            let value = issued(&headers).await;
            assert_ne!(value, planted);
            assert_eq!(value.len(), 43);
        }
        // So is a well-formed one, even one the server issued: a planted
        // value is indistinguishable from it.
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, format!("mpaka_login={fresh}").parse().unwrap());
        assert_ne!(issued(&headers).await, fresh);
    }

    #[test]
    fn a_csrf_token_computed_from_a_planted_pre_login_cookie_does_not_log_in() {
        let running = crate::http::testing::Running::start(crate::server::Limits::default());
        running
            .data
            .accounts
            .set_password(None, "admin", "correct-horse-9")
            .unwrap();
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = format!("http://{}/login", running.addr);
        // Planted by an attacker, who computed its token.
        let planted = random_secret().unwrap();
        let page = client
            .get(&url)
            .header(header::COOKIE, format!("mpaka_login={planted}"))
            .send()
            .unwrap();
        let set = page.headers()[header::SET_COOKIE].to_str().unwrap();
        let replaced = set.strip_prefix("mpaka_login=").unwrap().split(';').next().unwrap();
        assert_ne!(replaced, planted, "the login page replaces the planted cookie");
        assert_eq!(replaced.len(), 43);
        let post = |cookie: &str, csrf: &str| {
            client
                .post(&url)
                .header(header::COOKIE, format!("mpaka_login={cookie}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(format!("username=admin&password=correct-horse-9&csrf={csrf}"))
                .send()
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(
            post(replaced, &csrf_token(&planted)),
            403,
            "the attacker's token is refused"
        );
        assert_eq!(
            post(replaced, &csrf_token(replaced)),
            303,
            "the form's own token logs in"
        );
        running.stop(std::time::Duration::from_secs(3));
    }

    #[test]
    fn attackers_filling_the_per_user_bound_do_not_lock_the_user_out_at_her_usual_address() {
        let running = login_limits_server();
        let status = |r: reqwest::blocking::Response| r.status().as_u16();
        let office = [127, 0, 0, 20];
        assert_eq!(status(login_from(&running, office, "correct-horse-9")), 303);
        // Attackers from many addresses fill the per-user bound...
        for last in 30..36 {
            let _ = login_from(&running, [127, 0, 0, last], "guess-xxxxx");
        }
        assert_eq!(
            status(login_from(&running, [127, 0, 0, 30], "correct-horse-9")),
            429,
            "an address that failed at admin is held by the per-user bound"
        );
        // ...yet at her office she mistypes once and still gets in.
        assert_eq!(status(login_from(&running, office, "correct-horse-8")), 401);
        assert_eq!(status(login_from(&running, office, "correct-horse-9")), 303);
        running.stop(std::time::Duration::from_secs(3));
    }

    /// A server with tight login limits (3 per address, 5 failures per
    /// user a minute) and the password `correct-horse-9` for `admin`.
    fn login_limits_server() -> crate::http::testing::Running {
        let running = crate::http::testing::Running::start(crate::server::Limits {
            enroll_failures_per_minute: 3,
            login_failures_per_user_per_minute: 5,
            ..crate::server::Limits::default()
        });
        running
            .data
            .accounts
            .set_password(None, "admin", "correct-horse-9")
            .unwrap();
        running
    }

    /// One dashboard login from address `from`: the login page, then the
    /// form posted with its cookie and CSRF token.
    fn login_from(
        running: &crate::http::testing::Running,
        from: [u8; 4],
        password: &str,
    ) -> reqwest::blocking::Response {
        let client = reqwest::blocking::Client::builder()
            .local_address(std::net::IpAddr::from(from))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = format!("http://{}/login", running.addr);
        let page = client.get(&url).send().unwrap();
        let cookie = page.headers()[header::SET_COOKIE].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let csrf = crate::http::testing::csrf_of(&page.text().unwrap());
        client
            .post(&url)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("username=admin&password={password}&csrf={csrf}"))
            .send()
            .unwrap()
    }

    #[test]
    fn failed_logins_from_other_addresses_do_not_lock_the_user_out() {
        let running = login_limits_server();
        let status = |r: &reqwest::blocking::Response| r.status().as_u16();
        // Wrong guesses for `admin`, each from another address...
        for last in [10, 11, 12] {
            assert_eq!(status(&login_from(&running, [127, 0, 0, last], "guess-xxxxx")), 401);
        }
        // ...do not keep the admin out, from an address that has not failed.
        assert_eq!(status(&login_from(&running, [127, 0, 0, 2], "correct-horse-9")), 303);
        // One address over its limit waits, told how long.
        for _ in 0..2 {
            assert_eq!(status(&login_from(&running, [127, 0, 0, 10], "guess-xxxxx")), 401);
        }
        let refused = login_from(&running, [127, 0, 0, 10], "guess-xxxxx");
        assert_eq!(status(&refused), 429);
        assert!(
            refused.headers()[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= 1
        );
        // Five failures at `admin` in all: addresses that failed at it wait...
        let refused = login_from(&running, [127, 0, 0, 11], "correct-horse-9");
        assert_eq!(status(&refused), 429);
        assert!(refused.headers().contains_key(header::RETRY_AFTER));
        // ...the others do not.
        assert_eq!(status(&login_from(&running, [127, 0, 0, 3], "correct-horse-9")), 303);
        assert_eq!(status(&login_from(&running, [127, 0, 0, 4], "guess-xxxxx")), 401);
        running.stop(std::time::Duration::from_secs(3));
    }
}
