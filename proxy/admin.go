package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

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
	return mux
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
