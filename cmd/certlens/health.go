package main

import (
	"fmt"
	"io"
	"net/http"
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
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := "http://127.0.0.1:9090/healthz"
			if len(args) == 1 {
				url = args[0]
			}
			c := http.Client{Timeout: 3 * time.Second}
			resp, err := c.Get(url)
			if err != nil {
				return fmt.Errorf("health: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("health: %s answered %s: %s", url, resp.Status, body)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), string(body))
			return err
		},
	}
}
