package rules

import (
	"strconv"
	"strings"
)

// IISSubstatus returns the substatus ("403.7") an error page body names for
// status, as IIS's detailed and custom error pages write it ("HTTP Error
// 403.7 - Forbidden", "403.16 - Forbidden: Client certificate is untrusted
// or invalid"), or "" when it names none. Only a substatus of the answered
// status counts, and only as a number of its own: not "1.403.7", "5403.7"
// or "403.7.1".
func IISSubstatus(status int, body string) string {
	code := strconv.Itoa(status) + "."
	for i := 0; ; {
		j := strings.Index(body[i:], code)
		if j < 0 {
			return ""
		}
		start := i + j
		end := start + len(code)
		k := end
		for k < len(body) && k-end < 3 && isDigit(body[k]) {
			k++
		}
		before := start == 0 || !(isDigit(body[start-1]) || body[start-1] == '.')
		after := k == len(body) || !(isDigit(body[k]) || body[k] == '.' && k+1 < len(body) && isDigit(body[k+1]))
		if k > end && before && after {
			return body[start:k]
		}
		i = end
	}
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
