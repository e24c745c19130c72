package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/certlens/certlens/internal/event"
)

// AdminHandler serves /healthz (the process is up), /readyz (the listener
// accepts, and in sidecar mode the upstream answers), /metrics, /proxy.pac
// (pac.go) and, with
// Options.Pprof, Go's profiler under /debug/pprof/ (registered here, not on
// http.DefaultServeMux, so that it is never served by accident).
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.serving.Load() {
			http.Error(w, "not ready: the listener is not accepting", http.StatusServiceUnavailable)
			return
		}
		if s.opts.Mode == event.ModeSidecar {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			c, err := s.dial(ctx, "tcp", s.opts.Sidecar.Upstream)
			if err != nil {
				http.Error(w, "not ready: upstream "+s.opts.Sidecar.Upstream+" unreachable: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			_ = c.Close()
		}
		_, _ = fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /proxy.pac", s.servePAC)
	if s.opts.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if s.opts.Page != nil {
		mux.Handle("/", s.pageGuard(s.opts.Page))
	}
	return mux
}

// pageGuard applies the proxy's access rules to the live page when the
// admin server listens beyond loopback: it shows every client's targets
// and certificates, so with no rule at all (a sidecar may run without)
// it is not served there. On loopback it refuses a Host that is not
// loopback, so that a web site cannot rebind its own name to 127.0.0.1
// and read the page from the user's browser.
func (s *Server) pageGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if local != nil && isLoopback(local.String()) {
			if !loopbackHost(r.Host) {
				http.Error(w, "certlens: the page answers to a loopback address or localhost only (Host "+r.Host+")", http.StatusMisdirectedRequest)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if acc := s.dyn.Load().Access; len(acc.Users) == 0 && len(acc.AllowClients) == 0 {
			http.Error(w, "certlens: the page is served beyond loopback only with access.users or access.allow_clients set; "+
				"set one, or open it on the machine itself through an admin_listen on 127.0.0.1", http.StatusForbidden)
			return
		}
		if !s.clientAllowed(r.RemoteAddr) {
			http.Error(w, "certlens: client "+r.RemoteAddr+" is not in access.allow_clients", http.StatusForbidden)
			return
		}
		if why := s.checkBasic(r, "Authorization"); why != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="certlens", charset="UTF-8"`)
			http.Error(w, "certlens: "+why+"; sign in as one of access.users", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// pageField is the page's URL for the listening event, or nothing.
func (s *Server) pageField() zap.Field {
	if s.opts.PageURL == "" {
		return zap.Skip()
	}
	return zap.String("page", s.opts.PageURL)
}

func isLoopback(hostport string) bool {
	ap, err := netip.ParseAddrPort(hostport)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// ServeAdmin runs the admin server on ln until ctx ends.
func (s *Server) ServeAdmin(ctx context.Context, ln net.Listener) error {
	s.own.add(ln.Addr())
	srv := &http.Server{Handler: s.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}
