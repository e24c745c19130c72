package page

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certlens/certlens/internal/logging"
)

// sseEvent is one event of the stream.
type sseEvent struct{ id, event, data string }

func readEvents(t *testing.T, sc *bufio.Scanner, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	for len(out) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		}
	}
	if len(out) < n {
		t.Fatalf("stream ended after %d events, want %d: %v", len(out), n, sc.Err())
	}
	return out
}

// TestStream: a browser gets the kept events, then the new ones as they
// are published, each with its id; one that reconnects with Last-Event-ID
// gets only what it has not seen; the stats event says what was dropped.
func TestStream(t *testing.T) {
	hub := logging.NewHub(3, 0)
	for i := 1; i <= 5; i++ {
		hub.Publish(fmt.Appendf(nil, `{"msg":"handshake","n":%d}`+"\n", i))
	}
	srv := httptest.NewServer(Handler(hub, nil))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("Content-Type %q, CSP %q", ct, resp.Header.Get("Content-Security-Policy"))
	}
	sc := bufio.NewScanner(resp.Body)
	got := readEvents(t, sc, 4)
	want := []sseEvent{{"3", "", `{"msg":"handshake","n":3}`}, {"4", "", `{"msg":"handshake","n":4}`},
		{"5", "", `{"msg":"handshake","n":5}`}, {"", "stats", `{"evicted":2,"missed":0}`}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	hub.Publish([]byte(`{"msg":"connection closed"}`))
	if live := readEvents(t, sc, 1)[0]; live.id != "6" || live.data != `{"msg":"connection closed"}` {
		t.Errorf("live event %+v", live)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/events", nil)
	req.Header.Set("Last-Event-ID", "5")
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Body.Close()
	if ev := readEvents(t, bufio.NewScanner(again.Body), 1)[0]; ev.id != "6" {
		t.Errorf("resumed after 5 with %+v, want 6 first", ev)
	}
}

// TestStreamDoesNotHoldThePublisher: a browser that stops reading costs
// the proxy nothing: Publish returns at once while the stream's writes
// are blocked, and the events it missed are counted.
func TestStreamDoesNotHoldThePublisher(t *testing.T) {
	hub := logging.NewHub(10, 0)
	srv := httptest.NewServer(Handler(hub, nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // never read
	big := append(append([]byte(`{"msg":"handshake","issuers":"`), bytes.Repeat([]byte("x"), 60<<10)...), `"}`...)
	start := time.Now()
	for range 2000 {
		hub.Publish(big)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("2000 publishes to a stalled stream took %v", d)
	}
}

// TestPageAssets: the page loads its script and style by URL under a
// policy without 'unsafe-inline', and puts no data into markup: the
// script never assigns innerHTML or outerHTML and never calls
// insertAdjacentHTML or document.write.
func TestPageAssets(t *testing.T) {
	srv := httptest.NewServer(Handler(logging.NewHub(1, 0), nil))
	defer srv.Close()
	for path, ctype := range map[string]string{"/": "text/html", "/page.js": "text/javascript", "/page.css": "text/css"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: %d %q, CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), csp)
		}
	}
	if m := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`).Find(script); m != nil {
		t.Errorf("page.js uses %s", m)
	}
}

// TestWriteReport: one file, its script and style allowed by their hashes
// in a policy that allows nothing else; an event's "</script>" cannot end
// the data early; a line that is not JSON is refused.
func TestWriteReport(t *testing.T) {
	var b bytes.Buffer
	ev := []byte(`{"msg":"handshake","sni":"</script><script>alert(1)</script>"}` + "\n")
	if err := WriteReport(&b, Report{Title: `probe <b>"x"</b>`, Events: [][]byte{ev}, Written: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"script-src 'sha256-" + sum(script) + "'",
		"style-src 'sha256-" + sum(css) + "'",
		"<title>probe &lt;b&gt;&#34;x&#34;&lt;/b&gt;</title>",
		`\u003c/script>\u003cscript>alert(1)\u003c/script>`,
		"<style>" + string(css) + "</style>",
		"<script>" + string(script) + "</script>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %.80q", want)
		}
	}
	if n := strings.Count(out, "<script"); n != 2 {
		t.Errorf("%d script elements, want 2 (the data and the page's own)", n)
	}
	if strings.Contains(out, "src=") || strings.Contains(out, "href=\"http") {
		t.Error("the report refers to something outside itself")
	}
	if err := WriteReport(&b, Report{Events: [][]byte{[]byte("not json")}}); err == nil {
		t.Error("a line that is not JSON was written")
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}
