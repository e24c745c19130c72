package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/certlens/certlens/internal/logging"
	"github.com/certlens/certlens/internal/report"
	"github.com/certlens/certlens/internal/tail"
	"github.com/certlens/certlens/rules"
)

// maxViewLine bounds one line of the log: a handshake with a list of
// several hundred CAs is some 100 KB; anything beyond this is not an event.
const maxViewLine = 8 << 20

func newViewCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "view [FILE|-]",
		Short: "Print a JSON-lines log of certlens for people: a line per handshake, its findings and remedies",
		Long: `Read a log written by certlens (serve --log-file, serve's standard output,
analyze --json, probe --json) and print each event as --log-format console
does: for each handshake one line with the time, target, TLS version and
visibility, the CA names asked for (count and bytes), the certificate sent
and the verdict, predicted or certain; below it the first 10 CA names, the
alerts, and the findings with their remedies. Other events (listening,
connection closed, connect refused, http, config reloaded) take one line
of key=value.

FILE is the log, or - (or nothing, from a pipe) for standard input. With -f
the file is followed as it grows, like tail -F: it may be truncated or
replaced by log rotation; stop with Ctrl-C.

Filters: --verdict shows the events with one of the verdicts given (ok,
403.7, 403.13, 403.16, 403.17, 500.0, handshake_failed, unknown),
--problems those that predict a failure or carry an error finding (either
may select an event); --target keeps those whose target, SNI or HTTP host
contains the text, or matches the pattern (*.corp.example, 10.0.0.*:443);
--since keeps those from a time on (RFC 3339) or from the last while (a
duration: 30m, 2h).

Lines that are not certlens events (JSON or not) are skipped; their count
is said on standard error at the end. Colour only on a terminal, and not
with NO_COLOR. Exit status: 0, or 2 when the file cannot be read or the
command line is wrong.`,
		Example: `  certlens view handshakes.jsonl
  certlens view -f handshakes.jsonl                          # like tail -f, for people
  certlens view --problems handshakes.jsonl                  # only what predicts a 403 (or worse)
  certlens view --verdict 403.7,403.16 --since 2h handshakes.jsonl
  certlens view -f --target '*.corp.example' handshakes.jsonl
  certlens serve | certlens view                             # the same as --log-format console
  certlens analyze --json trace.pcapng | certlens view --problems
  Get-Content handshakes.jsonl -Wait | certlens view         # PowerShell`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("view reads one log, not %d: certlens view FILE (or - for standard input)", len(args))}
			}
			return nil
		},
		RunE: runView,
	}
	fs := cmd.Flags()
	fs.BoolP("follow", "f", false, "keep reading the file as it grows, like tail -F (truncation and rotation followed); Ctrl-C stops")
	fs.StringSlice("verdict", nil, "show events with this `VERDICT` (ok, 403.7, 403.13, 403.16, 403.17, 500.0, handshake_failed, unknown); repeat or separate with commas")
	fs.Bool("problems", false, "show events whose verdict is not ok or unknown, and handshakes with an error finding")
	fs.String("target", "", "show events whose target, SNI or HTTP host contains `HOST`, or matches it as a pattern (*.corp.example, 10.0.0.*:443)")
	fs.String("since", "", "show events from `WHEN` on: an RFC 3339 time (2026-11-25T09:00:00Z) or a duration back from now (30m, 2h)")
	return cmd
}

func runView(cmd *cobra.Command, args []string) error {
	filter, err := viewFilter(cmd)
	if err != nil {
		return usageError{err}
	}
	follow, _ := cmd.Flags().GetBool("follow")
	name := "-"
	if len(args) == 1 {
		name = args[0]
	}
	stdin := cmd.InOrStdin()
	if f, ok := stdin.(*os.File); ok && len(args) == 0 && isTerminal(f) {
		return usageError{errors.New("view: give the log file to read (certlens view handshakes.jsonl), or pipe one in (certlens serve | certlens view)")}
	}
	color := false
	if f, ok := cmd.OutOrStdout().(*os.File); ok {
		color = report.UseColor(f)
	}
	v := report.NewView(cmd.OutOrStdout(), logging.ConsoleOptions(color), filter)
	lines := &tail.Lines{Max: maxViewLine, Line: v.Line, Long: v.Long}
	stderr := cmd.ErrOrStderr()

	switch {
	case name == "-":
		_, err = io.Copy(lines, stdin)
		lines.Flush()
	case follow:
		if err := checkLogFile(name); err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()
		tail.New(name, lines, func(n tail.Notice, err error) { viewNotice(stderr, name, n, err) }).Run(ctx)
	default:
		if err := checkLogFile(name); err != nil {
			return err
		}
		var f *os.File
		if f, err = os.Open(name); err != nil {
			return exitError{2, fmt.Errorf("view: %w", err)}
		}
		_, err = io.Copy(lines, f)
		f.Close()
		lines.Flush()
	}
	if s := v.Skipped(); s != "" {
		fmt.Fprintf(stderr, "certlens: view: %s: %s\n", displayFile(name), s)
	}
	if err != nil {
		return fmt.Errorf("view: read %s: %w", displayFile(name), err)
	}
	return v.Err()
}

// checkLogFile refuses, with exit code 2, a log that is not a readable file.
func checkLogFile(name string) error {
	st, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return exitError{2, fmt.Errorf("view: %s: no such file (the path of a log written by certlens serve --log-file, or - for standard input)", name)}
	case err != nil:
		return exitError{2, fmt.Errorf("view: %w", err)}
	case st.IsDir():
		return exitError{2, fmt.Errorf("view: %s is a directory, not a log file", name)}
	}
	return nil
}

// viewNotice says on stderr what happened to a followed file.
func viewNotice(w io.Writer, name string, n tail.Notice, err error) {
	switch n {
	case tail.Missing:
		fmt.Fprintf(w, "certlens: view: %s is gone (rotated?); waiting for a new one\n", name)
	case tail.Unreadable:
		fmt.Fprintf(w, "certlens: view: %v; trying again\n", err)
	case tail.Replaced:
		fmt.Fprintf(w, "certlens: view: %s was replaced (rotated); reading the new file\n", name)
	case tail.Truncated:
		fmt.Fprintf(w, "certlens: view: %s was truncated; reading from its start\n", name)
	}
}

// viewFilter reads the filter flags.
func viewFilter(cmd *cobra.Command) (report.Filter, error) {
	var f report.Filter
	fl := cmd.Flags()
	verdicts, _ := fl.GetStringSlice("verdict")
	for _, v := range verdicts {
		v = strings.TrimSpace(v)
		if !slices.ContainsFunc(report.Verdicts, func(known rules.Verdict) bool { return string(known) == v }) {
			names := make([]string, len(report.Verdicts))
			for i, k := range report.Verdicts {
				names[i] = string(k)
			}
			return f, fmt.Errorf("--verdict %q is not a verdict; use one of %s", v, strings.Join(names, ", "))
		}
		f.Verdicts = append(f.Verdicts, v)
	}
	f.Problems, _ = fl.GetBool("problems")
	f.Target, _ = fl.GetString("target")
	if _, err := path.Match(f.Target, ""); err != nil {
		return f, fmt.Errorf("--target %q: %v (a pattern such as *.corp.example)", f.Target, err)
	}
	if since, _ := fl.GetString("since"); since != "" {
		if d, err := time.ParseDuration(since); err == nil && d >= 0 {
			f.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339Nano, since); err == nil {
			f.Since = t
		} else {
			return f, fmt.Errorf("--since %q is neither a duration (30m, 2h) nor an RFC 3339 time (2026-11-25T09:00:00Z)", since)
		}
	}
	return f, nil
}

// isTerminal reports whether f is a terminal: a user who typed
// `certlens view` alone, not a pipe.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
