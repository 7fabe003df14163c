//! The web UI of `shmq management`: a page and its script and style sheet,
//! embedded in the binary and served as they are. The UI is a client of
//! the HTTP API only: it logs in with basic auth (credentials kept in the
//! tab's `sessionStorage`) and polls `/api/...`, so everything it shows is
//! what the API serves. docs/MANAGEMENT.md, "Web UI", lists its pages.
//!
//! The assets hold no data, so they are served without authentication, as
//! RabbitMQ serves its UI's; every `/api/...` request the script makes is
//! authenticated. Each is served with `Cache-Control: no-cache`, so a
//! browser never mixes a new binary's page with an old binary's cached
//! script (they are small and local); the page forbids framing and
//! any script, style or connection other than its own (a
//! Content-Security-Policy), since its buttons delete and purge.

use super::http::{Request, Response};

/// One embedded file.
struct Asset {
    /// Its path in the UI (`/static/app.js`).
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The page, served at `/` and `/index.html`.
const INDEX: Asset = Asset { path: "/index.html", content_type: "text/html; charset=utf-8", body: include_bytes!("ui/index.html") };

/// The files the page loads.
const STATIC: [Asset; 3] = [
    Asset { path: "/static/app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("ui/app.js") },
    Asset { path: "/static/style.css", content_type: "text/css; charset=utf-8", body: include_bytes!("ui/style.css") },
    Asset { path: "/static/favicon.svg", content_type: "image/svg+xml", body: include_bytes!("ui/favicon.svg") },
];

/// The page's Content-Security-Policy: its own script, style, images and
/// API only; no framing (its buttons delete and purge).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The UI's answer to a `GET` of `path`, or `None` if the path is no UI
/// file (it is then routed as an API path).
pub fn serve(request: &Request) -> Option<Response> {
    if request.method != "GET" {
        return None;
    }
    let asset = match request.path.as_str() {
        "/" | "/index.html" => &INDEX,
        path => STATIC.iter().find(|a| a.path == path)?,
    };
    let response = Response::new(200, asset.content_type, asset.body.to_vec())
        .with_header("cache-control", "no-cache")
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "no-referrer");
    Some(if asset.path == INDEX.path {
        response.with_header("content-security-policy", CSP).with_header("x-frame-options", "DENY")
    } else {
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Option<Response> {
        let request = Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
            peer: "127.0.0.1:1".parse().unwrap(),
            http10: false,
        };
        serve(&request)
    }

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn serves_the_page_and_its_files_with_their_types() {
        for (path, kind) in [
            ("/", "text/html; charset=utf-8"),
            ("/index.html", "text/html; charset=utf-8"),
            ("/static/app.js", "text/javascript; charset=utf-8"),
            ("/static/style.css", "text/css; charset=utf-8"),
            ("/static/favicon.svg", "image/svg+xml"),
        ] {
            let response = get(path).unwrap_or_else(|| panic!("{path} not served"));
            assert_eq!((response.status, header(&response, "content-type")), (200, Some(kind)), "{path}");
            assert!(!response.body.is_empty());
            assert_eq!(header(&response, "cache-control"), Some("no-cache"));
        }
        let page = get("/").unwrap();
        assert!(header(&page, "content-security-policy").is_some_and(|c| c.contains("frame-ancestors 'none'")));
        assert!(String::from_utf8_lossy(&page.body).contains("static/app.js"));
        assert!(get("/static/nothing.js").is_none());
        assert!(get("/api/overview").is_none());
    }
}
