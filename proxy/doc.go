// Package proxy is certlens serve: its listeners and what they relay. A
// CONNECT in observe mode goes through the proxy's own front door (the
// access checks, then a tunnel); intercept mode terminates the browser's
// TLS with goproxy and connects upstream with certlens's own TLS client;
// sidecar mode is a plain TCP listener in front of one server. Every
// tunnel copies bytes untouched while the handshake parser reads them;
// each handshake is diagnosed by rules and written as internal/event's
// event through the logger the Server is given, and the admin server
// serves health, metrics and the profiler. The probe, a client and no
// server, is proxy/probe; what certlens's two TLS clients share is in
// proxy/internal/ownclient.
package proxy
