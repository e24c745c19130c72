package main

import (
	"github.com/spf13/cobra"
)

// usageError marks bad command-line use: exit code 2, like a config error.
type usageError struct{ error }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "certlens",
		Short: "See why a browser did not send its client certificate",
		Long: `certlens is a diagnostic proxy for TLS client-certificate authentication.

Point a browser (or curl -x) at it, or run it beside a web server, and it logs
one JSON line per TLS handshake: the CA names the server asked for (count and
bytes against Windows' 16 KB limit), the client certificate actually sent, the
alerts, and a verdict: will IIS answer "403.7 Client certificate required"
(or 403.13/403.16/403.17), and why.

Start with:  certlens serve    then set 127.0.0.1:8080 as the browser's proxy.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCmd(), newAnalyzeCmd(), newProbeCmd(), newVersionCmd(), newHealthCmd(), newPasswdCmd(), newCACmd(), newViewCmd())
	return root
}
