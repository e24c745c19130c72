package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/certlens/certlens/config"
	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/event"
	"github.com/certlens/certlens/internal/report"
	"github.com/certlens/certlens/proxy/probe"
	"github.com/certlens/certlens/rules"
)

func newProbeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "probe https://HOST[:PORT][/PATH]",
		Short: "Ask a server for its client-certificate request, and check a certificate against it",
		Long: `Connect to a server as a browser would, with TLS 1.3 and then TLS 1.2, send
GET /PATH, and show every certificate request it makes: in the handshake, or
after the request by renegotiation (IIS, Apache per-location
SSLVerifyClient). For each: the CA names (numbered, with their count and
size against Windows' 16 KB limit), the certificate types and signature
algorithms, then the HTTP answer, the findings with remedies and a verdict.

With --cert (PEM, DER or PKCS#12 without a password; a PEM may carry the
chain, leaf first) it says whether a browser would offer that certificate
for each request, and every reason if not. With its key (--key, in the PEM
itself, or --pfx) the probe presents it and reports what the server did. Without a key it sends
no certificate, as a browser with nothing to offer does.

The probe's own connection is read by the same parser as certlens serve's
tunnels; being the client, it also sees the TLS 1.3 and renegotiation
requests a passive observer cannot (visibility "decrypted").

Exit status: 0 no problem, 1 a 403 (or another failure) is predicted or a
finding has severity error, 2 a usage or connection error (one line on
stderr says what and where).`,
		Example: `  certlens probe https://iis.corp.example/secure/
  certlens probe --tls12 --cert alice.pem https://iis.corp.example/secure/
  certlens probe --pfx alice.pfx --pfx-password-env PFX_PASSWORD https://iis.corp.example/app/
  certlens probe --json https://iis.corp.example/ | jq '{tls_version, phase, verdict, n: .cert_request.issuer_count}'
  certlens probe --issuers-out before.txt https://iis.corp.example/   # then diff before.txt after.txt`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("probe needs one URL, e.g. certlens probe https://iis.corp.example/secure/")}
			}
			return nil
		},
		RunE: runProbe,
	}
	fs := cmd.Flags()
	fs.Bool("json", false, "write the events as JSON lines (the schema of certlens serve's log) instead of a report")
	fs.String("html", "", "also write the attempts as one self-contained HTML `FILE` (the live page's views, no network needed) to attach to a ticket")
	fs.Bool("tls12", false, "probe with TLS 1.2 only")
	fs.Bool("tls13", false, "probe with TLS 1.3 only")
	fs.String("proxy", "", "HTTP proxy to CONNECT through, a `URL` such as http://127.0.0.1:8080 (default: HTTPS_PROXY, unless NO_PROXY matches)")
	fs.String("cert", "", "client certificate `FILE` (PEM, DER or PKCS#12 without a password); a PEM may carry the chain, leaf first, and its key")
	fs.String("key", "", "private key `FILE` of --cert (PEM); with it the probe presents the certificate")
	fs.String("pfx", "", "client certificate and key as a PKCS#12 `FILE` (.pfx, .p12)")
	fs.String("pfx-password-env", "", "environment `VARIABLE` holding the --pfx password")
	fs.String("ca-file", "", "CA certificates `FILE` (PEM, DER or PKCS#12 without a password) to verify the server with, instead of the system's")
	fs.String("issuers-out", "", "write the issuer lists received to `FILE` (PEM-like DN dump) and FILE.json")
	fs.Duration("connect-timeout", probe.DefaultConnectTimeout, "time allowed to open the TCP connection (and the proxy's CONNECT)")
	fs.Duration("handshake-timeout", probe.DefaultHandshakeTimeout, "time allowed for the TLS handshake")
	fs.Duration("response-timeout", probe.DefaultResponseTimeout, "time allowed for the HTTP answer, a renegotiation included")
	fs.String("config", "", `config file (YAML) for the rules.* keys [CERTLENS_CONFIG]`)
	fs.StringArray("client-cert-host", nil, "host (or pattern) known to want a client certificate [rules.client_cert_hosts]")
	return cmd
}

func runProbe(cmd *cobra.Command, args []string) error {
	fs := cmd.Flags()
	cfg, err := config.Load(fs)
	if err != nil {
		return err
	}
	printWarnings(cmd.ErrOrStderr(), cfg)
	target, err := parseProbeURL(args[0])
	if err != nil {
		return usageError{err}
	}
	pc, err := newProbeConfig(target, fs.Lookup("proxy").Value.String())
	if err != nil {
		return usageError{err}
	}
	tls12, _ := fs.GetBool("tls12")
	tls13, _ := fs.GetBool("tls13")
	switch {
	case tls12 && tls13:
		return usageError{errors.New("--tls12 and --tls13 exclude each other; give neither to try both")}
	case tls12:
		pc.Versions = []uint16{tls.VersionTLS12}
	case tls13:
		pc.Versions = []uint16{tls.VersionTLS13}
	default:
		pc.Versions = []uint16{tls.VersionTLS13, tls.VersionTLS12}
	}
	pc.ConnectTimeout, _ = fs.GetDuration("connect-timeout")
	pc.HandshakeTimeout, _ = fs.GetDuration("handshake-timeout")
	pc.ResponseTimeout, _ = fs.GetDuration("response-timeout")
	if caFile, _ := fs.GetString("ca-file"); caFile != "" {
		if pc.RootCAs, err = loadCAFile(caFile); err != nil {
			return usageError{err}
		}
	}
	mine, err := loadProbeCert(fs.Lookup("cert").Value.String(), fs.Lookup("key").Value.String(),
		fs.Lookup("pfx").Value.String(), fs.Lookup("pfx-password-env").Value.String())
	if err != nil {
		return usageError{err}
	}
	var expect []rules.ExpectedCert
	if mine != nil {
		pc.Certificate = mine.present
		expect = []rules.ExpectedCert{{Name: mine.name, Chain: mine.chain}}
	}
	pc.Rules = rulesOptions(cfg, expect)

	ctx, stop := signal.NotifyContext(cmd.Context(), shutdownSignals...)
	defer stop()
	attempts, err := runReachable(ctx, pc)
	if err != nil {
		return exitError{2, err}
	}

	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	asJSON, _ := fs.GetBool("json")
	if asJSON {
		err = writeProbeJSON(out, attempts)
	} else {
		color := false
		if f, ok := cmd.OutOrStdout().(*os.File); ok {
			color = report.UseColor(f)
		}
		err = writeProbeReport(out, report.Options{Color: color, IssuerLimit: cfg.Rules.IssuerListErrorBytes}, target.String(), attempts, mine)
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if file, _ := fs.GetString("html"); file != "" {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := writeProbeJSON(w, attempts); err != nil {
			return err
		}
		_ = w.Flush()
		if err := writeHTMLReport(file, "certlens probe "+target.String(), bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n")), expect); err != nil {
			return exitError{2, err}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "certlens: report written to %s\n", file)
	}
	if file, _ := fs.GetString("issuers-out"); file != "" {
		if err := writeIssuers(file, target.String(), attempts); err != nil {
			return exitError{2, err}
		}
	}
	return probeStatus(attempts)
}

// parseProbeURL accepts https://HOST[:PORT][/PATH], or HOST[:PORT][/PATH].
func parseProbeURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("probe URL: %w", err)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("probe URL %q: the scheme must be https", s)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("probe URL %q has no host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("probe URL %q: port %q is not 1-65535", s, p)
		}
	}
	return u, nil
}

// newProbeConfig is the probe of target (port 443 unless it names one),
// through proxyFlag or else the environment's proxy for it.
func newProbeConfig(target *url.URL, proxyFlag string) (probe.Config, error) {
	pc := probe.Config{Host: target.Hostname(), Port: target.Port(), Path: target.RequestURI()}
	if pc.Port == "" {
		pc.Port = "443"
	}
	var err error
	pc.Proxy, err = probeProxy(proxyFlag, net.JoinHostPort(pc.Host, pc.Port))
	return pc, err
}

// runReachable runs the probe; its error is the interruption, or that no
// attempt reached a TLS server to diagnose.
func runReachable(ctx context.Context, pc probe.Config) ([]*probe.Attempt, error) {
	attempts, err := probe.Run(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("probe interrupted: %w", err)
	}
	if err := probeReachable(attempts, pc); err != nil {
		return nil, err
	}
	return attempts, nil
}

// probeProxy is --proxy, or else what HTTPS_PROXY and NO_PROXY say for
// target (net/http's rules: never for localhost).
func probeProxy(flag, target string) (*url.URL, error) {
	if flag == "" {
		u, err := http.ProxyFromEnvironment(&http.Request{URL: &url.URL{Scheme: "https", Host: target}})
		if err != nil {
			return nil, fmt.Errorf("HTTPS_PROXY: %w", err)
		}
		if u == nil {
			return nil, nil
		}
		flag = u.String()
	}
	if !strings.Contains(flag, "://") {
		flag = "http://" + flag
	}
	u, err := url.Parse(flag)
	if err != nil {
		return nil, fmt.Errorf("--proxy: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("--proxy %q: want http://HOST:PORT (an HTTP proxy that accepts CONNECT)", flag)
	}
	return u, nil
}

// probeReachable fails when no attempt reached a TLS server to diagnose.
func probeReachable(as []*probe.Attempt, pc probe.Config) error {
	diagnosed := 0
	for _, a := range as {
		diagnosed += len(a.Events)
	}
	if diagnosed > 0 {
		return nil
	}
	for _, a := range as {
		if a.Err != nil && !a.Unsupported {
			return fmt.Errorf("probe: %w", a.Err)
		}
	}
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = versionName(a.Version)
	}
	return fmt.Errorf("probe: %s speaks none of %s", net.JoinHostPort(pc.Host, pc.Port), strings.Join(names, ", "))
}

// probeStatus is the exit status: 1 for problems, 2 for an attempt cut
// short by something other than the server's refusal (a timeout, a reset).
func probeStatus(as []*probe.Attempt) error {
	problems := 0
	for _, a := range as {
		for _, e := range a.Events {
			if report.Problem(e) {
				problems++
			}
		}
	}
	switch {
	case problems == 1:
		return exitError{1, errors.New("1 handshake predicts a failure or has an error finding")}
	case problems > 1:
		return exitError{1, fmt.Errorf("%d handshakes predict a failure or have an error finding", problems)}
	}
	for _, a := range as {
		if a.Err != nil && !a.Unsupported {
			return exitError{2, fmt.Errorf("probe with %s: %w", versionName(a.Version), a.Err)}
		}
	}
	return nil
}

func versionName(v uint16) string { return handshake.Version(v).String() }

// writeProbeJSON writes each attempt's events as certlens serve logs them.
func writeProbeJSON(w *bufio.Writer, as []*probe.Attempt) error {
	now := time.Now()
	for _, a := range as {
		for _, e := range a.Events {
			if err := writeEventLine(w, e.Level(), now, "handshake", e); err != nil {
				return err
			}
		}
		if err := writeEventLine(w, "info", now, "connection closed", a.Closed); err != nil {
			return err
		}
	}
	return nil
}

func writeProbeReport(w io.Writer, opts report.Options, target string, as []*probe.Attempt, mine *probeCert) error {
	rw := report.New(w, opts)
	rw.Heading("certlens probe " + target)
	for _, a := range as {
		heading := versionName(a.Version)
		if a.Unsupported {
			rw.Note(heading + ": the server does not speak it (" + a.Err.Error() + ")")
			continue
		}
		p := &report.Probe{Chain: len(a.Server)}
		if len(a.Server) > 0 {
			c := event.DescribeCert(a.Server[0].Raw)
			p.Server = &c
			if a.Trust != nil {
				p.Untrusted = a.Trust.Error()
			}
			p.Request = "GET " + requestPath(target)
		}
		if a.HTTP != nil {
			p.Status, p.Substatus = a.StatusLine, a.HTTP.Substatus
		}
		if a.Err != nil {
			p.Stopped = a.Err.Error()
		}
		if mine != nil {
			now := time.Now()
			for _, h := range a.Handshakes {
				if h.CertRequest == nil {
					continue
				}
				o := report.Offer{Handshake: h.Index, Name: mine.name}
				for _, r := range rules.WouldOffer(mine.chain, h.CertRequest, h.Version, now) {
					o.Reasons = append(o.Reasons, r.Code+": "+r.Text)
				}
				p.Offers = append(p.Offers, o)
			}
		}
		if err := rw.Connection(report.Connection{Heading: heading, Handshakes: a.Events, Closed: a.Closed, Probe: p}); err != nil {
			return err
		}
	}
	return rw.Summary()
}

func requestPath(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "/"
	}
	return u.RequestURI()
}

// issuerList is one received list in --issuers-out's JSON.
type issuerList struct {
	TLSVersion  string         `json:"tls_version"`
	Phase       string         `json:"phase"`
	Handshake   int            `json:"handshake"`
	IssuerCount int            `json:"issuer_count"`
	IssuerBytes int            `json:"issuer_bytes"`
	Issuers     []handshake.DN `json:"issuers"`
}

// writeIssuers writes file (the DNs as PEM blocks, each after a comment
// naming it, so that two files diff line by line) and file.json.
func writeIssuers(file, target string, as []*probe.Attempt) error {
	var lists []issuerList
	var dump strings.Builder
	fmt.Fprintf(&dump, "# certlens probe %s\n", target)
	for _, a := range as {
		for _, h := range a.Handshakes {
			cr := h.CertRequest
			if cr == nil {
				continue
			}
			lists = append(lists, issuerList{TLSVersion: h.Version.String(), Phase: string(h.Phase), Handshake: h.Index,
				IssuerCount: len(cr.Issuers), IssuerBytes: cr.IssuerBytes, Issuers: cr.Issuers})
			fmt.Fprintf(&dump, "\n# %s %s handshake: %d CA names, %d bytes\n", h.Version, h.Phase, len(cr.Issuers), cr.IssuerBytes)
			for i, dn := range cr.Issuers {
				fmt.Fprintf(&dump, "# %d %s\n", i+1, dn)
				dump.Write(pem.EncodeToMemory(&pem.Block{Type: "DISTINGUISHED NAME", Bytes: dn.Raw}))
			}
		}
	}
	if lists == nil {
		lists = []issuerList{}
	}
	js, err := json.MarshalIndent(struct {
		URL   string       `json:"url"`
		Lists []issuerList `json:"requests"`
	}{target, lists}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, []byte(dump.String()), 0o644); err != nil {
		return fmt.Errorf("--issuers-out: %w", err)
	}
	if err := os.WriteFile(file+".json", append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("--issuers-out: %w", err)
	}
	return nil
}
