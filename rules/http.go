package rules

import (
	"regexp"
	"strconv"
)

// substatusRE finds an IIS substatus as its error pages write it: "HTTP
// Error 403.7 - Forbidden", "403.16 - Forbidden: Client certificate is
// untrusted or invalid" (detailed and custom error pages alike).
var substatusRE = regexp.MustCompile(`\b([1-5][0-9]{2})\.([0-9]{1,3})\b`)

// IISSubstatus returns the substatus ("403.7") an error page body names for
// status, or "" when it names none. Only a substatus of the answered status
// counts: a page may quote other numbers.
func IISSubstatus(status int, body string) string {
	want := strconv.Itoa(status)
	for _, m := range substatusRE.FindAllStringSubmatch(body, 8) {
		if m[1] == want {
			return m[1] + "." + m[2]
		}
	}
	return ""
}
