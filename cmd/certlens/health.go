package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// newHealthCmd is the container healthcheck: the image has no shell or curl.
func newHealthCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "health [URL]",
		Short: "Exit 0 if the admin server's /healthz answers 200 (for container healthchecks)",
		Example: `  certlens health
  certlens health http://127.0.0.1:9090/readyz`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("health takes one URL at most, got %d arguments", len(args))}
			}
			if len(args) == 1 {
				if u, err := url.Parse(args[0]); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return usageError{fmt.Errorf("health: %q is not an http:// URL, e.g. http://127.0.0.1:9090/healthz", args[0])}
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target := "http://127.0.0.1:9090/healthz"
			if len(args) == 1 {
				target = args[0]
			}
			c := http.Client{Timeout: 3 * time.Second}
			resp, err := c.Get(target)
			if err != nil {
				return fmt.Errorf("health: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("health: %s answered %s: %s", target, resp.Status, body)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), string(body))
			return err
		},
	}
}
