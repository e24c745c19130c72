package rules

import "testing"

func TestIISSubstatus(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"detailed error page", 403, "<h3>HTTP Error 403.7 - Forbidden</h3><h4>The page requires a client certificate", "403.7"},
		{"custom error page title", 403, "<title>403 - Forbidden: Access is denied.</title> 403.16 - Forbidden: Client certificate is untrusted or invalid.", "403.16"},
		{"another status's number", 403, "version 500.0 of the module", ""},
		{"no substatus", 403, "Forbidden", ""},
		{"IIS 500.0 with its error code", 500, "HTTP Error 500.0 - Internal Server Error 0x80070032", "500.0"},
		{"a decimal that is no status", 200, "price 403.70 EUR", ""},
		{"inside a version number", 403, "version 1.403.7 of something", ""},
		{"inside a larger number", 403, "error 5403.7", ""},
		{"a dotted number first, the real one after", 403, "see 403.7.1 and then HTTP Error 403.13", "403.13"},
		{"no digits after the dot", 403, "HTTP Error 403.", ""},
		{"empty body", 403, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := IISSubstatus(tc.status, tc.body); got != tc.want {
				t.Errorf("IISSubstatus(%d, %q) = %q, want %q", tc.status, tc.body, got, tc.want)
			}
		})
	}
}
