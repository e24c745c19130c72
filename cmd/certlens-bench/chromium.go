package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The chromium mode makes the tunnels a browser makes: headless Chromium
// loads a page that fetches /small n times, one request after the other,
// each on a new connection (nginx closes every one), so each is a new
// tunnel, with Chromium's own TLS stack and its session resumption. It
// measures sequential tunnels only: a page can hold a bulk body only in
// memory (a synchronous request's text, at most 512 MB) or read it
// asynchronously, which --dump-dom does not wait for.

// seqPage fetches /small?i n times (n from its query) with synchronous
// requests, which --dump-dom waits for, and writes each one's time in ms
// (-1: failed) into the page. No icon: that would be one more tunnel.
const seqPage = `<!doctype html><html><head><link rel="icon" href="data:,"></head><body><script>
const n = +new URLSearchParams(location.search).get("n");
const t = [];
for (let i = 0; i < n; i++) {
	const x = new XMLHttpRequest();
	const s = performance.now();
	x.open("GET", "/small?" + i, false);
	try { x.send(); } catch (e) {}
	t.push(x.status == 200 ? performance.now() - s : -1);
}
document.body.textContent = "RESULT " + JSON.stringify(t);
</script></body></html>
`

// chromiumFlags keep headless Chromium from its own network traffic
// (updates, sync, metrics) as far as flags can; each Chromium started
// still sends one or two requests to Google's hosts through the proxy
// (which fail there at DNS on a machine without Internet), counted in the
// proxy's CPU but not as tunnels. A PAC file cannot keep them out: with
// one, Chromium sends no loopback request through the proxy at all.
var chromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
	"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
	"--disable-extensions", "--disable-client-side-phishing-detection", "--disable-domain-reliability", "--no-pings",
	"--metrics-recording-only", "--no-first-run",
	"--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,CertificateTransparencyComponentUpdater"}

type chromiumRow struct {
	name string
	seq  seqStats
}

// chromiumMode measures b.seq sequential tunnels per path and TLS version
// made by Chromium, against nginx's servers for each version (servers[0]
// TLS 1.2, servers[1] TLS 1.3).
func (b *bench) chromiumMode(peers []*peer, servers [2]string) []chromiumRow {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		fmt.Fprintln(os.Stderr, "skip the chromium client: chromium not found: install the Debian package chromium (apt-get install chromium)")
		return nil
	}
	profile := filepath.Join(b.dir, "chromium")
	var cp []*peer
	for _, p := range peers {
		if !p.sidecar {
			cp = append(cp, p)
		}
	}
	fmt.Fprintf(os.Stderr, "chromium: %d sequential tunnels through each path and TLS version, interleaved...\n", b.seq)
	// One more tunnel per run than timed: the page's own. Few runs: each
	// Chromium started also sends its own requests through the proxy.
	seq := b.sequential(cp, 4, 1, func(p *peer, v, n int) ([]time.Duration, int) {
		args := append([]string{}, chromiumFlags...)
		args = append(args, "--user-data-dir="+profile)
		if p.addr == "" {
			args = append(args, "--no-proxy-server")
		} else {
			// Chromium goes around any proxy for loopback unless told not to.
			args = append(args, "--proxy-server=http://"+p.addr, "--proxy-bypass-list=<-loopback>")
		}
		args = append(args, "--dump-dom", fmt.Sprintf("https://%s/seq.html?n=%d", servers[v], n))
		cmd := exec.Command(bin, args...)
		cmd.Stderr = io.Discard
		out, err := cmd.Output()
		_, result, ok := strings.Cut(string(out), "RESULT ")
		if err != nil || !ok {
			return nil, n
		}
		result, _, _ = strings.Cut(result, "<")
		var ms []float64
		if err := json.Unmarshal([]byte(strings.TrimSpace(result)), &ms); err != nil {
			return nil, n
		}
		var lat []time.Duration
		failed := n - len(ms)
		for _, m := range ms {
			if m < 0 {
				failed++
				continue
			}
			lat = append(lat, time.Duration(m*float64(time.Millisecond)))
		}
		return lat, failed
	})
	rows := make([]chromiumRow, len(cp))
	for i, p := range cp {
		rows[i] = chromiumRow{name: p.name, seq: seq[i]}
	}
	return rows
}

func printChromiumTable(w io.Writer, rows []chromiumRow, b *bench) {
	if len(rows) == 0 {
		return
	}
	version, _ := exec.Command("chromium", "--version").Output()
	fmt.Fprintf(w, "\n%s, headless: %d sequential tunnels per path and TLS version (a page's synchronous GETs of 1 KiB, each on a new connection, sessions resumed as Chromium does; no client certificate asked), in interleaved blocks\n\n",
		strings.TrimSpace(string(version)), b.seq)
	fmt.Fprintln(w, "| path | proxy CPU/tunnel (1.2 / 1.3) | added p50 (1.2 / 1.3) | proxy context switches/tunnel (1.2 / 1.3) |")
	fmt.Fprintln(w, "|---|---|---|---|")
	var direct *seqStats
	for i := range rows {
		if rows[i].name == "direct" {
			direct = &rows[i].seq
		}
	}
	for _, r := range rows {
		d := direct
		if r.name == "direct" {
			d = nil
		}
		cpu, added, wake := r.seq.columns(d)
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.name, cpu, added, wake)
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		r.seq.printErrors(w, r.name)
	}
}
