package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestPlainHTTPIsProxiedAndLoggedBriefly: plain HTTP goes through as usual;
// the event names method, host, path and status, never headers or bodies.
func TestPlainHTTPIsProxiedAndLoggedBriefly(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer backend.Close()
	proxyAddr, ev := startProxy(t, Options{})
	proxyURL, _ := url.Parse("http://" + proxyAddr)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	req, _ := http.NewRequest(http.MethodPost, backend.URL+"/login?token=querysecret", strings.NewReader("password=bodysecret"))
	req.Header.Set("Cookie", "session=cookiesecret")
	req.Header.Set("Authorization", "Basic YXV0aHNlY3JldA==")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello /login" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	e := ev.wait(t, "http", 1)[0]
	if e["method"] != "POST" || e["path"] != "/login" || e["status"] != float64(200) || e["host"] != strings.TrimPrefix(backend.URL, "http://") {
		t.Errorf("event %v", e)
	}
	log := ev.text()
	for _, secret := range []string{"cookiesecret", "YXV0aHNlY3JldA", "bodysecret", "querysecret"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains %q:\n%s", secret, log)
		}
	}
}

// TestPlainHTTPErrorKeepsQueryOut: a request the proxy cannot forward is
// logged with the error, without the URL's query string.
func TestPlainHTTPErrorKeepsQueryOut(t *testing.T) {
	proxyAddr, ev := startProxy(t, Options{Dial: loopbackOnly})
	proxyURL, _ := url.Parse("http://" + proxyAddr)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := client.Get("http://unreachable.invalid/reset?token=querysecret")
	if err == nil {
		resp.Body.Close()
	}
	e := ev.wait(t, "http", 1)[0]
	if e["error"] == nil || e["path"] != "/reset" {
		t.Errorf("event %v, want the error and the path", e)
	}
	log := ev.text()
	if strings.Contains(log, "querysecret") {
		t.Errorf("the log contains the query string:\n%s", log)
	}
}
