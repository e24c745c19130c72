package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/certlens/certlens/handshake"
	"github.com/certlens/certlens/internal/certfile"
	"github.com/certlens/certlens/rules"
)

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs [--store nss[:DIR]|windows|macos] [--cert FILE ...] [--url URL | --event FILE | --issuers FILE]",
		Short: "Which of my client certificates would a browser offer this server, and why not the others",
		Long: `List the client certificates of a store (or files) and say, for a server's
certificate request, whether a browser would offer each one, and every
reason if not. The rules are Chromium's (Chrome and Edge): the chain, built
from the store's own certificates only (a missing intermediate is never
fetched), must reach a CA the server listed, byte for byte (an empty list
takes any); Key Usage, if present, must have digitalSignature; EKU, if
present, clientAuth; the certificate must be within its validity, its key
must suit the request's certificate types and signature algorithms, and the
store must hold its private key.

Stores: nss (Chromium and Firefox on Linux: sql:$HOME/.pki/nssdb, or
nss:DIR), windows (CurrentUser\My, LocalMachine\My with --machine; with the
key's KeySpec and provider), macos (the keychains, through security). The
default is this system's. --cert adds files (PEM, DER, PKCS#12 without a
password), and without --store only they are judged.

The request: --url probes the server (TLS 1.3 first, then TLS 1.2, and any
renegotiation after the request), --event reads certlens's JSON-lines log
(the latest request per target; an event keeps the CA names as text only,
so they are compared by name), --issuers reads what probe --issuers-out
wrote. With none, each certificate is judged against an empty list.

Exit status: 0 at least one certificate would be offered (for each request),
1 none would, 2 an error (one line on stderr says what and where).`,
		Example: `  certlens certs --url https://iis.corp.example/secure/
  certlens certs --store nss:$HOME/.pki/nssdb --issuers before.txt
  certlens certs --store windows --event handshakes.jsonl --json
  certlens certs --cert alice.pfx --cert bob.pem --url https://iis.corp.example/`,
		Args: cobra.NoArgs,
		RunE: runCerts,
	}
	fs := cmd.Flags()
	fs.String("store", "", "certificate `STORE`: nss, nss:DIR, windows or macos (default: this system's, unless --cert is given)")
	fs.Bool("machine", false, "with --store windows: LocalMachine\\My instead of CurrentUser\\My (services read it; Chrome and Edge read only CurrentUser\\My)")
	fs.StringArray("cert", nil, "client certificate `FILE` (PEM, DER or PKCS#12 without a password) to judge too; repeat for several")
	fs.String("url", "", "probe this `URL` (https://HOST[:PORT]/PATH) for its certificate request")
	fs.String("proxy", "", "with --url: HTTP proxy to CONNECT through (default: HTTPS_PROXY, unless NO_PROXY matches)")
	fs.String("event", "", "certlens's JSON-lines log `FILE` (or one handshake event): the latest request per target")
	fs.String("issuers", "", "the `FILE` probe --issuers-out wrote (or its .json): its last request")
	fs.Bool("json", false, "write JSON instead of a table")
	return cmd
}

// certsRequest is one request the certificates are judged against.
type certsRequest struct {
	Source  string   `json:"source"`            // URL, target or file
	What    string   `json:"what,omitempty"`    // "TLS 1.3 initial handshake"
	Issuers []string `json:"issuers"`           // RFC 4514, in wire order
	ByName  bool     `json:"by_name,omitempty"` // compared by name (an event)
	req     rules.Request
}

// certsRow is one certificate's verdict.
type certsRow struct {
	Name     string         `json:"name"`
	Store    string         `json:"store"`
	Subject  string         `json:"subject"`
	Issuer   string         `json:"issuer"`
	NotAfter time.Time      `json:"not_after"`
	SHA256   string         `json:"sha256"`
	Chain    []string       `json:"chain"`
	Key      string         `json:"key"` // present, missing, unknown
	KeySpec  string         `json:"key_spec,omitempty"`
	Provider string         `json:"key_provider,omitempty"`
	Offered  bool           `json:"offered"`
	Reasons  []rules.Reason `json:"reasons"`
	Cautions []rules.Reason `json:"cautions,omitempty"`
}

type certsResult struct {
	Request      certsRequest `json:"request"`
	Certificates []certsRow   `json:"certificates"`
	Offered      int          `json:"offered"`
}

func runCerts(cmd *cobra.Command, _ []string) error {
	fs := cmd.Flags()
	storeFlag, _ := fs.GetString("store")
	machine, _ := fs.GetBool("machine")
	files, _ := fs.GetStringArray("cert")
	urlFlag, _ := fs.GetString("url")
	eventFile, _ := fs.GetString("event")
	issuersFile, _ := fs.GetString("issuers")
	given := 0
	for _, s := range []string{urlFlag, eventFile, issuersFile} {
		if s != "" {
			given++
		}
	}
	if given > 1 {
		return usageError{errors.New("--url, --event and --issuers exclude each other: give one request")}
	}
	if storeFlag == "" && len(files) == 0 {
		storeFlag = map[string]string{"windows": certfile.StoreWindows, "darwin": certfile.StoreMacOS}[runtime.GOOS]
		if storeFlag == "" {
			storeFlag = certfile.StoreNSS
		}
	}
	if machine && !strings.HasPrefix(strings.ToLower(storeFlag), certfile.StoreWindows) {
		return usageError{errors.New("--machine goes with --store windows")}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), shutdownSignals...)
	defer stop()

	var certs []rules.ExpectedCert
	if storeFlag != "" {
		spec, err := certfile.ParseStore(storeFlag)
		if err != nil {
			return usageError{fmt.Errorf("--store: %w", err)}
		}
		spec.Machine = machine
		s, err := certfile.ReadStore(ctx, spec)
		if err != nil {
			return exitError{2, err}
		}
		certs = s.Identities()
	}
	for _, f := range files {
		chain, data, err := readCerts("--cert", f)
		if err != nil {
			return exitError{2, err}
		}
		certs = append(certs, rules.ExpectedCert{Name: filepath.Base(f), Chain: chain, Key: rules.Key{State: fileKeyState(chain, data)}})
	}

	var reqs []certsRequest
	var err error
	switch {
	case urlFlag != "":
		reqs, err = urlRequest(ctx, urlFlag, fs.Lookup("proxy").Value.String())
	case eventFile != "":
		reqs, err = eventRequests(eventFile)
	case issuersFile != "":
		reqs, err = issuersRequest(issuersFile)
	default:
		reqs = []certsRequest{{Source: "no request given: judged against an empty CA list, which takes any CA", Issuers: []string{}}}
	}
	if err != nil {
		return err
	}

	now := time.Now()
	var results []certsResult
	for _, r := range reqs {
		res := certsResult{Request: r, Certificates: []certsRow{}}
		for _, c := range certs {
			row := newCertsRow(c, rules.Choose(c, r.req, now))
			if row.Offered {
				res.Offered++
			}
			res.Certificates = append(res.Certificates, row)
		}
		results = append(results, res)
	}

	out := bufio.NewWriter(cmd.OutOrStdout())
	if asJSON, _ := fs.GetBool("json"); asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(struct {
			Results []certsResult `json:"results"`
		}{results})
	} else {
		err = writeCertsTable(out, results, len(certs))
	}
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Offered == 0 {
			return exitError{1, fmt.Errorf("no certificate would be offered for %s", r.Request.Source)}
		}
	}
	return nil
}

func newCertsRow(c rules.ExpectedCert, ch rules.Choice) certsRow {
	leaf := c.Chain[0]
	sum := sha256.Sum256(leaf.Raw)
	row := certsRow{Name: c.Name, Store: c.Store, Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), NotAfter: leaf.NotAfter.UTC(),
		SHA256: hex.EncodeToString(sum[:]), Key: [...]string{"unknown", "present", "missing"}[c.Key.State], KeySpec: c.Key.Spec,
		Provider: c.Key.Provider, Offered: ch.Offered, Reasons: ch.Reasons, Cautions: ch.Cautions}
	if row.Store == "" {
		row.Store = "file"
	}
	if row.Reasons == nil {
		row.Reasons = []rules.Reason{}
	}
	for _, x := range c.Chain {
		row.Chain = append(row.Chain, x.Subject.String())
	}
	return row
}

func writeCertsTable(w io.Writer, results []certsResult, total int) error {
	for i, res := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		r := res.Request
		fmt.Fprintf(w, "Request: %s", r.Source)
		if r.What != "" {
			fmt.Fprintf(w, " (%s)", r.What)
		}
		fmt.Fprintln(w)
		switch {
		case len(r.Issuers) == 0:
			fmt.Fprintln(w, "  CA names asked for: none (an empty list: any CA will do)")
		default:
			fmt.Fprintf(w, "  CA names asked for (%d):\n", len(r.Issuers))
			for j, n := range r.Issuers {
				if j == 10 {
					fmt.Fprintf(w, "    ... and %d more\n", len(r.Issuers)-10)
					break
				}
				fmt.Fprintf(w, "    %s\n", n)
			}
		}
		if r.ByName {
			fmt.Fprintln(w, "  (from an event: CA names compared as text, key type not checked; --url or --issuers compare the bytes)")
		}
		fmt.Fprintln(w)
		if total == 0 {
			fmt.Fprintln(w, "No client certificates in the store.")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "OFFERED\tCERTIFICATE\tISSUER\tEXPIRES\tWHY NOT")
		for _, c := range res.Certificates {
			offered, why := "no", make([]string, 0, len(c.Reasons))
			if c.Offered {
				offered = "yes"
			}
			for _, rs := range c.Reasons {
				why = append(why, rs.Code)
			}
			for _, rs := range c.Cautions {
				why = append(why, "caution: "+rs.Code)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", offered, certLabel(c), c.Issuer, c.NotAfter.Format("2006-01-02"), strings.Join(why, ", "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		detailed := false
		for _, c := range res.Certificates {
			if len(c.Reasons)+len(c.Cautions) == 0 {
				continue
			}
			if !detailed {
				fmt.Fprintln(w, "\nWhy:")
				detailed = true
			}
			fmt.Fprintf(w, "  %s\n", certLabel(c))
			for _, rs := range append(append([]rules.Reason{}, c.Reasons...), c.Cautions...) {
				fmt.Fprintf(w, "    %s: %s\n", rs.Code, rs.Text)
			}
		}
		fmt.Fprintf(w, "\n%d of %d certificates would be offered.\n", res.Offered, len(res.Certificates))
	}
	return nil
}

// certLabel names a certificate by its subject, after the name its store
// gives it when that is not the subject's CN.
func certLabel(c certsRow) string {
	if rest, ok := strings.CutPrefix(c.Subject, "CN="+c.Name); ok && (rest == "" || rest[0] == ',') {
		return c.Subject
	}
	return c.Name + " (" + c.Subject + ")"
}

// urlRequest probes the URL as a browser would connect, TLS 1.3 first:
// the request judged is the last one of the first connection that got one
// (a renegotiation's, when the server asked again after the request).
func urlRequest(ctx context.Context, raw, proxyFlag string) ([]certsRequest, error) {
	target, err := parseProbeURL(raw)
	if err != nil {
		return nil, usageError{fmt.Errorf("--url: %w", err)}
	}
	pc, err := newProbeConfig(target, proxyFlag)
	if err != nil {
		return nil, usageError{err}
	}
	pc.Versions = []uint16{tls.VersionTLS13, tls.VersionTLS12}
	attempts, err := runReachable(ctx, pc)
	if err != nil {
		return nil, exitError{2, fmt.Errorf("--url %s: %w", raw, err)}
	}
	for _, a := range attempts {
		var last *handshake.Handshake
		for _, h := range a.Handshakes {
			if h.CertRequest != nil {
				last = h
			}
		}
		if last != nil {
			return []certsRequest{fromCertRequest(target.String(), fmt.Sprintf("%s %s handshake", last.Version, last.Phase), last.CertRequest, last.Version)}, nil
		}
	}
	return nil, exitError{1, fmt.Errorf("--url %s: the server asked for no client certificate (TLS 1.3 and 1.2, after GET %s too): a browser sends none", raw, pc.Path)}
}

func fromCertRequest(source, what string, cr *handshake.CertificateRequest, v handshake.Version) certsRequest {
	r := certsRequest{Source: source, What: what, Issuers: []string{}, req: rules.Request{CR: cr, Version: v}}
	for _, dn := range cr.Issuers {
		r.Issuers = append(r.Issuers, dn.String())
	}
	return r
}

// eventRequests reads certlens's log: the latest request per target, in
// the order targets first appear. Lines that are no handshake event with
// a request are passed over.
func eventRequests(path string) ([]certsRequest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, exitError{2, fmt.Errorf("--event: %w", err)}
	}
	defer func() { _ = f.Close() }()
	type ev struct {
		Msg         string `json:"msg"`
		Target      string `json:"target"`
		SNI         string `json:"sni"`
		TLSVersion  string `json:"tls_version"`
		Phase       string `json:"phase"`
		TS          string `json:"ts"`
		CertRequest *struct {
			Issuers []string `json:"issuers"`
		} `json:"cert_request"`
	}
	latest := map[string]certsRequest{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e ev
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Msg != "handshake" || e.CertRequest == nil {
			continue
		}
		target := e.Target
		if e.SNI != "" && !strings.HasPrefix(target, e.SNI+":") {
			target += " (" + e.SNI + ")"
		}
		if _, ok := latest[target]; !ok {
			order = append(order, target)
		}
		issuers := e.CertRequest.Issuers
		if issuers == nil {
			issuers = []string{}
		}
		latest[target] = certsRequest{Source: target, What: strings.TrimSpace(fmt.Sprintf("%s %s handshake at %s", e.TLSVersion, e.Phase, e.TS)),
			Issuers: issuers, ByName: true, req: rules.Request{Names: issuers}}
	}
	if err := sc.Err(); err != nil {
		return nil, exitError{2, fmt.Errorf("--event %s: %w", path, err)}
	}
	if len(order) == 0 {
		return nil, exitError{2, fmt.Errorf("--event %s: no handshake event with a certificate request (cert_request) in it", path)}
	}
	out := make([]certsRequest, len(order))
	for i, t := range order {
		out[i] = latest[t]
	}
	return out, nil
}

// issuersRequest reads probe --issuers-out's file (the DNs as PEM blocks,
// each request after a "# TLS ... handshake" heading) or its .json twin:
// the last request in it.
func issuersRequest(path string) ([]certsRequest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, exitError{2, fmt.Errorf("--issuers: %w", err)}
	}
	bad := func(what string) error {
		return exitError{2, fmt.Errorf("--issuers %s: %s; give the file certlens probe --issuers-out wrote, or its .json", path, what)}
	}
	var what string
	var dns []handshake.DN
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		var doc struct {
			Requests []struct {
				TLSVersion string `json:"tls_version"`
				Phase      string `json:"phase"`
				Issuers    []struct {
					DER []byte `json:"der"`
				} `json:"issuers"`
			} `json:"requests"`
		}
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return nil, bad("not JSON of the form it writes (" + err.Error() + ")")
		}
		if len(doc.Requests) == 0 {
			return nil, bad("it holds no request: the server asked for no certificate")
		}
		last := doc.Requests[len(doc.Requests)-1]
		what = last.TLSVersion + " " + last.Phase + " handshake"
		for _, dn := range last.Issuers {
			dns = append(dns, handshake.DN{Raw: dn.DER})
		}
	} else {
		sections := 0
		for line := range strings.SplitSeq(string(data), "\n") {
			if strings.HasPrefix(line, "# TLS") && strings.Contains(line, "handshake:") {
				sections++
				what, _, _ = strings.Cut(strings.TrimPrefix(line, "# "), ":")
			}
		}
		if sections == 0 {
			return nil, bad("no \"# TLS ... handshake:\" heading in it")
		}
		// The last section's blocks: those after its heading.
		last := data[bytes.LastIndex(data, []byte("\n# TLS"))+1:]
		for rest := last; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == "DISTINGUISHED NAME" {
				dns = append(dns, handshake.DN{Raw: b.Bytes})
			}
		}
	}
	n := 0
	for _, dn := range dns {
		n += 2 + len(dn.Raw)
	}
	cr := &handshake.CertificateRequest{Issuers: dns, IssuerBytes: n, HasAuthorities: true, TLS13: strings.HasPrefix(what, "TLS 1.3")}
	v := handshake.VersionTLS12
	if cr.TLS13 {
		v = handshake.VersionTLS13
	}
	return []certsRequest{fromCertRequest(path, what, cr, v)}, nil
}
