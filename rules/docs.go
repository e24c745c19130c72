package rules

import (
	"fmt"
	"strings"
)

// Markdown renders the catalogue as docs/rules.md; a test keeps the file and
// the code from drifting apart.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# certlens rules\n\n")
	b.WriteString("Generated from `rules.Catalogue` (`go test ./rules -run TestRulesDoc -update` rewrites it).\n")
	b.WriteString("Each handshake event lists the findings that fired, in this order, with the evidence\n")
	b.WriteString("(`detail`) and the remedy; `predicts` is the IIS status the finding leads to.\n\n")
	b.WriteString("| id | severity | predicts | fires when |\n|---|---|---|---|\n")
	rules := Catalogue()
	for _, r := range rules {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s |\n", r.ID, r.ID, r.Severity, orDash(string(r.Predicts)), r.Trigger)
	}
	for _, r := range rules {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n**Remedy:** %s\n", r.ID, r.Trigger, r.Remedy)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
