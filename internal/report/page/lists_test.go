package page

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/certlens/certlens/internal/logging"
)

// TestIssuersArray: the array is found whatever its DNs hold (escaped
// quotes, brackets, the key itself as text), and not where there is none.
func TestIssuersArray(t *testing.T) {
	for _, c := range []struct {
		name, line, want string
	}{
		{"plain", `{"a":1,"cert_request":{"issuer_count":2,"issuers":["CN=a","CN=b"],"records":1}}`, `["CN=a","CN=b"]`},
		{"empty", `{"cert_request":{"issuers":[],"records":1}}`, `[]`},
		{"quotes, backslashes and brackets in DNs", `{"issuers":["CN=\"]\\","O=x\\\\\"],[y"],"z":1}`, `["CN=\"]\\","O=x\\\\\"],[y"]`},
		{"the key as a value before it", `{"sni":"\"issuers\":[\"no","cert_request":{"issuers":["CN=yes"]}}`, `["CN=yes"]`},
		{"none", `{"msg":"connection closed"}`, ``},
		{"cut short", `{"issuers":["CN=a","CN=b`, ``},
	} {
		start, end, ok := issuersArray([]byte(c.line))
		got := ""
		if ok {
			got = c.line[start:end]
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestStreamSendsAListOnce: events with the same long list carry it once
// per stream; put back, each event is the line the log has.
func TestStreamSendsAListOnce(t *testing.T) {
	var dns []string
	for i := range 40 {
		dns = append(dns, fmt.Sprintf(`"CN=certlens test CA %03d,O=\"Contoso\", Ltd."`, i))
	}
	list := "[" + strings.Join(dns, ",") + "]"
	hub := logging.NewHub(10, 0)
	var lines []string
	for i := range 3 {
		lines = append(lines, fmt.Sprintf(`{"msg":"handshake","n":%d,"cert_request":{"issuer_count":40,"issuers":%s,"records":1},"verdict":"ok"}`, i, list))
		hub.Publish([]byte(lines[i]))
	}
	srv := httptest.NewServer(Handler(hub, nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	evs := readEvents(t, bufio.NewScanner(resp.Body), 5) // a list, 3 events, stats
	if evs[0].event != "list" || !strings.Contains(evs[0].data, `"issuers":`+list) || strings.Count(evs[0].data, "CN=certlens test CA 000") != 1 {
		t.Fatalf("first event %.100q, want the list", evs[0])
	}
	var l struct {
		ID      int
		Issuers json.RawMessage
	}
	if err := json.Unmarshal([]byte(evs[0].data), &l); err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs[1:4] {
		if ev.event != "" || strings.Contains(ev.data, "CN=certlens") {
			t.Errorf("event %d carries the list again: %.120q", i, ev.data)
		}
		back := strings.Replace(ev.data, fmt.Sprintf(`{"list":%d}`, l.ID), string(l.Issuers), 1)
		if back != lines[i] {
			t.Errorf("event %d, list put back:\n%s\nwant\n%s", i, back, lines[i])
		}
	}
}
