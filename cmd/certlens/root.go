package main

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/spf13/cobra"

	"github.com/certlens/certlens/config"
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
	root.AddCommand(newServeCmd(), newAnalyzeCmd(), newProbeCmd(), newVersionCmd(), newHealthCmd(), newPasswdCmd(), newCACmd(), newViewCmd(), newCertsCmd())
	// certlens --version prints what certlens version prints.
	root.Version = versionString()
	root.SetVersionTemplate("{{.Version}}\n")
	checkArgs(root)
	return root
}

// checkArgs makes every wrong argument, on every command, a usage error:
// exit 2 and one line. Left to cobra, an unknown command or an extra
// argument exits 1, a word after a command group (certlens ca nosuch)
// prints the help and exits 0, and a command without an Args check takes
// any argument and ignores it.
func checkArgs(root *cobra.Command) {
	// cobra adds these when it runs; added now, they are checked too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case c.Name() == "help" && c.Parent() == root:
			c.Args = helpTopic
		case c.HasSubCommands():
			// A group runs only to say what is wrong, or to show its help.
			c.Args = unknownSubcommand
			c.SuggestionsMinimumDistance = 2
			if !c.Runnable() {
				c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
			}
		case c.Args == nil || reflect.ValueOf(c.Args).Pointer() == reflect.ValueOf(cobra.NoArgs).Pointer():
			c.Args = noArgs
		default:
			c.Args = asUsage(c.Args)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func asUsage(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		err := check(cmd, args)
		var u usageError
		if err != nil && !errors.As(err, &u) {
			return usageError{fmt.Errorf("%s: %w (see %s --help)", cmdName(cmd), err, cmd.CommandPath())}
		}
		return err
	}
}

// noArgs replaces cobra.NoArgs, whose "unknown command" reads as if the
// word were a misspelt subcommand.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return usageError{fmt.Errorf("%s takes no arguments, got %q; options are flags (see %s --help)", cmdName(cmd), args[0], cmd.CommandPath())}
}

// cmdName is the command's path without "certlens", which main already
// puts before every message.
func cmdName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError{fmt.Errorf("%s (%s --help lists the commands)", msg, cmd.CommandPath())}
}

// helpTopic checks certlens help's arguments, which cobra answers with
// "Unknown help topic" and exit 0.
func helpTopic(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	found, rest, err := cmd.Root().Find(args)
	switch {
	case err != nil || found == nil:
		return unknownSubcommand(cmd.Root(), args)
	case len(rest) > 0:
		return unknownSubcommand(found, rest)
	}
	return nil
}

// printWarnings says on stderr what config.Load let pass, for the commands
// whose stdout is their result; serve logs them as events instead.
func printWarnings(w io.Writer, cfg *config.Config) {
	for _, msg := range cfg.Warnings {
		fmt.Fprintln(w, "certlens: warning:", msg)
	}
}
