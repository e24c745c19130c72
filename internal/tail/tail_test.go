package tail

import (
	"strings"
	"testing"
)

// TestLines splits what writers write: lines across writes, a runaway
// line dropped whole and counted, the last line without a newline on Flush.
func TestLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string // lines joined by |, then /long count
	}{
		{"one write", []string{"a\nbb\n"}, "a|bb/0"},
		{"a line across writes", []string{"a", "b", "c\nd\n"}, "abc|d/0"},
		{"empty lines kept", []string{"\n\nx\n"}, "||x/0"},
		{"a long line in one write", []string{"123456789\nok\n"}, "ok/1"},
		{"a long line across writes", []string{"12345", "6789", "0\nok\n"}, "ok/1"},
		{"the last line without a newline", []string{"a\nlast"}, "a|last/0"},
		{"a long last line", []string{"a\n1234567890"}, "a/1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			long := 0
			l := &Lines{Max: 8, Line: func(b []byte) { got = append(got, string(b)) }, Long: func() { long++ }}
			for _, w := range tc.writes {
				if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			l.Flush()
			if s := strings.Join(got, "|") + "/" + string(rune('0'+long)); s != tc.want {
				t.Errorf("got %q, want %q", s, tc.want)
			}
		})
	}
}
